"""One check per setting, whichever way a value arrives: config.toml (its
sections and [models."NAME"] tables), a CLI flag, `rmm-tray models set`, the
popup's form, the API. Each place words the error its own way (a file names
where, a form names its field) around the same rule and the same range.

This module knows the rules only; it imports nothing of the app, so the config
loader can use it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: The chat_template names the engine knows (engine.chat_format.FALLBACKS; a test
#: keeps the two equal). Kept here because that module imports llama.cpp.
CHAT_TEMPLATES = ("chatml", "gemma", "llama-3")
FLASH_ATTN = ("auto", "on", "off")
#: engine.decode.PROMPT_LOOKUP, or off.
SPECULATIVE = ("", "prompt-lookup")
THEMES = ("system", "light", "dark")
OPEN_ON = ("last", "chat")
#: ggml's GGML_MAX_N_THREADS: llama.cpp aborts the process (SIGABRT) above it.
MAX_THREADS = 512


@dataclass(frozen=True)
class Rule:
    """A setting's name for people, and what its value must be beyond its type."""

    label: str
    check: Callable[[Any], bool] | None = None
    what: str = ""


def _hotkey(combo: Any) -> bool:
    # pynput's syntax: '+'-joined keys, each one character or a <name>. Checked here
    # by shape only: pynput itself is imported by the desktop shell alone.
    parts = combo.split("+") if combo.strip() else []
    return bool(parts) and all(
        len(p) == 1 and p.isprintable() or (len(p) > 2 and p[0] == "<" and p[-1] == ">"
                                            and p[1:-1].replace("_", "").isalnum())
        for p in parts)


#: The rules of config.toml's own sections, by section and key. Settings missing
#: here are checked by type only (a path, a backend name, a flag).
RULES: dict[str, dict[str, Rule]] = {
    "model": {
        "default": Rule("Default model"),
        # The engine would raise a context under 256 to 256; saying so beats a silent change.
        "context_length": Rule("Context length", lambda v: v >= 256, "at least 256 tokens"),
        "gpu_layers": Rule("GPU layers", lambda v: v >= -1, "-1 (all), 0 (none) or a number of layers"),
        "threads": Rule("Threads", lambda v: 0 <= v <= MAX_THREADS,
                        f"0 (one per physical core) to {MAX_THREADS}"),
        "chat_template": Rule("Chat template", lambda v: v in ("", *CHAT_TEMPLATES),
                              f"one of {', '.join(CHAT_TEMPLATES)} (empty: the model's own)"),
        "flash_attn": Rule("Flash attention", lambda v: v in FLASH_ATTN, "auto, on or off"),
    },
    "generation": {
        "max_tokens": Rule("Max tokens", lambda v: v >= 1, "at least 1"),
        "temperature": Rule("Temperature", lambda v: v >= 0, "0 or more"),
        "top_p": Rule("Top P", lambda v: 0 <= v <= 1, "between 0 and 1"),
        "top_k": Rule("Top K", lambda v: v >= 0, "0 (off) or more"),
        "min_p": Rule("Min P", lambda v: 0 <= v <= 1, "between 0 and 1"),
        "repeat_penalty": Rule("Repeat penalty", lambda v: v > 0, "more than 0 (1 is off)"),
        "speculative": Rule("Speculative decoding", lambda v: v in SPECULATIVE,
                            '"prompt-lookup" or empty (off)'),
    },
    "engine": {
        "state_cache_mib": Rule("State cache", lambda v: v >= 0, "0 (off) or more MiB"),
    },
    "server": {
        "host": Rule("API address", lambda v: bool(v.strip()) and not any(c.isspace() for c in v),
                     'an address such as "127.0.0.1" or "0.0.0.0"'),
        "port": Rule("API port", lambda v: 1 <= v <= 65535, "a port from 1 to 65535"),
        "api_key": Rule("API key", lambda v: v == v.strip() and v.isprintable(),
                        "printable text without spaces around it"),
        "cors_origins": Rule("Allowed origins", lambda v: all(
            isinstance(o, str) and (o == "*" or o.startswith(("http://", "https://"))) for o in v),
            'a list of origins such as "http://localhost:3000"'),
        "max_body_bytes": Rule("Largest request", lambda v: v >= 1024, "at least 1024 bytes"),
        "max_waiting": Rule("Waiting requests", lambda v: v >= 0, "0 or more"),
    },
    "ui": {
        "hotkey": Rule("Hotkey", _hotkey, "keys joined by '+', such as <ctrl>+<alt>+<space>"),
        "hide_on_blur": Rule("Hide when it loses focus"),
        "theme": Rule("Theme", lambda v: v in THEMES, "system, light or dark"),
        "open_on": Rule("Open on", lambda v: v in OPEN_ON, '"last" (the last view) or "chat"'),
    },
}


def rule(section: str, key: str) -> Rule | None:
    return RULES.get(section, {}).get(key)


def problem(section: str, key: str, value: Any) -> str | None:
    """None when ``value``, already of its setting's type, is one the app can use;
    else what it must be ("between 0 and 1"). A float must be finite whatever its range."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"a finite number{_also(section, key)}"
    found = rule(section, key)
    if found is None or found.check is None or found.check(value):
        return None
    return found.what


def _also(section: str, key: str) -> str:
    found = rule(section, key)
    return f", {found.what}" if found and found.what else ""


def number(value: Any, *, whole: bool) -> int | float | None:
    """``value`` (a number, or text as typed) as an int or a float; None when it is
    not one. A bool is not a number here, though Python says it is; nor are nan
    and inf, which no setting can use."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text) if whole else float(text)
        except ValueError:
            return None
    if whole:
        return value if isinstance(value, int) else None
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)  # written as 0.0, as [generation] is, not 0
    return None


def shown(value: Any) -> str:
    """A value as an error quotes it: repr-style, so a newline in it stays ``\\n``."""
    return repr(value.strip() if isinstance(value, str) else value)[:40]


def parse(section: str, key: str, value: Any, default: Any) -> Any:
    """A value as a person typed it (text, or a number from a form) into the type
    of ``default``, within its range; ValueError with a one-line message that
    names the setting as a person knows it, the value and what it must be."""
    found = rule(section, key)
    label = found.label if found else key
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ValueError(f"{label} should be text, got {value!r}")
        value = value.strip()
        if key == "chat_template" and value not in ("", *CHAT_TEMPLATES):
            raise ValueError(f"{label} {shown(value)} is not one the engine knows "
                             f"(have: {', '.join(CHAT_TEMPLATES)}; empty: the model's own)")
    elif isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{label} should be true or false, got {shown(value)}")
    else:
        typed = number(value, whole=isinstance(default, int))
        if typed is None:
            kind = "a whole number" if isinstance(default, int) else "a number"
            raise ValueError(f"{label} should be {kind}, got {shown(value)}")
        value, original = typed, value
        what = problem(section, key, value)
        if what is not None:
            raise ValueError(f"{label} must be {what}, got {shown(original)}")
        return value
    what = problem(section, key, value)
    if what is not None:
        raise ValueError(f"{label} must be {what}, got {shown(value)}")
    return value
