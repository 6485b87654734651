"""One error family: what a person should read is its message, one line; anything
else is an internal error, said as one line with the traceback in the log."""

from __future__ import annotations

import errno
import logging
import textwrap
from pathlib import Path

import pytest

from conftest import run_cli
from rmm_tray import ChatNotFound, RmmError, SourceError, TemplateError
from rmm_tray.errors import describe, one_line, report
from rmm_tray.home.config import ConfigError
from rmm_tray.models.gguf import GGUFError
from rmm_tray.models.store import ModelNotFound


@pytest.mark.parametrize("cls", [ChatNotFound, SourceError, TemplateError, ConfigError, GGUFError,
                                 ModelNotFound])
def test_every_error_for_a_person_is_one_family(cls: type[Exception]) -> None:
    exc = cls("no such thing\nsecond line")
    assert isinstance(exc, RmmError)
    assert describe(exc) == "no such thing"


def test_a_chat_not_found_is_still_a_key_error_without_quotes() -> None:
    exc = ChatNotFound("no chat 'x'")
    assert isinstance(exc, KeyError) and describe(exc) == "no chat 'x'"


def test_the_system_says_what_went_wrong_and_a_bug_says_where_to_look() -> None:
    assert describe(OSError(errno.ENOSPC, "No space left on device")).startswith("the disk is full")
    assert describe(FileNotFoundError(2, "No such file or directory", "/x.gguf")) == \
        "No such file or directory: /x.gguf"
    assert describe(ZeroDivisionError("division by zero")) == "internal error: division by zero, see the log"
    assert one_line(ValueError("")) == "ValueError"


def test_report_logs_a_bug_with_its_traceback_and_a_persons_error_without(
        caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("rmm_tray.test")
    with caplog.at_level(logging.INFO, logger="rmm_tray.test"):
        try:
            raise ValueError("boom")
        except ValueError as exc:
            assert report(log, "a step", exc) == "internal error: boom, see the log"
        assert report(log, "a step", ModelNotFound("no model 'x'")) == "no model 'x'"
    bug, person = caplog.records
    assert bug.levelno == logging.ERROR and bug.exc_info is not None
    assert person.levelno == logging.WARNING and person.exc_info is None


@pytest.mark.integration
def test_the_cli_prints_one_line_and_logs_the_traceback(home: Path) -> None:
    (home / "plugins" / "bad_history.py").write_text(textwrap.dedent("""
        from rmm_tray import HistoryBackend, hookimpl

        class Bad(HistoryBackend):
            name = "bad"
            def create_chat(self, *, title, model): return "x"
            def append_message(self, chat_id, message): pass
            def load_chat(self, chat_id): raise ValueError("the backend broke")
            def list_chats(self): return []

        @hookimpl
        def register_history_backends(register):
            register(Bad())
    """))
    with (home / "config.toml").open("a") as fh:
        fh.write('[history]\nbackend = "bad"\n')
    result = run_cli("chats", "show", "x")
    log_file = home / "logs" / "rmm-tray.log"
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"rmm-tray: error: internal error: the backend broke, see {log_file}"]
    logged = log_file.read_text()
    assert "Traceback (most recent call last)" in logged and "ValueError: the backend broke" in logged
