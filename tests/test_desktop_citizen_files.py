"""The app's files outside the popup: the rotating log every process writes,
`rmm-tray logs`, the launcher and autostart entries (checked by
desktop-file-validate), and opening folders without xdg-open."""

from __future__ import annotations

import logging
import stat
import subprocess
import textwrap
from pathlib import Path

import pytest

from conftest import run_cli
from rmm_tray.cli import main
from rmm_tray.desktop import launcher, opener
from rmm_tray.home import logs


@pytest.fixture()
def fresh_logging():
    """logs.setup changes the root logger: give it back as it was."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in root.handlers:
        if h not in handlers:
            root.removeHandler(h)
            h.close()
    root.setLevel(level)
    logs._handler = None


def test_the_log_has_warnings_with_time_and_process_but_not_info(home: Path, fresh_logging) -> None:
    path = logs.setup(home, "core")
    log = logging.getLogger("rmm_tray.test")
    log.info("chatter nobody needs")
    log.warning("the model is missing")
    text = path.read_text()
    assert "chatter" not in text
    [line] = text.splitlines()
    assert line.endswith("WARNING [core %d] rmm_tray.test: the model is missing" % __import__("os").getpid())
    assert line[:4].isdigit(), "starts with a timestamp"


def test_debug_logs_everything(home: Path, fresh_logging) -> None:
    path = logs.setup(home, "core", debug=True)
    logging.getLogger("rmm_tray.test").debug("details")
    assert "DEBUG" in path.read_text()


def test_the_log_is_size_capped(home: Path, fresh_logging, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logs, "MAX_BYTES", 2000)
    path = logs.setup(home, "core")
    for n in range(400):
        logging.getLogger("rmm_tray.test").warning("line %d %s", n, "x" * 40)
    files = sorted(p.name for p in path.parent.glob("rmm-tray.log*"))
    assert files == ["rmm-tray.log", "rmm-tray.log.1", "rmm-tray.log.2", "rmm-tray.log.3"]
    assert all(p.stat().st_size <= 2100 for p in path.parent.glob("rmm-tray.log*"))
    assert "line 399" in path.read_text()


def test_nothing_logged_leaves_no_file(home: Path, fresh_logging) -> None:
    path = logs.setup(home, "cli")
    logging.getLogger("rmm_tray.test").info("quiet")
    assert not path.exists()


@pytest.mark.integration
def test_a_plugin_that_raises_lands_in_the_log(home: Path) -> None:
    (home / "plugins" / "broken.py").write_text(textwrap.dedent("""
        from rmm_tray import hookimpl

        @hookimpl
        def register_prompt_templates(register):
            raise RuntimeError("the plugin broke")
    """))
    result = run_cli("prompts", "list")
    assert result.returncode == 0, result.stderr
    logged = (home / "logs" / "rmm-tray.log").read_text()
    assert "ERROR [cli " in logged and "plugin broken failed in register_prompt_templates" in logged
    assert "the plugin broke" in logged
    shown = run_cli("logs", "--lines", "5")
    assert "the plugin broke" in shown.stdout


def test_logs_command_tails(home: Path, capsys: pytest.CaptureFixture[str], fresh_logging) -> None:
    (home / "logs" / "rmm-tray.log").write_text("".join(f"line {n}\n" for n in range(100)))
    assert main(["logs", "-n", "3"]) == 0
    assert capsys.readouterr().out.splitlines() == ["line 97", "line 98", "line 99"]
    assert main(["logs", "--path"]) == 0
    assert capsys.readouterr().out.strip() == str(home / "logs" / "rmm-tray.log")


# -- launcher and autostart ----------------------------------------------------


@pytest.fixture()
def xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path


def test_exec_line_quotes_as_the_spec_says(monkeypatch: pytest.MonkeyPatch) -> None:
    assert launcher._exec_line(["/opt/my apps/rmm-tray", "start"]) == '"/opt/my apps/rmm-tray" start'
    assert launcher._exec_line(["/a$b/x", "50%"]) == '"/a\\$b/x" 50%%'


def test_the_launcher_names_the_data_folder_chosen(xdg: Path, home: Path) -> None:
    entry = launcher.desktop_entry()
    assert f"env RMM_HOME={home.resolve()} " in entry
    assert "StartupWMClass=RunMyModel\n" in entry and "Icon=rmm-tray\n" in entry


@pytest.mark.integration
@pytest.mark.parametrize("autostart", [False, True])
def test_desktop_install_validates_and_uninstall_removes_it(xdg: Path, home: Path, autostart: bool) -> None:
    args = ["desktop", "install", *(["--autostart"] if autostart else [])]
    result = run_cli(*args, env={"XDG_DATA_HOME": str(xdg / "data"), "XDG_CONFIG_HOME": str(xdg / "config")})
    assert result.returncode == 0, result.stderr
    desktop = xdg / "data" / "applications" / "RunMyModel.desktop"
    check = subprocess.run(["desktop-file-validate", str(desktop)], capture_output=True, text=True)
    assert check.returncode == 0 and check.stdout.strip() == "", check.stdout
    icons = xdg / "data" / "icons" / "hicolor"
    assert (icons / "scalable" / "apps" / "rmm-tray.svg").read_text().startswith("<svg")
    from PIL import Image

    assert Image.open(icons / "48x48" / "apps" / "rmm-tray.png").size == (48, 48)
    auto = xdg / "config" / "autostart" / "RunMyModel.desktop"
    assert auto.exists() is autostart
    if autostart:
        check = subprocess.run(["desktop-file-validate", str(auto)], capture_output=True, text=True)
        assert check.returncode == 0 and check.stdout.strip() == "", check.stdout
    # The launcher really starts this installation: its Exec runs `--version` here.
    exec_line = next(line for line in desktop.read_text().splitlines() if line.startswith("Exec="))
    argv = exec_line[len("Exec="):].rsplit(" start", 1)[0]
    version = subprocess.run(f"{argv} --version", shell=True, capture_output=True, text=True)
    assert version.stdout.startswith("rmm-tray "), version.stderr
    result = run_cli("desktop", "uninstall", env={"XDG_DATA_HOME": str(xdg / "data"),
                                                  "XDG_CONFIG_HOME": str(xdg / "config")})
    assert result.returncode == 0 and not desktop.exists() and not auto.exists()
    assert not list(icons.rglob("rmm-tray.*"))



def test_install_replaces_an_earlier_versions_entries_keeping_start_at_login(xdg: Path, home: Path) -> None:
    old_launcher = xdg / "data" / "applications" / "rmm-tray.desktop"
    old_auto = xdg / "config" / "autostart" / "rmm-tray.desktop"
    for path in (old_launcher, old_auto):
        path.parent.mkdir(parents=True)
        path.write_text("[Desktop Entry]\nType=Application\nName=RunMyModel\nExec=rmm-tray start\n")
    launcher.install()
    assert not old_launcher.exists() and not old_auto.exists()
    assert (xdg / "data" / "applications" / "RunMyModel.desktop").is_file()
    assert launcher.autostart_enabled(), "start at login was on before: it stays on"
    old_launcher.write_text("[Desktop Entry]\n")
    launcher.uninstall()
    assert not old_launcher.exists() and not launcher.autostart_enabled()

# -- opening folders -------------------------------------------------------------


def _script(folder: Path, name: str, body: str) -> None:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_open_without_xdg_open_or_gio_is_one_clear_line(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(opener.CannotOpen) as err:
        opener.open_path(tmp_path)
    assert str(err.value) == (f"Cannot open {tmp_path}: no xdg-open or gio on this system "
                              "(install xdg-utils); open it from your file manager")


def test_open_falls_back_to_gio_when_xdg_open_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    _script(bin_dir, "xdg-open", 'echo "xdg-open: no method available for opening" >&2; exit 3')
    _script(bin_dir, "gio", f'echo "$@" > {tmp_path}/opened')
    monkeypatch.setenv("PATH", str(bin_dir))
    opener.open_path(tmp_path / "x")
    assert (tmp_path / "opened").read_text().strip() == f"open {tmp_path / 'x'}"
    (bin_dir / "gio").unlink()
    with pytest.raises(opener.CannotOpen, match="xdg-open: no method available for opening"):
        opener.open_path(tmp_path / "x")



# -- first run -------------------------------------------------------------------


def test_the_curated_models_are_complete_and_get_a_fit(home: Path) -> None:
    from rmm_tray.app import App
    from rmm_tray.home.config import Config
    from rmm_tray.home.paths import DataHome
    from rmm_tray.models import curated
    from rmm_tray.models.fit import bits_per_weight

    shipped = curated.suggestions()
    assert len(shipped) >= 4
    for s in shipped:
        assert s.repo.count("/") == 1 and s.file.endswith(".gguf") and s.size > 100_000_000
        assert bits_per_weight(s.quantization) is not None, s.file
        assert "instruct" in s.repo.lower() or "-it-" in s.repo.lower()
    app = App(DataHome(home), Config.load(home / "config.toml"))
    items = curated.with_fit(app)
    verdicts = [i["fit"] for i in items]
    assert set(verdicts) <= {"fits", "tight", "too big"}
    order = {"fits": 0, "tight": 1, "too big": 2}
    assert [order[v] for v in verdicts] == sorted(order[v] for v in verdicts), "those that fit first"


def test_the_welcome_is_given_once_per_data_home(home: Path) -> None:
    from rmm_tray.app import App
    from rmm_tray.desktop.welcome import WelcomeController
    from rmm_tray.home.config import Config
    from rmm_tray.home.paths import DataHome

    app = App(DataHome(home), Config.load(home / "config.toml"))
    first = WelcomeController(app, lambda e: None)
    assert first.event("Ctrl+Alt+Space") == {"type": "welcome", "hotkey": "Ctrl+Alt+Space", "starter": False}
    assert first.event("Ctrl+Alt+Space") is None, "a popup restart does not welcome again"
    assert first.first_run is True, "this run still says hello in the tray"
    assert WelcomeController(app, lambda e: None).first_run is False
