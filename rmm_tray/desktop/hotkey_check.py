"""Whether a global hotkey can work, judged without pynput (which connects to
the display on import): each key a name pynput knows, at least one modifier
(a bare key would eat that key in every app), and not a shortcut the popup or
the desktop already uses. `doctor`, the Settings view and the tray app ask here.

config.toml's loader checks only the shape (home/settings_check): a hotkey with
an unknown key must not stop the app from starting, only the hotkey.
"""

from __future__ import annotations

MODIFIERS = {"ctrl", "ctrl_l", "ctrl_r", "alt", "alt_l", "alt_r", "alt_gr", "cmd", "cmd_l", "cmd_r",
             "shift", "shift_l", "shift_r"}
#: pynput.keyboard.Key's names (a test keeps this equal to pynput's own list).
KEYS = MODIFIERS | {
    "backspace", "caps_lock", "delete", "down", "end", "enter", "esc", "home", "left",
    "page_down", "page_up", "right", "space", "tab", "up", "insert", "menu", "num_lock", "pause",
    "print_screen", "scroll_lock", "media_play_pause", "media_volume_mute", "media_volume_down",
    "media_volume_up", "media_previous", "media_next",
    *(f"f{n}" for n in range(1, 21)),
}
#: Taken already: the popup's own keys and the desktops' common ones.
TAKEN = {
    "<ctrl>+n": "the popup's New chat", "<ctrl>+m": "the popup's view switch",
    "<ctrl>+,": "the popup's Settings", "<ctrl>+c": "Copy", "<ctrl>+v": "Paste",
    "<ctrl>+x": "Cut", "<ctrl>+z": "Undo", "<ctrl>+a": "Select all", "<ctrl>+s": "Save",
    "<alt>+<tab>": "switching windows", "<alt>+<f4>": "closing windows",
    "<ctrl>+<alt>+<delete>": "the system's log-out", "<cmd>+l": "the lock screen",
    "<ctrl>+<alt>+t": "the terminal (GNOME, Ubuntu)", "<alt>+<f2>": "the run dialog",
    "<ctrl>+<alt>+l": "the lock screen (some desktops)",
}


def parts(combo: str) -> list[str]:
    # pynput's syntax: '+' joins keys; a literal '+' is written as the last part.
    text = combo.strip()
    if text.endswith("++"):
        return [*text[:-2].split("+"), "+"]
    return text.split("+") if text else []


def canonical(combo: str) -> str:
    """Modifiers first in a fixed order, lower case: the form compared for clashes."""
    order = ["ctrl", "alt", "alt_gr", "shift", "cmd"]
    mods, keys = [], []
    for p in parts(combo):
        name = p[1:-1].lower() if len(p) > 2 and p.startswith("<") and p.endswith(">") else p.lower()
        base = name.split("_")[0] if name in MODIFIERS and name != "alt_gr" else name
        (mods if name in MODIFIERS else keys).append(base if name in MODIFIERS else p.lower())
    mods = sorted(set(mods), key=lambda m: order.index(m) if m in order else 9)
    return "+".join([f"<{m}>" for m in mods] + keys)


def problem(combo: str, others: dict[str, str] | None = None) -> str | None:
    """None when ``combo`` can be the hotkey; else why not, as a sentence ending
    that starts "Hotkey ...". ``others``: the app's other hotkeys (combo -> what)."""
    keys = parts(combo)
    if not keys or any(not k for k in keys):
        return "Hotkey is empty: press the keys, such as Ctrl+Alt+Space"
    named, plain = [], []
    for k in keys:
        if len(k) > 2 and k.startswith("<") and k.endswith(">"):
            name = k[1:-1].lower()
            if name not in KEYS and not name.isdigit():
                return f"Hotkey: {k} is not a key name (such as <ctrl>, <alt>, <space>, <f5>)"
            named.append(name)
        elif len(k) == 1 and k.isprintable():
            plain.append(k)
        else:
            return f"Hotkey: {k!r} is not one key (write named keys as <name>)"
    mods = [n for n in named if n in MODIFIERS]
    if not mods or not (set(mods) - {"shift", "shift_l", "shift_r"}):
        return "Hotkey needs Ctrl, Alt or Super with it, or it would take that key from every app"
    if len(mods) == len(keys):
        return "Hotkey needs a key besides its modifiers"
    mine = canonical(combo)
    for taken, what in {**TAKEN, **(others or {})}.items():
        if canonical(taken) == mine:
            return f"Hotkey {label(combo)} is already {what}"
    return None


def label(combo: str) -> str:
    """'<ctrl>+<alt>+<space>' -> 'Ctrl+Alt+Space' (and <cmd> as Super)."""
    names = {"cmd": "Super", "alt_gr": "AltGr", "page_up": "PageUp", "page_down": "PageDown",
             "esc": "Esc"}
    out = []
    for p in parts(combo):
        name = p.strip("<>") if len(p) > 1 else p
        out.append(names.get(name.lower(), name.replace("_", " ").title() if len(name) > 1 else name.upper()))
    return "+".join(out)
