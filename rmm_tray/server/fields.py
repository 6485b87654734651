"""Reading a request body: JSON, of the right types, or a 400 that names the field.

Sampling values go through the app's own rule for each setting (the one
config.toml, the CLI and the popup use), so the API cannot pass what they refuse.
"""

from __future__ import annotations

import json
import math
from typing import Any

from rmm_tray.errors import RmmError
from rmm_tray.server.errors import ApiError, bad_request, unsupported

_MISSING = object()


def parse_json(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise bad_request(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    return body


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
             list: "an array", dict: "an object"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def get(body: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any = None,
        *, required: bool = False) -> Any:
    """``body[name]`` of ``kind`` (an int passes as a float; a bool never as a number)."""
    value = body.get(name, _MISSING)
    if value is _MISSING or value is None:
        if required:
            raise bad_request(f"{name} is required", param=name)
        return default
    kinds = kind if isinstance(kind, tuple) else (kind,)
    ok = isinstance(value, kinds)
    if isinstance(value, bool) and bool not in kinds:
        ok = False
    elif float in kinds and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    if not ok or (isinstance(value, float) and not math.isfinite(value)):
        raise bad_request(f"{name} must be {_kind_name(kind)}, got {json.dumps(value)[:40]}", param=name)
    return value


def sampling(body: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """The sampling settings given, by the engine's names (``names``: request
    field -> engine setting), each checked by the app's rule for it."""
    from rmm_tray.models.settings import checked_setting

    out: dict[str, Any] = {}
    for field, setting in names.items():
        kind: type | tuple[type, ...] = int if setting in ("max_tokens", "top_k") else float
        value = get(body, field, kind)
        if value is None:
            continue
        try:
            out[setting] = checked_setting(setting, value)
        except RmmError as exc:
            raise bad_request(f"{field}: {exc}", param=field) from None
    return out


def seed(body: dict[str, Any]) -> int | None:
    value = get(body, "seed", int)
    if value is not None and not 0 <= value < 2**32:
        raise bad_request("seed must be between 0 and 4294967295", param="seed")
    return value


def stops(value: Any, name: str) -> tuple[str, ...]:
    """``stop``: a string or a list of strings (empty strings ignored)."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise bad_request(f"{name} must be a string or an array of strings", param=name)
    if len(value) > 16:
        raise bad_request(f"{name} may hold at most 16 strings", param=name)
    return tuple(s for s in value if s)


def refuse_if(body: dict[str, Any], name: str, allowed: Any, what: str) -> None:
    """Refuse ``name`` unless it is absent, null or one of the ``allowed`` values."""
    value = body.get(name)
    if value is None:
        return
    if callable(allowed):
        if allowed(value):
            return
    elif value in allowed:
        return
    raise unsupported(name, what)


def text_of(content: Any, where: str) -> str:
    """A message's content: a string, or text parts ([{"type": "text", "text": ...}])."""
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    if not isinstance(content, list):
        raise bad_request(f"{where} must be a string or an array of content parts", param=where)
    texts = []
    for i, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise bad_request(f"{where}[{i}] must be an object with a type", param=where)
        if part["type"] != "text":
            raise unsupported(f"{where}[{i}]", f"content of type {part['type']!r}")
        if not isinstance(part.get("text"), str):
            raise bad_request(f"{where}[{i}].text must be a string", param=where)
        texts.append(part["text"])
    return "".join(texts)


def too_large(limit: int) -> ApiError:
    return ApiError(413, f"the request body is larger than the server's limit ({limit} bytes; "
                         "[server] max_body_bytes)", code="request_too_large")
