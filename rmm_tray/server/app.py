"""The ASGI app: routes, the API key, the body limit, CORS, and errors as JSON."""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from rmm_tray.errors import RmmError, describe, report
from rmm_tray.server import anthropic_api, fields, openai_api
from rmm_tray.server.engine_link import ChatRecorder, Gate, Generation
from rmm_tray.server.errors import ApiError
from rmm_tray.server.settings import ServerSettings

if TYPE_CHECKING:
    from rmm_tray.app import App

log = logging.getLogger(__name__)

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
Handler = Callable[[Request], Awaitable[Response]]


def _anthropic(request: Request) -> bool:
    return request.url.path.startswith("/v1/messages")


def error_response(request: Request, err: ApiError) -> JSONResponse:
    body = err.anthropic_body() if _anthropic(request) else err.openai_body()
    return JSONResponse(body, status_code=err.status, headers=err.headers)


def sse(data: Any, event: str | None = None) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return (f"event: {event}\n" if event else "").encode() + f"data: {text}\n\n".encode("utf-8")


class Api:
    """The routes, over one app (its engine, models and history)."""

    def __init__(self, core: "App", settings: ServerSettings) -> None:
        self.core = core
        self.settings = settings
        self.gate = Gate(settings.max_waiting)
        self.recorder = ChatRecorder(core) if settings.save_chats else None
        self.finished: deque[dict[str, Any]] = deque(maxlen=16)
        self._key = settings.api_key.encode("utf-8")

    # -- around every request -------------------------------------------------

    def _authorized(self, request: Request) -> bool:
        if not self._key:
            return True
        given = request.headers.get("x-api-key", "")
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            given = token.strip()
        return hmac.compare_digest(given.encode("utf-8", "replace"), self._key)

    async def body(self, request: Request) -> dict[str, Any]:
        limit = self.settings.max_body_bytes
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            raise fields.too_large(limit)
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > limit:
                raise fields.too_large(limit)
        return fields.parse_json(bytes(data))

    def endpoint(self, handler: Handler) -> Handler:
        async def run(request: Request) -> Response:
            try:
                if not self._authorized(request):
                    raise ApiError(401, "missing or wrong API key (send Authorization: Bearer KEY)",
                                   code="invalid_api_key")
                return await handler(request)
            except ApiError as err:
                return error_response(request, err)
            except RmmError as exc:  # a request the app refused, in its own words
                return error_response(request, ApiError(400, describe(exc)))
            except Exception as exc:  # the edge: one line to the client, the traceback to the log
                line = report(log, f"API {request.url.path}", exc)
                return error_response(request, ApiError(500, line))
        return run

    # -- routes ---------------------------------------------------------------

    async def models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": self._model_list()})

    async def model(self, request: Request) -> Response:
        name = request.path_params["name"]
        for entry in self._model_list():
            if entry["id"] == name:
                return JSONResponse(entry)
        raise ApiError(404, f"model {name!r} does not exist", param="model", code="model_not_found")

    def _model_list(self) -> list[dict[str, Any]]:
        from rmm_tray.models.store import list_models

        loaded = self.core.loaded
        out = []
        for m in list_models(self.core.home.models):
            if m.error is not None:
                continue
            try:
                created = int(m.path.stat().st_mtime)
            except OSError:
                created = 0
            out.append({"id": m.name, "object": "model", "created": created, "owned_by": "local",
                        "loaded": loaded is not None and loaded.path == m.path,
                        "size": m.size, "architecture": m.info.architecture if m.info else None,
                        "context_length": m.info.context_length if m.info else None})
        return out

    async def chat_completions(self, request: Request) -> Response:
        job, opts = openai_api.chat_job(self.core, await self.body(request))
        gen = Generation(self.core, job, self.gate, self.recorder, self.finished)
        if not opts.stream:
            reply = await self._whole(request, gen)
            return JSONResponse(openai_api.chat_body(job, opts, reply.text, reply.done))

        async def events() -> AsyncIterator[bytes]:
            yield sse(openai_api.chat_chunk(job, opts, {"role": "assistant", "content": ""}))
            async for batch in gen.batches():
                for text in _texts(batch):
                    yield sse(openai_api.chat_chunk(job, opts, {"content": text}))
            if gen.reply.error is not None:
                yield sse(_stream_error(gen.reply.error))
            else:
                yield sse(openai_api.chat_chunk(job, opts, {}, openai_api.finish(gen.reply.done)))
                if opts.include_usage:
                    yield sse(openai_api.usage_chunk(job, opts, gen.reply.done, "chat.completion.chunk"))
            yield sse("[DONE]")

        return StreamingResponse(events(), media_type="text/event-stream", headers=SSE_HEADERS)

    async def completions(self, request: Request) -> Response:
        job, opts = openai_api.completion_job(self.core, await self.body(request))
        gen = Generation(self.core, job, self.gate, self.recorder, self.finished)
        if not opts.stream:
            reply = await self._whole(request, gen)
            return JSONResponse(openai_api.completion_body(job, opts, reply.text, reply.done))

        async def events() -> AsyncIterator[bytes]:
            async for batch in gen.batches():
                for text in _texts(batch):
                    yield sse(openai_api.completion_chunk(job, opts, text))
            if gen.reply.error is not None:
                yield sse(_stream_error(gen.reply.error))
            else:
                yield sse(openai_api.completion_chunk(job, opts, "", openai_api.finish(gen.reply.done)))
                if opts.include_usage:
                    yield sse(openai_api.usage_chunk(job, opts, gen.reply.done, "text_completion"))
            yield sse("[DONE]")

        return StreamingResponse(events(), media_type="text/event-stream", headers=SSE_HEADERS)

    async def messages(self, request: Request) -> Response:
        job, stream, msg_id = anthropic_api.message_job(self.core, await self.body(request))
        gen = Generation(self.core, job, self.gate, self.recorder, self.finished)
        if not stream:
            reply = await self._whole(request, gen)
            return JSONResponse(anthropic_api.message_body(job, msg_id, reply.text, reply.done))

        async def events() -> AsyncIterator[bytes]:
            for name, data in anthropic_api.start_events(job, msg_id):
                yield sse(data, name)
            async for batch in gen.batches():
                for text in _texts(batch):
                    name, data = anthropic_api.delta_event(text)
                    yield sse(data, name)
            if gen.reply.error is not None:
                err = ApiError(500, gen.reply.error).anthropic_body()
                yield sse(err, "error")
                return
            for name, data in anthropic_api.end_events(gen.reply.done):
                yield sse(data, name)

        return StreamingResponse(events(), media_type="text/event-stream", headers=SSE_HEADERS)

    async def embeddings(self, request: Request) -> Response:
        from rmm_tray.server import embeddings

        job = embeddings.embed_job(self.core, await self.body(request))
        result = await embeddings.compute(self.core, job, self.gate)
        return JSONResponse(embeddings.embeddings_body(job, result))

    async def health(self, request: Request) -> Response:
        status = self.core.engine_status()
        return JSONResponse({"status": "ok", "engine": status.state,
                             "model": self.core.loaded.name if self.core.loaded else None,
                             "waiting": max(0, self.gate.active - 1), "time": int(time.time()),
                             "recent": list(self.finished)})

    async def _whole(self, request: Request, gen: Generation) -> Any:
        """The whole reply; a client that hangs up meanwhile cancels it."""
        import anyio

        async def watch() -> None:
            while (await request.receive())["type"] != "http.disconnect":
                pass
            gen.stream.cancel()

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(watch)
            reply = await gen.collect()
            tasks.cancel_scope.cancel()
        if reply.error is not None:
            raise ApiError(500, reply.error, code="engine_error")
        return reply


def _texts(batch: list[Any]) -> list[str]:
    from rmm_tray.engine import Token

    return [e.text for e in batch if isinstance(e, Token) and e.text]


def _stream_error(message: str) -> dict[str, Any]:
    return ApiError(500, message, code="engine_error").openai_body()


def build_app(core: "App", settings: ServerSettings) -> Starlette:
    api = Api(core, settings)
    e = api.endpoint
    routes = [
        Route("/v1/models", e(api.models), methods=["GET"]),
        Route("/v1/models/{name:path}", e(api.model), methods=["GET"]),
        Route("/v1/chat/completions", e(api.chat_completions), methods=["POST"]),
        Route("/v1/completions", e(api.completions), methods=["POST"]),
        Route("/v1/embeddings", e(api.embeddings), methods=["POST"]),
        Route("/v1/messages", e(api.messages), methods=["POST"]),
        Route("/health", e(api.health), methods=["GET"]),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        what = {404: f"no such endpoint: {request.method} {request.url.path}",
                405: f"{request.method} is not allowed on {request.url.path}"}.get(status, "error")
        return error_response(request, ApiError(status, what))

    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error})
    if settings.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                           allow_methods=["GET", "POST", "OPTIONS"],
                           allow_headers=["authorization", "content-type", "x-api-key",
                                          "anthropic-version"])
    app.state.api = api
    return app
