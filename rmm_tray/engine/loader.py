"""Checks a model file and opens it with llama.cpp, turning failures into one line."""

from __future__ import annotations

import contextlib
import io
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import llama_cpp

from rmm_tray.engine import llama_log
from rmm_tray.engine.embed import check_pooling, is_encoder
from rmm_tray.engine.types import EngineError, EngineSettings
from rmm_tray.home.settings_check import MAX_THREADS
from rmm_tray.models.gguf import GGUFError, GGUFInfo, read_gguf
from rmm_tray.units import human_size

log = logging.getLogger(__name__)

# Weights are memory-mapped; leave room for the KV cache and the rest of the desktop.
MEMORY_MARGIN = 256 << 20


def physical_cores() -> int:
    import psutil

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
    import psutil

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


def threads_for(wanted: int) -> int:
    """The threads to run on: ``wanted``, or one per physical core for 0. Past
    ggml's maximum llama.cpp aborts the whole process, so that is refused here
    too, whoever built the settings (config.toml's loader refuses it first)."""
    if not 0 <= wanted <= MAX_THREADS:
        raise EngineError(f"threads must be 0 (one per physical core) to {MAX_THREADS}, got {wanted}")
    return wanted or physical_cores()


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
    threads = threads_for(settings.threads)
    # An encoder reads each input in one ubatch (llama.cpp aborts otherwise), so
    # its batches are the whole context.
    embedding = is_encoder(info)
    if embedding:
        check_pooling(info, path.name)
    batches = {"n_batch": n_ctx, "n_ubatch": n_ctx} if embedding else {"n_batch": settings.batch_size}
    llama_log.take_errors()
    started = time.perf_counter()
    # verbose=True keeps llama-cpp-python from redirecting the process's fds (see
    # llama_log); its own few Python prints during the load go to the debug log.
    chatter = io.StringIO()
    try:
        with contextlib.redirect_stderr(chatter), contextlib.redirect_stdout(chatter), \
                _flash_attention(settings.flash_attn):
            llama = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                embedding=embedding,
                n_threads=threads,
                n_threads_batch=threads,
                n_gpu_layers=gpu_layers,
                verbose=True,
                flash_attn=settings.flash_attn != "off",
                **batches,
            )
    except Exception as exc:
        raise EngineError(_load_failure(path, exc)) from None
    finally:
        if chatter.getvalue():
            log.debug("llama-cpp-python: %s", chatter.getvalue()[:2000])
    llama.verbose = False  # no prints from generate()
    llama_log.install()  # Llama() may have re-installed its own logger
    return OpenedModel(llama, info, n_ctx, gpu_layers, threads, time.perf_counter() - started)


FLASH_ATTN_TYPES = {"auto": llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO,
                    "on": llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED,
                    "off": llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED}


@contextlib.contextmanager
def _flash_attention(mode: str) -> Iterator[None]:
    """``Llama(flash_attn=True)`` asks for the type named by the module constant
    LLAMA_FLASH_ATTN_TYPE_ENABLED, and its bool cannot say "auto" (llama.cpp's own
    default, ~3 % faster here than off). Point that constant at the type wanted
    while the context is made; only the engine thread makes contexts."""
    if mode not in FLASH_ATTN_TYPES:
        raise EngineError(f"flash_attn must be auto, on or off, not {mode!r}")
    module = llama_cpp.llama_cpp
    saved = module.LLAMA_FLASH_ATTN_TYPE_ENABLED
    module.LLAMA_FLASH_ATTN_TYPE_ENABLED = FLASH_ATTN_TYPES[mode]
    try:
        yield
    finally:
        module.LLAMA_FLASH_ATTN_TYPE_ENABLED = saved


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
