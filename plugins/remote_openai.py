"""Remote engines: any OpenAI-compatible server (llama.cpp's llama-server, vLLM,
Ollama, LM Studio, another rmm-tray serve) as a source of replies.

Servers come from config.toml's ``[[remote]]`` tables (``name``, ``base_url``,
and ``api_key_env`` or a key kept in the OS keyring, else ``api_key`` in
config.toml, which is then made private to its owner). Their models are named
``NAME:MODEL``. Written against the public plugin API only.

Every failure is one line naming the server: unreachable, TLS, a refused key, a
model gone, a stream cut off mid-reply, a reply that is not an event stream.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from rmm_tray import ChatEngine, EngineError, EngineUsage, hookimpl

log = logging.getLogger(__name__)

KEYRING_SERVICE = "rmm-tray"
#: Connecting is quick or it is not going to work; a big model may think a while
#: before its first token.
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 300.0


def _httpx() -> Any:
    # huggingface_hub brings httpx2 (the httpx API); plain httpx where it is older.
    try:
        import httpx2 as httpx
    except ImportError:  # pragma: no cover - depends on huggingface_hub's version
        import httpx  # type: ignore[no-redef]
    return httpx


class RemoteError(EngineError):
    """One line about a remote server, for the person."""


def api_base(url: str) -> str:
    """The server's OpenAI base: ``http://host:8080`` and ``http://host:8080/v1``
    both mean ``http://host:8080/v1``; a URL with another path is taken as given."""
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise RemoteError(f"'{url}' is not an http:// or https:// URL")
    return url if parts.path else url + "/v1"


@lru_cache(maxsize=None)
def keyring_get(name: str) -> str | None:
    """The key stored for server ``name`` in the OS keyring (None: none, or no
    keyring). Asked once per process: every request needs it, and a keyring
    may be a D-Bus round trip away."""
    try:
        import keyring

        return keyring.get_password(KEYRING_SERVICE, name)
    except Exception:  # noqa: BLE001 - no keyring module or no backend: not an error
        return None


def keyring_set(name: str, key: str) -> bool:
    """Store the key in the OS keyring; False where there is none to use."""
    try:
        import keyring

        keyring.set_password(KEYRING_SERVICE, name, key)
        return keyring.get_password(KEYRING_SERVICE, name) == key
    except Exception:  # noqa: BLE001
        return False


def keyring_delete(name: str) -> None:
    try:
        import keyring

        keyring.delete_password(KEYRING_SERVICE, name)
    except Exception:  # noqa: BLE001
        pass


@dataclass(frozen=True)
class RemoteServer:
    name: str
    base_url: str
    api_key_env: str = ""
    #: A key written into config.toml (where no keyring was available).
    api_key: str = ""

    def key(self) -> str:
        if self.api_key_env:
            return os.environ.get(self.api_key_env, "")
        return self.api_key or keyring_get(self.name) or ""

    def key_source(self) -> str:
        """Where the key comes from, for `remote list` (never the key itself)."""
        if self.api_key_env:
            return f"${self.api_key_env}" + ("" if os.environ.get(self.api_key_env) else " (not set)")
        if self.api_key:
            return "config.toml"
        return "keyring" if keyring_get(self.name) else "none"


def servers_from_config(tables: Any) -> list[RemoteServer]:
    """The ``[[remote]]`` tables; raises RemoteError naming the first bad one."""
    if tables is None:
        return []
    if not isinstance(tables, list):
        raise RemoteError("config.toml: remote must be [[remote]] tables")
    out: list[RemoteServer] = []
    for i, table in enumerate(tables, 1):
        if not isinstance(table, dict):
            raise RemoteError(f"config.toml: [[remote]] number {i} is not a table")
        name, url = table.get("name"), table.get("base_url")
        if not isinstance(name, str) or not valid_name(name):
            raise RemoteError(f"config.toml: [[remote]] number {i} needs a name of letters, digits, "
                              f"'-', '_' or '.', got {name!r}")
        if not isinstance(url, str):
            raise RemoteError(f"config.toml: [[remote]] '{name}' needs base_url = \"http://…\"")
        api_base(url)
        env, key = table.get("api_key_env", ""), table.get("api_key", "")
        if not isinstance(env, str) or not isinstance(key, str):
            raise RemoteError(f"config.toml: [[remote]] '{name}': api_key_env and api_key are text")
        out.append(RemoteServer(name, url, env, key))
    return out


def valid_name(name: str) -> bool:
    return bool(name) and all(c.isalnum() or c in "-_." for c in name)


class OpenAIRemote(ChatEngine):
    def __init__(self, server: RemoteServer) -> None:
        self.server = server
        self.name = server.name
        self.label = f"{server.name} ({urlsplit(server.base_url).netloc})"
        self.base = api_base(server.base_url)

    def _headers(self) -> dict[str, str]:
        key = self.server.key()
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _fail(self, exc: Exception, model: str = "") -> RemoteError:
        """One line for what httpx raised."""
        httpx = _httpx()
        where = f"{self.name}: "
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, httpx.ConnectError) or isinstance(exc, httpx.ConnectTimeout):
            if "ssl" in text.lower() or "certificate" in text.lower() or "tls" in text.lower():
                return RemoteError(f"{where}TLS failed for {self.base}: {text}")
            return RemoteError(f"{where}cannot reach {self.base}: {text}")
        if isinstance(exc, httpx.TimeoutException):
            return RemoteError(f"{where}{self.base} did not answer in time")
        return RemoteError(f"{where}{type(exc).__name__}: {text}")

    def _status(self, response: Any, model: str = "") -> RemoteError:
        code = response.status_code
        try:
            response.read()
            body = response.json()
            detail = body.get("error", body) if isinstance(body, dict) else body
            if isinstance(detail, dict):
                detail = detail.get("message") or detail
            detail = " ".join(str(detail).split())[:160]
        except Exception:  # noqa: BLE001 - any body at all: the code says enough
            detail = ""
        detail = f": {detail}" if detail else ""
        if code in (401, 403):
            if self.server.api_key_env:
                return RemoteError(f"{self.name}: the server refused the API key (HTTP {code}); "
                                   f"check ${self.server.api_key_env}")
            if not self.server.key():
                return RemoteError(f"{self.name}: the server wants an API key (HTTP {code})")
            return RemoteError(f"{self.name}: the server refused the API key (HTTP {code})")
        if code == 404 and model:
            return RemoteError(f"{self.name}: the server has no model '{model}' (HTTP 404{detail}); "
                               f"see 'rmm-tray models list --all'")
        return RemoteError(f"{self.name}: HTTP {code} from {self.base}{detail}")

    def models(self) -> list[str]:
        httpx = _httpx()
        try:
            response = httpx.get(self.base + "/models", headers=self._headers(),
                                 timeout=httpx.Timeout(CONNECT_TIMEOUT_S))
        except httpx.HTTPError as exc:
            raise self._fail(exc) from None
        if response.status_code != 200:
            raise self._status(response)
        try:
            data = response.json()["data"]
            return [str(m["id"]) for m in data]
        except (ValueError, KeyError, TypeError):
            raise RemoteError(f"{self.name}: {self.base}/models is not an OpenAI model list") from None

    def stream(self, messages: Sequence[dict[str, str]], params: Any, *, model: str,
               cancelled: threading.Event) -> Iterator[str | EngineUsage]:
        httpx = _httpx()
        body: dict[str, Any] = {
            "model": model, "messages": list(messages), "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": params.max_tokens, "temperature": params.temperature,
            "top_p": params.top_p,
        }
        if params.seed is not None:
            body["seed"] = params.seed
        if params.stop:
            body["stop"] = list(params.stop)
        timeout = httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
        said = False
        try:
            with httpx.stream("POST", self.base + "/chat/completions", json=body,
                              headers=self._headers(), timeout=timeout) as response:
                if response.status_code != 200:
                    raise self._status(response, model)
                kind = response.headers.get("content-type", "")
                if kind.startswith("application/json"):
                    # A server that ignores "stream": the whole reply at once.
                    response.read()
                    yield from _whole_reply(self.name, response.text)
                    return
                done = False
                for item in _sse_events(self.name, response.iter_lines()):
                    if cancelled.is_set():
                        return
                    if item is None:
                        done = True
                        break
                    said = said or isinstance(item, str)
                    yield item
                if not done:
                    raise RemoteError(f"{self.name}: the stream stopped mid-reply"
                                      + ("; the partial reply is kept" if said else ""))
        except httpx.HTTPError as exc:
            if cancelled.is_set():
                return
            if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)):
                raise RemoteError(f"{self.name}: the stream stopped mid-reply ({_first_line(exc)})"
                                  + ("; the partial reply is kept" if said else "")) from None
            raise self._fail(exc, model) from None


def _first_line(exc: Exception) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def _garbage(name: str, line: str) -> RemoteError:
    return RemoteError(f"{name}: the server's reply is not an OpenAI event stream "
                       f"(it began {line[:40]!r})")


def _sse_events(name: str, lines: Iterator[str]) -> Iterator[str | EngineUsage | None]:
    """Text pieces from SSE lines, then the usage (and why the reply ended) and
    None at ``data: [DONE]``."""
    usage: dict[str, Any] = {}
    finish = ""
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if field in ("event", "id", "retry"):
            continue
        if field != "data":
            raise _garbage(name, line)
        value = value.strip()
        if value == "[DONE]":
            details = usage.get("prompt_tokens_details") or {}
            yield EngineUsage(int(usage.get("prompt_tokens") or 0),
                              int(usage.get("completion_tokens") or 0),
                              int(details.get("cached_tokens") or 0), finish)
            yield None
            return
        try:
            chunk = json.loads(value)
        except ValueError:
            raise _garbage(name, line) from None
        if not isinstance(chunk, dict):
            raise _garbage(name, line)
        if "error" in chunk:
            err = chunk["error"]
            message = err.get("message", err) if isinstance(err, dict) else err
            raise RemoteError(f"{name}: the server stopped: {' '.join(str(message).split())[:160]}")
        for choice in chunk.get("choices") or []:
            piece = (choice.get("delta") or {}).get("content")
            if isinstance(piece, str) and piece:
                yield piece
            finish = choice.get("finish_reason") or finish
        if isinstance(chunk.get("usage"), dict):
            usage = chunk["usage"]


def _whole_reply(name: str, text: str) -> Iterator[str | EngineUsage]:
    try:
        body = json.loads(text)
        content = body["choices"][0]["message"]["content"] or ""
    except (ValueError, KeyError, IndexError, TypeError):
        raise _garbage(name, text) from None
    yield content
    usage = body.get("usage") or {}
    yield EngineUsage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0),
                      stop_reason=str(body["choices"][0].get("finish_reason") or ""))


@hookimpl
def register_engines(register: Any, app: Any) -> None:
    try:
        servers = servers_from_config(app.config.get("remote"))
    except RemoteError as exc:
        # One bad table: said once, and the local model stays usable.
        log.warning("%s", exc)
        return
    for server in servers:
        register(OpenAIRemote(server))
