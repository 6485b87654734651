"""/v1/embeddings on a real encoder: a tiny random-weight BERT GGUF written here
(WordPiece vocabulary, mean pooling) that llama.cpp loads in milliseconds.

The units drive the ASGI app over the real engine; the end-to-end tests run
`rmm-tray serve` and the official openai SDK, and compare the vectors with
llama-cpp-python's own ``Llama(embedding=True).embed`` run in another process
(never two llama.cpp contexts in one process)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from starlette.testclient import TestClient
from test_server_api import CONFIG, Served, make_home, start, stop
from test_server_units import tiny_gguf

from rmm_tray.app import App
from rmm_tray.engine import EngineError
from rmm_tray.engine.embed import EmbedInputError
from rmm_tray.home.config import Config
from rmm_tray.home.paths import DataHome
from rmm_tray.server.app import build_app
from rmm_tray.server.settings import ServerSettings

BERT = "tiny-bert.gguf"
TEXT_MODEL = "tiny-chat.gguf"
WIDTH, CONTEXT = 32, 128
WORDS = ["the", "cat", "dog", "sat", "on", "mat", "a", "red", "blue", "car", "hello", "world",
         "quick", "brown", "fox", "jumps", "over", "lazy", "##s", "##ed", "##ing", ",", ".", "!", "?"]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def tiny_bert(path: Path, seed: int = 7) -> Path:
    """A 2-layer BERT with random weights, shaped as llama.cpp's converter writes one."""
    import gguf

    rng = np.random.default_rng(seed)
    n_ff, n_layer = 2 * WIDTH, 2
    # llama.cpp's WordPiece: a word's first piece carries the phantom space, a "##" piece does not.
    tokens = SPECIAL + [w[2:] if w.startswith("##") else "\u2581" + w for w in WORDS]
    path.parent.mkdir(parents=True, exist_ok=True)
    w = gguf.GGUFWriter(str(path), "bert")
    w.add_context_length(CONTEXT)
    w.add_embedding_length(WIDTH)
    w.add_feed_forward_length(n_ff)
    w.add_block_count(n_layer)
    w.add_head_count(2)
    w.add_layer_norm_eps(1e-12)
    w.add_causal_attention(False)
    w.add_pooling_type(gguf.PoolingType.MEAN)
    w.add_tokenizer_model("bert")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types([gguf.TokenType.CONTROL] * len(SPECIAL) + [gguf.TokenType.NORMAL] * len(WORDS))
    w.add_token_type_count(2)
    w.add_pad_token_id(0)
    w.add_unk_token_id(1)
    w.add_bos_token_id(2)
    w.add_sep_token_id(3)
    w.add_mask_token_id(4)
    w.add_add_bos_token(True)
    w.add_add_sep_token(True)

    def rand(name: str, *shape: int, scale: float = 0.2) -> None:
        w.add_tensor(name, (rng.standard_normal(shape) * scale).astype(np.float32))

    def norm(name: str) -> None:
        w.add_tensor(name + ".weight", np.ones(WIDTH, np.float32))
        w.add_tensor(name + ".bias", np.zeros(WIDTH, np.float32))

    rand("token_embd.weight", len(tokens), WIDTH)
    rand("token_types.weight", 2, WIDTH)
    rand("position_embd.weight", CONTEXT, WIDTH)
    norm("token_embd_norm")
    for i in range(n_layer):
        for part in ("attn_q", "attn_k", "attn_v", "attn_output"):
            rand(f"blk.{i}.{part}.weight", WIDTH, WIDTH)
            rand(f"blk.{i}.{part}.bias", WIDTH, scale=0.02)
        norm(f"blk.{i}.attn_output_norm")
        rand(f"blk.{i}.ffn_up.weight", n_ff, WIDTH)
        rand(f"blk.{i}.ffn_up.bias", n_ff, scale=0.02)
        rand(f"blk.{i}.ffn_down.weight", WIDTH, n_ff)
        rand(f"blk.{i}.ffn_down.bias", WIDTH, scale=0.02)
        norm(f"blk.{i}.layer_output_norm")
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


REFERENCE = """
import json, sys
import llama_cpp
path, texts = sys.argv[1], json.loads(sys.argv[2])
llama = llama_cpp.Llama(model_path=path, embedding=True, n_ctx=128, verbose=False)
print(json.dumps({"vectors": [llama.embed(t, normalize=True) for t in texts],
                  "batch": llama.embed(texts, normalize=True),
                  "tokens": [llama.tokenize(t.encode("utf-8")) for t in texts]}))
"""


def reference(model: Path, texts: list[str]) -> dict[str, Any]:
    """llama-cpp-python's own vectors and tokens, from a process of their own."""
    out = subprocess.run([sys.executable, "-c", REFERENCE, str(model), json.dumps(texts)],
                         capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def unit(v: list[float]) -> bool:
    return abs(float(np.linalg.norm(v)) - 1.0) < 1e-5


# -- the app over the real engine --------------------------------------------------------


@pytest.fixture()
def core(home: Path) -> Iterator[App]:
    tiny_bert(home / "models" / BERT)
    tiny_gguf(home / "models" / TEXT_MODEL)  # a header only: refused before anything loads
    app = App(DataHome(home).ensure(), Config.load(home / "config.toml"))
    yield app
    app.close()


@pytest.fixture()
def api(core: App) -> TestClient:
    return TestClient(build_app(core, ServerSettings(max_waiting=0)))


def post(api: TestClient, **body: Any) -> Any:
    return api.post("/v1/embeddings", json={"model": BERT, **body})


def vectors(reply: Any) -> list[list[float]]:
    assert reply.status_code == 200, reply.text
    data = reply.json()["data"]
    assert [d["index"] for d in data] == list(range(len(data)))
    assert all(d["object"] == "embedding" for d in data)
    return [d["embedding"] for d in data]


def test_every_input_shape_gives_one_unit_vector_per_input(api: TestClient) -> None:
    one = post(api, input="the cat sat")
    assert one.status_code == 200, one.text
    body = one.json()
    assert body["object"] == "list" and body["model"] == BERT
    # [CLS] the cat sat [SEP]
    assert body["usage"] == {"prompt_tokens": 5, "total_tokens": 5}
    [text] = vectors(one)
    assert len(text) == WIDTH and unit(text)

    many = vectors(post(api, input=["the cat sat", "hello world", "the cat sat"]))
    assert len(many) == 3 and all(len(v) == WIDTH and unit(v) for v in many)
    assert np.allclose(many[0], many[2], atol=1e-6) and np.allclose(many[0], text, atol=1e-6)
    assert not np.allclose(many[0], many[1], atol=1e-2)

    ids = [2, 5, 6, 8, 3]  # the same text as token ids: [CLS] the cat sat [SEP]
    [as_ids] = vectors(post(api, input=ids))
    assert np.allclose(as_ids, text, atol=1e-6)
    two = vectors(post(api, input=[ids, [2, 14, 15, 3]]))
    assert np.allclose(two[0], text, atol=1e-6) and not np.allclose(two[1], text, atol=1e-2)

    # An empty text is still [CLS] [SEP] to a BERT: answered (LangChain embeds empty documents).
    empty = post(api, input="")
    assert empty.status_code == 200 and empty.json()["usage"]["prompt_tokens"] == 2


def test_base64_is_the_float32_bytes_of_the_same_vectors(api: TestClient) -> None:
    [floats] = vectors(post(api, input="hello world", encoding_format="float"))
    [packed] = vectors(post(api, input="hello world", encoding_format="base64"))
    assert isinstance(packed, str)
    decoded = np.frombuffer(base64.b64decode(packed), dtype="<f4")
    assert decoded.shape == (WIDTH,)
    assert np.allclose(decoded, floats, atol=1e-6)


@pytest.mark.parametrize("value", [None, 3, True, [], [[]], [1, "a"], ["a", ["b"]], [True, 1],
                                   [[1, 2], "a"], {"text": "a"}])
def test_other_input_shapes_are_a_400_naming_input(api: TestClient, value: Any) -> None:
    body = {"model": BERT} if value is None else {"model": BERT, "input": value}
    reply = api.post("/v1/embeddings", json=body)
    assert reply.status_code == 400, reply.text
    err = reply.json()["error"]
    assert err["param"] == "input" and "input must be" in err["message"]


def test_a_text_generation_model_is_a_400_and_keeps_the_loaded_model(api: TestClient,
                                                                        core: App) -> None:
    assert post(api, input="a").status_code == 200
    reply = post(api, model=TEXT_MODEL, input="a")
    assert reply.status_code == 400
    err = reply.json()["error"]
    assert err["code"] == "model_not_embedding" and err["param"] == "model"
    assert TEXT_MODEL in err["message"] and "\n" not in err["message"]
    assert core.loaded is not None and core.loaded.name == BERT
    missing = post(api, model="nomic-embed-text", input="a")
    assert missing.status_code == 404 and BERT in missing.json()["error"]["message"]


def test_inputs_the_model_cannot_read_are_a_400_and_the_engine_lives_on(api: TestClient) -> None:
    cases = {"outside": ([2, 999, 3], "token id 999 is outside"),
             "negative": ([2, -1, 3], "token id -1 is outside"),
             "too long": (" ".join(["the"] * CONTEXT), f"at most {CONTEXT}")}
    for label, (value, expected) in cases.items():
        reply = post(api, input=value)
        assert reply.status_code == 400, label
        err = reply.json()["error"]
        assert expected in err["message"] and err["param"] == "input", (label, err)
    assert post(api, input=" ".join(["the"] * (CONTEXT - 2))).status_code == 200  # exactly fits
    for name, value, expected in [("encoding_format", "binary", "float"),
                                  ("dimensions", 16, "32"), ("user", 5, "user")]:
        reply = post(api, input="a", **{name: value})
        assert reply.status_code == 400 and expected in reply.json()["error"]["message"], name
    assert post(api, input="a", dimensions=WIDTH, user="me").status_code == 200


def test_a_chat_for_an_embedding_model_is_a_400(api: TestClient) -> None:
    reply = api.post("/v1/chat/completions",
                     json={"model": BERT, "messages": [{"role": "user", "content": "hi"}]})
    assert reply.status_code == 400
    err = reply.json()["error"]
    assert err["code"] == "model_not_chat" and "embedding model" in err["message"]


def test_embeddings_wait_in_the_same_queue_bound_as_chats(api: TestClient) -> None:
    gate = api.app.state.api.gate  # type: ignore[attr-defined]
    gate.enter()  # a chat is generating, and max_waiting = 0
    try:
        busy = post(api, input="a")
        assert busy.status_code == 503 and busy.headers["retry-after"]
    finally:
        gate.leave()
    assert post(api, input="a").status_code == 200
    assert gate.active == 0


def test_the_engine_refuses_the_wrong_kind_of_job_in_one_line(core: App, home: Path) -> None:
    engine = core.engine
    engine.load(home / "models" / BERT).result(30)
    events = list(engine.chat([{"role": "user", "content": "hi"}]))
    assert len(events) == 1 and "is an embedding model" in events[0].message  # type: ignore[union-attr]
    with pytest.raises(EngineError, match="cannot make embeddings: it is a text-generation model"):
        engine.embed(["a"], model=home / "models" / TEXT_MODEL).result(30)
    with pytest.raises(EmbedInputError):
        engine.embed([[1000]]).result(30)
    assert core.loaded is not None and core.loaded.name == BERT  # nothing was given up
    assert len(engine.embed(["a"]).result(30).vectors[0]) == WIDTH


def test_batches_are_split_where_the_context_ends(core: App, home: Path) -> None:
    """Sixty inputs of about a third of the context each cannot share one decode."""
    texts = [" ".join(["the", "cat", "sat"][i % 3:] + ["on", "the", "mat"] * 12) for i in range(60)]
    result = core.engine.embed(texts, model=home / "models" / BERT).result(60)
    alone = core.engine.embed(texts[:3]).result(30)
    assert len(result.vectors) == 60 and all(unit(v) for v in result.vectors)
    for i in range(3):
        assert np.allclose(result.vectors[i], alone.vectors[i], atol=1e-4)
        assert np.allclose(result.vectors[i + 3], alone.vectors[i], atol=1e-4)


# -- `rmm-tray serve` and the openai SDK ---------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, starter_model: Path) -> Iterator[Served]:
    # Flash attention off, as in llama-cpp-python's default: its "auto" rounds through
    # float16 (differences of ~1e-4), which would hide a real difference from the reference.
    config = CONFIG + f'[models."{BERT}"]\nflash_attn = "off"\n'
    root = make_home(tmp_path_factory.mktemp("embed") / "home", starter_model, config)
    tiny_bert(root / "models" / BERT)
    server = start(root, "-m", BERT)
    yield server
    stop(server)


@pytest.fixture()
def client(served: Served):  # type: ignore[no-untyped-def]
    import openai

    return openai.OpenAI(base_url=served.url, api_key="unused", max_retries=0, timeout=120)


@pytest.mark.integration
@pytest.mark.slow
def test_sdk_embeddings_match_llama_cpp_pythons_own(served: Served, client) -> None:
    texts = ["the quick brown fox jumps over the lazy dog", "hello world", "a red car"]
    ref = reference(served.root / "models" / BERT, texts)
    # The SDK asks for base64 unless told otherwise, and decodes it.
    reply = client.embeddings.create(model=BERT, input=[*texts, texts[0]])
    got = [d.embedding for d in reply.data]
    assert reply.model == BERT and [d.index for d in reply.data] == [0, 1, 2, 3]
    assert all(len(v) == WIDTH and unit(v) for v in got)
    assert reply.usage.prompt_tokens == sum(len(t) for t in ref["tokens"]) + len(ref["tokens"][0])
    assert reply.usage.total_tokens == reply.usage.prompt_tokens
    assert np.allclose(got[0], got[3], atol=1e-6), "the same text twice, the same vector"
    assert min(np.linalg.norm(np.subtract(got[i], got[j])) for i, j in [(0, 1), (0, 2), (1, 2)]) > 0.05
    # Packed into one decode as Llama.embed packs them: the same numbers (float32 on the wire).
    assert np.allclose(got[:3], ref["batch"], rtol=0, atol=1e-7)
    for text, theirs in zip(texts, ref["vectors"]):
        alone = client.embeddings.create(model=BERT, input=text, encoding_format="float")
        assert np.allclose(alone.data[0].embedding, theirs, rtol=0, atol=1e-7)
        # A batch's rounding differs from one text's by far less than texts differ.
        assert np.allclose(got[texts.index(text)], theirs, rtol=0, atol=1e-4)

    # Token ids, as LangChain sends them: the model's own tokens give the text's vector.
    by_ids = client.embeddings.create(model=BERT, input=ref["tokens"])
    assert np.allclose([d.embedding for d in by_ids.data], ref["batch"], rtol=0, atol=1e-7)
    one = client.embeddings.create(model=BERT, input=ref["tokens"][2])
    assert np.allclose(one.data[0].embedding, ref["vectors"][2], rtol=0, atol=1e-7)


@pytest.mark.integration
@pytest.mark.slow
def test_sdk_switches_between_a_chat_model_and_the_embedding_model(
        served: Served, client, starter_model: Path) -> None:
    import openai

    with pytest.raises(openai.BadRequestError) as text_model:
        client.embeddings.create(model=starter_model.name, input="hello")
    assert text_model.value.code == "model_not_embedding"
    assert "cannot make embeddings" in str(text_model.value)
    with pytest.raises(openai.BadRequestError) as chat_bert:
        client.chat.completions.create(model=BERT, messages=[{"role": "user", "content": "hi"}])
    assert chat_bert.value.code == "model_not_chat"

    before = client.embeddings.create(model=BERT, input="hello world").data[0].embedding
    chat = client.chat.completions.create(model=starter_model.name, max_tokens=4,
                                          messages=[{"role": "user", "content": "Hi"}])
    assert chat.choices[0].message.content
    assert served.health()["model"] == starter_model.name
    after = client.embeddings.create(model=BERT, input="hello world").data[0].embedding
    assert served.health()["model"] == BERT  # asked for, so loaded again
    assert np.allclose(before, after, atol=1e-6)


# -- a real embedding model: all-MiniLM-L6-v2 ----------------------------------------------

MINILM = "all-minilm-l6-v2.gguf"


@pytest.fixture(scope="session")
def minilm_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Converted once per session (under a second; 91 MB of float32)."""
    import minilm_gguf

    return minilm_gguf.convert(tmp_path_factory.mktemp("minilm") / MINILM)


@pytest.fixture(scope="module")
def minilm_served(tmp_path_factory: pytest.TempPathFactory, minilm_model: Path) -> Iterator[Served]:
    root = make_home(tmp_path_factory.mktemp("minilm-home") / "home", None)
    (root / "models" / MINILM).symlink_to(minilm_model)  # as `models import` links a file
    server = start(root, "-m", MINILM)
    yield server
    stop(server)


@pytest.fixture()
def minilm(minilm_served: Served):  # type: ignore[no-untyped-def]
    import openai

    return openai.OpenAI(base_url=minilm_served.url, api_key="unused", max_retries=0, timeout=120)


def embed(client, texts: list[str]) -> np.ndarray:  # type: ignore[no-untyped-def]
    reply = client.embeddings.create(model=MINILM, input=texts)
    assert [d.index for d in reply.data] == list(range(len(texts)))
    return np.array([d.embedding for d in reply.data])


# sentence-transformers' own semantic-search example: each query and the one
# sentence of the corpus that means the same, among sentences that share its words.
CORPUS = ["A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby.",
          "A man is riding a horse.", "A woman is playing violin.", "Two men pushed carts through the woods.",
          "A man is riding a white horse on an enclosed ground.", "A monkey is playing drums.",
          "A cheetah is running behind its prey."]
QUERIES = {"A man is eating pasta.": "A man is eating food.",
           "Someone in a gorilla costume is playing a set of drums.": "A monkey is playing drums.",
           "A cheetah chases prey on across a field.": "A cheetah is running behind its prey.",
           "A woman plays the fiddle.": "A woman is playing violin."}


@pytest.mark.integration
@pytest.mark.slow
def test_minilm_ranks_the_sentence_that_means_the_same_first(minilm_served: Served, minilm) -> None:
    corpus = embed(minilm, CORPUS)
    queries = embed(minilm, list(QUERIES))
    assert corpus.shape == (len(CORPUS), 384) and queries.shape == (len(QUERIES), 384)
    assert np.allclose(np.linalg.norm(corpus, axis=1), 1, atol=1e-5)
    assert np.allclose(np.linalg.norm(queries, axis=1), 1, atol=1e-5)
    scores = queries @ corpus.T  # unit vectors: the dot product is the cosine
    for (query, expected), row in zip(QUERIES.items(), scores):
        ranked = [CORPUS[i] for i in np.argsort(-row)]
        assert ranked[0] == expected, (query, ranked[:3], np.sort(row)[::-1][:3])
    # Food before bread before the other things a man does (the example's order).
    pasta = dict(zip(CORPUS, scores[0]))
    assert pasta["A man is eating food."] > pasta["A man is eating a piece of bread."]
    assert pasta["A man is eating a piece of bread."] > max(
        v for k, v in pasta.items() if "eating" not in k)
    assert minilm_served.health()["model"] == MINILM


@pytest.mark.integration
@pytest.mark.slow
def test_minilm_vectors_are_what_the_model_computes(minilm) -> None:
    """llama.cpp's vectors against the same network in numpy on the original
    safetensors, fed token ids looked up in vocab.txt by hand: the conversion,
    WordPiece and mean pooling all have to be right."""
    import minilm_gguf

    texts = ["A man is eating food.", "A cat sits on the mat, and a dog sleeps.",
             "Where is the nearest train station?"]
    ids = [minilm_gguf.wordpiece(t) for t in texts]
    expected = np.array(minilm_gguf.reference(ids))
    reply = minilm.embeddings.create(model=MINILM, input=texts, encoding_format="float")
    got = np.array([d.embedding for d in reply.data])
    assert got.shape == (3, minilm_gguf.WIDTH)
    # The server read exactly those tokens: [CLS] ... [SEP], nothing else.
    assert reply.usage.prompt_tokens == sum(len(i) for i in ids)
    assert np.abs(got - expected).max() < 1e-3
    by_ids = embed(minilm, ids)  # type: ignore[arg-type]
    assert np.allclose(by_ids, got, atol=1e-5)


@pytest.mark.integration
@pytest.mark.slow
def test_minilm_a_batch_gives_the_vectors_of_one_at_a_time(minilm) -> None:
    texts = ["Hi.", "A man is eating a piece of bread.", CORPUS[6], "Two men pushed carts through the woods.",
             " ".join(CORPUS), "The girl is carrying a baby."]
    batch = embed(minilm, texts)  # base64 on the wire, as the SDK asks by default
    alone = np.array([embed(minilm, [t])[0] for t in texts])
    # Flash attention's float16 rounding ("auto", the default) depends on what shares
    # the decode: about 1e-4 apart, where exactly equal would ask too much.
    assert np.abs(batch - alone).max() < 5e-4
    # Far less than sentences differ from each other.
    assert min(np.linalg.norm(batch[i] - batch[j]) for i in range(6) for j in range(i)) > 0.1


@pytest.mark.integration
@pytest.mark.slow
def test_minilm_over_512_tokens_is_a_one_line_400(minilm_served: Served, minilm) -> None:
    import openai

    # [CLS] + n words + [SEP]: 512 tokens fit BERT's learned positions, 513 do not.
    fits = minilm.embeddings.create(model=MINILM, input="cat " * 510)
    assert fits.usage.prompt_tokens == 512 and len(fits.data[0].embedding) == 384
    with pytest.raises(openai.BadRequestError) as too_long:
        minilm.embeddings.create(model=MINILM, input=["A man is eating food.", "cat " * 511])
    err = too_long.value.body
    assert err["param"] == "input" and "\n" not in err["message"], err
    assert "input 1 is 513 tokens" in err["message"] and "at most 512" in err["message"]
    # Nothing was given up: the model stays loaded and answers the next request.
    assert minilm_served.proc.poll() is None and minilm_served.health()["model"] == MINILM
    assert len(embed(minilm, ["A man is eating food."])[0]) == 384
