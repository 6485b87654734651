"""The Prompt Architect as a person uses it: a real window under Xvfb, real key
events from xdotool, the real engine on the starter model. What the model
receives is recorded inside the app's engine (a drop-in plugin), not read off
the page."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from desktop_helpers import RunningApp, Screen, wait_for
from rmm_tray.chat.templates import load_prompt_file

pytestmark = [pytest.mark.desktop, pytest.mark.slow]

# Records, in the app's own process, every prompt text tokenized the engine's way
# (a reply's prompt after the chat template; the builder's counts use the same
# call) and its token count.
RECORDER = textwrap.dedent('''
    import json, os
    from pathlib import Path
    from rmm_tray.engine import generation

    _tokenize = generation.tokenize_prompt
    _out = Path(os.environ["RMM_HOME"]) / "engine-prompts.jsonl"

    def _recording(llama, prompt, bos_text):
        tokens = _tokenize(llama, prompt, bos_text)
        with _out.open("a") as fh:
            fh.write(json.dumps({"prompt": prompt, "tokens": len(tokens)}) + "\\n")
        return tokens

    generation.tokenize_prompt = _recording
''')



@pytest.fixture()
def home(home_with_model: Path) -> Path:
    (home_with_model / "plugins" / "engine_recorder.py").write_text(RECORDER)
    return home_with_model


@pytest.fixture()
def start(screen: Screen, home: Path):
    apps: list[RunningApp] = []

    def starter(*args: str) -> RunningApp:
        app = RunningApp(screen, home, "--no-tray", *args)
        apps.append(app)
        app.cli("show")
        wait_for(screen.visible_popups, 15, "the popup to show")
        wait_for(lambda: app.probe("focus") is not None, 15, "the page to take the focus")
        return app

    yield starter
    for app in apps:
        app.close()


def state(app: RunningApp) -> dict[str, Any]:
    return app.probe("prompts")


def where(focus: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(focus.get(k) for k in ("id", "cls", "tag", "var", "block", "version", "text"))


def tab_to(screen: Screen, app: RunningApp, wanted: Callable[[dict[str, Any]], bool],
           what: str, limit: int = 40) -> None:
    """Press Tab until the focused control is ``wanted`` (as a keyboard user does)."""
    focus = state(app)["focus"] or {}
    trail = []
    for _ in range(limit):
        if wanted(focus):
            return
        trail.append((focus.get("id"), focus.get("cls"), focus.get("var"), focus.get("block")))
        before = where(focus)
        screen.key("Tab")
        # The page moves the focus on its own time: look once it has moved (its
        # value may still change as typed keys arrive: that is not a move).
        focus = wait_for(lambda: (lambda f: f if where(f) != before else None)(state(app)["focus"] or {}),
                         5, "the focus to move")
    shown = state(app)
    raise AssertionError(f"Tab never reached {what}; last focus {shown['focus']}; "
                         f"variables {(shown['builder'] or {}).get('variables')}; trail {trail}")


def settled(app: RunningApp) -> dict[str, Any]:
    """The builder once its preview caught up with the last keystroke."""
    def check() -> Any:
        b = state(app)["builder"]
        return b if b and not b["pending"] and b["shown"] == b["asked"] and b["tokens"] else None
    return wait_for(check, 30, "the preview to catch up")


def engine_prompts(home: Path) -> list[dict[str, Any]]:
    path = home / "engine-prompts.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def received(home: Path, before: int) -> dict[str, Any]:
    """The first prompt the engine tokenized after ``before`` were recorded: the
    reply's prompt (the engine may tokenize more once the reply is done)."""
    wait_for(lambda: len(engine_prompts(home)) > before, 60, "the engine to receive the prompt")
    return engine_prompts(home)[before]


def model_tokenization(model: Path, messages: list[dict[str, str]]) -> tuple[str, int]:
    """The engine's own chat template and tokenizer, in this (test) process."""
    import llama_cpp

    from rmm_tray.engine.chat_format import choose_format
    from rmm_tray.engine.generation import tokenize_prompt
    from rmm_tray.models.gguf import read_gguf

    info = read_gguf(model)
    llama = llama_cpp.Llama(str(model), n_ctx=256, verbose=False)
    try:
        piece = lambda t: llama.detokenize([t], special=True).decode()  # noqa: E731
        bos = piece(llama.token_bos())
        fmt = choose_format(gguf_template=info.chat_template, architecture=info.architecture,
                            override="", bos=bos, eos=piece(llama.token_eos()))
        text = fmt.render(messages)
        return text, len(tokenize_prompt(llama, text, bos))
    finally:
        llama.close()


def build_mailer(screen: Screen, app: RunningApp) -> dict[str, Any]:
    """Three blocks, a choice and a number variable, a block moved: by keyboard."""
    screen.key("ctrl+p")
    wait_for(lambda: state(app)["view"] == "prompts" and state(app)["list"], 10, "the Prompts view")
    tab_to(screen, app, lambda f: f["id"] == "pb-new", "New")
    screen.key("Return")
    wait_for(lambda: (state(app)["focus"] or {}).get("id") == "pb-name", 10, "the name field")
    screen.type("mailer")
    tab_to(screen, app, lambda f: f["block"] == 0 and f["cls"] == "pb-text", "the system block")
    screen.type("You write mails in {{language}}.")
    tab_to(screen, app, lambda f: f["block"] == 1 and f["cls"] == "pb-text", "the user block")
    screen.key("ctrl+a")
    screen.type("Thank the team for the launch.")
    tab_to(screen, app, lambda f: f["id"] == "pb-add", "Add block")  # its kind: Instructions
    screen.key("Return")
    wait_for(lambda: (state(app)["focus"] or {}).get("block") == 2, 10, "the new block")
    screen.type("Write {{lines}} short lines.")
    screen.key("alt+Up")  # the instructions before the user message
    wait_for(lambda: [b["kind"] for b in state(app)["builder"]["blocks"]]
             == ["system", "instructions", "user"], 10, "the block to move")
    assert state(app)["focus"]["block"] == 1, "the moved block keeps the focus"
    b = settled(app)
    assert b["variables"] == ["language", "lines"]
    # language: a choice of French or German, German by default.
    tab_to(screen, app, lambda f: f["var"] == "language" and f["cls"] == "pv-type", "language's type")
    screen.type("c")  # a select's type-ahead: Choice
    wait_for(lambda: (state(app)["focus"] or {}).get("value") == "choice", 5, "Choice")
    tab_to(screen, app, lambda f: f["var"] == "language" and f["cls"] == "pv-options", "the options")
    screen.type("French, German")
    screen.key("Tab")
    screen.type("German")  # the default
    # lines: a number from 1 to 5, 2 by default.
    tab_to(screen, app, lambda f: f["var"] == "lines" and f["cls"] == "pv-type", "lines' type")
    screen.type("n")
    wait_for(lambda: (state(app)["focus"] or {}).get("value") == "number", 5, "Number")
    tab_to(screen, app, lambda f: f["var"] == "lines" and f["cls"] == "pv-min", "min")
    screen.type("1")
    screen.key("Tab")
    screen.type("5")
    screen.key("Tab")
    screen.type("2")
    # Its own hotkey, recorded from the keys pressed.
    tab_to(screen, app, lambda f: f["id"] == "pb-hotkey", "the hotkey field")
    screen.key("ctrl+alt+y")
    wait_for(lambda: (state(app)["focus"] or {}).get("value") == "<ctrl>+<alt>+y", 5, "the keys")
    screen.key("Tab")  # out of the recorder, which would take Ctrl+S as the hotkey
    return settled(app)


def test_build_save_reopen_use_and_the_engine_gets_the_preview(screen: Screen, start, home: Path,
                                                                starter_model: Path) -> None:
    app = start()
    b = build_mailer(screen, app)
    expected_messages = [
        {"role": "system", "content": "You write mails in German."},
        {"role": "user", "content": "Write 2 short lines.\n\nThank the team for the launch."}]
    assert [{"role": m["role"], "content": m["content"]} for m in b["messages"]] == expected_messages
    text, count = model_tokenization(starter_model, expected_messages)
    assert b["rendered"] == text and int(b["tokens"]) == count and b["fit"] == "fits"

    screen.key("ctrl+s")
    wait_for(lambda: "Saved 'mailer'" in state(app)["builder"]["notice"], 15, "the save")
    saved = load_prompt_file(home / "prompts" / "mailer.toml")
    assert [bl.kind for bl in saved.blocks] == ["system", "instructions", "user"]
    specs = saved.specs()
    assert (specs["language"].type, specs["language"].options, specs["language"].default) == \
        ("choice", ("French", "German"), "German")
    assert (specs["lines"].type, specs["lines"].min, specs["lines"].max, specs["lines"].default) == \
        ("number", 1, 5, "2")

    assert saved.hotkey == "<ctrl>+<alt>+y"
    wait_for(lambda: app.status()["prompt_hotkeys"] == {"<ctrl>+<alt>+y": "mailer"}, 10,
             "its hotkey to be bound")

    # Reopen the app: the prompt is there.
    app.close()
    app = start()
    screen.key("ctrl+p")
    wait_for(lambda: "mailer" in state(app)["list"], 15, "mailer in the list after a restart")

    # Use it from the chat: the "/" picker finds it by a fuzzy fragment.
    screen.key("ctrl+p")  # back to the chat
    wait_for(lambda: state(app)["view"] == "chat", 5, "the chat view")
    screen.type("/mlr")
    wait_for(lambda: (state(app)["picker"] or [None])[0] == "/mailer", 10, "the picker to find it")
    screen.key("Return")
    form = wait_for(lambda: state(app)["form"], 10, "the form")
    assert form["name"] == "mailer"
    assert {f["name"]: f["value"] for f in form["fields"]} == {"language": "German", "lines": "2"}
    assert state(app)["focus"]["var"] == "language", "the first field has the focus"
    screen.key("Tab")
    assert state(app)["focus"]["var"] == "lines"
    before = len(engine_prompts(home))  # the builder's counts before the restart are there too
    screen.key("Return")
    got = received(home, before)
    assert (got["prompt"], got["tokens"]) == (b["rendered"], int(b["tokens"]))
    wait_for(lambda: state(app)["banner"], 20, "the chat's system prompt")
    assert state(app)["banner"][1] == "You write mails in German."
    wait_for(lambda: any(m["role"] == "assistant" and m["text"].strip()
                         for m in app.probe("messages")), 60, "the reply")
    chats = json.loads(app.cli("chats", "list", "--json").stdout)
    shown = json.loads(app.cli("chats", "show", chats[0]["id"], "--json").stdout)
    assert shown["messages"][0] == {**shown["messages"][0], "role": "system",
                                    "content": "You write mails in German."}
    assert shown["messages"][1]["content"] == "Write 2 short lines.\n\nThank the team for the launch."
    assert shown["system"] == "You write mails in German."


def test_values_are_literal_and_inert_in_the_preview_and_the_chat(screen: Screen, start,
                                                                    home: Path) -> None:
    (home / "prompts" / "echo.toml").write_text(
        '[[blocks]]\nkind = "system"\ntext = "Repeat <i>exactly</i>.<script>window.__pwned=1</script>"\n'
        '[[blocks]]\nkind = "user"\ntext = "Say: {{words}} ({{tone}})"\n'
        '[variables.tone]\ntype = "text"\ndefault = "calm"\n')
    app = start()
    nasty = "{{tone}} <b>bold</b> <script>window.__pwned=true</script> <img src=x onerror=alert(1)>"
    screen.type("/echo")
    wait_for(lambda: state(app)["picker"], 10, "the picker")
    screen.key("Return")
    wait_for(lambda: state(app)["form"], 10, "the form")
    screen.type(nasty)
    screen.key("Return")
    assert f"Say: {nasty} (calm)" in received(home, 0)["prompt"]
    msgs = wait_for(lambda: [m for m in app.probe("messages") if m["role"] == "user"], 20, "the message")
    assert msgs[0]["text"] == f"Say: {nasty} (calm)"
    safety = app.probe("safety")
    assert safety["bad"] == 0 and safety["handlers"] == 0 and not safety["pwned"]

    # The builder shows the prompt's own HTML as text.
    screen.key("ctrl+p")
    wait_for(lambda: "echo" in state(app)["list"], 10, "the list")
    screen.type("echo")
    tab_to(screen, app, lambda f: f["tag"] == "BUTTON" and "pb-item" in (f["cls"] or ""), "echo")
    screen.key("Return")
    b = settled(app)
    system = b["messages"][0]
    assert system["content"] == "Repeat <i>exactly</i>.<script>window.__pwned=1</script>"
    assert "&lt;i&gt;" in system["html"] and "<script" not in system["html"]
    assert app.probe("safety")["pwned"] is False


def test_bad_placeholders_are_marked_and_a_clash_asks(screen: Screen, start, home: Path) -> None:
    app = start()
    screen.key("ctrl+p")
    wait_for(lambda: state(app)["list"], 10, "the list")
    tab_to(screen, app, lambda f: f["id"] == "pb-new", "New")
    screen.key("Return")
    wait_for(lambda: (state(app)["focus"] or {}).get("id") == "pb-name", 10, "the name field")
    screen.type("translate")  # the plugin's prompt has this name
    tab_to(screen, app, lambda f: f["block"] == 0 and f["cls"] == "pb-text", "the system block")
    screen.type("Hello {{bad name}} and {{open")
    wait_for(lambda: len(state(app)["builder"]["problems"]) == 2, 15, "the problems to show")
    problems = state(app)["builder"]["problems"]
    assert problems[0].startswith("line 1, column 7: {{bad name}} is not a variable name")
    assert "never closed" in problems[1]
    screen.key("ctrl+s")
    wait_for(lambda: state(app)["builder"]["error"], 10, "the refusal")
    assert "block 1, line 1, column 7" in state(app)["builder"]["error"]
    assert not (home / "prompts" / "translate.toml").exists()
    assert state(app)["builder"]["blocks"][0]["text"] == "Hello {{bad name}} and {{open", "kept"
    # Fixed, the save asks before it hides the plugin's prompt of that name.
    screen.key("ctrl+a")
    screen.type("Hello {{who}}")
    screen.key("ctrl+s")
    wait_for(lambda: "exists" in state(app)["builder"]["confirm"], 10, "the question")
    assert not (home / "prompts" / "translate.toml").exists()
    assert state(app)["focus"]["id"] == "pb-confirm-ok"
    screen.key("Return")
    wait_for(lambda: (home / "prompts" / "translate.toml").exists(), 10, "the save")
    assert load_prompt_file(home / "prompts" / "translate.toml").blocks[0].text == "Hello {{who}}"


def test_versions_restore_and_delete_ask_first(screen: Screen, start, home: Path) -> None:
    from rmm_tray.chat.prompt_store import PromptStore

    store = PromptStore(home / "prompts")
    for word in ("first", "second", "third"):
        store.save_text("note", f'[[blocks]]\nkind = "user"\ntext = "{word} {{{{input}}}}"\n')
    app = start()
    screen.key("ctrl+p")
    wait_for(lambda: "note" in state(app)["list"], 10, "the list")
    screen.type("note")
    tab_to(screen, app, lambda f: f["tag"] == "BUTTON" and "pb-item" in (f["cls"] or ""), "note")
    screen.key("Return")
    wait_for(lambda: (state(app)["builder"] or {}).get("original") == "note", 10, "note open")
    tab_to(screen, app, lambda f: f["id"] == "pb-versions", "Versions")
    screen.key("Return")
    wait_for(lambda: len(state(app)["builder"]["versions"]) == 2, 10, "two versions")
    tab_to(screen, app, lambda f: f["version"] == "1", "version 1's Restore")
    screen.key("Return")
    wait_for(lambda: "Restore version 1" in state(app)["builder"]["confirm"], 10, "the question")
    assert "third" in (home / "prompts" / "note.toml").read_text(), "nothing before the answer"
    screen.key("Return")
    wait_for(lambda: "first {{input}}" in (home / "prompts" / "note.toml").read_text(), 10, "restore")
    wait_for(lambda: state(app)["builder"]["blocks"][0]["text"] == "first {{input}}", 10, "reload")
    assert len(store.versions("note")) == 3, "the version it replaced is kept"

    tab_to(screen, app, lambda f: f["id"] == "pb-delete", "Delete")
    screen.key("Return")
    wait_for(lambda: "Delete 'note'?" in state(app)["builder"]["confirm"], 10, "the question")
    screen.key("Escape")  # no
    wait_for(lambda: not state(app)["builder"]["confirm"], 10, "the question to go")
    assert (home / "prompts" / "note.toml").exists()
    tab_to(screen, app, lambda f: f["id"] == "pb-delete", "Delete")
    screen.key("Return")
    wait_for(lambda: state(app)["focus"]["id"] == "pb-confirm-ok", 10, "the question")
    screen.key("Return")
    wait_for(lambda: not (home / "prompts" / "note.toml").exists(), 10, "the delete")
    wait_for(lambda: "note" not in state(app)["list"], 10, "the list without it")


def select_in_another_window(screen: Screen, text: str, which: str = "primary") -> None:
    """Own the X selection from another client (xclip stays, as the app that has
    the text selected would), with ``text`` in it."""
    import subprocess

    proc = subprocess.Popen(["xclip", "-selection", which, "-loops", "5"], stdin=subprocess.PIPE,
                            env={**__import__("os").environ, **screen.env})
    assert proc.stdin is not None
    proc.stdin.write(text.encode())
    proc.stdin.close()
    wait_for(lambda: screen.run("xclip", "-o", "-selection", which, check=False).stdout == text,
             10, f"the {which} selection")


def test_a_prompts_hotkey_acts_on_the_selected_text(screen: Screen, start, home: Path) -> None:
    (home / "prompts" / "shout.toml").write_text(
        'hotkey = "<ctrl>+<alt>+u"\nrun_immediately = true\n'
        '[[blocks]]\nkind = "system"\ntext = "Repeat in capitals."\n'
        '[[blocks]]\nkind = "user"\ntext = "Text: {{selection}}"\n')
    (home / "prompts" / "paste.toml").write_text(
        'hotkey = "<ctrl>+<alt>+k"\n'
        '[[blocks]]\nkind = "user"\ntext = "Summarize ({{tone}}): {{clipboard}}"\n'
        '[variables.tone]\ntype = "choice"\noptions = ["short", "long"]\ndefault = "short"\n')
    # Clashes with the main hotkey: refused, the others still bound.
    (home / "prompts" / "clash.toml").write_text(
        'hotkey = "<ctrl>+<alt>+<space>"\n[[blocks]]\nkind = "user"\ntext = "x"\n')
    app = start()
    assert app.status()["prompt_hotkeys"] == {"<ctrl>+<alt>+u": "shout", "<ctrl>+<alt>+k": "paste"}
    assert "already the main hotkey" in app.log_text()
    app.cli("hide")
    wait_for(lambda: not screen.visible_popups(), 10, "the popup to hide")

    selected = "the quick <brown> fox {{tone}}\nsecond line"
    select_in_another_window(screen, selected)
    screen.run("xdotool", "mousemove", "5", "5")
    screen.key("ctrl+alt+u")
    wait_for(screen.visible_popups, 10, "the popup to show")
    # run_immediately: sent without a key pressed in the popup.
    got = received(home, 0)["prompt"]
    assert f"Text: {selected}<end_of_turn>" in got

    app.cli("hide")
    wait_for(lambda: not screen.visible_popups(), 10, "the popup to hide")
    select_in_another_window(screen, "copied words", which="clipboard")
    screen.key("ctrl+alt+k")
    form = wait_for(lambda: state(app)["form"], 15, "the form")
    fields = {f["name"]: f["value"] for f in form["fields"]}
    assert fields == {"tone": "short", "clipboard": "copied words"}
    wait_for(lambda: (state(app)["focus"] or {}).get("var") == "tone", 10, "the focus in the form")
    wait_for(lambda: app.status()["state"] == "idle", 60, "the first reply to end")
    before = len(engine_prompts(home))
    screen.key("Return")
    assert "Summarize (short): copied words<end_of_turn>" in received(home, before)["prompt"]

    # The command a Wayland desktop binds does what the hotkey does.
    wait_for(lambda: app.status()["state"] == "idle", 60, "the reply to end")
    before = len(engine_prompts(home))
    select_in_another_window(screen, "from the command")
    assert app.cli("prompt", "run", "shout").returncode == 0
    assert "Text: from the command<end_of_turn>" in received(home, before)["prompt"]
    missing = app.cli("prompt", "run", "nonesuch")
    assert missing.returncode == 1 and "no prompt template 'nonesuch'" in missing.stderr


def test_the_trays_prompt_entry_opens_its_form(screen: Screen, start, home: Path) -> None:
    app = start()
    app.tray("Prompts", "translate", click=True)
    form = wait_for(lambda: state(app)["form"], 15, "the form")
    assert form["name"] == "translate"
    assert [f["name"] for f in form["fields"]] == ["language", "input"]
    assert form["fields"][0]["value"] == "English"
    assert app.probe("messages") == [] and "{{" not in json.dumps(form["fields"])
    assert form["text"].startswith("translate\nTranslate a text into another language\n")
    assert "null" not in form["text"] and "{{" not in form["text"]


def test_a_plugin_prompt_is_read_only_and_duplicate_makes_it_yours(screen: Screen, start,
                                                                   home: Path) -> None:
    app = start()
    screen.key("ctrl+p")
    wait_for(lambda: "translate" in state(app)["list"], 10, "the list")
    screen.type("transl")
    tab_to(screen, app, lambda f: f["tag"] == "BUTTON" and "pb-item" in (f["cls"] or ""), "translate")
    screen.key("Return")
    b = settled(app)
    assert b["original"] == "translate" and b["editable"] is False
    assert [bl["kind"] for bl in b["blocks"]] == ["system", "instructions", "user"]
    tab_to(screen, app, lambda f: f["id"] == "pb-duplicate", "Duplicate")
    screen.key("Return")
    wait_for(lambda: (state(app)["focus"] or {}).get("id") == "pb-name", 10, "the copy's name")
    assert state(app)["builder"]["editable"] is True
    screen.key("ctrl+s")
    wait_for(lambda: (home / "prompts" / "translate-copy.toml").exists(), 15, "the copy saved")
    copy = load_prompt_file(home / "prompts" / "translate-copy.toml")
    assert copy.specs()["language"].type == "choice" and copy.blocks[2].text == "{{input}}"
    listed = json.loads(app.cli("prompts", "list", "--json").stdout)
    assert {t["name"]: t["source"] for t in listed}["translate"] == "builtin_templates"


def test_a_block_is_dragged_by_its_grip(screen: Screen, start, home: Path) -> None:
    (home / "prompts" / "three.toml").write_text(
        '[[blocks]]\nkind = "system"\ntext = "one"\n[[blocks]]\nkind = "context"\ntext = "two"\n'
        '[[blocks]]\nkind = "user"\ntext = "three"\n')
    app = start()
    screen.key("ctrl+p")
    wait_for(lambda: "three" in state(app)["list"], 10, "the list")
    screen.type("three")
    tab_to(screen, app, lambda f: f["tag"] == "BUTTON" and "pb-item" in (f["cls"] or ""), "three")
    screen.key("Return")
    settled(app)
    shown = state(app)
    (wid,) = screen.visible_popups()
    # Where the window's client area is on the screen (xwininfo's absolute
    # corner; xdotool's own geometry counts the frame differently).
    info = screen.run("xwininfo", "-id", wid).stdout
    ox, oy = (int(line.split(":")[1]) for line in info.splitlines()
              if line.strip().startswith(("Absolute upper-left X", "Absolute upper-left Y")))
    grip, last = shown["grips"][0], shown["cards"][2]
    screen.run("xdotool", "mousemove", str(ox + grip["x"]), str(oy + grip["y"]), "mousedown", "1")
    for step in range(1, 6):  # a real drag moves through the blocks in between
        y = grip["y"] + (last["bottom"] - 5 - grip["y"]) * step // 5
        screen.run("xdotool", "mousemove", str(ox + grip["x"]), str(oy + y))
    screen.run("xdotool", "mouseup", "1")
    wait_for(lambda: [b["text"] for b in state(app)["builder"]["blocks"]] == ["two", "three", "one"],
             10, "the block to land last")
    b = settled(app)
    assert b["messages"][0]["role"] == "system" and b["messages"][0]["content"] == "one"
