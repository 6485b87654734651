"""The one local endpoint of a running app: popup process, `rmm-tray toggle|show|hide`
and CLI commands talk to it. Holding it is also the single-instance lock.

A Unix socket (a named pipe on Windows) in a private runtime folder, and an
authkey only the same user can read: multiprocessing.connection refuses a
client without it before any message is read.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import stat
import sys
import tempfile
import threading
from collections.abc import Callable
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path
from typing import Any

from rmm_tray.errors import RmmError

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Connection], Any]


class IPCError(RmmError, RuntimeError):
    pass


class NotRunning(IPCError):
    pass


def runtime_dir() -> Path:
    """A folder only this user can enter."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    root = Path(base) if base and Path(base).is_dir() else Path(tempfile.gettempdir())
    path = root / f"rmm-tray-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
    path.mkdir(mode=0o700, exist_ok=True)
    info = path.stat()
    if hasattr(os, "getuid") and (info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077):
        raise IPCError(f"{path} is not private to this user; remove it and start again")
    return path


def _instance_name(home: Path) -> str:
    # One app per data home: tests and people with two homes can run two.
    return hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:16]


def address_for(home: Path) -> str:
    name = _instance_name(home)
    if sys.platform == "win32":
        return rf"\\.\pipe\rmm-tray-{name}"
    return str(runtime_dir() / f"{name}.sock")


def key_path(home: Path) -> Path:
    return runtime_dir() / f"{_instance_name(home)}.key"


def read_key(home: Path) -> bytes:
    try:
        return key_path(home).read_bytes()
    except FileNotFoundError:
        raise NotRunning("RunMyModel is not running") from None


def request(home: Path, message: dict[str, Any], timeout: float = 5.0) -> Any:
    """Send one message to the running app and return its answer."""
    address = address_for(home)
    if sys.platform != "win32" and not Path(address).exists():
        raise NotRunning("RunMyModel is not running")
    try:
        conn = Client(address, family=family(), authkey=read_key(home))
    except (FileNotFoundError, ConnectionRefusedError):
        raise NotRunning("RunMyModel is not running") from None
    with conn:
        conn.send(message)
        if not conn.poll(timeout):
            raise IPCError("RunMyModel did not answer")
        reply = conn.recv()
    if isinstance(reply, dict) and reply.get("error"):
        raise IPCError(reply["error"])
    return reply


def family() -> str:
    return "AF_PIPE" if sys.platform == "win32" else "AF_UNIX"


class Server:
    """Accepts connections on a thread; each connection gets its own thread, so
    the popup's long-lived link and one-shot commands do not wait for each other."""

    def __init__(self, home: Path, handler: Handler) -> None:
        self.home = home
        self.handler = handler
        self.address = address_for(home)
        self._listener: Listener | None = None
        self._stop = threading.Event()

    def start(self) -> "Server":
        """Take the endpoint; raise AlreadyRunning when another app holds it."""
        if sys.platform != "win32" and Path(self.address).exists():
            try:
                request(self.home, {"cmd": "ping"}, timeout=2)
            except (IPCError, OSError, EOFError):
                Path(self.address).unlink(missing_ok=True)  # left by a crashed app
            else:
                raise AlreadyRunning("RunMyModel is already running")
        key = secrets.token_bytes(32)
        path = key_path(self.home)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
        self._listener = Listener(self.address, family=family(), authkey=key)
        threading.Thread(target=self._accept, name="rmm-ipc", daemon=True).start()
        return self

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                conn = self._listener.accept()
            except Exception as exc:  # a client with a wrong key lands here
                if self._stop.is_set():
                    return
                log.warning("IPC connection refused: %s", exc)
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: Connection) -> None:
        with conn:
            while not self._stop.is_set():
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    return
                try:
                    reply = self.handler(message, conn)
                except Exception as exc:
                    log.exception("IPC request failed: %r", message)
                    reply = {"error": str(exc) or type(exc).__name__}
                if reply is not None:
                    try:
                        conn.send(reply)
                    except OSError:
                        return

    def close(self) -> None:
        self._stop.set()
        if self._listener is not None:
            try:
                self._listener.close()
            except OSError:
                pass
        if sys.platform != "win32":
            Path(self.address).unlink(missing_ok=True)
        key_path(self.home).unlink(missing_ok=True)


class AlreadyRunning(IPCError):
    pass
