"""Local model management: fit estimates, recommendations, split models in the
list, the metadata cache, per-model settings (down to what the engine loads),
default model, delete."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import json_lines, run_cli
from rmm_tray.app import App
from rmm_tray.home.config import Config
from rmm_tray.home.paths import DataHome
from rmm_tray.models.fit import (
    FITS,
    TIGHT,
    TOO_BIG,
    fit_local,
    fit_remote,
    kv_cache_bytes,
    overhead_for,
    parameters_from_size,
    recommend,
    verdict_for,
)
from rmm_tray.models.gguf import GGUFInfo, read_gguf
from rmm_tray.models.sources import RemoteModelFile, RemotePart
from rmm_tray.models.store import list_models, remove_model, resolve_model

GiB = 1 << 30
STARTER = "gemma-3-270m-q4_k_m.gguf"
# Gemma 3 270M: 18 layers, 1 KV head, key and value length 256; f16 K and V.
STARTER_KV_AT_1024 = 2 * 18 * 1024 * 1 * 256 * 2


def write_gguf(path: Path, *, name: str = "tiny", ctx: int = 2048, file_type: int = 15,
               extra: dict[str, int] | None = None) -> Path:
    import gguf
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name(name)
    w.add_block_count(4)
    w.add_context_length(ctx)
    w.add_embedding_length(256)
    w.add_head_count(8)
    w.add_head_count_kv(2)
    w.add_file_type(file_type)
    for key, value in (extra or {}).items():
        w.add_uint32(key, value)
    w.add_tokenizer_model("llama")
    w.add_token_list([f"t{i}" for i in range(100)])
    w.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def open_app(home: Path) -> App:
    data_home = DataHome(home)
    return App(data_home, Config.load(data_home.config_file))


# -- fit ------------------------------------------------------------------------


def test_starter_model_kv_cache_and_fit_at_1024(starter_model: Path) -> None:
    info = read_gguf(starter_model, keep_arrays=True, summary=True)
    assert kv_cache_bytes(info, 1024) == STARTER_KV_AT_1024 == 18_874_368
    size = starter_model.stat().st_size
    fit = fit_local(info, size, 1024, ram=8 * GiB)
    assert (fit.verdict, fit.kv_cache, fit.estimated) == (FITS, STARTER_KV_AT_1024, False)
    assert fit.needed == size + STARTER_KV_AT_1024 + overhead_for(size)
    # The engine never goes past the trained context (32768), and neither does the estimate.
    assert fit_local(info, size, 1 << 20, ram=8 * GiB).context_length == 32768
    assert fit_local(info, size, 1024, ram=fit.needed).verdict == TIGHT
    assert fit_local(info, size, 1024, ram=fit.needed - 1).verdict == TOO_BIG


def test_kv_cache_with_per_layer_heads_and_no_head_length() -> None:
    info = GGUFInfo(Path("x.gguf"), 3, 0, {
        "general.architecture": "llama", "llama.block_count": 4,
        "llama.attention.head_count": 8, "llama.attention.head_count_kv": [2, 2, 0, 4],
        "llama.embedding_length": 512,
    })
    # head_dim = 512 / 8 = 64 for both K and V; 8 KV heads over all layers.
    assert kv_cache_bytes(info, 100) == 8 * 100 * (64 + 64) * 2
    assert kv_cache_bytes(GGUFInfo(Path("y.gguf"), 3, 0, {"general.architecture": "x"}), 100) is None


def test_verdict_thresholds() -> None:
    assert verdict_for(75, 100) == FITS
    assert verdict_for(76, 100) == TIGHT
    assert verdict_for(100, 100) == TIGHT
    assert verdict_for(101, 100) == TOO_BIG
    assert verdict_for(1, 0) == TOO_BIG


def test_remote_fit_is_an_estimate_from_size_and_quantization() -> None:
    size = int(7e9 * 4.85 / 8)  # a 7B model at Q4_K_M
    assert parameters_from_size(size, "Q4_K_M") == pytest.approx(7e9, rel=1e-6)
    assert parameters_from_size(size, "nonesuch") is None
    fit = fit_remote(size, "Q4_K_M", 4096, ram=16 * GiB)
    assert fit.estimated and fit.verdict == FITS
    assert 256 << 20 < fit.kv_cache < 1 * GiB  # Llama 3 8B: 512 MiB at 4096
    assert fit_remote(size, "Q4_K_M", 4096, ram=4 * GiB).verdict == TOO_BIG
    # Free VRAM counts when layers are offloaded.
    assert fit_remote(size, "Q4_K_M", 4096, ram=4 * GiB, vram=4 * GiB).verdict != TOO_BIG


def _repo(params: float) -> list[RemoteModelFile]:
    bpw = {"IQ2_XS": 2.31, "Q2_K": 3.35, "Q4_K_M": 4.85, "Q8_0": 8.5, "F16": 16}
    files = []
    for quant, bits in bpw.items():
        name = f"Model-{quant}.gguf"
        files.append(RemoteModelFile("o/r", name, (RemotePart(name, int(params * bits / 8)),),
                                     quantization=quant if quant != "Q8_0" else ""))
    return files


@pytest.mark.parametrize("ram_gib, expected", [
    (64, "Q8_0"),       # everything fits: the best quantized file, not F16
    (9, "Q4_K_M"),      # Q8_0 (7.4 GB + KV) no longer fits
    (5, "Q2_K"),        # 3-bit beats 2-bit whenever it fits
    (3.7, "IQ2_XS"),    # the last resort, when it is all that fits
    (1, None),          # nothing fits
])
def test_recommend_picks_the_best_file_that_fits(ram_gib: float, expected: str | None) -> None:
    pick = recommend(_repo(7e9), 4096, ram=int(ram_gib * GiB))
    assert (pick.name.split("-")[1][:-5] if pick else None) == expected


# -- the model list ---------------------------------------------------------------


def test_split_model_is_one_entry(tmp_path: Path) -> None:
    models = tmp_path / "models"
    parts = [write_gguf(models / "o" / "r" / f"big-Q4_K_M-{i:05d}-of-00003.gguf", name="big")
             for i in (1, 2, 3)]
    write_gguf(models / "small.gguf")
    listed = {m.name: m for m in list_models(models)}
    assert sorted(listed) == ["o/r/big-Q4_K_M-00001-of-00003.gguf", "small.gguf"]
    big = listed["o/r/big-Q4_K_M-00001-of-00003.gguf"]
    assert big.size == sum(p.stat().st_size for p in parts)
    assert big.parts == parts and big.error is None and big.info.name == "big"
    assert big.to_dict()["parts"] == 3
    for ref in ("big-Q4_K_M-00002-of-00003", "o/r/big-Q4_K_M-00003-of-00003.gguf", "big"):
        assert resolve_model(ref, models) == parts[0]

    parts[1].unlink()
    big = {m.name: m for m in list_models(models)}["o/r/big-Q4_K_M-00001-of-00003.gguf"]
    assert big.error == "missing part 2 of 3"

    assert remove_model("o/r/big-Q4_K_M-00001-of-00003.gguf", models) == parts[0]
    assert not parts[0].exists() and not parts[2].exists()
    assert [m.name for m in list_models(models)] == ["small.gguf"]


def test_metadata_cache_rereads_changed_files_and_survives_corruption(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    models, cache = tmp_path / "models", tmp_path / "cache" / "models.json"
    a = write_gguf(models / "a.gguf", name="first", ctx=2048)
    write_gguf(models / "b.gguf", name="other")
    assert [m.info.name for m in list_models(models)] == ["first", "other"]
    assert cache.exists()

    # Warm: no GGUF file is opened at all.
    import rmm_tray.models.cache as model_cache

    def no_reads(*_a, **_k):
        raise AssertionError("read a header that was cached")

    with monkeypatch.context() as m:
        m.setattr(model_cache, "read_gguf", no_reads)
        assert [x.info.context_length for x in list_models(models)] == [2048, 2048]

    # Changed on disk (size and mtime differ): read again.
    write_gguf(a, name="second", ctx=4096, extra={"llama.feed_forward_length": 7})
    os.utime(a, ns=(1, 1))
    assert list_models(models)[0].info.name == "second"
    assert list_models(models)[0].info.context_length == 4096

    # A corrupt or foreign cache is rebuilt, not trusted.
    for junk in ("{not json", '{"format": 1, "entries": {"x": 1}}', "[]", '{"format": 99}'):
        cache.write_text(junk)
        assert [m.info.name for m in list_models(models)] == ["second", "other"]
        assert json.loads(cache.read_text())["format"] == model_cache.FORMAT

    # A removed file drops out of the cache.
    (models / "b.gguf").unlink()
    list_models(models)
    assert list(json.loads(cache.read_text())["entries"]) == [str(a)]


def test_a_broken_file_is_an_entry_error_cached_too(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "bad.gguf").write_text("nope")
    for _ in range(2):
        (bad,) = list_models(models)
        assert bad.info is None and bad.error == "bad.gguf: not a GGUF file"


# -- per-model settings and the CLI -----------------------------------------------


@pytest.mark.integration
def test_info_reports_metadata_origin_settings_and_fit(home_with_model: Path) -> None:
    result = run_cli("models", "info", "gemma", "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert (info["name"], info["architecture"], info["quantization"], info["parameters"]) == (
        STARTER, "gemma3", "Q4_K_M", "270M")
    assert (info["layers"], info["context_length"], info["default"]) == (18, 32768, True)
    assert info["origin"]["kind"] == "linked"
    assert info["fit"]["context_length"] == 1024  # the home's [model] context_length
    assert info["fit"]["kv_cache"] == STARTER_KV_AT_1024
    assert info["fit"]["verdict"] in (FITS, TIGHT, TOO_BIG)
    text = run_cli("models", "info", "gemma")
    assert text.returncode == 0 and "linked: " in text.stdout and "fit " in text.stdout


@pytest.mark.integration
def test_origin_of_a_downloaded_model(home: Path) -> None:
    write_gguf(home / "models" / "bartowski" / "Tiny-GGUF" / "tiny-Q4_K_M.gguf")
    info = json.loads(run_cli("models", "info", "tiny", "--json").stdout)
    assert info["origin"] == {"kind": "huggingface", "repo": "bartowski/Tiny-GGUF",
                              "label": "huggingface: bartowski/Tiny-GGUF"}
    assert info["parameters_estimated"] and info["parameters"].startswith("~")


@pytest.mark.integration
def test_set_and_default_keep_comments_and_reject_bad_values(home_with_model: Path) -> None:
    config = home_with_model / "config.toml"
    config.write_text("# my own notes\n[model]\n# small, for tests\ncontext_length = 1024\n"
                      'default = ""\n\n[generation]\ntemperature = 0.0  # greedy\nmax_tokens = 24\n')
    result = run_cli("models", "default", "gemma")
    assert result.returncode == 0 and result.stdout.strip() == f"default model: {STARTER}"
    result = run_cli("models", "set", "gemma", "context_length=512", "top_k=7",
                     "chat_template=gemma", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["settings"] == {
        "context_length": 512, "top_k": 7, "chat_template": "gemma"}
    text = config.read_text()
    for kept in ("# my own notes", "# small, for tests", "temperature = 0.0  # greedy"):
        assert kept in text
    assert f'default = "{STARTER}"' in text and f'[models."{STARTER}"]' in text

    for bad, message in (
        (["temperature=hot"], f"models.\"{STARTER}\".temperature should be float, got 'hot'"),
        (["context_length=1.5"], "should be int"),
        (["colour=blue"], "is not a per-model setting"),
        (["context_length"], "expected KEY=VALUE"),
        (["context_length=-5"], "Context length must be at least 256 tokens, got -5"),
        (["top_p=2.0"], "Top P must be between 0 and 1"),
        (["chat_template=nonsense"], "Chat template 'nonsense' is not one the engine knows"),
    ):
        result = run_cli("models", "set", "gemma", *bad)
        assert result.returncode == 1, bad
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert message in result.stderr
        assert config.read_text() == text, "a rejected value leaves the file alone"

    assert run_cli("models", "set", "gemma", "--unset", "top_k").returncode == 0
    shown = json.loads(run_cli("models", "set", "gemma", "--json").stdout)["settings"]
    assert shown == {"context_length": 512, "chat_template": "gemma"}
    assert run_cli("models", "set", "gemma", "--reset").returncode == 0
    assert f'[models."{STARTER}"]' not in config.read_text()
    assert "# my own notes" in config.read_text()


@pytest.mark.integration
def test_a_bad_per_model_table_in_config_is_one_line(home_with_model: Path) -> None:
    config = home_with_model / "config.toml"
    config.write_text(f'[models."{STARTER}"]\ntop_p = "high"\n')
    result = run_cli("models", "list")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f'rmm-tray: error: config.toml: models."{STARTER}".top_p should be float, got \'high\'')


@pytest.mark.slow
def test_per_model_settings_reach_the_engine(home_with_model: Path) -> None:
    from rmm_tray.models.manage import set_settings

    app = open_app(home_with_model)
    try:
        model = app.default_model()
        set_settings(app, "gemma", {"context_length": 512, "chat_template": "chatml"})
        loaded = app.engine.load(model).result()
        assert (loaded.n_ctx, loaded.chat_template) == (512, "chatml")
        assert app.engine_settings().context_length == 1024, "other models keep [model]"
        # A change applies on the model's next use: it is reloaded with it.
        set_settings(app, "gemma", {"context_length": 768}, unset=("chat_template",))
        stream = app.engine.chat([{"role": "user", "content": "Hi"}],
                                 app.gen_params(model, max_tokens=2), model=model)
        stream.text()
        assert (app.loaded.n_ctx, app.loaded.chat_template) == (768, "gemma")
    finally:
        app.close()


@pytest.mark.integration
@pytest.mark.slow
def test_chat_uses_the_models_sampling_defaults_and_flags_win(home_with_model: Path) -> None:
    assert run_cli("models", "set", "gemma", "max_tokens=2", "temperature=0.0").returncode == 0
    result = run_cli("chat", "--json", "Tell me a long story about a dragon.")
    assert result.returncode == 0, result.stderr
    done = json_lines(result.stdout)[-1]
    assert done["type"] == "done" and done["completion_tokens"] <= 2
    result = run_cli("chat", "--json", "--max-tokens", "6", "Tell me a long story about a dragon.")
    done = json_lines(result.stdout)[-1]
    assert done["type"] == "done" and done["completion_tokens"] > 2


@pytest.mark.slow
def test_delete_unloads_the_loaded_model_and_forgets_it(home_with_model: Path,
                                                        starter_model: Path) -> None:
    from rmm_tray.models.manage import delete_model, set_default, set_settings

    app = open_app(home_with_model)
    try:
        set_default(app, "gemma")
        set_settings(app, "gemma", {"temperature": 0.2})
        app.engine.load(app.default_model()).result()
        assert app.loaded is not None
        removed = delete_model(app, STARTER)  # delete takes the name as listed
        assert removed.name == STARTER and not removed.exists() and not removed.is_symlink()
        assert app.loaded is None and app.engine.status().model is None
        assert starter_model.exists(), "a linked model keeps its original"
        again = Config.load(home_with_model / "config.toml")
        assert again["model"]["default"] == "" and again.model_settings(STARTER) == {}
    finally:
        app.close()


def test_forget_model_clears_only_its_own_table_and_default(tmp_path: Path) -> None:
    from rmm_tray.home.config_edit import forget_model, set_default_model, update_model_settings

    config = tmp_path / "config.toml"
    set_default_model(config, "a.gguf")  # no file yet: starts from the commented defaults
    update_model_settings(config, "a.gguf", {"top_k": 5})
    update_model_settings(config, "b.gguf", {"top_k": 6})
    after = forget_model(config, "b.gguf")
    assert after["model"]["default"] == "a.gguf" and after.model_settings("a.gguf") == {"top_k": 5}
    after = forget_model(config, "a.gguf")
    assert after["model"]["default"] == "" and after.data["models"] == {}
    assert "# Settings for one model" in config.read_text()


def test_a_header_read_again_only_when_the_file_changed(tmp_path: Path) -> None:
    # The API asks per request which kind of model it was named; a file replaced
    # in place (same path) must be seen as the new file.
    import os

    from rmm_tray.models.store import read_header_or_error

    path = write_gguf(tmp_path / "m.gguf", name="first", ctx=2048)
    assert read_header_or_error(path)[0].context_length == 2048
    first = read_header_or_error(path)[0]
    assert read_header_or_error(path)[0] is first, "unchanged: remembered"
    write_gguf(tmp_path / "m.gguf", name="second", ctx=4096)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert read_header_or_error(path)[0].context_length == 4096
    path.write_bytes(b"not a gguf")
    info, error = read_header_or_error(path)
    assert info is None and error
