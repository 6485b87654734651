"""Running the API: in the foreground (``rmm-tray serve``) or on a thread of the
tray. The socket is bound here, before uvicorn, so a port in use or an address
that does not exist is one line for the person, not uvicorn's log and exit."""

from __future__ import annotations

import errno
import logging
import socket
import threading
from typing import TYPE_CHECKING

from rmm_tray.server.settings import ServerError, ServerSettings, check_bind

if TYPE_CHECKING:
    import uvicorn

    from rmm_tray.app import App

log = logging.getLogger(__name__)

#: How long open streams get to finish when the server stops.
GRACE_S = 3


def bind(settings: ServerSettings) -> socket.socket:
    check_bind(settings)
    host = settings.host.strip("[]")
    try:
        infos = socket.getaddrinfo(host, settings.port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ServerError(f"cannot listen on {settings.host}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # A stream is many small writes: Nagle would hold each one behind the
        # previous one's ACK. Accepted connections inherit the option.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ServerError(f"port {settings.port} on {settings.host} is already in use (another "
                              "rmm-tray or server?); choose another with --port or [server] port"
                              ) from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise ServerError(f"no permission to listen on port {settings.port} (ports under 1024 "
                              "need privileges); choose another with --port or [server] port"
                              ) from None
        raise ServerError(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}") from None
    sock.setblocking(False)
    return sock


def _server(core: "App", settings: ServerSettings) -> "uvicorn.Server":
    import uvicorn

    from rmm_tray.server.app import build_app

    config = uvicorn.Config(build_app(core, settings), log_level="warning", access_log=False,
                            lifespan="off", timeout_graceful_shutdown=GRACE_S, server_header=False)
    return uvicorn.Server(config)


def serve(core: "App", settings: ServerSettings) -> None:
    """Serve until Ctrl+C / SIGTERM (uvicorn handles both)."""
    sock = bind(settings)
    server = _server(core, settings)
    server.run(sockets=[sock])


class ServerThread:
    """The API on a thread of a running app (the tray's Local API item)."""

    def __init__(self, core: "App", settings: ServerSettings) -> None:
        self.settings = settings
        self._sock = bind(settings)  # raises ServerError now, where the caller can show it
        self._server = _server(core, settings)
        self._thread = threading.Thread(target=self._run, name="rmm-api", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._sock])
        except Exception:
            log.exception("the local API stopped")

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = GRACE_S + 2) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        self._sock.close()
