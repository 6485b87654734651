"""The layout is the architecture: GUI toolkits only in shell/, and no import
cycle anywhere in rmm_tray/ (lazy and TYPE_CHECKING imports count: a cycle
there still ties two rooms together)."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "rmm_tray"
GUI_TOOLKITS = {"pystray", "webview", "pynput"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported(path: Path, known: set[str] | frozenset[str] = frozenset()) -> set[str]:
    """Every module named by an import statement anywhere in the file. ``from
    pkg import sub`` names only ``pkg.sub`` when that is one of the ``known``
    modules: a package is loaded before any of its modules anyway, so counting
    it would make every package a cycle with its own modules."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                out.add(sub if sub in known else node.module)
    return out


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: {m for m in imported(path, known) if m in mods and m != name}
            for name, path in mods.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle() -> None:
    assert cycles(import_graph()) == []


def test_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_only_the_shell_imports_gui_toolkits() -> None:
    offenders = {
        name: sorted({m.split(".")[0] for m in imported(path)} & GUI_TOOLKITS)
        for name, path in modules().items()
        if not name.startswith("rmm_tray.shell")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_only_the_engine_imports_llama_cpp() -> None:
    offenders = [name for name, path in modules().items()
                 if not name.startswith("rmm_tray.engine")
                 and any(m.split(".")[0] == "llama_cpp" for m in imported(path))]
    assert offenders == []


def test_only_the_server_imports_the_web_stack() -> None:
    offenders = [name for name, path in modules().items()
                 if not name.startswith("rmm_tray.server")
                 and {m.split(".")[0] for m in imported(path)} & {"starlette", "uvicorn"}]
    assert offenders == []


def test_the_folders_name_the_layers() -> None:
    top = sorted(p.name for p in PACKAGE.iterdir() if not p.name.startswith(("_", ".")))
    assert top == ["app.py", "chat", "cli", "desktop", "engine", "errors.py", "home", "hooks",
                   "models", "py.typed", "server", "shell", "testing", "units.py"]
