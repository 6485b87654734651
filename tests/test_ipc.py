"""The local endpoint: only key holders get in, and it is the single-instance lock."""

from __future__ import annotations

import os
import stat
from multiprocessing.connection import Client
from pathlib import Path

import pytest

from rmm_tray.desktop import ipc


@pytest.fixture()
def server(tmp_path: Path):
    seen = []

    def handler(message, conn):
        seen.append(message)
        return {"ok": True, "echo": message.get("cmd")}

    srv = ipc.Server(tmp_path, handler).start()
    srv.seen = seen
    yield srv
    srv.close()


def test_key_holder_gets_answers(server: ipc.Server, tmp_path: Path) -> None:
    assert ipc.request(tmp_path, {"cmd": "toggle"}) == {"ok": True, "echo": "toggle"}
    assert server.seen == [{"cmd": "toggle"}]


def test_client_without_the_key_is_refused(server: ipc.Server, tmp_path: Path) -> None:
    from multiprocessing import AuthenticationError

    with pytest.raises((AuthenticationError, EOFError, ConnectionError)):
        conn = Client(server.address, family="AF_UNIX", authkey=b"guessed-key")
        conn.send({"cmd": "show"})
        conn.recv()
    assert server.seen == [], "nothing from the intruder reached the app"
    assert ipc.request(tmp_path, {"cmd": "ping"})["ok"], "the server lives on"


def test_endpoint_and_key_are_private(server: ipc.Server, tmp_path: Path) -> None:
    folder = Path(server.address).parent
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(ipc.key_path(tmp_path).stat().st_mode) == 0o600


def test_second_instance_is_refused_and_stale_socket_replaced(
    server: ipc.Server, tmp_path: Path
) -> None:
    with pytest.raises(ipc.AlreadyRunning):
        ipc.Server(tmp_path, lambda m, c: None).start()
    server.close()
    Path(server.address).touch()  # what a crashed app leaves behind
    again = ipc.Server(tmp_path, lambda m, c: {"ok": True}).start()
    try:
        assert ipc.request(tmp_path, {"cmd": "ping"}) == {"ok": True}
    finally:
        again.close()


def test_not_running_is_clear(tmp_path: Path) -> None:
    with pytest.raises(ipc.NotRunning, match="not running"):
        ipc.request(tmp_path / "elsewhere", {"cmd": "toggle"})
    assert os.path.exists(ipc.runtime_dir())
