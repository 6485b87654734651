"""OpenAI's /v1/chat/completions and /v1/completions: requests in, bodies and
stream chunks out, as the OpenAI reference and its SDK expect them."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rmm_tray.server import fields
from rmm_tray.server.engine_link import Job, resolve
from rmm_tray.server.errors import bad_request, unsupported

if TYPE_CHECKING:
    from rmm_tray.app import App
    from rmm_tray.engine import Done

#: Request field -> the engine's setting.
SAMPLING = {"temperature": "temperature", "top_p": "top_p", "top_k": "top_k", "min_p": "min_p",
            "repeat_penalty": "repeat_penalty"}
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
FINISH = {"stop": "stop", "length": "length", "cancelled": "stop"}


@dataclass
class Options:
    """How the client wants the reply."""

    stream: bool
    include_usage: bool
    id: str
    created: int


def _options(body: dict[str, Any], prefix: str) -> Options:
    stream = bool(fields.get(body, "stream", bool, False))
    stream_options = fields.get(body, "stream_options", dict, {})
    include_usage = fields.get(stream_options, "include_usage", bool, False)
    return Options(stream, bool(include_usage), f"{prefix}-{uuid.uuid4().hex[:24]}", int(time.time()))


def _refuse_common(body: dict[str, Any]) -> None:
    fields.refuse_if(body, "n", (1,), "more than one choice (n > 1)")
    fields.refuse_if(body, "best_of", (1,), "best_of > 1")
    fields.refuse_if(body, "logprobs", (False, 0), "logprobs")
    fields.refuse_if(body, "top_logprobs", (0,), "top_logprobs")
    fields.refuse_if(body, "logit_bias", lambda v: v == {}, "logit_bias")
    for name in ("presence_penalty", "frequency_penalty"):
        fields.refuse_if(body, name, (0, 0.0), f"a non-zero {name}")


def _params(core: "App", body: dict[str, Any], model: Any) -> Any:
    explicit = fields.sampling(body, SAMPLING)
    for name in ("max_completion_tokens", "max_tokens"):
        given = fields.sampling(body, {name: "max_tokens"})
        if given:
            explicit.update(given)
            break
    return core.gen_params(model, **explicit, seed=fields.seed(body),
                           stop=fields.stops(body.get("stop"), "stop"))


def chat_job(core: "App", body: dict[str, Any]) -> tuple[Job, Options]:
    _refuse_common(body)
    fields.refuse_if(body, "tools", lambda v: v == [], "tool calling (tools)")
    fields.refuse_if(body, "functions", lambda v: v == [], "function calling (functions)")
    fields.refuse_if(body, "tool_choice", ("none",), "tool_choice")
    fields.refuse_if(body, "function_call", ("none",), "function_call")
    fields.refuse_if(body, "response_format", lambda v: isinstance(v, dict) and v.get("type") == "text",
                     "a response_format other than text")
    fields.refuse_if(body, "audio", (), "audio output")
    fields.refuse_if(body, "modalities", lambda v: v == ["text"], "modalities other than text")
    raw = fields.get(body, "messages", list, required=True)
    if not raw:
        raise bad_request("messages must hold at least one message", param="messages")
    messages = []
    for i, m in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise bad_request(f"{where} must be an object", param="messages")
        role = m.get("role")
        if role in ("tool", "function"):
            raise unsupported(f"{where}.role", f"a {role!r} message (tool calling)")
        if role not in ROLES:
            raise bad_request(f"{where}.role must be one of system, developer, user, assistant; "
                              f"got {role!r}", param="messages")
        if m.get("tool_calls"):
            raise unsupported(f"{where}.tool_calls", "tool calling")
        messages.append({"role": ROLES[role], "content": fields.text_of(m.get("content"),
                                                                         f"{where}.content")})
    model = resolve(core, body.get("model"))
    job = Job(messages, _params(core, body, model), model, core.model_name(model))
    return job, _options(body, "chatcmpl")


def completion_job(core: "App", body: dict[str, Any]) -> tuple[Job, Options]:
    _refuse_common(body)
    fields.refuse_if(body, "echo", (False,), "echo")
    fields.refuse_if(body, "suffix", ("",), "suffix (fill in the middle)")
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
        raise unsupported("prompt", "more than one prompt in a request")
    if not isinstance(prompt, str):
        raise bad_request("prompt must be a string", param="prompt")
    if not prompt:
        raise bad_request("prompt must not be empty", param="prompt")
    model = resolve(core, body.get("model"))
    job = Job([{"role": "user", "content": prompt}], _params(core, body, model), model,
              core.model_name(model), raw=True)
    return job, _options(body, "cmpl")


def usage(done: "Done | None") -> dict[str, Any]:
    if done is None:
        return {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    return {"prompt_tokens": done.prompt_tokens, "completion_tokens": done.completion_tokens,
            "total_tokens": done.prompt_tokens + done.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": done.cached_tokens}}


def timings(done: "Done | None") -> dict[str, Any] | None:
    """The engine's own figures (an extension, as llama.cpp's server sends)."""
    if done is None:
        return None
    return {"ttft_s": done.ttft_s, "prompt_tok_s": done.prompt_tok_s,
            "decode_tok_s": done.decode_tok_s, "cached_tokens": done.cached_tokens}


def finish(done: "Done | None") -> str:
    return FINISH.get(done.stop_reason, "stop") if done is not None else "stop"


def chat_body(job: Job, opts: Options, text: str, done: "Done | None") -> dict[str, Any]:
    return {"id": opts.id, "object": "chat.completion", "created": opts.created,
            "model": job.model_name, "system_fingerprint": None,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "logprobs": None, "finish_reason": finish(done)}],
            "usage": usage(done), "timings": timings(done)}


def chat_chunk(job: Job, opts: Options, delta: dict[str, Any], finish_reason: str | None = None,
               ) -> dict[str, Any]:
    return {"id": opts.id, "object": "chat.completion.chunk", "created": opts.created,
            "model": job.model_name, "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}


def completion_body(job: Job, opts: Options, text: str, done: "Done | None") -> dict[str, Any]:
    return {"id": opts.id, "object": "text_completion", "created": opts.created,
            "model": job.model_name,
            "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish(done)}],
            "usage": usage(done), "timings": timings(done)}


def completion_chunk(job: Job, opts: Options, text: str, finish_reason: str | None = None,
                     ) -> dict[str, Any]:
    return {"id": opts.id, "object": "text_completion", "created": opts.created,
            "model": job.model_name,
            "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}]}


def usage_chunk(job: Job, opts: Options, done: "Done | None", kind: str) -> dict[str, Any]:
    return {"id": opts.id, "object": kind, "created": opts.created, "model": job.model_name,
            "choices": [], "usage": usage(done), "timings": timings(done)}
