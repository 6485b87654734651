"""Will a model fit this machine? An estimate from file sizes and GGUF metadata.

needed = weights + KV cache at the configured context + overhead, where

- weights: the file size (llama.cpp maps the file; every byte ends up resident);
- KV cache: f16 keys and values for every layer and every context position;
- overhead: compute buffers, the output logits and the runtime itself,
  ``OVERHEAD_FIXED`` plus ``OVERHEAD_SHARE`` of the weights (compute buffers grow
  with the model's width).

available = free RAM (psutil's ``available``: free plus reclaimable cache), plus
free VRAM when layers are offloaded to a GPU.

The verdict: "fits" when needed <= ``FITS_SHARE`` (75 %) of available, leaving
room for the desktop and the browser next to it; "tight" up to 100 % (it will
load, but the machine may swap or other apps may be pushed out); "too big" above.

Nothing here imports llama_cpp: the model list and the hub's file list use it.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from rmm_tray.models.gguf import GGUFInfo, quantization_from_name

log = logging.getLogger(__name__)

FITS, TIGHT, TOO_BIG = "fits", "tight", "too big"
FITS_SHARE = 0.75
OVERHEAD_FIXED = 256 << 20
OVERHEAD_SHARE = 0.05
KV_BYTES = 2  # f16, llama.cpp's default cache type

# Bits per weight of each quantization, whole-file averages as llama.cpp's
# `llama-quantize` reports them for a 7B model (K-quants mix block types).
BITS_PER_WEIGHT: dict[str, float] = {
    "F32": 32.0, "F16": 16.0, "BF16": 16.0, "Q8_0": 8.5,
    "Q6_K": 6.56, "Q5_1": 6.0, "Q5_K_M": 5.7, "Q5_K_S": 5.54, "Q5_0": 5.5,
    "Q4_1": 5.0, "Q4_K_M": 4.85, "Q4_K_S": 4.58, "Q4_0": 4.55, "IQ4_NL": 4.5,
    "IQ4_XS": 4.25, "MXFP4": 4.25, "Q3_K_L": 4.27, "Q3_K_M": 3.9, "IQ3_M": 3.66,
    "Q3_K_S": 3.5, "IQ3_S": 3.44, "IQ3_XS": 3.3, "Q2_K": 3.35, "IQ3_XXS": 3.06,
    "Q2_K_S": 2.96, "IQ2_M": 2.7, "IQ2_S": 2.5, "IQ2_XS": 2.31, "IQ2_XXS": 2.06,
    "TQ2_0": 2.06, "IQ1_M": 1.75, "TQ1_0": 1.69, "IQ1_S": 1.56,
}

# What recommend() prefers, best first. Q8_0 down to Q4 is where llama.cpp is both
# fast and close to full quality; F16/BF16 cost twice Q8_0's memory bandwidth (so
# half its speed) for a difference people do not notice, so they come after Q4.
# Below Q4 quality drops quickly; the 1- and 2-bit files are a last resort.
PREFERENCE: tuple[str, ...] = (
    "Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q5_1", "Q5_0", "Q4_K_M", "Q4_K_S", "IQ4_XS",
    "IQ4_NL", "MXFP4", "Q4_1", "Q4_0", "BF16", "F16", "F32", "Q3_K_L", "Q3_K_M",
    "IQ3_M", "IQ3_S", "Q3_K_S", "IQ3_XS", "IQ3_XXS", "Q2_K", "Q2_K_S", "IQ2_M",
    "IQ2_S", "IQ2_XS", "IQ2_XXS", "TQ2_0", "IQ1_M", "TQ1_0", "IQ1_S",
)


@dataclass(frozen=True)
class Fit:
    verdict: str  # FITS | TIGHT | TOO_BIG
    needed: int
    available: int
    weights: int
    kv_cache: int
    overhead: int
    context_length: int
    #: True when the KV size (and the parameter count) were guessed, not read.
    estimated: bool = False
    #: Free VRAM counted in ``available``; 0 without GPU offload.
    gpu_free: int = 0

    @property
    def share(self) -> float:
        return self.needed / self.available if self.available else float("inf")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "share": round(self.share, 3)}


def verdict_for(needed: int, available: int) -> str:
    if available > 0 and needed <= FITS_SHARE * available:
        return FITS
    if available > 0 and needed <= available:
        return TIGHT
    return TOO_BIG


def overhead_for(weights: int) -> int:
    return OVERHEAD_FIXED + int(OVERHEAD_SHARE * weights)


def _fit(weights: int, kv: int, n_ctx: int, ram: int, vram: int, estimated: bool) -> Fit:
    overhead = overhead_for(weights)
    needed = weights + kv + overhead
    available = ram + vram
    return Fit(verdict_for(needed, available), needed, available, weights, kv, overhead,
               n_ctx, estimated, vram)


# -- memory on this machine ----------------------------------------------------

_gpu_cache: tuple[float, int | None] | None = None
GPU_CACHE_S = 30.0


def free_ram() -> int:
    import psutil

    return int(psutil.virtual_memory().available)


def free_vram() -> int | None:
    """Free memory of the NVIDIA GPUs, summed; None without nvidia-smi. Cached for
    ``GPU_CACHE_S``: a model list asks once per entry."""
    global _gpu_cache
    now = time.monotonic()
    if _gpu_cache is not None and now - _gpu_cache[0] < GPU_CACHE_S:
        return _gpu_cache[1]
    value: int | None = None
    exe = shutil.which("nvidia-smi")
    if exe:
        try:
            out = subprocess.run(
                [exe, "--query-gpu=memory.free", "--format=csv,noheader,nounits"],
                capture_output=True, text=True, timeout=2, check=True,
            ).stdout
            value = sum(int(float(x)) for x in out.split()) << 20  # MiB
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            log.debug("nvidia-smi gave no free memory: %s", exc)
    _gpu_cache = (now, value)
    return value


def machine_memory(gpu_layers: int) -> tuple[int, int]:
    """(free RAM, free VRAM counted for a model); VRAM is 0 when offload is off."""
    vram = free_vram() if gpu_layers != 0 else None
    return free_ram(), vram or 0


# -- a local model -------------------------------------------------------------


def kv_cache_bytes(info: GGUFInfo, n_ctx: int) -> int | None:
    """f16 K and V for every layer at ``n_ctx`` positions; None when the metadata
    lacks the shape. ``head_count_kv`` may be per layer (an array)."""
    layers = info.arch_key("block_count")
    heads = info.arch_key("attention.head_count")
    kv_heads = info.arch_key("attention.head_count_kv")
    if not layers:
        return None
    layers = int(layers)
    per_layer = _per_layer(kv_heads if kv_heads is not None else heads, layers)
    if per_layer is None:
        return None
    key_len = info.arch_key("attention.key_length")
    value_len = info.arch_key("attention.value_length")
    if key_len is None or value_len is None:
        width = info.arch_key("embedding_length")
        q_heads = _per_layer(heads, layers)
        if not width or not q_heads or not max(q_heads):
            return None
        head_dim = int(width) // max(q_heads)
        key_len = key_len if key_len is not None else head_dim
        value_len = value_len if value_len is not None else head_dim
    return sum(per_layer) * n_ctx * (int(key_len) + int(value_len)) * KV_BYTES


def _per_layer(value: Any, layers: int) -> list[int] | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        items = [int(v) for v in value[:layers]]
        return items if items else None
    return [int(value)] * layers


def fit_local(
    info: GGUFInfo, weights: int, n_ctx: int, *, ram: int, vram: int = 0,
) -> Fit:
    """A model on disk: ``weights`` is its size (all parts of a split model) and
    ``n_ctx`` the context it will be loaded with."""
    n_ctx = effective_context(n_ctx, info.context_length)
    kv = kv_cache_bytes(info, n_ctx)
    estimated = kv is None
    if kv is None:
        kv = kv_estimate(parameters_from_size(weights, info.quantization), n_ctx)
    return _fit(weights, kv, n_ctx, ram, vram, estimated)


def effective_context(wanted: int, trained: int | None) -> int:
    """What the engine's loader will use: never beyond the trained context."""
    return max(256, min(wanted, trained or wanted))


# -- a remote file, before download ---------------------------------------------


def bits_per_weight(quant: str) -> float | None:
    return BITS_PER_WEIGHT.get(quant.upper()) if quant else None


def parameters_from_size(size: int, quant: str) -> int | None:
    """Parameters a file of ``size`` bytes holds at this quantization's bits per weight."""
    bpw = bits_per_weight(quant)
    return int(size * 8 / bpw) if bpw else None


def kv_estimate(parameters: int | None, n_ctx: int) -> int:
    """f16 KV bytes for a model of this many parameters, by a rule of thumb.

    Per token, modern GQA models need about 32 KiB × (billions of parameters)^0.6:
    Gemma 3 270M 18 KiB (rule: 15), Llama 3.2 1B 32 (32), Qwen2.5 7B 56 / Llama 3
    8B 128 (111), Llama 3 70B 320 (410). It leans high for large models, which is
    the safe side for a fit verdict. Unknown size: as for a 7B model.
    """
    billions = (parameters or 7e9) / 1e9
    per_token = max(8 << 10, int((32 << 10) * billions ** 0.6))
    return per_token * n_ctx


def fit_remote(size: int, quant: str, n_ctx: int, *, ram: int, vram: int = 0) -> Fit:
    """A file not downloaded yet, of which only the size and quantization are
    known. Always ``estimated``; the trained context is unknown, so ``n_ctx`` is
    taken as is."""
    kv = kv_estimate(parameters_from_size(size, quant), n_ctx)
    return _fit(size, kv, n_ctx, ram, vram, True)


# -- choosing among a repository's files ----------------------------------------


class Candidate(Protocol):
    """A remote file: ``models.sources.RemoteModelFile`` is one."""

    @property
    def name(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def quantization(self) -> str: ...


def quant_of(candidate: Any) -> str:
    return (getattr(candidate, "quantization", "") or
            quantization_from_name(getattr(candidate, "name", ""))).upper()


def rank(quant: str) -> int:
    """Lower is better; unknown quantizations come last."""
    try:
        return PREFERENCE.index(quant.upper())
    except ValueError:
        return len(PREFERENCE)


def recommend(
    files: Iterable[Candidate], n_ctx: int, *, ram: int, vram: int = 0,
) -> Candidate | None:
    """The file to suggest from one repository: the best-ranked quantization (see
    ``PREFERENCE``) whose verdict is "fits"; at equal rank, the smaller file.
    The ranking puts every 1- and 2-bit file last, so one is suggested only when
    nothing of 3 bits or more fits. None when nothing fits (a "tight" file is
    never recommended: it would push the rest of the desktop out)."""
    fitting = [f for f in files if fit_remote(f.size, quant_of(f), n_ctx,
                                               ram=ram, vram=vram).verdict == FITS]
    if not fitting:
        return None
    return min(fitting, key=lambda f: (rank(quant_of(f)), f.size))
