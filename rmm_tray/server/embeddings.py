"""/v1/embeddings: which models can embed, and the input shapes clients send
(a string, a list of strings, token ids, lists of token ids: LangChain sends those)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rmm_tray.server.engine_link import resolve
from rmm_tray.server.errors import ApiError, bad_request

if TYPE_CHECKING:
    from rmm_tray.app import App

#: Encoder architectures llama.cpp pools into one vector (their GGUFs also carry
#: ``ARCH.pooling_type``, which is what is looked for first).
ENCODERS = ("bert", "nomic-bert", "nomic-bert-moe", "jina-bert-v2", "jina-bert-v3", "modern-bert",
            "t5encoder", "neo-bert")


def inputs(body: dict[str, Any]) -> list[str | list[int]]:
    value = body.get("input")
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        if all(isinstance(t, int) and not isinstance(t, bool) for t in value):
            return [value]
        if all(isinstance(s, str) for s in value):
            return list(value)
        if all(isinstance(x, list) and x and all(isinstance(t, int) and not isinstance(t, bool)
                                                 for t in x) for x in value):
            return list(value)
    raise bad_request("input must be a string, an array of strings, an array of token ids or "
                      "an array of arrays of token ids", param="input")


def can_embed(core: "App", path: Any) -> bool:
    from rmm_tray.models.store import read_header_or_error

    info, _ = read_header_or_error(path)
    if info is None:
        return False
    return info.arch_key("pooling_type") is not None or info.architecture in ENCODERS


def embeddings(core: "App", body: dict[str, Any]) -> dict[str, Any]:
    items = inputs(body)
    fmt = body.get("encoding_format", "float")
    if fmt not in (None, "float"):
        raise bad_request("encoding_format must be \"float\"", param="encoding_format")
    path = resolve(core, body.get("model"))
    name = core.model_name(path)
    if not can_embed(core, path):
        raise bad_request(f"model {name!r} cannot make embeddings: it is a text-generation model; "
                          "import an embedding model (such as nomic-embed-text) and name it",
                          param="model", code="model_not_embedding")
    raise ApiError(501, f"embeddings from {name!r} ({len(items)} inputs) are not served yet: "
                        "this server runs text-generation models only", code="not_implemented")
