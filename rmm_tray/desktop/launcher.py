"""The app in the desktop's own lists: a freedesktop launcher (.desktop file),
its icon in the hicolor theme, and an XDG autostart entry for starting at login.

Files only, no toolkit: `rmm-tray desktop install|uninstall` and the Settings
view's *Start at login* switch both come here. Paths follow the XDG base
directory spec ($XDG_DATA_HOME, $XDG_CONFIG_HOME).
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from rmm_tray.home.atomic import atomic_write_text

#: The application id: the GTK program name, so both halves of the popup's
#: WM_CLASS and its Wayland app id; the launcher file is named after it, which is
#: how a Wayland dock finds the window's icon and name.
APP_ID = "RunMyModel"
#: The popup's WM_CLASS class (and GTK program class): what StartupWMClass must
#: match for a dock to put the window under the launcher's icon on X11.
WM_CLASS = "RunMyModel"
DESKTOP_FILE = f"{APP_ID}.desktop"
#: Launcher files of earlier versions, removed by install and uninstall so that
#: no second entry is left in the menu.
OLD_DESKTOP_FILES = ("rmm-tray.desktop",)
#: The console script and the icon's theme name.
SCRIPT = "rmm-tray"
ICON = "rmm-tray"
PNG_SIZES = (16, 24, 32, 48, 64, 128, 256)


def data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def config_home() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")


def launcher_path() -> Path:
    return data_home() / "applications" / DESKTOP_FILE


def autostart_path() -> Path:
    return config_home() / "autostart" / DESKTOP_FILE


def old_entries() -> list[Path]:
    return [folder / name for folder in (data_home() / "applications", config_home() / "autostart")
            for name in OLD_DESKTOP_FILES]


def icon_paths() -> list[Path]:
    theme = data_home() / "icons" / "hicolor"
    return [theme / "scalable" / "apps" / f"{ICON}.svg",
            *(theme / f"{s}x{s}" / "apps" / f"{ICON}.png" for s in PNG_SIZES)]


def command() -> list[str]:
    """How a launcher starts this installation: its console script when there is
    one beside this Python (a venv, pipx), else ``python -m rmm_tray``."""
    script = Path(sys.executable).parent / SCRIPT
    base = [str(script)] if script.exists() else [sys.executable, "-m", "rmm_tray"]
    home = os.environ.get("RMM_HOME")
    # A launcher started from the menu has none of the shell's variables: the
    # data folder chosen with RMM_HOME must travel in the command itself.
    env = ["env", f"RMM_HOME={Path(home).expanduser().resolve()}"] if home else []
    return [*env, *base, "start"]


def _exec_line(argv: list[str]) -> str:
    # The Desktop Entry spec's quoting: double quotes around an argument with a
    # reserved character, and inside them \" \` \$ \\ escaped; % is always doubled.
    reserved = set(" \t\n\"'\\><~|&;$*?#()`")
    out = []
    for arg in argv:
        arg = arg.replace("%", "%%")
        if any(c in reserved for c in arg):
            arg = '"' + "".join("\\" + c if c in '"`$\\' else c for c in arg) + '"'
        out.append(arg)
    return " ".join(out)


def desktop_entry(*, autostart: bool = False) -> str:
    lines = [
        "[Desktop Entry]",
        "Type=Application",
        "Version=1.4",
        "Name=RunMyModel",
        "GenericName=Local AI assistant",
        "Comment=A local llama.cpp assistant in the tray, one keystroke away",
        f"Exec={_exec_line(command())}",
        f"Icon={ICON}",
        "Terminal=false",
        "Categories=Utility;",
        "Keywords=AI;LLM;chat;llama;assistant;",
        "StartupNotify=false",
        f"StartupWMClass={WM_CLASS}",
    ]
    if autostart:
        lines.append("X-GNOME-Autostart-enabled=true")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Installed:
    files: list[Path]


def _icon_svg() -> str:
    # The tray icon's drawing (shell/icons.py) as a vector: a rounded square with
    # the app's gradient and a white speech bubble.
    return """<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">
  <defs><linearGradient id="g" x1="0" y1="0" x2="0" y2="1">
    <stop offset="0" stop-color="#6d5dfc"/><stop offset="1" stop-color="#c04dd8"/></linearGradient></defs>
  <rect x="2" y="2" width="60" height="60" rx="16" fill="url(#g)"/>
  <rect x="12" y="12" width="40" height="32" rx="8" fill="#fff"/>
  <polygon points="22,44 18,54 33,44" fill="#fff"/>
</svg>
"""


def install(*, autostart: bool = False) -> Installed:
    """Write the launcher and the icons (and the autostart entry if asked);
    again is harmless: it rewrites them, so a moved installation is found."""
    from rmm_tray.shell.icons import icon  # PIL only: no toolkit

    written = []
    svg, *pngs = icon_paths()
    svg.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(svg, _icon_svg())
    written.append(svg)
    for size, path in zip(PNG_SIZES, pngs):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        icon("idle", size).save(tmp, "PNG")
        os.replace(tmp, path)
        written.append(path)
    had_autostart = any(p.parent.name == "autostart" and p.is_file() for p in old_entries())
    for old in old_entries():
        old.unlink(missing_ok=True)
    path = launcher_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, desktop_entry())
    written.append(path)
    if autostart or had_autostart:
        written.append(set_autostart(True))
    _refresh_caches()
    return Installed(written)


def uninstall() -> Installed:
    """Remove what install wrote, autostart included; what is not there is skipped."""
    removed = []
    for path in [launcher_path(), autostart_path(), *icon_paths(), *old_entries()]:
        try:
            path.unlink()
            removed.append(path)
        except FileNotFoundError:
            pass
    _refresh_caches()
    return Installed(removed)


def autostart_enabled() -> bool:
    return autostart_path().is_file()


def set_autostart(on: bool) -> Path:
    """Start at login, or not: the XDG autostart entry (GNOME, KDE, Xfce, and
    most others read $XDG_CONFIG_HOME/autostart)."""
    path = autostart_path()
    if on:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, desktop_entry(autostart=True))
    else:
        path.unlink(missing_ok=True)
    return path


def _refresh_caches() -> None:
    """Tell the desktop about the new files where its tools are installed; the
    files work without (menus rescan on their own, only later)."""
    import subprocess

    for cmd in (["update-desktop-database", "-q", str(launcher_path().parent)],
                ["gtk-update-icon-cache", "-q", "-t", str(data_home() / "icons" / "hicolor")]):
        if shutil.which(cmd[0]):
            try:
                subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=20)
            except (OSError, subprocess.SubprocessError):
                pass


def shown_command() -> str:
    return shlex.join(command())
