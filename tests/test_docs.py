"""The plugin guide (docs/plugins.md) keeps up with the hook specs, the example
plugin works, and plugins use only the public API (``from rmm_tray import ...``)."""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pluggy
import pytest

import rmm_tray
from rmm_tray import MessageDraft, PromptTemplate
from rmm_tray.hooks import specs as hookspecs
from rmm_tray.hooks.host import PluginHost

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "plugins.md"
EXAMPLE_DIR = ROOT / "examples" / "rmm-tray-example-plugin"
EXAMPLE = EXAMPLE_DIR / "rmm_tray_example.py"
FIRST_PARTY = sorted((ROOT / "plugins").glob("*.py"))

HOOK_HEADING = re.compile(r"^### `([^`]+)`\s*$")
HEADING = re.compile(r"^(#{1,3}) ")
FENCE = re.compile(r"^\s*(```|~~~)(.*)$")


def spec_hooks(module: ModuleType = hookspecs) -> dict[str, list[str]]:
    """Every hook that ``module`` specifies, with its argument names, as pluggy sees it."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(module)
    return {
        name: list(caller.spec.argnames)
        for name, caller in vars(pm.hook).items()
        if isinstance(caller, pluggy.HookCaller) and caller.has_spec() and caller.spec
    }


def guide_sections(text: str) -> dict[str, str]:
    """``### `name``` sections of the guide: name -> the text up to the next heading
    of level 1 to 3. Lines inside fenced code blocks are never headings."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    in_fence = False
    for line in text.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence and HEADING.match(line):
            match = HOOK_HEADING.match(line)
            if match:
                assert match.group(1) not in sections, f"two sections for {match.group(1)}"
                current = sections[match.group(1)] = []
            else:
                current = None
            continue
        if current is not None:
            current.append(line)
    return {name: "\n".join(lines) for name, lines in sections.items()}


def python_blocks(text: str) -> list[str]:
    """The ```python fenced blocks of ``text``."""
    blocks: list[str] = []
    current: list[str] | None = None
    in_fence = False
    for line in text.splitlines():
        match = FENCE.match(line)
        if match:
            if not in_fence:
                current = [] if match.group(2).strip() == "python" else None
            elif current is not None:
                blocks.append(textwrap.dedent("\n".join(current)))
            in_fence = not in_fence
        elif in_fence and current is not None:
            current.append(line)
    return blocks


def rmm_tray_imports_not_public(path: Path) -> list[str]:
    """Imports in ``path`` that reach past the public API: anything from rmm_tray
    other than ``from rmm_tray import <a name in rmm_tray.__all__>``, and relative
    imports (first-party plugins live in rmm_tray.plugins)."""
    bad = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        where = f"{path.name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            bad += [f"{where}: import {a.name}" for a in node.names
                    if a.name.split(".")[0] == "rmm_tray"]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                bad.append(f"{where}: from {'.' * node.level}{module} import ...")
            elif module.split(".")[0] != "rmm_tray":
                continue
            elif module != "rmm_tray":
                bad.append(f"{where}: from {module} import ...")
            else:
                bad += [f"{where}: from rmm_tray import {a.name} (not in rmm_tray.__all__)"
                        for a in node.names if a.name not in rmm_tray.__all__]
    return bad


def load_example() -> ModuleType:
    name = "rmm_tray_example_under_test"
    spec = importlib.util.spec_from_file_location(name, EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


# -- the guide and the hook specs ------------------------------------------------

HOOKS = spec_hooks()
SECTIONS = guide_sections(GUIDE.read_text(encoding="utf-8"))


def test_hook_specs_are_found() -> None:
    # Guards the tests below against passing vacuously.
    assert "register_prompt_templates" in HOOKS
    assert "register" in HOOKS["register_prompt_templates"]


@pytest.mark.parametrize("hook", sorted(HOOKS))
def test_every_hook_has_a_section(hook: str) -> None:
    assert hook in SECTIONS, f"docs/plugins.md has no '### `{hook}`' section"


def test_every_section_names_a_hook() -> None:
    stale = sorted(set(SECTIONS) - set(HOOKS))
    assert not stale, f"docs/plugins.md documents hooks that do not exist: {stale}"


@pytest.mark.parametrize("hook", sorted(set(HOOKS) & set(SECTIONS)))
def test_section_example_implements_the_hook(hook: str) -> None:
    """Each hook's section shows an implementation whose arguments the hook has."""
    impls = [
        node
        for block in python_blocks(SECTIONS[hook])
        for node in ast.walk(ast.parse(block))
        if isinstance(node, ast.FunctionDef) and node.name == hook
    ]
    assert impls, f"the '{hook}' section has no python example defining {hook}()"
    for impl in impls:
        assert any(ast.unparse(d) == "hookimpl" for d in impl.decorator_list)
        args = [a.arg for a in impl.args.posonlyargs + impl.args.args + impl.args.kwonlyargs]
        unknown = set(args) - set(HOOKS[hook])
        assert not unknown, f"{hook}() example takes {sorted(unknown)}; the hook has {HOOKS[hook]}"


def test_guide_python_examples_parse() -> None:
    for block in python_blocks(GUIDE.read_text(encoding="utf-8")):
        ast.parse(block)


def test_guide_lists_the_public_api() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    missing = [name for name in rmm_tray.__all__ if f"`{name}`" not in text]
    assert not missing, f"docs/plugins.md does not mention {missing}"


def test_an_added_hook_without_docs_is_caught() -> None:
    """What test_every_hook_has_a_section relies on: a new @hookspec shows up."""
    extra = ModuleType("more_hookspecs")

    @hookspecs.hookspec
    def model_loaded(app, model):  # type: ignore[no-untyped-def]
        """A hook nobody documented."""

    extra.model_loaded = model_loaded  # type: ignore[attr-defined]
    found = spec_hooks(extra)
    assert found == {"model_loaded": ["app", "model"]}
    assert "model_loaded" not in SECTIONS


# -- the example plugin ----------------------------------------------------------


def test_example_imports_only_the_public_api() -> None:
    assert rmm_tray_imports_not_public(EXAMPLE) == []
    tree = ast.parse(EXAMPLE.read_text(encoding="utf-8"))
    others = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    }
    others -= {"rmm_tray", "__future__"}
    # Its only dependency is rmm-tray; anything else must be in the standard library.
    assert others <= set(sys.stdlib_module_names), sorted(others - set(sys.stdlib_module_names))


def test_example_entry_point_names_the_module() -> None:
    meta = tomllib.loads((EXAMPLE_DIR / "pyproject.toml").read_text(encoding="utf-8"))
    assert meta["project"]["name"] == "rmm-tray-example-plugin"
    assert meta["project"]["entry-points"]["rmm_tray"] == {"example": EXAMPLE.stem}


def test_example_registers_and_works() -> None:
    host = PluginHost()
    host.register(load_example(), "example")
    info = host.infos["example"]
    assert info.error is None
    assert info.hooks == ["before_send", "register_prompt_templates"]

    found = host.collect(
        "register_prompt_templates",
        check=lambda o: isinstance(o, PromptTemplate),
        what="PromptTemplate",
        app=None,
    )
    templates = {t.name: t for plugin, t in found if plugin == "example"}
    assert set(templates) == {"haiku"}
    haiku = templates["haiku"]
    assert haiku.variables == ["topic"]
    user_text, system_text = haiku.render({"topic": "rain"}, None)
    assert "rain" in user_text
    assert "{{" not in user_text and "{{" not in (system_text or "")

    draft = MessageDraft(text="Hello there \t\n\n", chat_id="test", role="user")
    assert host.call_each("before_send", draft=draft) == [("example", None)]
    assert draft.text == "Hello there"
    assert info.error is None


# -- first-party plugins -----------------------------------------------------------


def test_first_party_plugins_are_found() -> None:
    assert len(FIRST_PARTY) > 1


@pytest.mark.parametrize("path", FIRST_PARTY, ids=lambda p: p.name)
def test_first_party_plugin_imports_only_the_public_api(path: Path) -> None:
    bad = rmm_tray_imports_not_public(path)
    assert not bad, "plugins import only `from rmm_tray import ...`:\n" + "\n".join(bad)
