"""What plugins know and the core no longer does: their config tables, their
doctor lines, the folders their imports land in, the labels of what they find;
and the Hub failing fast when it cannot be reached."""

from __future__ import annotations

import json
import re
import socket
import time
from pathlib import Path

import pytest

import rmm_tray
from conftest import run_cli
from rmm_tray import SPLIT_NAME, DoctorCheck, quantization_from_name
from rmm_tray.app import App
from rmm_tray.home.config import Config, ConfigError
from rmm_tray.home.paths import DataHome
from rmm_tray.models.manage import import_folders, origin
from rmm_tray.models.starter import STARTER_FILE, STATE_FILE
from rmm_tray.plugins import hf_hub, other_apps
from rmm_tray.plugins.hf_hub import card_license, card_summary


def no_starter(home: Path) -> None:
    """Mark the home as past its first start: no 253 MB copy before the command."""
    (home / STATE_FILE).write_text(json.dumps({"starter_installed": STARTER_FILE}))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- [plugins.NAME] tables ------------------------------------------------------------


def test_plugin_tables_are_the_plugins_own() -> None:
    config = Config.from_dict({"plugins": {"disabled": ["x"], "huggingface": {"token": "t", "odd": [1]},
                                           "other": {"anything": {"goes": True}}}})
    assert config["plugins"]["disabled"] == ["x"]
    assert config.plugin_config("huggingface") == {"token": "t", "odd": [1]}
    assert config.plugin_config("other") == {"anything": {"goes": True}}
    assert config.plugin_config("nobody") == {} and config.plugin_config("disabled") == {}
    config.plugin_config("huggingface")["token"] = "changed"
    assert config.plugin_config("huggingface")["token"] == "t", "a copy: plugins cannot edit the config"
    # A table from an older version is kept for the plugin that reads it.
    assert Config.from_dict({"hub": {"token": "old"}}).get("hub") == {"token": "old"}
    assert Config.defaults().get("hub") is None


def test_a_plugin_entry_that_is_not_a_table_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[plugins]\nhuggingface = 3\n")
    with pytest.raises(ConfigError) as err:
        Config.load(path)
    assert str(err.value) == "config.toml: plugins.huggingface must be a table ([plugins.huggingface]), got 3"
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="disabled should be list"):
        Config.from_dict({"plugins": {"disabled": "x"}})


def test_new_config_files_have_no_hub_table(tmp_path: Path) -> None:
    config = Config.load(tmp_path / "config.toml")
    assert config.get("hub") is None and config.plugin_config("huggingface") == {}
    assert "# [plugins.huggingface]" in (tmp_path / "config.toml").read_text()


def app_with(home: Path, text: str) -> App:
    (home / "config.toml").write_text(text)
    return App(DataHome(home), Config.load(home / "config.toml"))


def test_the_hub_plugin_reads_its_table_then_the_old_hub_table(home: Path) -> None:
    own = app_with(home, '[plugins.huggingface]\ntoken = "hf_own"\nendpoint = "http://own/"\n')
    assert own.plugin_config("huggingface")["token"] == "hf_own"
    assert hf_hub.settings(own) == {"token": "hf_own", "endpoint": "http://own/"}
    [source] = [s for s in own.sources() if s.name == "huggingface"]
    assert (source.token, source.endpoint) == ("hf_own", "http://own")

    old = app_with(home, '[hub]\ntoken = "hf_old"\nendpoint = "http://old"\n')
    assert hf_hub.settings(old) == {"token": "hf_old", "endpoint": "http://old"}
    both = app_with(home, '[hub]\ntoken = "hf_old"\nendpoint = "http://old"\n'
                          '[plugins.huggingface]\nendpoint = "http://new"\n')
    assert hf_hub.settings(both) == {"token": "hf_old", "endpoint": "http://new"}
    assert hf_hub.settings(app_with(home, "")) == {"token": "", "endpoint": ""}


# -- doctor lines from plugins --------------------------------------------------------


def test_doctor_check_statuses_are_checked() -> None:
    assert DoctorCheck("x", "ok", "fine").fix == ""
    with pytest.raises(ValueError, match="ok, warn, fail"):
        DoctorCheck("x", "bad", "typo")  # type: ignore[arg-type]


def doctor(env: dict[str, str] | None = None) -> tuple[dict[str, dict], str]:
    result = run_cli("doctor", "--json", env=env)
    return {c["name"]: c for c in json.loads(result.stdout)["checks"]}, result.stderr


@pytest.mark.integration
def test_the_hub_line_comes_from_the_plugin_table(home: Path) -> None:
    (home / "config.toml").write_text('[plugins.huggingface]\nendpoint = "http://mirror.example"\n')
    checks, _ = doctor({"HF_TOKEN": "", "HF_TOKEN_PATH": str(home / "no-token")})
    assert (checks["hub"]["status"], checks["hub"]["detail"]) == ("ok", "http://mirror.example; token: none")
    stored = home / "token"
    stored.write_text("hf_x")
    checks, _ = doctor({"HF_TOKEN": "", "HF_TOKEN_PATH": str(stored)})
    assert checks["hub"]["detail"].endswith("token: stored by hf auth login")


@pytest.mark.integration
def test_plugins_add_doctor_lines_and_a_failing_one_costs_only_its_own(home: Path) -> None:
    (home / "plugins" / "gpu_fan.py").write_text(
        "from rmm_tray import DoctorCheck, hookimpl\n\n"
        "@hookimpl\n"
        "def doctor_checks(app):\n"
        "    return [DoctorCheck('fan', 'warn', f'no fan in {app.home.root.name}', 'buy one')]\n")
    (home / "plugins" / "zz_broken.py").write_text(
        "from rmm_tray import hookimpl\n\n"
        "@hookimpl\n"
        "def doctor_checks():\n"
        "    raise RuntimeError('sensor gone')\n")
    (home / "plugins" / "zz_wrong.py").write_text(
        "from rmm_tray import hookimpl\n\n"
        "@hookimpl\n"
        "def doctor_checks():\n"
        "    return 'all good'\n")
    checks, stderr = doctor()
    assert checks["fan"] == {"name": "fan", "status": "warn", "detail": "no fan in home", "fix": "buy one"}
    assert checks["plugin zz_broken"]["status"] == "warn"
    assert "RuntimeError: sensor gone" in checks["plugin zz_broken"]["detail"]
    assert "sensor gone" in stderr and "Traceback" not in stderr
    assert "returned str" in checks["plugin zz_wrong"]["detail"]
    assert checks["hub"]["status"] == "ok", "the other plugins' lines are still there"

    text = run_cli("doctor").stdout
    assert "warn  fan: no fan in home\n      fix: buy one" in text
    safe = run_cli("--safe-mode", "doctor", "--json")
    names = {c["name"] for c in json.loads(safe.stdout)["checks"]}
    assert "hub" in names and "fan" not in names and "plugin zz_broken" not in names


# -- other apps' folders, labels and GGUF names ----------------------------------------


def test_the_sources_say_which_folders_are_theirs(home: Path) -> None:
    no_starter(home)
    app = App(DataHome(home), Config.load(home / "config.toml"))
    folders = import_folders(app)
    assert folders == {"huggingface": "the Hugging Face cache", "lmstudio": "LM Studio", "ollama": "Ollama"}
    models = home / "models"
    (models / "lmstudio" / "pub" / "r").mkdir(parents=True)
    copied = models / "lmstudio" / "pub" / "r" / "m.gguf"
    copied.write_bytes(b"GGUF")
    assert origin(copied, "lmstudio/pub/r/m.gguf", folders)["label"] == "copied from LM Studio"
    linked = models / "ollama" / "x.gguf"
    linked.parent.mkdir()
    linked.symlink_to(copied)
    assert origin(linked, "ollama/x.gguf", folders)["label"].endswith("(from Ollama)")
    # Without the source that declares it, the folder is an ordinary Hub layout.
    assert origin(copied, "lmstudio/pub/r/m.gguf", {})["kind"] == "huggingface"


@pytest.mark.integration
def test_found_models_carry_the_label_their_source_gives(home: Path, tmp_path: Path) -> None:
    from test_discovery import tiny_gguf

    no_starter(home)
    user = tmp_path / "user"
    tiny_gguf(user / ".lmstudio" / "models" / "pub" / "Repo-GGUF" / "m-Q4_K_M.gguf", "m")
    result = run_cli("models", "discover", "--json",
                     env={"HOME": str(user), "HF_HUB_CACHE": str(user / "none"),
                          "OLLAMA_MODELS": str(user / "none")})
    assert result.returncode == 0, result.stderr
    [found] = json.loads(result.stdout)
    assert (found["source"], found["label"]) == ("lmstudio", "LM Studio")
    web = (Path(rmm_tray.__file__).parent.parent / "web" / "models.js").read_text()
    assert "c.label" in web and '"LM Studio"' not in web, "the page shows what the core sends"


def test_gguf_names_are_read_by_one_public_helper() -> None:
    match = SPLIT_NAME.match("Big-Q8_0-00002-of-00003.gguf")
    assert match and (match["stem"], match["part"], match["total"]) == ("Big-Q8_0", "00002", "00003")
    assert SPLIT_NAME.match("big.gguf") is None
    assert quantization_from_name("Qwen2.5-7B-Instruct-UD-Q4_K_XL.gguf") == "Q4_K_XL"
    assert quantization_from_name("model-iq4_nl.gguf") == "IQ4_NL"
    assert quantization_from_name("model.gguf") == ""
    for plugin in (hf_hub, other_apps):
        patterns = [v for v in vars(plugin).values() if isinstance(v, re.Pattern) and v is not SPLIT_NAME]
        copies = [p.pattern for p in patterns
                  if p.search("Big-Q8_0-00002-of-00003.gguf") or p.search("m-Q4_K_M")]
        assert not copies, f"{plugin.__name__} copies a GGUF name rule: {copies}"


# -- model cards, through huggingface_hub's parser ----------------------------------------


def test_card_metadata_edge_cases() -> None:
    assert card_license("---\nlicense:\n  - mit\n  - apache-2.0\n---\nText") == "mit, apache-2.0"
    assert card_license("No front matter here, just a long enough sentence.") == ""
    broken = "---\nlicense: [oops\n---\n\nA paragraph of prose that is long enough to count."
    assert card_license(broken) == ""
    assert card_summary(broken) == "A paragraph of prose that is long enough to count."
    assert card_summary("\r\n---\r\nlicense: mit\r\n---\r\n\r\nWindows line endings, long enough.") == (
        "Windows line endings, long enough.")


# -- an unreachable Hub ---------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("args", [("models", "search", "x"), ("models", "files", "acme/Tiny-GGUF")])
def test_an_unreachable_hub_fails_fast_in_one_line(home: Path, args: tuple[str, ...]) -> None:
    no_starter(home)
    url = f"http://127.0.0.1:{closed_port()}"
    started = time.monotonic()
    result = run_cli(*args, env={"HF_ENDPOINT": url, "HF_HUB_OFFLINE": ""}, timeout=30)
    took = time.monotonic() - started
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"rmm-tray: error: cannot reach the Hub at {url} (ConnectError): "
        "check the connection or the proxy (HTTPS_PROXY)"]
    assert took < 5, f"took {took:.1f} s"


@pytest.mark.integration
def test_debug_shows_the_library_logs(home: Path) -> None:
    no_starter(home)
    endpoint = f"http://127.0.0.1:{closed_port()}"
    (home / "config.toml").write_text(f'[plugins.huggingface]\nendpoint = "{endpoint}"\n')
    quiet = run_cli("models", "search", "x", env={"HF_HUB_OFFLINE": ""}, timeout=30)
    assert quiet.returncode == 1 and len(quiet.stderr.splitlines()) == 1, quiet.stderr
    loud = run_cli("--debug", "models", "search", "x", env={"HF_HUB_OFFLINE": ""}, timeout=30)
    assert loud.returncode == 1
    assert any(line.startswith(("DEBUG httpcore", "DEBUG httpx")) for line in loud.stderr.splitlines()), \
        loud.stderr
