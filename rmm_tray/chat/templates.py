"""Prompt templates and their files: ``prompts/NAME.toml``.

The format keeps blocks and variable specs readable::

    description = "Translate a text"
    tags = ["writing"]
    hotkey = "<ctrl>+<alt>+t"
    run_immediately = true

    [[blocks]]
    kind = "system"
    text = "You are a careful translator."

    [[blocks]]
    kind = "instructions"
    text = "Translate into {{language}}:\\n\\n{{selection}}"

    [variables.language]
    type = "choice"
    options = ["French", "German"]
    default = "French"

The older files (``body``, ``system``, ``description``) still load. What a
prompt is (blocks, variables, rendering) is in ``prompt_model``.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import stat
import sys
from pathlib import Path
from typing import Any

from rmm_tray.chat.prompt_model import (
    BLOCK_KINDS,
    BUILTIN_VARIABLES,
    INPUT_VARIABLE,
    PromptBlock,
    PromptTemplate,
    TemplateError,
    VariableSpec,
    check_name,
)
from rmm_tray.home.atomic import atomic_write_text
from rmm_tray.home.files import NotRegularFile, open_regular

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

log = logging.getLogger(__name__)

__all__ = ["BUILTIN_VARIABLES", "INPUT_VARIABLE", "PromptTemplate", "TemplateError",
           "check_name", "load_template_file"]


#: A prompt is a few pages at most; a bigger "template" is a mistake (or not text at all).
MAX_TEMPLATE_BYTES = 1 << 20


def _read_regular(path: Path) -> str:
    """The text of ``path`` if it is a regular file (see ``home.files.open_regular``)."""
    try:
        with open_regular(path) as fh:
            data = fh.read(MAX_TEMPLATE_BYTES + 1)
    except NotRegularFile as exc:
        raise TemplateError(str(exc)) from None
    except FileNotFoundError:
        raise TemplateError(f"{path.name}: missing (a link to a file that is gone?)") from None
    except OSError as exc:
        raise TemplateError(f"{path.name}: {exc.strerror or exc}") from None
    if len(data) > MAX_TEMPLATE_BYTES:
        raise TemplateError(f"{path.name}: larger than {MAX_TEMPLATE_BYTES >> 20} MiB; not a prompt")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TemplateError(f"{path.name}: not UTF-8 text ({exc.reason})") from None


def _str(data: dict[str, Any], key: str, where: str, default: str = "") -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise TemplateError(f"{where}: {key} should be text")
    return value


def _number(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TemplateError(f"{where} should be a number")
    return float(value)


def variable_from_dict(name: str, data: Any, where: str = "") -> VariableSpec:
    where = f"{where}variables.{name}"
    if not isinstance(data, dict):
        raise TemplateError(f"{where} should be a table")
    options = data.get("options", [])
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        raise TemplateError(f"{where}.options should be a list of text")
    required = data.get("required", True)
    if not isinstance(required, bool):
        raise TemplateError(f"{where}.required should be true or false")
    default = data.get("default", "")
    if isinstance(default, bool):
        default = "yes" if default else "no"
    elif isinstance(default, (int, float)):
        default = f"{default:g}"
    elif not isinstance(default, str):
        raise TemplateError(f"{where}.default should be text")
    spec = VariableSpec(
        name=name, type=_str(data, "type", where, "text"), default=default,
        description=_str(data, "description", where), required=required,
        options=tuple(options), min=_number(data.get("min"), f"{where}.min"),
        max=_number(data.get("max"), f"{where}.max"),
    )
    spec.check()
    return spec


def block_from_dict(data: Any, where: str) -> PromptBlock:
    if not isinstance(data, dict):
        raise TemplateError(f"{where} should be a table")
    kind = _str(data, "kind", where)
    if kind not in BLOCK_KINDS:
        raise TemplateError(f"{where}: kind should be one of {', '.join(BLOCK_KINDS)}")
    return PromptBlock(kind, _str(data, "text", where), _str(data, "reply", where),
                 _str(data, "title", where))


def template_from_dict(name: str, data: dict[str, Any], where: str = "") -> PromptTemplate:
    """A prompt from the tables of its file (or an export); TemplateError names what is wrong."""
    where = where or name
    blocks_data = data.get("blocks")
    if blocks_data is None:
        body = data.get("body")
        if not isinstance(body, str):
            raise TemplateError(f"{where}: needs body = \"...\" or [[blocks]]")
        blocks: tuple[PromptBlock, ...] = ()
    else:
        if not isinstance(blocks_data, list):
            raise TemplateError(f"{where}: blocks should be [[blocks]] tables")
        blocks = tuple(block_from_dict(b, f"{where}: blocks[{i + 1}]")
                       for i, b in enumerate(blocks_data))
        body = ""
    system = data.get("system")
    variables = data.get("variables", {})
    if not isinstance(variables, dict):
        raise TemplateError(f"{where}: variables should be [variables.NAME] tables")
    tags = data.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise TemplateError(f"{where}: tags should be a list of text")
    run_immediately = data.get("run_immediately", False)
    if not isinstance(run_immediately, bool):
        raise TemplateError(f"{where}: run_immediately should be true or false")
    return PromptTemplate(
        name=name,
        body=body,
        description=str(data.get("description", "")),
        system=system if isinstance(system, str) and blocks_data is None else None,
        blocks=blocks,
        variable_specs=tuple(variable_from_dict(n, v, f"{where}: ") for n, v in variables.items()),
        tags=tuple(tags),
        hotkey=_str(data, "hotkey", where),
        run_immediately=run_immediately,
    )


def _parse(name: str, text: str, where: str = "") -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(f"{where or name}: {exc}") from None


def load_prompt_text(name: str, text: str, where: str = "") -> PromptTemplate:
    return template_from_dict(name, _parse(name, text, where), where or name)


class _ParsedFiles:
    """``cache/prompts.json`` in the data home: each prompt file's parsed tables,
    valid while the file's identity (inode, device, mtime in ns, size) is what it
    was, so a new process listing a thousand prompts does not parse a thousand
    TOML files. Only a cache: a stale entry is read again, and a missing,
    corrupt or foreign file is rebuilt. Written when the process ends."""

    FORMAT = 1

    def __init__(self, path: Path) -> None:
        self.path = path
        self.dirty = False
        self.entries: dict[str, Any] = {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if isinstance(data, dict) and data.get("format") == self.FORMAT \
                and isinstance(data.get("entries"), dict):
            self.entries = data["entries"]

    def get(self, key: str, ident: list[int]) -> dict[str, Any] | None:
        entry = self.entries.get(key)
        if isinstance(entry, dict) and entry.get("ident") == ident and isinstance(entry.get("data"), dict):
            return entry["data"]
        return None

    def put(self, key: str, ident: list[int], data: dict[str, Any]) -> None:
        try:
            json.dumps(data)
        except (TypeError, ValueError):  # a TOML date or time: not kept, read each time
            return
        self.entries[key] = {"ident": ident, "data": data}
        self.dirty = True

    def save(self) -> None:
        if not self.dirty:
            return
        kept = {k: v for k, v in self.entries.items() if os.path.exists(k)}
        try:
            atomic_write_text(self.path, json.dumps({"format": self.FORMAT, "entries": kept}))
            self.dirty = False
        except OSError as exc:
            log.debug("prompt cache not written: %s", exc)


_FOLDERS: dict[str, _ParsedFiles | None] = {}
_SAVE_AT_EXIT: list[Any] = []


def _folder_cache(path: Path) -> _ParsedFiles | None:
    """The cache of a data home's prompts/ folder (never of a file elsewhere)."""
    folder = path.parent
    key = os.fspath(folder)
    if key not in _FOLDERS:
        home = folder.parent
        ours = folder.name == "prompts" and (home / "config.toml").is_file()
        _FOLDERS[key] = _ParsedFiles(home / "cache" / "prompts.json") if ours else None
        if ours and not _SAVE_AT_EXIT:
            _SAVE_AT_EXIT.append(atexit.register(save_caches))
    return _FOLDERS[key]


def save_caches() -> None:
    for cache in list(_FOLDERS.values()):
        if cache is not None:
            cache.save()


#: Prompts already parsed, by path, with the file's identity when it was read:
#: listing a folder of a thousand prompts again (the popup's list, the tray
#: menu) then costs a stat per file, not a TOML parse.
_PARSED: dict[str, tuple[tuple[int, int, int, int], PromptTemplate]] = {}
_PARSED_MAX = 4096


def load_prompt_file(path: Path) -> PromptTemplate:
    """One prompt per ``.toml`` file; the file name is its name. Anything that
    is not a readable prompt (a folder, a dangling link, a FIFO, bad TOML) is a
    TemplateError naming the file: the caller skips it."""
    key = os.fspath(path)
    try:
        st = os.stat(key)
    except OSError:
        st = None
    ident = (st.st_ino, st.st_dev, st.st_mtime_ns, st.st_size) if st is not None and \
        stat.S_ISREG(st.st_mode) else None
    cached = _PARSED.get(key)
    if ident is not None and cached is not None and cached[0] == ident:
        return cached[1]
    disk = _folder_cache(path) if ident is not None else None
    data = disk.get(key, list(ident)) if disk is not None and ident is not None else None
    template = None
    if data is not None:
        try:
            template = template_from_dict(path.stem, data, path.name)
        except TemplateError:
            template = None  # checked by a newer rule: read the file again
    if template is None:
        data = _parse(path.stem, _read_regular(path), path.name)
        template = template_from_dict(path.stem, data, path.name)
        if disk is not None and ident is not None:
            disk.put(key, list(ident), data)
    if ident is not None:
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[key] = (ident, template)
    return template


def _multiline(text: str) -> Any:
    # Readable in an editor: multi-line text as """...""", unless it holds what
    # a literal multi-line string cannot (then a plain escaped string).
    if "\n" in text and '"""' not in text and "\\" not in text and "\r" not in text:
        import tomlkit  # here, not at the top: the core at rest never writes a prompt

        return tomlkit.string(text, multiline=True)
    return text


def template_to_dict(t: PromptTemplate) -> dict[str, Any]:
    """Plain data in the file's shape (what export writes and import reads)."""
    out: dict[str, Any] = {}
    if t.description:
        out["description"] = t.description
    if t.tags:
        out["tags"] = list(t.tags)
    if t.hotkey:
        out["hotkey"] = t.hotkey
    if t.run_immediately:
        out["run_immediately"] = True
    blocks = []
    for b in t.all_blocks:
        entry: dict[str, Any] = {"kind": b.kind, "text": b.text}
        if b.kind == "example":
            entry["reply"] = b.reply
        if b.title:
            entry["title"] = b.title
        blocks.append(entry)
    out["blocks"] = blocks
    variables: dict[str, Any] = {}
    for v in t.variable_specs:
        spec: dict[str, Any] = {"type": v.type}
        if v.description:
            spec["description"] = v.description
        if v.default:
            spec["default"] = v.default
        if not v.required:
            spec["required"] = False
        if v.options:
            spec["options"] = list(v.options)
        if v.min is not None:
            spec["min"] = v.min
        if v.max is not None:
            spec["max"] = v.max
        variables[v.name] = spec
    if variables:
        out["variables"] = variables
    return out


def dump_prompt(t: PromptTemplate) -> str:
    import tomlkit

    data = template_to_dict(t)
    doc = tomlkit.document()
    doc.add(tomlkit.comment(f"prompt '{t.name}' for RunMyModel tray"))
    for key in ("description", "tags", "hotkey", "run_immediately"):
        if key in data:
            doc[key] = data[key]
    blocks = tomlkit.aot()
    for b in data["blocks"]:
        table = tomlkit.table()
        for key, value in b.items():
            table[key] = _multiline(value) if key in ("text", "reply") else value
        blocks.append(table)
    doc["blocks"] = blocks
    if "variables" in data:
        variables = tomlkit.table(is_super_table=True)
        for name, spec in data["variables"].items():
            table = tomlkit.table()
            for key, value in spec.items():
                table[key] = value
            variables[name] = table
        doc["variables"] = variables
    return tomlkit.dumps(doc)


def load_template_file(path: Path) -> PromptTemplate:
    """The prompt in ``path`` (see ``load_prompt_file``): the older name."""
    return load_prompt_file(path)
