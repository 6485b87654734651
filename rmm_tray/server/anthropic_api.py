"""Anthropic's Messages API (/v1/messages): requests in, the message object and
its stream events (message_start, content_block_delta, ..., message_stop) out."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from rmm_tray.server import fields
from rmm_tray.server.engine_link import Job, resolve
from rmm_tray.server.errors import bad_request, unsupported

if TYPE_CHECKING:
    from rmm_tray.app import App
    from rmm_tray.engine import Done

SAMPLING = {"temperature": "temperature", "top_p": "top_p", "top_k": "top_k"}
STOP = {"stop": "end_turn", "length": "max_tokens", "cancelled": "end_turn"}


def message_job(core: "App", body: dict[str, Any]) -> tuple[Job, bool, str]:
    """The job, whether to stream, and the message id."""
    fields.refuse_if(body, "tools", lambda v: v == [], "tool use (tools)")
    fields.refuse_if(body, "tool_choice", lambda v: isinstance(v, dict) and v.get("type") == "none",
                     "tool_choice")
    fields.refuse_if(body, "thinking", lambda v: isinstance(v, dict) and v.get("type") == "disabled",
                     "extended thinking")
    max_tokens = fields.get(body, "max_tokens", int, required=True)
    raw = fields.get(body, "messages", list, required=True)
    if not raw:
        raise bad_request("messages must hold at least one message", param="messages")
    messages = []
    system = fields.text_of(body.get("system"), "system")
    if system:
        messages.append({"role": "system", "content": system})
    for i, m in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise bad_request(f"{where} must be an object", param="messages")
        role = m.get("role")
        if role not in ("user", "assistant"):
            raise bad_request(f"{where}.role must be user or assistant, got {role!r}", param="messages")
        content = m.get("content")
        if isinstance(content, list):
            for j, part in enumerate(content):
                kind = part.get("type") if isinstance(part, dict) else None
                if kind in ("tool_use", "tool_result"):
                    raise unsupported(f"{where}.content[{j}]", "tool use")
        messages.append({"role": role, "content": fields.text_of(content, f"{where}.content")})
    model = resolve(core, body.get("model"))
    explicit = fields.sampling(body, SAMPLING)
    explicit.update(fields.sampling({"max_tokens": max_tokens}, {"max_tokens": "max_tokens"}))
    params = core.gen_params(model, **explicit,
                             stop=fields.stops(body.get("stop_sequences"), "stop_sequences"))
    stream = bool(fields.get(body, "stream", bool, False))
    return (Job(messages, params, model, core.model_name(model)), stream,
            f"msg_{uuid.uuid4().hex[:24]}")


def _usage(done: "Done | None") -> dict[str, Any]:
    if done is None:
        return {"input_tokens": 0, "output_tokens": 0}
    return {"input_tokens": done.prompt_tokens - done.cached_tokens,
            "cache_read_input_tokens": done.cached_tokens, "cache_creation_input_tokens": 0,
            "output_tokens": done.completion_tokens}


def stop_reason(done: "Done | None") -> str:
    return STOP.get(done.stop_reason, "end_turn") if done is not None else "end_turn"


def message_body(job: Job, msg_id: str, text: str, done: "Done | None") -> dict[str, Any]:
    return {"id": msg_id, "type": "message", "role": "assistant", "model": job.model_name,
            "content": [{"type": "text", "text": text}], "stop_reason": stop_reason(done),
            "stop_sequence": None, "usage": _usage(done)}


def start_events(job: Job, msg_id: str) -> list[tuple[str, dict[str, Any]]]:
    message = {"id": msg_id, "type": "message", "role": "assistant", "model": job.model_name,
               "content": [], "stop_reason": None, "stop_sequence": None,
               "usage": {"input_tokens": 0, "output_tokens": 0}}
    return [("message_start", {"type": "message_start", "message": message}),
            ("content_block_start", {"type": "content_block_start", "index": 0,
                                     "content_block": {"type": "text", "text": ""}})]


def delta_event(text: str) -> tuple[str, dict[str, Any]]:
    return ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                    "delta": {"type": "text_delta", "text": text}})


def end_events(done: "Done | None") -> list[tuple[str, dict[str, Any]]]:
    return [("content_block_stop", {"type": "content_block_stop", "index": 0}),
            ("message_delta", {"type": "message_delta",
                               "delta": {"stop_reason": stop_reason(done), "stop_sequence": None},
                               "usage": _usage(done)}),
            ("message_stop", {"type": "message_stop"})]
