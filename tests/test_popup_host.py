"""The core's popup host: the tray, the timer after it and the fallback may each
ask it to start the popup; one popup process comes of it."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

from rmm_tray.shell import popup_host
from rmm_tray.shell.popup_host import PopupHost


def test_a_second_start_starts_no_second_popup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[list[str]] = []
    done = threading.Event()

    class Proc:
        pid = 4242

        def __init__(self, cmd: list[str]) -> None:
            started.append(cmd)

        def wait(self) -> int:
            done.wait(10)  # alive until the test ends, as a popup is
            return 0

    monkeypatch.setattr(popup_host.subprocess, "Popen", Proc)
    host = PopupHost(tmp_path)
    try:
        callers = [threading.Thread(target=host.start) for _ in range(8)]
        for t in callers:
            t.start()
        for t in callers:
            t.join()
        host.start()
        # Each start that went through left a keeper thread, alive while its popup is.
        keepers = [t for t in threading.enumerate() if t.name == "rmm-popup-host"]
        assert len(keepers) == 1
        deadline = time.monotonic() + 10
        while not started and time.monotonic() < deadline:
            time.sleep(0.01)
        assert started == [[sys.executable, "-m", "rmm_tray.shell.popup_process", str(tmp_path)]]
    finally:
        host._stopping = True
        done.set()
