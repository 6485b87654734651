"""The one local endpoint of a running app: popup process, `rmm-tray toggle|show|hide`
and CLI commands talk to it. Holding it is also the single-instance lock.

A Unix socket (a named pipe on Windows) in a private runtime folder, and an
authkey only the same user can read: multiprocessing.connection's challenge
refuses a client without it before any message is read.

Nothing here trusts the peer to be quick or well-behaved:

- The server accepts the raw connection and does the handshake on that
  connection's own thread, with a time limit, so a client that connects and says
  nothing holds up only itself (``Listener.accept`` with an authkey would do it on
  the accepting thread and block every other client).
- Every client step (connect, handshake, reply) has a time limit and fails with
  one line: a stopped (SIGSTOP) app does not hang ``rmm-tray toggle``.
- Messages are JSON bytes with a size limit, on both sides (`send_json`,
  `recv_json`), never pickles: ``Connection.recv()`` unpickles, so an
  authenticated peer could run code in the other process.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import socket
import stat
import struct
import sys
import tempfile
import threading
from collections.abc import Callable
from multiprocessing import AuthenticationError
from multiprocessing.connection import (
    Client,
    Connection,
    Listener,
    answer_challenge,
    deliver_challenge,
)
from pathlib import Path
from typing import Any

from rmm_tray.errors import RmmError

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Connection], Any]

#: The largest message either side reads. A page event (a long chat's rendered
#: history) is the biggest legitimate one by far.
MAX_MESSAGE_BYTES = 16 << 20
#: A connecting client must pass the handshake and say what it wants within this.
HANDSHAKE_TIMEOUT_S = 5.0
#: On an established link, a message that starts must arrive (and one sent must be
#: taken) without a stall longer than this. Waiting for the next message is not
#: limited: the popup's link is idle most of the time.
STALL_TIMEOUT_S = 10.0
#: A client command's limit for each of connect, handshake and reply.
REQUEST_TIMEOUT_S = 5.0


class IPCError(RmmError, RuntimeError):
    pass


class NotRunning(IPCError):
    pass


class NotAnswering(IPCError):
    """The app holds the endpoint but does not answer in time (stopped, or stuck)."""


class BadMessage(IPCError):
    """Not a JSON message within the size limit; the link is closed after it."""


class AlreadyRunning(IPCError):
    pass


class StuckInstance(AlreadyRunning, NotAnswering):
    """Another app holds the endpoint but does not answer: asking it to show the
    chat would only wait again."""


# -- messages ----------------------------------------------------------------


def send_json(conn: Connection, obj: Any) -> None:
    """Send ``obj`` as one JSON message. Raises BadMessage when it is too large
    (or not JSON-able), OSError when the link is gone or the peer stalls."""
    try:
        data = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise BadMessage(f"cannot send a non-JSON message: {exc}") from None
    if len(data) > MAX_MESSAGE_BYTES:
        raise BadMessage(f"message of {len(data)} bytes is over the {MAX_MESSAGE_BYTES}-byte limit")
    conn.send_bytes(data)


def recv_json(conn: Connection, timeout: float | None = None, *,
              max_bytes: int = MAX_MESSAGE_BYTES) -> Any:
    """The next JSON message. ``timeout`` (seconds, None = no limit) bounds the wait
    for it to start: NotAnswering after it. BadMessage for anything but JSON within
    ``max_bytes`` (a pickle is never unpickled); EOFError when the peer closed."""
    # poll() first: a blocking read would trip the socket's stall limit while idle.
    if not conn.poll(timeout):
        raise NotAnswering(f"RunMyModel did not answer within {timeout:g} s")
    try:
        data = conn.recv_bytes(max_bytes)
    except OSError as exc:
        if _is_stall(exc):
            raise NotAnswering("RunMyModel stopped in the middle of a message") from None
        if "bad message length" in str(exc):
            raise BadMessage(f"message over the {max_bytes}-byte limit refused") from None
        raise
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise BadMessage("message is not JSON; refused") from None


def _is_stall(exc: BaseException) -> bool:
    return isinstance(exc, (BlockingIOError, TimeoutError))


def _set_stall_timeout(conn: Connection, seconds: float) -> None:
    """Make each read and write on ``conn`` fail (BlockingIOError) after ``seconds``
    without progress. Connection reads the descriptor directly, so a Python socket
    timeout would not apply; the kernel's SO_RCVTIMEO/SO_SNDTIMEO do."""
    if sys.platform == "win32":  # named pipes: no such option; each link has its thread
        return
    whole = int(seconds)
    timeval = struct.pack("@ll", whole, int((seconds - whole) * 1_000_000))
    sock = socket.fromfd(conn.fileno(), socket.AF_UNIX, socket.SOCK_STREAM)  # a dup
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
    finally:
        sock.close()


def hang_up(conn: Connection) -> None:
    """End a link another thread may be reading: that read sees the end (and the
    peer too), and the reading thread closes the connection as usual."""
    if sys.platform == "win32":
        conn.close()
        return
    try:
        sock = socket.fromfd(conn.fileno(), socket.AF_UNIX, socket.SOCK_STREAM)
    except OSError:  # closed already
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.close()


# -- where --------------------------------------------------------------------


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


def family() -> str:
    return "AF_PIPE" if sys.platform == "win32" else "AF_UNIX"


# -- client --------------------------------------------------------------------


def connect(home: Path, timeout: float = REQUEST_TIMEOUT_S) -> Connection:
    """An authenticated link to the running app; each step within ``timeout``.
    Afterwards a stalled read or write fails after ``timeout`` too."""
    address = address_for(home)
    if sys.platform == "win32":
        try:
            return Client(address, family=family(), authkey=read_key(home))
        except (FileNotFoundError, ConnectionRefusedError):
            raise NotRunning("RunMyModel is not running") from None
    if not Path(address).exists():
        raise NotRunning("RunMyModel is not running")
    key = read_key(home)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(address)
        sock.settimeout(None)  # Connection needs a blocking descriptor
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        raise NotRunning("RunMyModel is not running") from None
    except (TimeoutError, BlockingIOError):
        sock.close()
        raise NotAnswering(f"RunMyModel did not take the connection within {timeout:g} s "
                           "(is it stopped?)") from None
    except OSError:
        sock.close()
        raise
    conn = Connection(sock.detach())
    try:
        _set_stall_timeout(conn, timeout)
        answer_challenge(conn, key)
        deliver_challenge(conn, key)
    except AuthenticationError:
        conn.close()
        raise IPCError(f"RunMyModel refused this client: the key in {key_path(home)} "
                       "does not match") from None
    except OSError as exc:
        conn.close()
        if _is_stall(exc):
            raise NotAnswering(f"RunMyModel did not answer within {timeout:g} s "
                               "(is it stopped?)") from None
        raise IPCError(f"RunMyModel closed the connection ({exc.strerror or exc})") from None
    except EOFError:
        conn.close()
        raise IPCError("RunMyModel closed the connection") from None
    return conn


def request(home: Path, message: dict[str, Any], timeout: float = REQUEST_TIMEOUT_S) -> Any:
    """Send one message to the running app and return its answer; connecting, the
    handshake and the answer each within ``timeout`` seconds."""
    conn = connect(home, timeout)
    with conn:
        try:
            send_json(conn, message)
            reply = recv_json(conn, timeout)
        except EOFError:
            raise IPCError("RunMyModel closed the connection without answering") from None
        except OSError as exc:
            if _is_stall(exc):
                raise NotAnswering(f"RunMyModel did not answer within {timeout:g} s") from None
            raise IPCError(f"RunMyModel closed the connection ({exc.strerror or exc})") from None
    if isinstance(reply, dict) and reply.get("error"):
        raise IPCError(str(reply["error"]))
    return reply


# -- server --------------------------------------------------------------------


class Server:
    """Accepts connections on a thread; each connection gets its own thread (which
    also does its handshake), so the popup's long-lived link, one-shot commands and
    a client that says nothing do not wait for each other."""

    def __init__(self, home: Path, handler: Handler) -> None:
        self.home = home
        self.handler = handler
        self.address = address_for(home)
        self.handshake_timeout_s = HANDSHAKE_TIMEOUT_S
        self.stall_timeout_s = STALL_TIMEOUT_S
        self._key = b""
        self._listener: Listener | None = None
        self._stop = threading.Event()

    def start(self) -> "Server":
        """Take the endpoint; raise AlreadyRunning when another app holds it."""
        if sys.platform != "win32" and Path(self.address).exists():
            try:
                request(self.home, {"cmd": "ping"}, timeout=2)
            except NotAnswering:
                raise StuckInstance("RunMyModel is already running but does not answer "
                                    "(is it stopped?)") from None
            except (IPCError, OSError, EOFError):
                Path(self.address).unlink(missing_ok=True)  # left by a crashed app
            else:
                raise AlreadyRunning("RunMyModel is already running")
        self._key = secrets.token_bytes(32)
        path = key_path(self.home)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(self._key)
        # No authkey here: Listener would run the handshake inside accept(), on the
        # one accepting thread. _serve runs it per connection, with a time limit.
        self._listener = Listener(self.address, family=family(), backlog=16)
        threading.Thread(target=self._accept, name="rmm-ipc", daemon=True).start()
        return self

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                conn = self._listener.accept()
            except Exception as exc:  # the accept loop is an edge
                if self._stop.is_set():
                    return
                log.warning("IPC accept failed: %s", exc)
                continue
            threading.Thread(target=self._serve, args=(conn,), name="rmm-ipc-conn",
                             daemon=True).start()

    def _handshake(self, conn: Connection) -> bool:
        try:
            _set_stall_timeout(conn, self.handshake_timeout_s)
            deliver_challenge(conn, self._key)
            answer_challenge(conn, self._key)
        except (AuthenticationError, OSError, EOFError) as exc:  # a wrong key, or silence
            log.warning("IPC connection refused: %s", str(exc) or type(exc).__name__)
            return False
        _set_stall_timeout(conn, self.stall_timeout_s)
        return True

    def _serve(self, conn: Connection) -> None:
        with conn:
            if not self._handshake(conn):
                return
            first = True
            while not self._stop.is_set():
                try:
                    # The first message is due at once; later ones (the popup's) whenever.
                    message = recv_json(conn, self.handshake_timeout_s if first else None)
                except BadMessage as exc:
                    log.warning("IPC message refused: %s", exc)
                    self._send(conn, {"error": str(exc)})
                    return  # the stream may be out of step after it: end the link
                except (NotAnswering, EOFError, OSError):
                    return
                first = False
                if not isinstance(message, dict) or not isinstance(message.get("cmd"), str):
                    self._send(conn, {"error": "a message is a JSON object with a \"cmd\""})
                    continue
                try:
                    reply = self.handler(message, conn)
                except Exception as exc:  # one bad request must not end the server
                    log.exception("IPC request failed: %r", message.get("cmd"))
                    reply = {"error": str(exc) or type(exc).__name__}
                if reply is not None and not self._send(conn, reply):
                    return

    @staticmethod
    def _send(conn: Connection, reply: Any) -> bool:
        try:
            send_json(conn, reply)
            return True
        except BadMessage as exc:
            log.error("IPC reply not sent: %s", exc)
            return True
        except OSError:
            return False

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
