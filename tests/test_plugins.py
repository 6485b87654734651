"""Third-party plugins as a person installs them: a real distribution with an
`rmm_tray` entry point, drop-in files, and plugins that fail."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import json_lines, run_cli

pytestmark = pytest.mark.integration

PLUGIN_MODULES = {
    "haiku_plugin.py": '''
        from rmm_tray import PromptTemplate, hookimpl

        @hookimpl
        def register_prompt_templates(register):
            register(PromptTemplate(name="haiku", description="A haiku",
                                    body="Write a haiku about {{topic}}."))

        @hookimpl
        def before_send(draft):
            draft.text = draft.text.replace("haiku", "HAIKU")
    ''',
    "broken_import_plugin.py": '''
        raise RuntimeError("boom on import")
    ''',
    "broken_hook_plugin.py": '''
        from rmm_tray import hookimpl

        @hookimpl
        def register_prompt_templates(register):
            raise ValueError("cannot register today")
    ''',
}


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build and install a tiny distribution into its own folder (not the venv)."""
    src = tmp_path_factory.mktemp("dist")
    for name, code in PLUGIN_MODULES.items():
        (src / name).write_text(textwrap.dedent(code))
    (src / "pyproject.toml").write_text(textwrap.dedent('''
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "rmm-test-plugins"
        version = "1.2.3"

        [tool.setuptools]
        py-modules = ["haiku_plugin", "broken_import_plugin", "broken_hook_plugin"]

        [project.entry-points.rmm_tray]
        haiku = "haiku_plugin"
        broken_import = "broken_import_plugin"
        broken_hook = "broken_hook_plugin"
    '''))
    site = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(site), str(src)],
        check=True, capture_output=True,
    )
    return site


def plugins_by_name(env: dict[str, str], *extra: str) -> dict[str, dict]:
    result = run_cli(*extra, "plugins", "--json", env=env)
    assert result.returncode == 0, result.stderr
    return {p["name"]: p for p in json.loads(result.stdout)}


def test_entry_point_plugins_are_listed_with_their_status(home: Path, plugin_site: Path) -> None:
    env = {"PYTHONPATH": str(plugin_site)}
    plugins = plugins_by_name(env)
    haiku = plugins["haiku"]
    assert (haiku["status"], haiku["source"], haiku["version"]) == ("ok", "entry point", "1.2.3")
    assert set(haiku["hooks"]) == {"register_prompt_templates", "before_send"}
    assert plugins["broken_import"]["status"] == "failed"
    assert "RuntimeError: boom on import" in plugins["broken_import"]["error"]
    assert plugins["broken_hook"]["status"] == "failed"
    assert "in register_prompt_templates: ValueError" in plugins["broken_hook"]["error"]
    for first_party in ("history_jsonl", "builtin_templates", "local_folder"):
        assert plugins[first_party]["status"] == "ok"
        assert plugins[first_party]["source"] == "first-party"

    table = run_cli("plugins", env=env).stdout
    assert "failed: import failed: RuntimeError: boom on import" in table


def test_a_failing_plugin_does_not_stop_the_others(home: Path, plugin_site: Path) -> None:
    result = run_cli("prompts", "list", "--json", env={"PYTHONPATH": str(plugin_site)})
    assert result.returncode == 0
    names = {t["name"]: t for t in json.loads(result.stdout)}
    assert names["haiku"]["source"] == "haiku" and names["haiku"]["variables"] == ["topic"]
    assert "summarize" in names
    # One line per failure on stderr, no traceback.
    assert "boom on import" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_plugin_template_works_in_chat(home_with_model: Path, plugin_site: Path) -> None:
    env = {"PYTHONPATH": str(plugin_site)}
    result = run_cli("chat", "--json", "--max-tokens", "6", "-t", "haiku", "--var", "topic=rain",
                     env=env)
    assert result.returncode == 0, result.stderr
    chat_id = json_lines(result.stdout)[-1]["chat_id"]
    shown = json.loads(run_cli("chats", "show", chat_id, "--json").stdout)
    # Rendered from the template, then rewritten by the plugin's before_send.
    assert shown["messages"][0]["content"] == "Write a HAIKU about rain."

    missing = run_cli("chat", "-t", "haiku", env=env)
    assert missing.returncode == 2  # a usage error, naming what is missing
    assert "template 'haiku' needs --var topic=..." in missing.stderr


def test_rmm_plugins_and_safe_mode_limit_third_party_plugins(
    home: Path, plugin_site: Path
) -> None:
    env = {"PYTHONPATH": str(plugin_site)}
    only = plugins_by_name({**env, "RMM_PLUGINS": "haiku"})
    assert "haiku" in only and "broken_import" not in only and "broken_hook" not in only
    assert "history_jsonl" in only, "first-party plugins always load"

    safe = plugins_by_name(env, "--safe-mode")
    assert {p["source"] for p in safe.values()} == {"first-party"}


@pytest.mark.slow
def test_drop_in_plugins(home_with_model: Path) -> None:
    (home_with_model / "plugins" / "shout.py").write_text(textwrap.dedent('''
        from rmm_tray import hookimpl
        __version__ = "0.3"

        @hookimpl
        def after_reply(draft):
            draft.text = "SAVED: " + draft.text.upper()
    '''))
    (home_with_model / "plugins" / "typo.py").write_text("import nonesuch_module\n")
    plugins = plugins_by_name({})
    assert plugins["shout"]["source"] == "drop-in" and plugins["shout"]["status"] == "ok"
    assert "ModuleNotFoundError" in plugins["typo"]["error"]

    result = run_cli("chat", "--json", "--max-tokens", "5", "Hello")
    assert result.returncode == 0, result.stderr
    chat_id = json_lines(result.stdout)[-1]["chat_id"]
    reply = json.loads(run_cli("chats", "show", chat_id, "--json").stdout)["messages"][1]
    assert reply["content"].startswith("SAVED: ")
