"""Lines that plugins add to ``rmm-tray doctor`` through ``doctor_checks``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Status = Literal["ok", "warn", "fail"]
STATUSES: tuple[Status, ...] = ("ok", "warn", "fail")


@dataclass(frozen=True)
class DoctorCheck:
    """One line of ``rmm-tray doctor``: ``fail`` makes the command exit 1, ``warn``
    does not. ``fix`` says what to do; it is shown when the status is not ok."""

    name: str
    status: Status
    detail: str
    fix: str = ""

    def __post_init__(self) -> None:
        # Checked here so that a plugin's typo fails its own hook, not the report.
        if self.status not in STATUSES:
            raise ValueError(f"DoctorCheck status must be one of {', '.join(STATUSES)}, "
                             f"got {self.status!r}")
