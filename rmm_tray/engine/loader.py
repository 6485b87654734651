"""Checks a model file and opens it with llama.cpp, turning failures into one line."""

from __future__ import annotations

import contextlib
import io
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import llama_cpp
import psutil

from rmm_tray.engine import llama_log
from rmm_tray.engine.types import EngineError, EngineSettings
from rmm_tray.models.gguf import GGUFError, GGUFInfo, read_gguf
from rmm_tray.units import human_size

log = logging.getLogger(__name__)

# Weights are memory-mapped; leave room for the KV cache and the rest of the desktop.
MEMORY_MARGIN = 256 << 20


def physical_cores() -> int:
    return psutil.cpu_count(logical=False) or psutil.cpu_count() or 1


def check_model_file(path: Path, *, gpu_layers: int) -> GGUFInfo:
    """Everything we can say about a bad file before llama.cpp touches it."""
    if not path.exists():
        raise EngineError(f"model file not found: {path}")
    if not path.is_file():
        raise EngineError(f"not a model file: {path}")
    try:
        info = read_gguf(path)
    except GGUFError as exc:
        raise EngineError(str(exc)) from None
    if not info.architecture:
        raise EngineError(f"{path.name}: GGUF file names no architecture")
    size = path.stat().st_size
    available = psutil.virtual_memory().available
    if gpu_layers == 0 and size + MEMORY_MARGIN > available:
        raise EngineError(
            f"{path.name} needs about {human_size(size + MEMORY_MARGIN)} of memory "
            f"but only {human_size(available)} is free"
        )
    return info


@dataclass
class OpenedModel:
    llama: llama_cpp.Llama
    info: GGUFInfo
    n_ctx: int
    gpu_layers: int
    threads: int
    load_s: float


def context_for(wanted: int, trained: int | None) -> int:
    """The configured context, never beyond what the model was trained for."""
    return max(256, min(wanted, trained or wanted))


def gpu_layers_for(settings: EngineSettings) -> int:
    if settings.gpu_layers < 0:
        return -1 if llama_cpp.llama_supports_gpu_offload() else 0
    return settings.gpu_layers


def open_model(path: Path, settings: EngineSettings, info: GGUFInfo | None = None) -> OpenedModel:
    """Open a model; ``info`` is the result of ``check_model_file`` when the caller
    already checked it."""
    gpu_layers = gpu_layers_for(settings)
    if info is None:
        info = check_model_file(path, gpu_layers=gpu_layers)
    n_ctx = context_for(settings.context_length, info.context_length)
    threads = settings.threads or physical_cores()
    llama_log.take_errors()
    started = time.perf_counter()
    # verbose=True keeps llama-cpp-python from redirecting the process's fds (see
    # llama_log); its own few Python prints during the load go to the debug log.
    chatter = io.StringIO()
    try:
        with contextlib.redirect_stderr(chatter), contextlib.redirect_stdout(chatter):
            llama = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_batch=settings.batch_size,
                n_threads=threads,
                n_threads_batch=threads,
                n_gpu_layers=gpu_layers,
                verbose=True,
            )
    except Exception as exc:
        raise EngineError(_load_failure(path, exc)) from None
    finally:
        if chatter.getvalue():
            log.debug("llama-cpp-python: %s", chatter.getvalue()[:2000])
    llama.verbose = False  # no prints from generate()
    llama_log.install()  # Llama() may have re-installed its own logger
    return OpenedModel(llama, info, n_ctx, gpu_layers, threads, time.perf_counter() - started)


def _load_failure(path: Path, exc: Exception) -> str:
    errors = llama_log.take_errors()
    for line in reversed(errors):
        if "error loading model:" in line:
            reason = line.split("error loading model:", 1)[1].strip()
            reason = reason.replace("error loading model architecture: ", "")
            return f"{path.name}: {reason}"
    if errors:
        return f"{path.name}: {errors[-1].split(': ', 1)[-1]}"
    return f"{path.name}: llama.cpp could not load it ({exc})"
