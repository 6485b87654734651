"""The llama.cpp engine. The types are import-light; ``Engine`` and ``ChatStream``
import llama_cpp, so they load on first use (the tray starts without it)."""

from typing import TYPE_CHECKING, Any

from rmm_tray.engine.types import (
    Done,
    EngineError,
    EngineSettings,
    EngineStatus,
    Failed,
    GenParams,
    LoadedModel,
    Token,
)

if TYPE_CHECKING:
    from rmm_tray.engine.worker import ChatStream, Engine

__all__ = [
    "ChatStream",
    "Done",
    "Engine",
    "EngineError",
    "EngineSettings",
    "EngineStatus",
    "Failed",
    "GenParams",
    "LoadedModel",
    "Token",
]


def __getattr__(name: str) -> Any:
    if name in ("Engine", "ChatStream"):
        from rmm_tray.engine import worker

        return getattr(worker, name)
    raise AttributeError(name)
