"""Prompt templates: a body with ``{{variable}}`` placeholders filled as plain text."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from rmm_tray.errors import RmmError
from rmm_tray.home.files import NotRegularFile, open_regular

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

#: The variable that the prompt typed by the user fills.
INPUT_VARIABLE = "input"


class TemplateError(RmmError, ValueError):
    """A template cannot be used as asked; the message is one line."""


@dataclass(frozen=True)
class PromptTemplate:
    """A reusable prompt. ``{{name}}`` in ``body`` (and ``system``) is a variable;
    ``{{input}}`` takes the text the user typed."""

    name: str
    body: str
    description: str = ""
    system: str | None = None
    #: Who registered it (filled in by the plugin host; plugins leave it empty).
    source: str = field(default="", compare=False)

    @property
    def variables(self) -> list[str]:
        seen: dict[str, None] = {}
        for text in (self.system or "", self.body):
            for match in _PLACEHOLDER.finditer(text):
                seen.setdefault(match.group(1))
        return list(seen)

    def render(self, variables: dict[str, str], user_input: str | None = None) -> tuple[str, str | None]:
        """Return (user message, system message). Values are inserted verbatim:
        a value that itself contains ``{{x}}`` is not expanded again."""
        values = dict(variables)
        if user_input is not None:
            values.setdefault(INPUT_VARIABLE, user_input)
        missing = [v for v in self.variables if v not in values]
        if missing:
            hint = " ".join(f"--var {m}=..." for m in missing if m != INPUT_VARIABLE)
            if INPUT_VARIABLE in missing:
                hint = (hint + " and a prompt").strip()
            raise TemplateError(f"template '{self.name}' needs {hint}")

        def fill(text: str) -> str:
            return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)

        body = fill(self.body)
        if user_input and INPUT_VARIABLE not in self.variables:
            body = f"{body}\n\n{user_input}" if body else user_input
        return body, (fill(self.system) if self.system else None)


#: A prompt is a few lines; a bigger "template" is a mistake (or not text at all).
MAX_TEMPLATE_BYTES = 1 << 20


def _read_regular(path: Path) -> str:
    """The text of ``path`` if it is a regular file (see ``home.files.open_regular``)."""
    try:
        with open_regular(path) as fh:
            data = fh.read(MAX_TEMPLATE_BYTES + 1)
    except NotRegularFile as exc:
        raise TemplateError(str(exc)) from None
    except FileNotFoundError:
        raise TemplateError(f"{path.name}: missing (a link to a file that is gone?)") from None
    except OSError as exc:
        raise TemplateError(f"{path.name}: {exc.strerror or exc}") from None
    if len(data) > MAX_TEMPLATE_BYTES:
        raise TemplateError(f"{path.name}: larger than {MAX_TEMPLATE_BYTES >> 20} MiB; not a prompt")
    return data.decode("utf-8")


def load_template_file(path: Path) -> PromptTemplate:
    """One template per ``.toml`` file in ``prompts/``; the file name is its name.
    Anything that is not a readable template (a folder, a dangling link, a FIFO,
    bad TOML) is a TemplateError naming the file: the caller skips it."""
    try:
        data = tomllib.loads(_read_regular(path))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TemplateError(f"{path.name}: {exc}") from None
    body = data.get("body")
    if not isinstance(body, str):
        raise TemplateError(f"{path.name}: needs body = \"...\"")
    system = data.get("system")
    return PromptTemplate(
        name=path.stem,
        body=body,
        description=str(data.get("description", "")),
        system=system if isinstance(system, str) else None,
    )
