"""What a prompt is made of: blocks, typed variables and ``{{name}}`` placeholders.

Substitution is plain text in one pass: a value that itself contains ``{{x}}`` is
inserted as it is, never expanded again and never evaluated. Rendering turns the
blocks into chat messages: the system block(s) become the system message,
examples become user/assistant pairs, the rest joined is the user message.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from rmm_tray.errors import RmmError


class TemplateError(RmmError, ValueError):
    """A template cannot be used as asked; the message is one line."""


class MissingVariables(TemplateError):
    """Required variables have no value; ``names`` lists them."""

    def __init__(self, message: str, names: list[str]) -> None:
        super().__init__(message)
        self.names = names


#: Block kinds, in the order the builder offers them.
BLOCK_KINDS = ("system", "context", "instructions", "example", "user", "output", "custom")
BLOCK_TITLES = {
    "system": "System prompt", "context": "Context", "instructions": "Instructions",
    "example": "Example", "user": "User message", "output": "Output format", "custom": "Custom",
}
VARIABLE_TYPES = ("text", "multiline", "choice", "number", "yesno", "date")

#: The variable that the text typed by the person fills.
INPUT_VARIABLE = "input"

NAME_PATTERN = r"[A-Za-z_][A-Za-z0-9_]*"
_NAME = re.compile(NAME_PATTERN + r"\Z")
_GOOD = re.compile(r"\{\{\s*(" + NAME_PATTERN + r")\s*\}\}")
_OPEN = re.compile(r"\{\{")


@dataclass(frozen=True)
class PromptBlock:
    """One part of a prompt. An ``example`` block uses ``text`` for the user's
    side and ``reply`` for the assistant's."""

    kind: str
    text: str = ""
    reply: str = ""
    title: str = ""

    def texts(self) -> list[str]:
        return [self.text, self.reply] if self.kind == "example" else [self.text]


@dataclass(frozen=True)
class VariableSpec:
    """A typed variable: how the form asks for it and what it accepts."""

    name: str
    type: str = "text"
    default: str = ""
    description: str = ""
    required: bool = True
    options: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None

    def check(self) -> None:
        """Raise TemplateError when the spec itself is unusable."""
        if not _NAME.match(self.name):
            raise TemplateError(f"variable name {self.name!r}: letters, digits and _ only")
        if self.type not in VARIABLE_TYPES:
            raise TemplateError(f"variable {self.name}: unknown type {self.type!r} "
                                f"(one of {', '.join(VARIABLE_TYPES)})")
        if self.type == "choice" and not self.options:
            raise TemplateError(f"variable {self.name}: a choice needs options")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise TemplateError(f"variable {self.name}: min is above max")
        if self.default:
            self.coerce(self.default)

    def coerce(self, value: str) -> str:
        """The value as it goes into the prompt; TemplateError when it does not fit."""
        value = str(value)
        if self.type == "choice":
            if value not in self.options:
                raise TemplateError(f"{self.name} must be one of {', '.join(self.options)}; "
                                    f"got {value!r}")
        elif self.type == "number":
            try:
                number = float(value.strip())
            except ValueError:
                raise TemplateError(f"{self.name} must be a number; got {value!r}") from None
            if number != number or number in (float("inf"), float("-inf")):
                raise TemplateError(f"{self.name} must be a finite number; got {value!r}")
            if self.min is not None and number < self.min:
                raise TemplateError(f"{self.name} must be at least {self.min:g}; got {value}")
            if self.max is not None and number > self.max:
                raise TemplateError(f"{self.name} must be at most {self.max:g}; got {value}")
            return value.strip()
        elif self.type == "yesno":
            low = value.strip().lower()
            if low in ("yes", "y", "true", "1", "on"):
                return "yes"
            if low in ("no", "n", "false", "0", "off", ""):
                return "no"
            raise TemplateError(f"{self.name} must be yes or no; got {value!r}")
        elif self.type == "date":
            try:
                return dt.date.fromisoformat(value.strip()).isoformat()
            except ValueError:
                raise TemplateError(f"{self.name} must be a date like 2025-01-31; "
                                    f"got {value!r}") from None
        elif self.type == "text" and "\n" in value:
            # A one-line field pasted with line breaks: keep them, they are the person's.
            return value
        return value


@dataclass(frozen=True)
class Placeholder:
    name: str
    block: int
    start: int
    end: int


@dataclass(frozen=True)
class Problem:
    """A placeholder the model must not see as it is: where it is and why."""

    message: str
    block: int
    start: int
    end: int
    line: int = 1
    column: int = 1

    def __str__(self) -> str:
        return f"block {self.block + 1}, line {self.line}, column {self.column}: {self.message}"


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def scan_text(text: str, block: int = 0) -> tuple[list[Placeholder], list[Problem]]:
    """The placeholders in ``text`` and the malformed ones (an unclosed ``{{``,
    a name that is not letters, digits and ``_``), with their offsets."""
    found: list[Placeholder] = []
    problems: list[Problem] = []
    pos = 0
    while True:
        m = _OPEN.search(text, pos)
        if m is None:
            break
        good = _GOOD.match(text, m.start())
        if good:
            found.append(Placeholder(good.group(1), block, good.start(), good.end()))
            pos = good.end()
            continue
        close = text.find("}}", m.end())
        nxt = text.find("{{", m.end())
        if close < 0 or (0 <= nxt < close):
            end = m.end()
            message = "'{{' is never closed with '}}'"
        else:
            end = close + 2
            inner = text[m.end():close].strip()
            message = (f"{{{{{inner}}}}} is not a variable name (letters, digits and _)"
                       if inner else "empty {{}}")
        problems.append(Problem(message, block, m.start(), end, *_position(text, m.start())))
        pos = end
    return found, problems


def fill_text(text: str, values: Mapping[str, str]) -> str:
    """One pass: each well-formed placeholder with a value is replaced; the
    inserted text is never scanned again."""
    return _GOOD.sub(lambda m: values.get(m.group(1), m.group(0)), text)


@dataclass(frozen=True)
class Rendered:
    """A prompt with its values filled: the chat it starts."""

    system: str | None
    #: Few-shot pairs, in order: (user, assistant).
    examples: tuple[tuple[str, str], ...]
    user: str
    #: Variables that had no value and got a marked sample (preview only).
    sampled: tuple[str, ...] = field(default=())

    def messages(self) -> list[dict[str, str]]:
        out: list[dict[str, str]] = []
        if self.system:
            out.append({"role": "system", "content": self.system})
        for user, reply in self.examples:
            out += [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]
        out.append({"role": "user", "content": self.user})
        return out


def render_blocks(blocks: Iterable[PromptBlock], values: Mapping[str, str],
                  *, user_input: str | None = None) -> Rendered:
    """Blocks to messages. ``user_input`` is added after the user message when
    no block takes ``{{input}}``."""
    blocks = list(blocks)
    systems = [fill_text(b.text, values) for b in blocks if b.kind == "system" and b.text.strip()]
    examples = tuple((fill_text(b.text, values), fill_text(b.reply, values))
                     for b in blocks if b.kind == "example")
    rest = [fill_text(b.text, values) for b in blocks
            if b.kind not in ("system", "example") and b.text.strip()]
    user = "\n\n".join(rest)
    takes_input = any(p.name == INPUT_VARIABLE for i, b in enumerate(blocks)
                      for t in b.texts() for p in scan_text(t, i)[0])
    if user_input and not takes_input:
        user = f"{user}\n\n{user_input}" if user else user_input
    return Rendered("\n\n".join(systems) or None, examples, user)


MAX_NAME = 80
#: Characters no file name may hold somewhere (Windows reserves these too).
_BAD_NAME = re.compile(r'[/\\<>:"|?*\x00-\x1f\x7f]')


def check_name(name: str) -> str:
    """``name`` if it can be a file in prompts/, else a TemplateError saying why."""
    if not isinstance(name, str) or not name.strip():
        raise TemplateError("a prompt needs a name")
    if len(name) > MAX_NAME:
        raise TemplateError(f"prompt name longer than {MAX_NAME} characters")
    if _BAD_NAME.search(name):
        raise TemplateError(f"prompt name {name!r}: no path separators or / \\ < > : \" | ? *")
    if name.startswith(".") or ".." in name:
        raise TemplateError(f"prompt name {name!r}: may not start with '.' or hold '..'")
    if name != name.strip():
        raise TemplateError(f"prompt name {name!r}: no spaces at either end")
    return name


@dataclass(frozen=True)
class PromptVariable:
    """A variable a plugin fills when a prompt is used: ``value()`` returns its text.
    Registered through ``register_prompt_variables``; a built-in name is refused."""

    name: str
    description: str
    value: Callable[[], str]


#: Filled at the moment a prompt is used, never asked for in its form.
BUILTIN_VARIABLES = {
    "selection": "the text selected on the desktop when the prompt's hotkey was pressed",
    "clipboard": "the clipboard's text",
    "date": "today's date (YYYY-MM-DD)",
    "time": "the time now (HH:MM)",
    "model": "the name of the model in use",
    INPUT_VARIABLE: "what the person types when using the prompt",
}


@dataclass(frozen=True)
class PromptTemplate:
    """A reusable prompt. ``{{name}}`` in its text is a variable; ``{{input}}``
    takes the text the person typed.

    Either ``body`` (and ``system``) or ``blocks``; ``variables`` lists typed
    specs for some placeholders (the others are required one-line text)."""

    name: str
    body: str = ""
    description: str = ""
    system: str | None = None
    #: Who registered it (filled in by the plugin host; plugins leave it empty).
    source: str = field(default="", compare=False)
    blocks: tuple[PromptBlock, ...] = ()
    variable_specs: tuple[VariableSpec, ...] = ()
    tags: tuple[str, ...] = ()
    #: A global hotkey in pynput's spelling ("<ctrl>+<alt>+t"), or "".
    hotkey: str = ""
    #: With a hotkey: send at once when no required variable is left empty.
    run_immediately: bool = False

    @property
    def all_blocks(self) -> tuple[PromptBlock, ...]:
        if self.blocks:
            return self.blocks
        old = [PromptBlock("system", self.system)] if self.system else []
        return (*old, PromptBlock("user", self.body))

    def scan(self) -> tuple[list[str], list[Problem]]:
        """Placeholder names in order of first use, and the malformed ones."""
        seen: dict[str, None] = {}
        problems: list[Problem] = []
        for i, block in enumerate(self.all_blocks):
            for text in block.texts():
                found, bad = scan_text(text, i)
                problems += bad
                for p in found:
                    seen.setdefault(p.name)
        return list(seen), problems

    @property
    def variables(self) -> list[str]:
        """Every variable's name: placeholders in order, then declared but unused specs."""
        names = self.scan()[0]
        return names + [v.name for v in self.variable_specs if v.name not in names]

    def specs(self) -> dict[str, VariableSpec]:
        """The variables a person fills (built-ins excluded), with their specs."""
        declared = {v.name: v for v in self.variable_specs}
        return {n: declared.get(n, VariableSpec(n)) for n in self.variables
                if n not in BUILTIN_VARIABLES or (n in declared and n != INPUT_VARIABLE)}

    def check(self) -> None:
        """TemplateError for what cannot be used: a malformed placeholder, a bad spec."""
        check_name(self.name)
        for block in self.all_blocks:
            if block.kind not in BLOCK_KINDS:
                raise TemplateError(f"prompt '{self.name}': unknown block kind {block.kind!r} "
                                    f"(one of {', '.join(BLOCK_KINDS)})")
        problems = self.scan()[1]
        if problems:
            raise TemplateError(f"prompt '{self.name}', {problems[0]}")
        for spec in self.variable_specs:
            spec.check()

    def fill(
        self,
        values: Mapping[str, str],
        *,
        builtins: Mapping[str, str] | None = None,
        user_input: str | None = None,
        sample: bool = False,
    ) -> Rendered:
        """The chat this prompt starts. ``values`` are what the person gave (checked
        against the types, defaults for the rest); ``builtins`` the use-time ones.
        With ``sample``, an unfilled variable gets a marked sample instead of an
        error (the builder's preview)."""
        names, problems = self.scan()
        if problems and not sample:
            raise TemplateError(f"prompt '{self.name}', {problems[0]}")
        filled: dict[str, str] = dict(builtins or {})
        if user_input is not None:
            filled[INPUT_VARIABLE] = user_input
        missing, sampled = [], []
        declared = {v.name for v in self.variable_specs}
        for name, spec in self.specs().items():
            if builtins and name in builtins and name not in declared:
                continue  # a plugin's variable fills it
            given = values.get(name)
            if given is None or (given == "" and spec.required):
                given = spec.default or None
            if given is None:
                if spec.required or spec.type in ("choice", "number", "date"):
                    if sample:
                        filled[name] = _sample(spec)
                        sampled.append(name)
                    elif spec.required:
                        missing.append(name)
                    continue
                given = ""
            try:
                filled[name] = spec.coerce(given)
            except TemplateError:
                if not sample:
                    raise
                filled[name], _ = _sample(spec), sampled.append(name)
        for name in names:
            if name in filled or name in missing:
                continue
            if sample:
                filled[name] = f"‹{name}›"
                sampled.append(name)
            elif name == INPUT_VARIABLE or name in BUILTIN_VARIABLES:
                missing.append(name)
        if missing:
            raise MissingVariables(_missing_message(self.name, missing), missing)
        rendered = render_blocks(self.all_blocks, filled,
                                 user_input=None if INPUT_VARIABLE in names else user_input)
        return Rendered(rendered.system, rendered.examples, rendered.user, tuple(sampled))

    def render(self, variables: dict[str, str], user_input: str | None = None) -> tuple[str, str | None]:
        """Return (user message, system message): the older, example-less form of
        ``fill``. Values are inserted verbatim: ``{{x}}`` in a value stays."""
        rendered = self.fill(variables, user_input=user_input)
        return rendered.user, rendered.system


def _missing_message(name: str, missing: list[str]) -> str:
    parts = [f"--var {m}=..." for m in missing if m != INPUT_VARIABLE]
    if INPUT_VARIABLE in missing:
        parts.append("a prompt")
    # "--var a=... --var b=... and a prompt": the last need joined with "and".
    needs = " and ".join([" ".join(parts[:-1]), parts[-1]]) if len(parts) > 1 else parts[0]
    return f"template '{name}' needs {needs}"


def _sample(spec: VariableSpec) -> str:
    if spec.default:
        return spec.default
    if spec.type == "choice":
        return spec.options[0]
    if spec.type == "number":
        return f"{spec.min:g}" if spec.min is not None else "1"
    if spec.type == "yesno":
        return "yes"
    if spec.type == "date":
        return dt.date.today().isoformat()
    return f"‹{spec.name}›"
