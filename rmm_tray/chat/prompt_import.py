"""Prompts from elsewhere, and our own export: each import says what it dropped.

Reads our export (JSON: ``{"rmm_prompts": 1, "prompts": [...]}``), a single
``prompts/NAME.toml``, Open WebUI's prompts export (a JSON list of
``{command, title, content}`` with ``{{name | select:options=[...]}}`` variables)
and simonw/llm YAML templates (``prompt``, ``system``, ``defaults``, ``$name``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rmm_tray.chat.prompt_model import NAME_PATTERN, PromptBlock, TemplateError, VariableSpec
from rmm_tray.chat.templates import (
    PromptTemplate,
    _read_regular,
    check_name,
    load_prompt_text,
    template_from_dict,
    template_to_dict,
)

EXPORT_FORMAT = 1


@dataclass
class Imported:
    prompts: list[PromptTemplate] = field(default_factory=list)
    #: One line per thing that did not map ("translate: model 'gpt-4o' dropped").
    dropped: list[str] = field(default_factory=list)
    source: str = ""


def export_prompts(templates: list[PromptTemplate]) -> str:
    return json.dumps({"rmm_prompts": EXPORT_FORMAT, "prompts": [
        {"name": t.name, **template_to_dict(t)} for t in templates]}, indent=2, ensure_ascii=False) + "\n"


def import_file(path: Path) -> Imported:
    """The prompts in ``path``, whatever of the known formats it is."""
    text = _read_regular(path)
    if path.suffix == ".toml":
        t = load_prompt_text(check_name(path.stem), text, path.name)
        return Imported([t], [], "prompt file")
    if path.suffix in (".yaml", ".yml"):
        return from_llm_yaml(check_name(path.stem), text)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TemplateError(f"{path.name}: not a prompt export (JSON, TOML or llm YAML): "
                            f"{exc.msg} at line {exc.lineno}") from None
    if isinstance(data, dict) and "rmm_prompts" in data:
        return _from_ours(data, path.name)
    if isinstance(data, list):
        return from_open_webui(data)
    raise TemplateError(f"{path.name}: a JSON file, but neither an rmm-tray export "
                        "nor an Open WebUI prompts export")


def _from_ours(data: dict[str, Any], where: str) -> Imported:
    if data.get("rmm_prompts") != EXPORT_FORMAT or not isinstance(data.get("prompts"), list):
        raise TemplateError(f"{where}: an rmm-tray export of an unknown version")
    out = Imported(source="rmm-tray export")
    for i, entry in enumerate(data["prompts"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise TemplateError(f"{where}: prompt {i + 1} has no name")
        name = check_name(entry["name"])
        out.prompts.append(template_from_dict(name, {k: v for k, v in entry.items() if k != "name"},
                                              f"{where}: {name}"))
    return out


# -- Open WebUI -----------------------------------------------------------------

_OW_VAR = re.compile(r"\{\{\s*([^{}|]+?)\s*(?:\|\s*([^{}]*?))?\s*\}\}")
_OW_BUILTINS = {"CLIPBOARD": "clipboard", "CURRENT_DATE": "date", "CURRENT_TIME": "time"}
_OW_TYPES = {"text": "text", "textarea": "multiline", "select": "choice", "number": "number",
             "range": "number", "checkbox": "yesno", "date": "date"}


def _ow_props(spec: str) -> tuple[str, dict[str, Any], bool]:
    """``select:options=["a","b"]:required`` → ("select", {"options": [...]}, True)."""
    kind, _, rest = spec.partition(":")
    props: dict[str, Any] = {}
    required = False
    # Split on ':' outside quotes and brackets.
    parts, depth, quote, cur = [], 0, "", ""
    for ch in rest:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == ":" and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        cur += ch
    if cur:
        parts.append(cur)
    for part in parts:
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq:
            required = required or key == "required"
            continue
        try:
            props[key] = json.loads(value)
        except json.JSONDecodeError:
            props[key] = value.strip().strip("\"'")
    return kind.strip() or "text", props, required


def convert_open_webui_text(text: str, where: str, dropped: list[str]) -> tuple[str, list[VariableSpec]]:
    specs: dict[str, VariableSpec] = {}

    def one(m: re.Match[str]) -> str:
        raw, spec = m.group(1).strip(), m.group(2)
        if raw in _OW_BUILTINS:
            return "{{" + _OW_BUILTINS[raw] + "}}"
        name = re.sub(r"\W+", "_", raw).strip("_") or "value"
        if not re.fullmatch(NAME_PATTERN, name):
            name = "v_" + name
        if raw.isupper() and spec is None:
            dropped.append(f"{where}: {{{{{raw}}}}} is an Open WebUI built-in; here a variable "
                           f"'{name}' to fill")
        if spec is None:
            specs.setdefault(name, VariableSpec(name))
            return "{{" + name + "}}"
        kind, props, required = _ow_props(spec)
        ours = _OW_TYPES.get(kind)
        if ours is None:
            dropped.append(f"{where}: variable {name}: type '{kind}' has no equivalent; text")
            ours = "text"
        options = props.get("options") if ours == "choice" else None
        if ours == "choice" and not (isinstance(options, list) and options):
            dropped.append(f"{where}: variable {name}: a select without options; text")
            ours, options = "text", None
        default = props.get("default", props.get("value", ""))
        extra = sorted(set(props) - {"options", "default", "value", "min", "max", "placeholder"})
        if extra:
            dropped.append(f"{where}: variable {name}: {', '.join(extra)} dropped")

        def num(key: str) -> float | None:
            v = props.get(key)
            return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

        candidate = VariableSpec(
            name=name, type=ours,
            default="" if default in (None, "") else (
                ("yes" if default else "no") if isinstance(default, bool) else str(default)),
            description=str(props.get("placeholder", "")), required=required,
            options=tuple(str(o) for o in options) if options else (),
            min=num("min") if ours == "number" else None, max=num("max") if ours == "number" else None,
        )
        try:
            candidate.check()
        except TemplateError as exc:
            dropped.append(f"{where}: {exc}; kept as text")
            candidate = VariableSpec(name, required=required)
        specs.setdefault(name, candidate)
        return "{{" + name + "}}"

    return _OW_VAR.sub(one, text), list(specs.values())


def from_open_webui(data: list[Any]) -> Imported:
    out = Imported(source="Open WebUI export")
    for i, entry in enumerate(data):
        if not isinstance(entry, dict) or not isinstance(entry.get("content"), str):
            raise TemplateError(f"Open WebUI export: entry {i + 1} has no content")
        command = str(entry.get("command") or entry.get("title") or f"prompt-{i + 1}")
        name = check_name(re.sub(r"[^\w.-]+", "-", command.lstrip("/")).strip("-.") or f"prompt-{i + 1}")
        text, specs = convert_open_webui_text(entry["content"], name, out.dropped)
        for key in sorted(set(entry) - {"command", "title", "content", "user_id", "timestamp",
                                        "id", "created_at", "updated_at", "name"}):
            if entry[key] not in (None, "", [], {}):
                out.dropped.append(f"{name}: '{key}' dropped")
        t = PromptTemplate(name=name, description=str(entry.get("title") or ""),
                           blocks=(PromptBlock("user", text),), variable_specs=tuple(specs))
        t.check()
        out.prompts.append(t)
    return out


# -- simonw/llm -----------------------------------------------------------------

_LLM_VAR = re.compile(r"\$(?:(\$)|\{(" + NAME_PATTERN + r")\}|(" + NAME_PATTERN + r"))")
_LLM_KEPT = {"prompt", "system", "defaults"}


def _llm_text(text: str) -> tuple[str, list[str]]:
    names: list[str] = []

    def one(m: re.Match[str]) -> str:
        if m.group(1):
            return "$"
        name = m.group(2) or m.group(3)
        names.append(name)
        return "{{" + name + "}}"

    return _LLM_VAR.sub(one, text), names


def from_llm_yaml(name: str, text: str) -> Imported:
    """An llm template (``llm templates path``): ``$input`` and ``$var`` become
    ``{{input}}`` and ``{{var}}``; ``defaults`` become variable defaults."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TemplateError(f"{name}: not YAML: {str(exc).splitlines()[0]}") from None
    if isinstance(data, str):
        data = {"prompt": data}
    if not isinstance(data, dict):
        raise TemplateError(f"{name}: an llm template is a YAML mapping or a string")
    out = Imported(source="llm template")
    blocks = []
    names: list[str] = []
    for key, kind in (("system", "system"), ("prompt", "user")):
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise TemplateError(f"{name}: '{key}' should be text")
        converted, found = _llm_text(value)
        names += found
        blocks.append(PromptBlock(kind, converted))
    if not blocks:
        raise TemplateError(f"{name}: an llm template needs 'prompt' or 'system'")
    if not any(b.kind == "user" for b in blocks):
        blocks.append(PromptBlock("user", "{{input}}"))
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise TemplateError(f"{name}: 'defaults' should be a mapping")
    specs = tuple(VariableSpec(n, default=str(defaults[n])) for n in dict.fromkeys(names)
                  if n in defaults and n != "input")
    for key in sorted(set(data) - _LLM_KEPT):
        shown = f" '{data[key]}'" if isinstance(data[key], str) else ""
        out.dropped.append(f"{name}: '{key}'{shown} dropped (no equivalent here)")
    t = PromptTemplate(name=name, blocks=tuple(blocks), variable_specs=specs)
    t.check()
    out.prompts.append(replace(t))
    return out
