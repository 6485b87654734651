"""The llama.cpp engine. Importing this package imports llama_cpp: the CLI does so
only for commands that generate."""

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
