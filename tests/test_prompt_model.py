"""The prompt model: blocks, typed variables, placeholders, files, versions, imports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rmm_tray import PromptBlock, PromptTemplate, PromptVariable, TemplateError, VariableSpec, hookimpl
from rmm_tray.chat.prompt_import import export_prompts, import_file
from rmm_tray.chat.prompt_model import MissingVariables, check_name, scan_text
from rmm_tray.chat.prompt_store import PromptStore
from rmm_tray.chat.templates import dump_prompt, load_prompt_file, load_prompt_text

BUILDER = PromptTemplate(
    name="reply",
    description="Answer a mail",
    blocks=(
        PromptBlock("system", "You answer mails in {{language}}."),
        PromptBlock("example", "Can we meet?", "Yes, gladly."),
        PromptBlock("instructions", "Write {{lines}} lines, tone: {{tone}}."),
        PromptBlock("user", "{{input}}"),
    ),
    variable_specs=(
        VariableSpec("language", "choice", default="English", options=("English", "French")),
        VariableSpec("lines", "number", default="3", min=1, max=10, description="how long"),
        VariableSpec("tone", "text", required=False),
    ),
    tags=("mail",),
    hotkey="<ctrl>+<alt>+r",
    run_immediately=True,
)


def test_blocks_render_to_a_system_message_examples_and_one_user_message() -> None:
    r = BUILDER.fill({"language": "French"}, user_input="Are you free Monday?")
    assert r.messages() == [
        {"role": "system", "content": "You answer mails in French."},
        {"role": "user", "content": "Can we meet?"},
        {"role": "assistant", "content": "Yes, gladly."},
        {"role": "user", "content": "Write 3 lines, tone: .\n\nAre you free Monday?"},
    ]


def test_values_are_inserted_literally_in_one_pass() -> None:
    t = PromptTemplate(name="t", blocks=(PromptBlock("user", "A {{a}} B {{b}}"),))
    r = t.fill({"a": "{{b}} <script>alert(1)</script>", "b": "x"})
    assert r.user == "A {{b}} <script>alert(1)</script> B x"


@pytest.mark.parametrize(("value", "error"), [
    ("German", "language must be one of English, French"),
    ("", None),
])
def test_choice_values_are_checked(value: str, error: str | None) -> None:
    if error is None:  # empty falls back to the default
        assert "English" in BUILDER.fill({"language": value}, user_input="x").system
        return
    with pytest.raises(TemplateError, match=error):
        BUILDER.fill({"language": value}, user_input="x")


@pytest.mark.parametrize(("value", "error"), [
    ("11", "lines must be at most 10"), ("0", "lines must be at least 1"),
    ("many", "lines must be a number"), ("nan", "finite"),
])
def test_number_values_are_checked(value: str, error: str) -> None:
    with pytest.raises(TemplateError, match=error):
        BUILDER.fill({"lines": value}, user_input="x")


def test_yesno_and_date_values() -> None:
    t = PromptTemplate(name="t", blocks=(PromptBlock("user", "{{ok}} {{day}}"),), variable_specs=(
        VariableSpec("ok", "yesno"), VariableSpec("day", "date")))
    assert t.fill({"ok": "True", "day": "2025-02-03"}).user == "yes 2025-02-03"
    with pytest.raises(TemplateError, match="day must be a date"):
        t.fill({"ok": "no", "day": "tomorrow"})
    with pytest.raises(TemplateError, match="ok must be yes or no"):
        t.fill({"ok": "maybe", "day": "2025-02-03"})


def test_missing_variables_are_named_and_the_old_message_is_whole() -> None:
    t = PromptTemplate(name="tr", body="Into {{language}}: {{input}}")
    with pytest.raises(MissingVariables, match=r"needs --var language=\.\.\. and a prompt$") as err:
        t.render({}, None)
    assert err.value.names == ["language", "input"]
    with pytest.raises(MissingVariables, match=r"^template 'tr' needs a prompt$"):
        t.render({"language": "fr"}, None)


def test_malformed_placeholders_are_reported_with_positions() -> None:
    found, problems = scan_text("ok {{good}}\n{{bad name}} and {{ open\n{{}}")
    assert [p.name for p in found] == ["good"]
    assert [(p.line, p.column) for p in problems] == [(2, 1), (2, 18), (3, 1)]
    assert "not a variable name" in problems[0].message and "never closed" in problems[1].message
    t = PromptTemplate(name="t", blocks=(PromptBlock("system", "fine"), PromptBlock("user", "x {{ 1y }}")))
    with pytest.raises(TemplateError, match=r"block 2, line 1, column 3: \{\{1y\}\} is not a variable"):
        t.fill({})
    assert t.fill({}, sample=True).user == "x {{ 1y }}"  # the preview shows it as it is


def test_preview_samples_unfilled_variables_and_marks_them() -> None:
    t = PromptTemplate(name="t", blocks=(PromptBlock("user", "{{who}} {{n}} {{selection}}"),),
                       variable_specs=(VariableSpec("n", "number", min=2),))
    r = t.fill({}, sample=True)
    assert r.user == "‹who› 2 ‹selection›" and set(r.sampled) == {"who", "n", "selection"}


def test_old_templates_keep_working() -> None:
    t = PromptTemplate("old", "Be brief.", "d", "sys")
    assert t.render({}, "Why?") == ("Be brief.\n\nWhy?", "sys")
    assert t.variables == [] and [b.kind for b in t.all_blocks] == ["system", "user"]


@pytest.mark.parametrize("name", ["a/b", "..", "a..b", ".hidden", "", "x\\y", "nul\x00", " x"])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(TemplateError):
        check_name(name)


def test_file_round_trip_keeps_blocks_and_specs(tmp_path: Path) -> None:
    text = dump_prompt(BUILDER)
    assert '[[blocks]]\nkind = "system"' in text and "[variables.language]" in text
    assert load_prompt_text("reply", text) == BUILDER
    path = tmp_path / "old.toml"
    path.write_text('description = "d"\nsystem = "s"\nbody = """Hi {{name}}"""\n')
    old = load_prompt_file(path)
    assert (old.system, old.body, old.variables) == ("s", "Hi {{name}}", ["name"])


@pytest.mark.parametrize(("text", "error"), [
    ('[[blocks]]\nkind = "poem"\ntext = "x"\n', "kind should be one of"),
    ('[[blocks]]\nkind = "user"\ntext = "{{a}}"\n[variables.a]\ntype = "choice"\n', "a choice needs options"),
    ('[[blocks]]\nkind = "user"\ntext = "x"\n[variables.a]\ntype = "number"\nmin = "one"\n',
     "min should be a number"),
    ('[[blocks]]\nkind = "user"\ntext = "x"\n[variables.a]\ntype = "colour"\n', "unknown type 'colour'"),
    ('run_immediately = "yes"\nbody = "x"\n', "run_immediately should be true or false"),
])
def test_bad_files_say_what_is_wrong(text: str, error: str) -> None:
    with pytest.raises(TemplateError, match=error):
        load_prompt_text("p", text)


def test_saves_keep_versions_and_restore_brings_one_back(tmp_path: Path) -> None:
    store = PromptStore(tmp_path / "prompts")
    first = PromptTemplate(name="p", blocks=(PromptBlock("user", "first {{input}}"),))
    store.save(first)
    store.save(PromptTemplate(name="p", blocks=(PromptBlock("user", "second {{input}}"),)))
    store.save(PromptTemplate(name="p", blocks=(PromptBlock("user", "third {{input}}"),)))
    assert [v.number for v in store.versions("p")] == [1, 2]
    store.restore("p", 1)
    assert store.load("p").blocks == first.blocks
    assert [v.number for v in store.versions("p")] == [1, 2, 3]  # 'third' kept
    with pytest.raises(TemplateError, match="exists already"):
        store.save(first, overwrite=False)
    with pytest.raises(TemplateError, match="no version 9"):
        store.restore("p", 9)
    store.delete("p")
    assert not store.exists("p") and len(store.versions("p")) == 4
    store.restore("p", 4)
    assert store.load("p").blocks == first.blocks
    # The versions folder is hidden: it is never listed as a prompt.
    assert sorted(p.name for p in (tmp_path / "prompts").glob("*.toml")) == ["p.toml"]


def test_a_bad_edit_is_refused_and_the_file_kept(tmp_path: Path) -> None:
    store = PromptStore(tmp_path)
    store.save(BUILDER)
    before = (tmp_path / "reply.toml").read_text()
    with pytest.raises(TemplateError, match="never closed"):
        store.save_text("reply", '[[blocks]]\nkind = "user"\ntext = "{{oops"\n')
    assert (tmp_path / "reply.toml").read_text() == before


def test_export_then_import(tmp_path: Path) -> None:
    path = tmp_path / "shared.json"
    path.write_text(export_prompts([BUILDER]))
    found = import_file(path)
    assert found.prompts == [BUILDER] and found.dropped == []


def test_import_open_webui_export(tmp_path: Path) -> None:
    path = tmp_path / "prompts-export.json"
    path.write_text(json.dumps([{
        "command": "/translate", "title": "Translate text", "user_id": "u1", "timestamp": 1,
        "access_control": {"read": ["g1"]},
        "content": 'Translate into {{language | select:options=["French","German"]:default="French"'
                   ':required}} in {{count | number:min=1:max=3}} ways:\n{{CLIPBOARD}}\n'
                   'Signed {{USER_NAME}} {{mood | color}}',
    }]))
    found = import_file(path)
    (t,) = found.prompts
    assert t.name == "translate" and t.description == "Translate text"
    assert t.blocks[0].text == ("Translate into {{language}} in {{count}} ways:\n{{clipboard}}\n"
                                "Signed {{USER_NAME}} {{mood}}")
    specs = t.specs()
    assert specs["language"] == VariableSpec("language", "choice", default="French",
                                             options=("French", "German"), required=True)
    assert (specs["count"].type, specs["count"].min, specs["count"].max) == ("number", 1, 3)
    dropped = "\n".join(found.dropped)
    assert "'access_control' dropped" in dropped and "type 'color'" in dropped
    assert "USER_NAME" in dropped


def test_import_llm_yaml_template(tmp_path: Path) -> None:
    path = tmp_path / "summary.yaml"
    path.write_text("model: gpt-4o-mini\nsystem: You summarize in $lang.\n"
                    "prompt: 'Summarize this, costs in $$: $input'\ndefaults:\n  lang: English\n"
                    "options:\n  temperature: 0.2\n")
    found = import_file(path)
    (t,) = found.prompts
    assert t.fill({}, user_input="TEXT").messages() == [
        {"role": "system", "content": "You summarize in English."},
        {"role": "user", "content": "Summarize this, costs in $: TEXT"}]
    assert any("'model' 'gpt-4o-mini' dropped" in d for d in found.dropped)
    assert any("'options'" in d for d in found.dropped)


def test_plugin_variables_fill_prompts_through_the_hook(home: Path) -> None:
    from rmm_tray.app import App
    from rmm_tray.chat.prompt_use import fill_prompt

    class Weather:
        @hookimpl
        def register_prompt_variables(self, register):  # type: ignore[no-untyped-def]
            register(PromptVariable("weather", "today's weather", lambda: "sunny {{input}}"))
            register(PromptVariable("date", "taken: refused", lambda: "never"))

    app = App.open()
    app.plugins.register(Weather(), "weather")
    t = PromptTemplate(name="w", blocks=(PromptBlock("user", "It is {{weather}} on {{date}}."),))
    r = fill_prompt(app, t, {})
    assert r.user.startswith("It is sunny {{input}} on 20") and "never" not in r.user


def test_parsed_prompt_files_are_cached_in_the_data_home(tmp_path: Path) -> None:
    from rmm_tray.chat import templates

    home = tmp_path / "home"
    (home / "prompts").mkdir(parents=True)
    (home / "config.toml").write_text("")
    path = home / "prompts" / "p.toml"
    path.write_text('[[blocks]]\nkind = "user"\ntext = "first {{input}}"\n')
    assert load_prompt_file(path).blocks[0].text == "first {{input}}"
    templates.save_caches()
    cache = home / "cache" / "prompts.json"
    entries = json.loads(cache.read_text())["entries"]
    assert entries[str(path)]["data"]["blocks"][0]["text"] == "first {{input}}"
    # A new process (no parsed file in memory) takes the tables from the cache...
    templates._PARSED.clear()
    templates._FOLDERS.clear()
    entries[str(path)]["data"]["blocks"][0]["text"] = "from the cache {{input}}"
    cache.write_text(json.dumps({"format": 1, "entries": entries}))
    assert load_prompt_file(path).blocks[0].text == "from the cache {{input}}"
    # ...while the file is what it was; a changed file is read again.
    path.write_text('[[blocks]]\nkind = "user"\ntext = "second, longer {{input}}"\n')
    assert load_prompt_file(path).blocks[0].text == "second, longer {{input}}"
    # A corrupt cache is ignored and rebuilt.
    templates._PARSED.clear()
    templates._FOLDERS.clear()
    cache.write_text("{not json")
    assert load_prompt_file(path).blocks[0].text == "second, longer {{input}}"
    templates.save_caches()
    assert json.loads(cache.read_text())["format"] == 1
    # A file outside a data home's prompts/ is never cached anywhere.
    other = tmp_path / "loose.toml"
    other.write_text('body = "x"\n')
    load_prompt_file(other)
    templates.save_caches()
    assert not (tmp_path / "cache").exists()
