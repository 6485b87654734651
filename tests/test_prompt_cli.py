"""`rmm-tray prompts ...` and `chat -t` through the real command, and a rendered
prompt checked against what the engine itself sends the model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli
from rmm_tray.chat.templates import load_prompt_file

pytestmark = pytest.mark.integration


def test_new_show_list_and_rm(home: Path) -> None:
    made = run_cli("prompts", "new", "mail", "--from", "translate", "--description", "mine")
    assert made.returncode == 0, made.stderr
    t = load_prompt_file(home / "prompts" / "mail.toml")
    assert [b.kind for b in t.blocks] == ["system", "instructions", "user"]
    assert t.specs()["language"].type == "choice" and t.description == "mine"
    again = run_cli("prompts", "new", "mail")
    assert again.returncode == 1 and "a prompt 'mail' exists already" in again.stderr
    bad = run_cli("prompts", "new", "../evil")
    assert bad.returncode == 1 and "path separators" in bad.stderr
    assert not (home / "evil.toml").exists()
    listed = {t["name"]: t for t in json.loads(run_cli("prompts", "list", "--json").stdout)}
    assert listed["mail"]["source"] == "prompts folder"
    assert listed["mail"]["variable_specs"]["language"]["type"] == "choice"
    shown = run_cli("prompts", "show", "mail").stdout
    assert "[Instructions]\nTranslate into {{language}}:" in shown and "variable language: choice" in shown
    refused = run_cli("prompts", "rm", "mail")  # no terminal to ask on
    assert refused.returncode == 2 and "needs --yes" in refused.stderr
    assert (home / "prompts" / "mail.toml").exists()
    gone = run_cli("prompts", "rm", "mail", "--yes")
    assert gone.returncode == 0 and not (home / "prompts" / "mail.toml").exists()


def test_render_shows_the_messages_and_counts_with_the_default_model(home: Path) -> None:
    """The starter model is the default on a fresh home: counted through a
    tokenizer-only load (no context), so this is quick."""
    out = run_cli("prompts", "render", "translate", "--var", "language=French",
                  "--input", "Bonjour {{language}}", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["messages"] == [
        {"role": "system", "content": "You are a careful translator. Reply with the translation only."},
        {"role": "user", "content": "Translate into French:\n\nBonjour {{language}}"}]
    assert data["text"].startswith("<bos><start_of_turn>user\nYou are a careful translator.")
    assert data["text"].endswith("Bonjour {{language}}<end_of_turn>\n<start_of_turn>model\n")
    assert 20 < data["tokens"] < 60 and data["fit"] == "fits" and data["count_error"] is None


@pytest.mark.parametrize(("args", "message"), [
    (("prompts", "render", "translate", "--var", "language"), "--var needs KEY=VALUE, got 'language'"),
    (("prompts", "render", "summarize", "--var", "points=3"), "template 'summarize' needs a prompt"),
    (("prompts", "render", "translate", "--var", "language=Klingon", "--input", "x"),
     "language must be one of"),
    (("chat", "-t", "translate", "--var", "language"), "--var needs KEY=VALUE, got 'language'"),
    (("chat", "-t", "rewrite-selection", "--var", "tone=formal", "x"), None),
])
def test_usage_errors_name_the_variable_and_exit_2(home: Path, args: tuple[str, ...],
                                                    message: str | None) -> None:
    out = run_cli(*args)
    if message is None:  # {{selection}} is empty from the CLI: not a usage error
        assert out.returncode != 2, out.stderr
        return
    if "must be one of" in message:
        assert out.returncode == 1 and message in out.stderr
        return
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines() == [f"rmm-tray: error: {message}"]


def test_missing_required_variable_in_chat_is_a_usage_error(home: Path) -> None:
    (home / "prompts" / "tr.toml").write_text(
        '[[blocks]]\nkind = "user"\ntext = "Into {{language}}: {{input}}"\n')
    out = run_cli("chat", "-t", "tr", "--json", "hello")
    assert out.returncode == 2
    assert "needs --var language=..." in out.stderr
    assert json.loads(out.stdout.splitlines()[-1])["type"] == "error"


def test_versions_restore_export_import(home: Path, tmp_path: Path) -> None:
    path = home / "prompts" / "note.toml"
    for word in ("one", "two", "three"):
        text = f'[[blocks]]\nkind = "user"\ntext = "{word} {{{{input}}}}"\n'
        from rmm_tray.chat.prompt_store import PromptStore

        PromptStore(home / "prompts").save_text("note", text)
    listed = json.loads(run_cli("prompts", "versions", "note", "--json").stdout)
    assert [v["version"] for v in listed] == [1, 2]
    back = run_cli("prompts", "restore", "note", "1")
    assert back.returncode == 0, back.stderr
    assert "one {{input}}" in path.read_text()
    bundle = tmp_path / "out.json"
    assert run_cli("prompts", "export", "note", "translate", "-o", str(bundle)).returncode == 0
    path.unlink()
    clash = run_cli("prompts", "import", str(bundle))
    assert clash.returncode == 2 and "translate" not in [p.stem for p in (home / "prompts").iterdir()]
    assert not path.exists(), "a refused import writes nothing"
    forced = run_cli("prompts", "import", str(bundle), "--force")
    assert forced.returncode == 0, forced.stderr
    assert "one {{input}}" in path.read_text()
    assert load_prompt_file(home / "prompts" / "translate.toml").specs()["language"].type == "choice"


def test_import_reports_what_it_dropped(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "haiku.yaml"
    path.write_text("model: gpt-4o\nprompt: Write a haiku about $input\n")
    out = run_cli("prompts", "import", str(path))
    assert out.returncode == 0, out.stderr
    assert "imported 1 prompt(s) from the llm template: haiku" in out.stdout
    assert "dropped: haiku: 'model' 'gpt-4o' dropped" in out.stdout
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    out = run_cli("prompts", "import", str(bad))
    assert out.returncode == 1 and out.stderr.count("\n") == 1 and "not a prompt export" in out.stderr


@pytest.mark.slow
def test_render_counts_with_the_models_own_template_and_the_engine_sends_the_same(
        home_with_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The preview's text and token count are what the engine renders and
    tokenizes for the same prompt (recorded inside the engine)."""
    (home_with_model / "prompts" / "mail.toml").write_text(
        '[[blocks]]\nkind = "system"\ntext = "You write mails in {{language}}."\n'
        '[[blocks]]\nkind = "example"\ntext = "Hi?"\nreply = "Hello!"\n'
        '[[blocks]]\nkind = "user"\ntext = "{{input}} <b>{{x}}</b>"\n'
        '[variables.language]\ntype = "choice"\noptions = ["French", "German"]\n')
    out = run_cli("prompts", "render", "mail", "--var", "language=German", "--var", "x=<i>",
                  "--input", "Thanks", "--json", timeout=180)
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    assert shown["text"].startswith("<bos><start_of_turn>user\nYou write mails in German.\n\nHi?")
    assert shown["fit"] == "fits" and shown["n_ctx"] == 1024

    from rmm_tray.app import App
    from rmm_tray.chat.prompt_use import fill_prompt, start_chat
    from rmm_tray.chat.turn import Turn
    from rmm_tray.engine import generation

    seen: list[tuple[str, int]] = []
    tokenize = generation.tokenize_prompt

    def recording(llama, prompt, bos_text):  # type: ignore[no-untyped-def]
        tokens = tokenize(llama, prompt, bos_text)
        seen.append((prompt, len(tokens)))
        return tokens

    monkeypatch.setattr(generation, "tokenize_prompt", recording)
    app = App.open()
    try:
        template = app.template("mail")
        rendered = fill_prompt(app, template, {"language": "German", "x": "{{language}}"},
                               user_input="Thanks")
        chat_id = start_chat(app, template, rendered, model=app.model_name(app.default_model()))
        turn = Turn(app, rendered.user, app.gen_params(), chat_id=chat_id)
        for _ in turn:
            pass
        assert turn.result.error is None
    finally:
        app.close()
    prompt, count = seen[0]  # the reply's prompt (more may be tokenized after the reply)
    again = run_cli("prompts", "render", "mail", "--var", "language=German", "--var",
                    "x={{language}}", "--input", "Thanks", "--json", timeout=180)
    shown = json.loads(again.stdout)
    assert (shown["text"], shown["tokens"]) == (prompt, count)
    assert "<b>{{language}}</b>" in prompt
    stored = json.loads(run_cli("chats", "show", chat_id, "--json").stdout)
    assert [m["role"] for m in stored["messages"]][:4] == ["system", "user", "assistant", "user"]
    assert stored["messages"][0]["content"] == "You write mails in German."


@pytest.mark.slow
def test_a_huge_selection_is_cut_to_fit_the_context(home_with_model: Path) -> None:
    from rmm_tray.app import App
    from rmm_tray.chat.prompt_model import PromptBlock, PromptTemplate
    from rmm_tray.chat.prompt_use import count_messages, cut_to_fit, fill_prompt
    from rmm_tray.engine.prompt_count import PromptCounter

    app = App.open()
    counter = PromptCounter()
    try:
        t = PromptTemplate(name="fix", blocks=(PromptBlock("user", "Fix this: {{selection}}"),))
        selection = "word " * 5000  # ~5,000 tokens, the context is 1,024

        def fill(sel):  # type: ignore[no-untyped-def]
            return fill_prompt(app, t, {}, selection=sel)

        rendered, kept = cut_to_fit(app, counter, fill, selection)
        assert kept is not None and 0 < kept < len(selection)
        assert rendered.user == "Fix this: " + selection[:kept]
        counted = count_messages(app, counter, rendered.messages())
        assert counted.fit in ("fits", "tight")
        assert counted.tokens + counted.reply_budget <= counted.n_ctx == 1024
        small, none = cut_to_fit(app, counter, fill, "a short one")
        assert none is None and small.user == "Fix this: a short one"
    finally:
        counter.close()
        app.close()
