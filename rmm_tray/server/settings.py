"""The [server] table as the server uses it, and the rule about where it may listen."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from rmm_tray.errors import RmmError

#: Seconds a client is told to wait when the queue is full.
RETRY_AFTER_S = 2


class ServerError(RmmError):
    """The server cannot start (an address it may not use, a port in use); one line."""


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8765
    api_key: str = ""
    cors_origins: tuple[str, ...] = ()
    save_chats: bool = False
    max_body_bytes: int = 8 << 20
    max_waiting: int = 16

    @classmethod
    def from_config(cls, table: dict[str, Any], *, host: str | None = None,
                    port: int | None = None) -> "ServerSettings":
        """The [server] table (already checked by the config loader); a flag wins."""
        return cls(
            host=host if host is not None else str(table["host"]),
            port=int(port if port is not None else table["port"]),
            api_key=str(table["api_key"]),
            cors_origins=tuple(table["cors_origins"]),
            save_chats=bool(table["save_chats"]),
            max_body_bytes=int(table["max_body_bytes"]),
            max_waiting=int(table["max_waiting"]),
        )

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_bind(settings: ServerSettings) -> None:
    """Anything but loopback is reachable from other machines: only with a key."""
    if not is_loopback(settings.host) and not settings.api_key:
        raise ServerError(
            f"refusing to listen on {settings.host} without an API key: other machines could "
            "use the model; set [server] api_key in config.toml, or listen on 127.0.0.1")
