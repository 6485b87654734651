"""The history-backend contract as a pytest suite a backend's author runs.

Subclass ``HistoryContract`` in a test module and give it a ``history_factory``
fixture: a function that opens your backend on one storage (each call a new
instance, as a restarted app or a second process would open it)::

    import pytest
    from rmm_tray.testing.history_contract import HistoryContract

    class TestMyBackend(HistoryContract):
        @pytest.fixture
        def history_factory(self, tmp_path):
            return lambda: MyBackend(tmp_path / "chats.db")

Every test uses only the public API and checks what docs/plugins.md promises:
what is stored is there after a reopen, versions are kept, the trash gives
back, search finds words at the start of words in any case, and an export
imports into an empty backend byte for byte.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rmm_tray import ChatMessage, ChatNotFound, HistoryBackend, HistoryError

Factory = Callable[[], HistoryBackend]


def dump(form: dict[str, Any]) -> str:
    """An export as the bytes compared: sorted keys, nothing escaped."""
    return json.dumps(form, ensure_ascii=False, sort_keys=True, indent=1)


class HistoryContract:
    """The contract's tests. Override ``history_factory``; nothing else is needed."""

    @pytest.fixture
    def history_factory(self) -> Factory:
        raise NotImplementedError("define a history_factory fixture returning a backend opener")

    @pytest.fixture
    def opened(self, history_factory: Factory) -> Iterator[Callable[[], HistoryBackend]]:
        made: list[HistoryBackend] = []

        def open_one() -> HistoryBackend:
            made.append(history_factory())
            return made[-1]

        yield open_one
        for b in made:
            b.close()

    @pytest.fixture
    def h(self, opened: Callable[[], HistoryBackend]) -> HistoryBackend:
        return opened()

    # -- chats and messages ----------------------------------------------------------

    def test_a_chat_keeps_its_fields_and_messages_after_a_reopen(self, h, opened) -> None:
        cid = h.create_chat(title="  Two\nlines  of title ", model="m.gguf", source="cli",
                            system="Be brief.", template="tpl")
        user = ChatMessage("user", "hello\nthere", created=1000.5)
        reply = ChatMessage("assistant", "hi", model="m.gguf", parent=user.id,
                            stats={"completion_tokens": 1, "stop_reason": "stop"}, created=1001.25)
        h.append_message(cid, user)
        h.append_message(cid, reply)
        chat = opened().load_chat(cid)
        assert chat.id == cid and chat.title == "Two lines of title", "titles are one line"
        assert (chat.model, chat.source, chat.system, chat.template) == ("m.gguf", "cli", "Be brief.", "tpl")
        assert [(m.id, m.role, m.content, m.parent) for m in chat.messages] == [
            (user.id, "user", "hello\nthere", None), (reply.id, "assistant", "hi", user.id)]
        assert chat.messages[1].stats == {"completion_tokens": 1, "stop_reason": "stop"}
        assert chat.messages[1].model == "m.gguf" and chat.messages[1].created == 1001.25
        assert chat.current == reply.id and not chat.pinned and chat.deleted is None

    def test_unknown_chats_raise_chat_not_found(self, h) -> None:
        for call in (lambda: h.load_chat("20990101-000000-ffffff"),
                     lambda: h.update_chat("20990101-000000-ffffff", title="x"),
                     lambda: h.delete_chat("20990101-000000-ffffff")):
            with pytest.raises(ChatNotFound):
                call()
        with pytest.raises(KeyError):
            h.load_chat("20990101-000000-ffffff")

    def test_list_is_newest_first_and_counts_the_branch_shown(self, h) -> None:
        old = h.create_chat(title="old", model=None, created=100.0)
        new = h.create_chat(title="new", model="a", created=200.0)
        h.append_message(old, ChatMessage("user", "revived", created=300.0))
        listed = h.list_chats()
        assert [c.id for c in listed][:2] == [old, new]
        assert (listed[0].updated, listed[0].messages) == (300.0, 1)
        assert (listed[1].title, listed[1].model, listed[1].messages) == ("new", "a", 0)
        assert h.list_recent(1) == listed[:1] and h.list_recent(5) == listed

    def test_a_streamed_reply_is_kept_and_marked_interrupted_until_completed(self, h, opened) -> None:
        cid = h.create_chat(title="t", model=None)
        user = ChatMessage("user", "tell me")
        h.append_message(cid, user)
        h.append_partial(cid, "r1", "Once upon ")
        h.append_partial(cid, "r1", "a time")
        crashed = opened().load_chat(cid)  # what a restarted app finds
        last = crashed.messages[-1]
        assert (last.id, last.content, last.interrupted, last.parent) == (
            "r1", "Once upon a time", True, user.id)
        h.append_message(cid, ChatMessage("assistant", "Once upon a time, the end.", id="r1",
                                          parent=user.id))
        done = opened().load_chat(cid)
        assert [(m.content, m.interrupted) for m in done.messages] == [
            ("tell me", False), ("Once upon a time, the end.", False)]

    # -- versions ----------------------------------------------------------------------

    def test_versions_are_kept_and_the_chosen_one_is_continued(self, h, opened) -> None:
        cid = h.create_chat(title="t", model=None)
        q = ChatMessage("user", "question")
        first, second = (ChatMessage("assistant", "one", parent=q.id),
                         ChatMessage("assistant", "two", parent=q.id))
        for m in (q, first, second):
            h.append_message(cid, m)
        chat = h.load_chat(cid)
        assert [m.content for m in chat.messages] == ["question", "two"], "the newest is shown"
        assert [m.content for m in chat.tree] == ["question", "one", "two"], "nothing lost"
        h.update_chat(cid, current=first.id)
        assert [m.content for m in opened().load_chat(cid).messages] == ["question", "one"]
        follow = ChatMessage("user", "and then?", parent=first.id)
        h.append_message(cid, follow)
        chat = opened().load_chat(cid)
        assert [m.content for m in chat.messages] == ["question", "one", "and then?"]
        assert chat.current == follow.id and chat.summary().messages == 3
        with pytest.raises((HistoryError, KeyError)):
            h.update_chat(cid, current="no-such-message")

    # -- rename, pin, trash -----------------------------------------------------------

    def test_rename_and_pin_are_durable(self, h, opened) -> None:
        cid = h.create_chat(title="before", model=None)
        h.update_chat(cid, title="after\nall", pinned=True)
        again = opened()
        assert again.load_chat(cid).title == "after all" and again.load_chat(cid).pinned
        assert [(c.title, c.pinned) for c in again.list_chats() if c.id == cid] == [("after all", True)]
        h.update_chat(cid, pinned=False)
        assert not opened().load_chat(cid).pinned
        with pytest.raises(HistoryError):
            h.update_chat(cid, colour="red")

    def test_the_trash_gives_back_and_purge_does_not(self, h, opened) -> None:
        cid = h.create_chat(title="doomed zebra", model=None)
        h.append_message(cid, ChatMessage("user", "zebra crossing"))
        h.delete_chat(cid)
        again = opened()
        assert cid not in [c.id for c in again.list_chats()]
        assert [c.id for c in again.list_trash()] == [cid] and again.list_trash()[0].deleted
        assert again.search("zebra") == [], "the trash is not searched"
        assert again.load_chat(cid).messages[0].content == "zebra crossing", "still readable"
        h.restore_chat(cid)
        assert cid in [c.id for c in opened().list_chats()] and opened().list_trash() == []
        h.purge_chat(cid)
        with pytest.raises(ChatNotFound):
            opened().load_chat(cid)
        assert cid not in [c.id for c in opened().list_chats()]

    # -- search ----------------------------------------------------------------------

    def test_search_finds_word_starts_in_titles_and_messages(self, h) -> None:
        a = h.create_chat(title="Trip planning", model="m1", created=100.0)
        h.append_message(a, ChatMessage("user", "Where should I go?", created=101.0))
        h.append_message(a, ChatMessage("assistant", "Visit the Lighthouse of\nAlexandria, truly.",
                                        created=102.0))
        b = h.create_chat(title="Cooking", model="m2", created=200.0)
        h.append_message(b, ChatMessage("system", "secretword in the system prompt", created=201.0))
        h.append_message(b, ChatMessage("user", "A lighthouse-shaped cake?", created=202.0))

        hits = h.search("LIGHT")
        assert [x.chat_id for x in hits] == [b, a], "newest first"
        hit = hits[1]
        assert "\n" not in hit.snippet and hit.title == "Trip planning" and hit.model == "m1"
        assert [hit.snippet[s:e] for s, e in hit.highlights] == ["Light"]
        reply = h.load_chat(a).messages[1]
        assert hit.message_id == reply.id
        assert [x.chat_id for x in h.search("alexandria lighthouse")] == [a], "every word"
        assert h.search("ghthouse") == [], "words match from their start"
        assert h.search("secretword") == [], "system prompts are not searched"
        title_hit = h.search("trip")[0]
        assert (title_hit.chat_id, title_hit.message_id) == (a, None)
        assert h.search("  ") == [] and h.search("?!") == []
        assert [x.chat_id for x in h.search("lighthouse", model="m1")] == [a]
        assert [x.chat_id for x in h.search("lighthouse", since=150.0)] == [b]
        h.update_chat(a, pinned=True)
        assert [x.chat_id for x in h.search("lighthouse", pinned=True)] == [a]
        assert len(h.search("lighthouse", limit=1)) == 1

    def test_search_sees_renames_and_other_branches(self, h) -> None:
        cid = h.create_chat(title="untitled", model=None)
        q = ChatMessage("user", "q")
        h.append_message(cid, q)
        h.append_message(cid, ChatMessage("assistant", "original platypus", parent=q.id))
        h.append_message(cid, ChatMessage("assistant", "regenerated", parent=q.id))
        assert [x.chat_id for x in h.search("platypus")] == [cid], "an older version is found"
        h.update_chat(cid, title="Quokka facts")
        assert [x.chat_id for x in h.search("quokka")] == [cid]
        assert h.search("untitled") == []

    # -- export and import -------------------------------------------------------------

    def _rich_chat(self, h: HistoryBackend) -> str:
        cid = h.create_chat(title="Export me", model="m.gguf", source="popup", system="sys",
                            created=1234.5)
        s = ChatMessage("system", "sys", created=1234.6)
        q = ChatMessage("user", "Ünïcode ✓ question", parent=s.id, created=1235.0)
        r1 = ChatMessage("assistant", "first", parent=q.id, model="m.gguf", created=1236.0,
                         stats={"completion_tokens": 3})
        r2 = ChatMessage("assistant", "second, cut", parent=q.id, interrupted=True, created=1237.0)
        for m in (s, q, r1, r2):
            h.append_message(cid, m)
        h.update_chat(cid, current=r1.id, pinned=True)
        return cid

    def test_export_then_import_elsewhere_is_byte_for_byte(self, h, opened, tmp_path) -> None:
        cid = self._rich_chat(h)
        exported = h.export_chat(cid)
        json.loads(json.dumps(exported))  # plain JSON values only
        assert exported["format"] == "rmm-chat" and len(exported["messages"]) == 4
        h.purge_chat(cid)
        assert h.import_chat(json.loads(json.dumps(exported))) == cid
        assert dump(opened().export_chat(cid)) == dump(exported)
        with pytest.raises(HistoryError):
            h.import_chat(exported)  # the id is taken
        for bad in ({}, {"format": "rmm-chat", "version": 99}, {**exported, "id": "../x"},
                    {**exported, "id": "other", "messages": [{"role": "user"}]}):
            with pytest.raises(HistoryError):
                h.import_chat(bad)
        assert [c.id for c in h.list_chats()] == [cid], "a refused import leaves nothing"

    # -- many writers --------------------------------------------------------------

    def test_writers_on_many_threads_and_instances_lose_nothing(self, opened) -> None:
        backends = [opened() for _ in range(3)]
        errors: list[BaseException] = []

        def write(b: HistoryBackend, n: int) -> None:
            try:
                cid = b.create_chat(title=f"writer {n}", model=None)
                parent = None
                for i in range(15):
                    m = ChatMessage("user" if i % 2 == 0 else "assistant", f"{n}:{i}", parent=parent)
                    b.append_message(cid, m)
                    parent = m.id
            except BaseException as exc:  # reported below, on the test's thread
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(backends[n % 3], n)) for n in range(6)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        assert not errors, errors
        reader = opened()
        chats = [c for c in reader.list_chats() if c.title.startswith("writer ")]
        assert len(chats) == 6
        for c in chats:
            n = c.title.split()[1]
            assert [m.content for m in reader.load_chat(c.id).messages] == [f"{n}:{i}" for i in range(15)]
