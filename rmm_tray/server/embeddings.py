"""/v1/embeddings: which models can embed, the input shapes clients send (a
string, a list of strings, token ids, lists of token ids: LangChain sends those),
and OpenAI's reply body, floats or base64 (the openai SDK asks for base64 unless
told otherwise).

The vectors come from the engine queue (``Engine.embed``), behind the same
queue bound as chat requests; nothing here touches a model.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rmm_tray.server import fields
from rmm_tray.server.engine_link import Gate, resolve
from rmm_tray.server.errors import ApiError, bad_request, unsupported

if TYPE_CHECKING:
    from rmm_tray.app import App
    from rmm_tray.engine.embed import Embeddings

FORMATS = ("float", "base64")
#: More inputs than this in one request is refused (OpenAI's own limit).
MAX_INPUTS = 2048


@dataclass(frozen=True)
class EmbedJob:
    items: list[str | list[int]]
    model: Path
    model_name: str
    encoding_format: str


def _token_ids(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(
        isinstance(t, int) and not isinstance(t, bool) for t in value)


def inputs(body: dict[str, Any]) -> list[str | list[int]]:
    value = body.get("input")
    items: list[str | list[int]] | None = None
    if isinstance(value, str):
        items = [value]
    elif _token_ids(value):
        items = [value]
    elif isinstance(value, list) and value:
        if all(isinstance(s, str) for s in value):
            items = list(value)
        elif all(_token_ids(x) for x in value):
            items = list(value)
    if items is None:
        raise bad_request("input must be a string, an array of strings, an array of token ids or "
                          "an array of arrays of token ids", param="input")
    if len(items) > MAX_INPUTS:
        raise bad_request(f"input may hold at most {MAX_INPUTS} items, got {len(items)}", param="input")
    return items


def embed_job(core: "App", body: dict[str, Any]) -> EmbedJob:
    """The request, checked; a model that cannot embed is refused before queuing."""
    from rmm_tray.engine.embed import is_encoder
    from rmm_tray.models.store import read_header_or_error

    items = inputs(body)
    fmt = fields.get(body, "encoding_format", str, "float")
    if fmt not in FORMATS:
        raise bad_request('encoding_format must be "float" or "base64"', param="encoding_format")
    fields.get(body, "user", str)  # a tag for the client's own records; nothing to do with it here
    path = resolve(core, body.get("model"))
    name = core.model_name(path)
    info, _ = read_header_or_error(path)  # unreadable: the engine says why, as for a chat
    if info is not None and not is_encoder(info):
        raise bad_request(f"model {name!r} cannot make embeddings: it is a text-generation model; "
                          "import an embedding model (such as nomic-embed-text) and name it",
                          param="model", code="model_not_embedding")
    dimensions = fields.get(body, "dimensions", int)
    width = info.arch_key("embedding_length") if info is not None else None
    if dimensions is not None and dimensions != width:
        # Cutting a vector short is only meaningful for models trained for it (Matryoshka).
        raise unsupported("dimensions", f"a width other than {name}'s own ({width})")
    return EmbedJob(items, path, name, fmt)


async def compute(core: "App", job: EmbedJob, gate: Gate) -> "Embeddings":
    """The vectors, from the engine queue; the request holds its place in the
    queue bound until the engine is done with it (or skipped it)."""
    from rmm_tray.engine.embed import EmbedInputError
    from rmm_tray.engine.types import EngineError

    gate.enter()
    try:
        future = core.engine.embed(job.items, model=job.model)
    except BaseException:
        gate.leave()
        raise
    future.add_done_callback(lambda _: gate.leave())
    try:
        # A client that hangs up cancels the await, and with it a job not yet started.
        return await asyncio.wrap_future(future)
    except EmbedInputError as exc:
        raise bad_request(str(exc), param="input", code="invalid_input") from None
    except EngineError as exc:
        raise ApiError(500, str(exc), code="engine_error") from None


def _encoded(vector: list[float], fmt: str) -> list[float] | str:
    if fmt == "float":
        return vector
    import numpy as np

    # What the SDK decodes: the float32s' bytes, little-endian, in base64.
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def embeddings_body(job: EmbedJob, result: "Embeddings") -> dict[str, Any]:
    return {"object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": _encoded(v, job.encoding_format)}
                     for i, v in enumerate(result.vectors)],
            "model": job.model_name,
            "usage": {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens}}
