"""The person's prompts on disk: ``prompts/NAME.toml`` (format in ``templates``),
written atomically, each save keeping the previous file in ``prompts/.versions/NAME/``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from rmm_tray.chat.prompt_model import PromptTemplate, TemplateError, check_name
from rmm_tray.chat.templates import _read_regular, dump_prompt, load_prompt_file, load_prompt_text
from rmm_tray.home.atomic import atomic_write_bytes

VERSIONS = ".versions"


@dataclass(frozen=True)
class PromptVersion:
    number: int
    saved: float
    path: Path


class PromptStore:
    """The person's prompts folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, name: str) -> Path:
        return self.folder / f"{check_name(name)}.toml"

    def exists(self, name: str) -> bool:
        return self.path(name).exists()

    def load(self, name: str) -> PromptTemplate:
        path = self.path(name)
        if not path.exists():
            raise TemplateError(f"no prompt '{name}' in the prompts folder")
        return load_prompt_file(path)

    def save(self, template: PromptTemplate, *, overwrite: bool = True) -> Path:
        """Write ``template`` (checked first) atomically; the file it replaces
        becomes the newest version. ``overwrite=False`` refuses an existing name."""
        template.check()
        path = self.path(template.name)
        text = dump_prompt(template)
        load_prompt_text(template.name, text)  # what we write must read back
        if path.exists():
            if not overwrite:
                raise TemplateError(f"a prompt '{template.name}' exists already")
            old = _read_regular(path)
            if old == text:
                return path
            self._keep_version(template.name, old)
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, text.encode("utf-8"))
        return path

    def save_text(self, name: str, text: str) -> PromptTemplate:
        """Save a file's text as edited by hand: checked, kept as typed."""
        template = load_prompt_text(name, text)
        template.check()
        path = self.path(name)
        if path.exists():
            old = _read_regular(path)
            if old == text:
                return template
            self._keep_version(name, old)
        atomic_write_bytes(path, text.encode("utf-8"))
        return template

    def _versions_dir(self, name: str) -> Path:
        return self.folder / VERSIONS / check_name(name)

    def _keep_version(self, name: str, text: str) -> None:
        folder = self._versions_dir(name)
        number = max((v.number for v in self.versions(name)), default=0) + 1
        stamp = time.strftime("%Y%m%d-%H%M%S")
        atomic_write_bytes(folder / f"{number:04d}-{stamp}.toml", text.encode("utf-8"))

    def versions(self, name: str) -> list[PromptVersion]:
        """Earlier saves, oldest first (the current file is not among them)."""
        folder = self._versions_dir(name)
        out = []
        for path in folder.glob("*.toml") if folder.is_dir() else ():
            head = path.stem.split("-", 1)[0]
            if head.isdigit():
                out.append(PromptVersion(int(head), path.stat().st_mtime, path))
        return sorted(out, key=lambda v: v.number)

    def version_text(self, name: str, number: int) -> str:
        for v in self.versions(name):
            if v.number == number:
                return _read_regular(v.path)
        raise TemplateError(f"prompt '{name}' has no version {number}; "
                            f"see 'rmm-tray prompts versions {name}'")

    def restore(self, name: str, number: int) -> PromptTemplate:
        """Make version ``number`` current; the file it replaces is kept as a version."""
        return self.save_text(name, self.version_text(name, number))

    def delete(self, name: str) -> None:
        """Remove the prompt; its versions stay, so a restore can bring it back."""
        path = self.path(name)
        if not path.exists():
            raise TemplateError(f"no prompt '{name}' in the prompts folder")
        self._keep_version(name, _read_regular(path))
        path.unlink()
