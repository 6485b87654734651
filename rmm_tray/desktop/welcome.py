"""The first run of a data home: a short welcome in the popup (the hotkey, what
the starter model is, a way to a useful model) and the curated instruct models
with this machine's fit. Shown once: state.json remembers it.

Events to the page:

- ``welcome`` {hotkey, starter}: the hotkey as the tray shows it (empty when none
  listens), whether the bundled starter model is in models/
- ``welcome.models`` {items: [{repo, file, size, size_text, quantization, about, fit}]}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rmm_tray.desktop.work import Background
from rmm_tray.home import state
from rmm_tray.models import curated

if TYPE_CHECKING:
    from rmm_tray.app import App

WELCOMED = "welcomed"
Emit = Callable[[dict[str, Any]], None]


class WelcomeController:
    def __init__(self, app: "App", emit: Emit, *, work: Background | None = None) -> None:
        self.app = app
        self.emit = emit
        self.work = work or Background()
        #: Read once at start: the welcome belongs to this run even after it is marked.
        self.first_run = not state.get(app.home.root, WELCOMED)

    def event(self, hotkey_label: str) -> dict[str, Any] | None:
        """The welcome for the page, the first time only (then remembered)."""
        if not self.first_run or state.get(self.app.home.root, WELCOMED):
            return None
        from rmm_tray.models.starter import STARTER_FILE

        state.put(self.app.home.root, WELCOMED, True)
        return {"type": "welcome", "hotkey": hotkey_label,
                "starter": (self.app.home.models / STARTER_FILE).exists()}

    def suggestions(self) -> None:
        """The curated instruct models, each with its fit here (on a worker: the
        fit reads free memory)."""
        self.work.run("suggested models", self._send,
                      on_error=lambda line: self.emit({"type": "models.error", "message": line}))

    def _send(self) -> None:
        self.emit({"type": "welcome.models", "items": curated.with_fit(self.app)})
