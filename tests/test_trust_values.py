"""Trust in what a person types: every value is checked by one rule wherever it
enters (config.toml, a CLI flag, `models set`, the popup's form); config edits
keep a linked config.toml a link and all land when made at once; a failing
`chat --json` still ends with its JSON error line; an error quoting a value with
a newline in it stays one line."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import threading
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import CLI, REPO, Page
from rmm_tray.home.atomic import lock_path
from rmm_tray.home.config import MODEL_SETTING_KEYS, Config, ConfigError
from rmm_tray.home.settings_check import MAX_THREADS, RULES

MODEL = "t-Q4_K_M.gguf"


def tiny_gguf(path: Path) -> Path:
    import gguf

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(1)
    writer.add_context_length(2048)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture()
def tiny_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data home with one tiny model, whose starter model counts as installed
    (no 253 MB copy), for the CLI in this process."""
    tiny_gguf(home / "models" / MODEL)
    (home / "state.json").write_text('{"starter_installed": "x"}\n')
    # main() sets it for huggingface_hub; set here, the test's environment is restored.
    monkeypatch.setenv("HF_HUB_VERBOSITY", "critical")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> SimpleNamespace:
    """Run the CLI in this process (a subprocess costs a second of start-up)."""
    from rmm_tray.cli import main

    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return SimpleNamespace(returncode=code, stdout=out.out, stderr=out.err)


# -- one rule per setting, at every entrance ----------------------------------------

#: (key, bad value as typed, what the message must also say; None: "a number")
BAD = [
    ("temperature", "nan", None),
    ("temperature", "inf", None),
    ("temperature", "-1", "0 or more"),
    ("top_p", "5", "between 0 and 1"),
    ("top_k", "-3", "0 (off) or more"),
    ("max_tokens", "-7", "at least 1"),
    ("max_tokens", "0", "at least 1"),
    ("min_p", "1.5", "between 0 and 1"),
    ("repeat_penalty", "0", "more than 0"),
    ("context_length", "100", "at least 256 tokens"),
    ("gpu_layers", "-2", "-1 (all)"),
]
FLAGS = {"temperature", "max_tokens"}


def via_config_file(env: SimpleNamespace, key: str, raw: str) -> str:
    path = env.home / "config.toml"
    path.write_text(f"# mine\n[{MODEL_SETTING_KEYS[key]}]\n{key} = {raw}\n")
    with pytest.raises(ConfigError) as err:
        Config.load(path)
    line = str(err.value)
    assert line.startswith(f"config.toml: [{MODEL_SETTING_KEYS[key]}] {key} ") and "(line 3)" in line
    return line


def via_model_table(env: SimpleNamespace, key: str, raw: str) -> str:
    path = env.home / "config.toml"
    path.write_text(f'[models."{MODEL}"]\n{key} = {raw}\n')
    with pytest.raises(ConfigError) as err:
        Config.load(path)
    assert str(err.value).startswith(f'config.toml: [models."{MODEL}"] {key} ')
    return str(err.value)


def via_flag(env: SimpleNamespace, key: str, raw: str) -> str:
    flag = "--" + key.replace("_", "-")
    result = cli(env.capsys, "chat", f"{flag}={raw}", "hi")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines()[-1].startswith(f"rmm-tray chat: error: argument {flag}: ")
    return result.stderr.splitlines()[-1]


def via_models_set(env: SimpleNamespace, key: str, raw: str) -> str:
    before = (env.home / "config.toml").read_text()
    result = cli(env.capsys, "models", "set", MODEL, f"{key}={raw}")
    assert result.returncode == 1 and len(result.stderr.splitlines()) == 1, result.stderr
    assert (env.home / "config.toml").read_text() == before, "nothing is written"
    return result.stderr.strip()


def via_popup(env: SimpleNamespace, key: str, raw: str) -> str:
    from rmm_tray.app import App
    from rmm_tray.desktop.models_controller import ModelsController
    from rmm_tray.home.paths import DataHome

    app = App(DataHome(env.home), Config.load(env.home / "config.toml"))
    page = Page()
    ctl = ModelsController(app, page)
    try:
        before = (env.home / "config.toml").read_bytes()
        ctl.save_settings(MODEL, {key: raw}).result(timeout=5)
        assert (env.home / "config.toml").read_bytes() == before, "nothing is written"
        return (page.last("models.error") or {}).get("message", "")
    finally:
        app.close()


ENTRANCES = [via_config_file, via_model_table, via_flag, via_models_set, via_popup]


# Every entrance for every bad value, but CLI flags only for the settings chat has a flag for.
CASES = [pytest.param(entrance, key, raw, allowed, id=f"{entrance.__name__[4:]}-{key}={raw}")
         for entrance in ENTRANCES for key, raw, allowed in BAD
         if entrance is not via_flag or key in FLAGS]


@pytest.mark.parametrize(("entrance", "key", "raw", "allowed"), CASES)
def test_a_bad_value_is_refused_everywhere_in_one_line(tiny_home, capsys, entrance, key, raw,
                                                       allowed) -> None:
    env = SimpleNamespace(home=tiny_home, capsys=capsys)
    line = entrance(env, key, raw)
    label = RULES[MODEL_SETTING_KEYS[key]][key].label
    assert line and "\n" not in line, line
    assert key in line or label in line, "the message names the setting"
    assert raw in line, "and the value"
    assert (allowed or "number") in line, "and what it must be"


def test_good_values_pass_everywhere(tiny_home, capsys) -> None:
    config = tiny_home / "config.toml"
    config.write_text("[model]\nthreads = 0\n[generation]\ntemperature = 0\ntop_p = 1\ntop_k = 0\n")
    assert Config.load(config)["generation"]["top_p"] == 1
    result = cli(capsys, "models", "set", MODEL, "temperature=0", "top_p=1", "max_tokens=1", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["settings"] == {"temperature": 0.0, "top_p": 1.0, "max_tokens": 1}


@pytest.mark.parametrize(("text", "expected"), [
    ("[model]\nthreads = 1000000\n", f"config.toml: [model] threads must be 0 (one per physical core) "
                                     f"to {MAX_THREADS}, got 1000000 (line 2)"),
    ("[model]\nthreads = -1\n", "[model] threads must be 0 (one per physical core)"),
    ("[model]\nchat_template = 'nonsense'\n", "[model] chat_template must be one of chatml, gemma"),
    ("[engine]\nstate_cache_mib = -1\n", "[engine] state_cache_mib must be 0 (off) or more MiB, got -1"),
    ("[ui]\nhotkey = ''\n", "[ui] hotkey must be keys joined by '+'"),
    ("[ui]\nhotkey = 'ctrl+alt+space'\n", "got 'ctrl+alt+space' (line 2)"),
    ("[plugins]\ndisabled = [1]\n", "[plugins] disabled must be a list of plugin names"),
])
def test_the_files_own_settings_are_checked_too(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        Config.load(path)
    assert expected in str(err.value) and "\n" not in str(err.value)
    assert path.read_text() == text


@pytest.mark.integration
def test_threads_past_what_llama_cpp_takes_stop_at_the_config_not_in_an_abort(tiny_home) -> None:
    (tiny_home / "config.toml").write_text("[model]\nthreads = 1000000\n")
    result = subprocess.run([*CLI, "chat", "-m", MODEL, "hi"], capture_output=True, text=True,
                            timeout=60, cwd=REPO, env=os.environ)
    assert result.returncode == 1, result.stderr  # not -6 (SIGABRT)
    assert result.stderr.splitlines() == [
        f"rmm-tray: error: config.toml: [model] threads must be 0 (one per physical core) to "
        f"{MAX_THREADS}, got 1000000 (line 2)"]


def test_the_engine_refuses_such_threads_whoever_built_its_settings() -> None:
    pytest.importorskip("llama_cpp")
    from rmm_tray.engine.loader import threads_for
    from rmm_tray.engine.types import EngineError

    assert threads_for(3) == 3 and threads_for(0) >= 1
    with pytest.raises(EngineError, match="threads must be 0"):
        threads_for(MAX_THREADS + 1)


def test_an_unknown_key_is_warned_about_once(tmp_path: Path, caplog) -> None:
    key = f"colour_{uuid.uuid4().hex[:6]}"
    path = tmp_path / "config.toml"
    path.write_text(f"[generation]\n{key} = 1\n")
    with caplog.at_level(logging.WARNING, logger="rmm_tray.home.config"):
        Config.load(path)
        Config.load(path)
    warnings = [r.getMessage() for r in caplog.records if key in r.getMessage()]
    assert warnings == [f"config.toml: unknown setting [generation] {key} is ignored"]


def test_app_gen_params_applies_the_rule_to_explicit_values(tiny_home) -> None:
    from rmm_tray.app import App
    from rmm_tray.home.paths import DataHome

    app = App(DataHome(tiny_home), Config.load(tiny_home / "config.toml"))
    assert app.gen_params(temperature="0.5").temperature == 0.5
    with pytest.raises(ConfigError, match="Temperature should be a number, got nan"):
        app.gen_params(temperature=float("nan"))


# -- edits: links stay links, concurrent edits all land ----------------------------------

def linked_config(home: Path) -> Path:
    """config.toml as a dotfile manager leaves it: a relative link into a repository."""
    target = home.parent / "dotfiles" / "rmm" / "config.toml"
    target.parent.mkdir(parents=True)
    target.write_text((home / "config.toml").read_text() + "# kept in git\n")
    (home / "config.toml").unlink()
    (home / "config.toml").symlink_to(os.path.relpath(target, home))
    return target


def test_a_linked_config_stays_a_link_and_its_target_changes(tiny_home: Path) -> None:
    from rmm_tray.home.config_edit import set_default_model, update_model_settings

    target = linked_config(tiny_home)
    link = tiny_home / "config.toml"
    set_default_model(link, MODEL)
    update_model_settings(link, MODEL, {"top_k": 5})
    assert link.is_symlink() and link.resolve() == target.resolve()
    text = target.read_text()
    assert f'default = "{MODEL}"' in text and "top_k = 5" in text and "# kept in git" in text
    assert Config.load(link).model_value(MODEL, "top_k") == 5
    assert lock_path(link).parent == target.parent, "one lock, beside the real file"
    leftovers = [p.name for p in target.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_edits_from_many_threads_all_land(tiny_home: Path) -> None:
    from rmm_tray.home.config_edit import update_model_settings

    config, errors = tiny_home / "config.toml", []
    names = [f"m{i}.gguf" for i in range(8)]

    def edit(name: str) -> None:
        try:
            update_model_settings(config, name, {"top_k": 7})
        except Exception as exc:  # reported below, with the others
            errors.append(exc)

    threads = [threading.Thread(target=edit, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert not errors and not any(t.is_alive() for t in threads)
    assert all(Config.load(config).model_settings(n) == {"top_k": 7} for n in names)


#: Eight different keys, each a good value.
EIGHT = ["context_length=512", "gpu_layers=0", "chat_template=chatml", "max_tokens=9",
         "temperature=0.3", "top_p=0.8", "top_k=11", "min_p=0.1"]


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_eight_models_set_at_once_all_land_in_a_linked_config(tiny_home: Path) -> None:
    target = linked_config(tiny_home)
    procs = [subprocess.Popen([*CLI, "models", "set", MODEL, pair], cwd=REPO, env=os.environ,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for pair in EIGHT]
    try:
        results = [p.communicate(timeout=60) for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [p.returncode for p in procs] == [0] * 8, results
    link = tiny_home / "config.toml"
    assert link.is_symlink() and "# kept in git" in target.read_text()
    settings = Config.load(link).model_settings(MODEL)
    assert sorted(settings) == sorted(pair.split("=")[0] for pair in EIGHT), settings


def test_the_starter_state_is_written_under_its_lock(tmp_path: Path, monkeypatch) -> None:
    from filelock import FileLock, Timeout

    from rmm_tray.models import starter

    state = tmp_path / starter.STATE_FILE
    state.write_text('{"other": 1}\n')
    seen = []
    write = starter.atomic_write_text

    def checking_write(path: Path, text: str) -> None:
        # Another process's attempt to take the lock now must fail at once.
        with pytest.raises(Timeout):
            FileLock(lock_path(path), timeout=0).acquire()
        seen.append(path)
        write(path, text)

    monkeypatch.setattr(starter, "atomic_write_text", checking_write)
    starter._remember(tmp_path)
    assert seen == [state]
    assert json.loads(state.read_text()) == {"other": 1, starter._KEY: starter.STARTER_FILE}


# -- the CLI's edges ------------------------------------------------------------------

@pytest.mark.parametrize("args", [("-m", "nonesuch"), ("-t", "nonesuch"), ("-c", "nonesuch"),
                                  ("--var", "novalue")], ids=["model", "template", "chat", "var"])
def test_every_failure_of_chat_json_ends_with_an_error_line(tiny_home, capsys, args) -> None:
    result = cli(capsys, "chat", *args, "--json", "hi")
    # A --var without '=' is a usage error, as argparse's own (exit 2).
    assert result.returncode == (2 if args[0] == "--var" else 1)
    (line,) = result.stdout.splitlines()
    event = json.loads(line)
    assert event["type"] == "error" and event["message"] in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_a_bad_flag_of_chat_json_is_an_error_line_too(tiny_home, capsys) -> None:
    result = cli(capsys, "chat", "--temperature", "nan", "--json", "hi")
    assert result.returncode == 2
    assert json.loads(result.stdout) == {
        "type": "error", "message": "argument --temperature: Temperature should be a number, got 'nan'"}


def test_models_default_without_a_name_shows_it(tiny_home, capsys) -> None:
    result = cli(capsys, "models", "default")
    assert result.returncode == 0 and result.stdout.startswith(f"default model: {MODEL} (none set")
    assert json.loads(cli(capsys, "models", "default", "--json").stdout) == {
        "default": MODEL, "configured": ""}
    assert cli(capsys, "models", "default", MODEL).returncode == 0
    assert cli(capsys, "models", "default").stdout == f"default model: {MODEL}\n"
    assert json.loads(cli(capsys, "models", "default", "--json").stdout) == {
        "default": MODEL, "configured": MODEL}


def test_models_info_of_something_no_hub_could_have_is_one_clear_line(tiny_home, capsys) -> None:
    for name in ("hf:foo/bar", "foo/b a r"):
        result = cli(capsys, "models", "info", name)
        assert result.returncode == 1
        assert result.stderr == f"rmm-tray: error: no model matches {name!r}; see 'rmm-tray models list'\n"
    result = cli(capsys, "models", "files", "foo/b a r")
    assert result.stderr.splitlines() == [
        "rmm-tray: error: 'foo/b a r' is not a Hub repository id: OWNER/NAME, of letters, digits, "
        "'-', '_' and '.'"]


def test_doctors_gpu_advice_keeps_amx_out_on_x86_64() -> None:
    from rmm_tray.cli.doctor_cmd import gpu_fix

    flags = "-DGGML_CUDA=on -DCMAKE_C_FLAGS=-mno-amx-int8 -DCMAKE_CXX_FLAGS=-mno-amx-int8"
    for machine in ("x86_64", "AMD64"):
        assert flags in gpu_fix(machine)
    assert "amx" not in gpu_fix("aarch64") and "-DGGML_CUDA=on" in gpu_fix("aarch64")


@pytest.mark.parametrize("args", [("chats", "show", "abc\n"), ("models", "info", "t-Q4\n"),
                                  ("prompts", "show", "x\x1b[2J\n")])
def test_a_value_with_a_newline_shows_escaped_on_one_line(tiny_home, capsys, args) -> None:
    result = cli(capsys, *args)
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert repr(args[-1])[1:-1] in line and "\x1b" not in line, line
