"""Where RunMyModel keeps its data: one folder a person can open and back up."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

SUBDIRS = ("models", "prompts", "chats", "plugins", "logs")


def default_home() -> Path:
    # ~/Documents is where people look for their own files; platformdirs knows
    # where "Documents" is on each platform (XDG user-dirs, Windows known folders).
    from platformdirs import user_documents_dir

    return Path(user_documents_dir()) / "rmm"


@dataclass(frozen=True)
class DataHome:
    root: Path

    @classmethod
    def from_env(cls) -> "DataHome":
        env = os.environ.get("RMM_HOME")
        return cls(Path(env).expanduser() if env else default_home())

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def prompts(self) -> Path:
        return self.root / "prompts"

    @property
    def chats(self) -> Path:
        return self.root / "chats"

    @property
    def plugins(self) -> Path:
        return self.root / "plugins"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def config_file(self) -> Path:
        return self.root / "config.toml"

    def ensure(self) -> "DataHome":
        for name in SUBDIRS:
            (self.root / name).mkdir(parents=True, exist_ok=True)
        return self
