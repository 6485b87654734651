"""What this llama.cpp build can do, for `rmm-tray doctor`: asked here so that
the engine stays the only room that imports llama_cpp."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BuildInfo:
    version: str
    gpu_offload: bool
    #: Built with AMX kernels (they crash on the first token: llama.cpp issue 20824).
    amx: bool
    system_info: str


def build_info() -> BuildInfo:
    """Raises ImportError (or what a broken native build raises) when llama_cpp
    cannot be imported."""
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode("utf-8", "replace")
    return BuildInfo(version=getattr(llama_cpp, "__version__", ""),
                     gpu_offload=bool(llama_cpp.llama_supports_gpu_offload()),
                     amx="AMX_INT8 = 1" in info, system_info=info)
