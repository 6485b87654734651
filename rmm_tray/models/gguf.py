"""Reads the metadata header of a GGUF file without loading the model.

The `gguf` package can do this too, but it maps every tensor through numpy; the
CLI lists models on each start and needs only a few keys, fast and import-light.
Format: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
"""

from __future__ import annotations

import mmap
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rmm_tray.errors import RmmError

MAGIC = b"GGUF"

_SCALARS = {
    0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i",
    6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d",
}
_STRING, _ARRAY = 8, 9
_U64 = struct.Struct("<Q").unpack_from

# llama.cpp's LLAMA_FTYPE names (general.file_type), for when the name has no hint.
FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
    10: "Q2_K", 11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M",
    16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S",
    22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M",
    28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0",
    37: "TQ2_0", 38: "MXFP4",
}


# FILE_TYPES' names and the variants uploaders build the same way (Q4_K_XL, Q4_0_4_4).
_QUANT_IN_NAME = re.compile(
    r"(?<![A-Za-z0-9])((?:I?Q\d(?:_[A-Z0-9]+)*)|F16|BF16|F32|MXFP4|TQ\d_0)(?![A-Za-z0-9])", re.IGNORECASE
)


def quantization_from_name(name: str) -> str:
    """The quantization that file names carry by convention (``...-Q4_K_M.gguf`` ->
    ``"Q4_K_M"``); empty when the name has none."""
    match = _QUANT_IN_NAME.search(name.replace(".gguf", ""))
    return match.group(1).upper() if match else ""


class GGUFError(RmmError, ValueError):
    """The file is not a readable GGUF file; the message is one line."""


@dataclass
class GGUFInfo:
    path: Path
    version: int
    tensor_count: int
    metadata: dict[str, Any]

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", ""))

    def arch_key(self, suffix: str) -> Any:
        return self.metadata.get(f"{self.architecture}.{suffix}")

    @property
    def context_length(self) -> int | None:
        value = self.arch_key("context_length")
        return int(value) if value is not None else None

    @property
    def chat_template(self) -> str | None:
        value = self.metadata.get("tokenizer.chat_template")
        return value if isinstance(value, str) and value.strip() else None

    @property
    def quantization(self) -> str:
        ftype = self.metadata.get("general.file_type")
        if isinstance(ftype, int) and ftype in FILE_TYPES:
            return FILE_TYPES[ftype]
        return quantization_from_name(self.path.name)

    @property
    def name(self) -> str:
        return str(self.metadata.get("general.name", "") or self.path.stem)

    @property
    def size_label(self) -> str:
        return str(self.metadata.get("general.size_label", ""))


# Compiled once: a model list parses ~30 keys in each of hundreds of headers.
_STRUCTS: dict[str, struct.Struct] = {f: struct.Struct(f) for f in {*_SCALARS.values(), "<Q", "<I"}}


class _Reader:
    def __init__(self, buf: Any, name: str) -> None:
        self.buf = buf
        self.end = len(buf)
        self.pos = 0
        self.name = name

    def take(self, fmt: str) -> Any:
        st = _STRUCTS[fmt]
        if self.pos + st.size > self.end:
            raise GGUFError(f"{self.name}: truncated GGUF header")
        (value,) = st.unpack_from(self.buf, self.pos)
        self.pos += st.size
        return value

    def string(self, keep: bool = True) -> str | None:
        start = self.pos + 8
        if start > self.end:
            raise GGUFError(f"{self.name}: truncated GGUF header")
        stop = start + _U64(self.buf, self.pos)[0]
        if stop > self.end:
            raise GGUFError(f"{self.name}: truncated GGUF header")
        self.pos = stop
        if not keep:
            return None
        return str(self.buf[start:stop], "utf-8", "replace")

    def _skip_strings(self, count: int) -> None:
        # A vocabulary is 100k+ strings: a tight loop, no method calls.
        buf, pos, end, unpack = self.buf, self.pos, self.end, _U64
        for _ in range(count):
            if pos + 8 > end:
                raise GGUFError(f"{self.name}: truncated GGUF header")
            pos += 8 + unpack(buf, pos)[0]
        if pos > end:
            raise GGUFError(f"{self.name}: truncated GGUF header")
        self.pos = pos

    def value(self, vtype: int, keep: bool) -> Any:
        if vtype in _SCALARS:
            return self.take(_SCALARS[vtype])
        if vtype == _STRING:
            return self.string(keep)
        if vtype == _ARRAY:
            itype, count = self.take("<I"), self.take("<Q")
            if itype in _SCALARS and not keep:
                # Large vocab arrays: skip them whole instead of item by item.
                self.pos += struct.calcsize(_SCALARS[itype]) * count
                if self.pos > len(self.buf):
                    raise GGUFError(f"{self.name}: truncated GGUF header")
                return None
            if itype == _STRING and not keep:
                self._skip_strings(count)
                return None
            items = [self.value(itype, keep) for _ in range(count)]
            return items if keep else None
        raise GGUFError(f"{self.name}: unknown GGUF value type {vtype}")


def read_gguf(path: Path, *, keep_arrays: bool = False, summary: bool = False) -> GGUFInfo:
    """Parse the header. Arrays (token lists) are skipped unless ``keep_arrays``.
    ``summary`` stops at the tokenizer's keys: enough for a model list, and fast."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            head = fh.read(4)
            if head != MAGIC:
                raise GGUFError(f"{path.name}: not a GGUF file")
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                return _parse(buf, path, keep_arrays, summary)
    except OSError as exc:
        raise GGUFError(f"{path.name}: {exc.strerror or exc}") from None


def _parse(buf: Any, path: Path, keep_arrays: bool, summary: bool) -> GGUFInfo:
    r = _Reader(buf, path.name)
    r.pos = 4
    version = r.take("<I")
    if version not in (2, 3):
        raise GGUFError(f"{path.name}: unsupported GGUF version {version}")
    tensor_count, kv_count = r.take("<Q"), r.take("<Q")
    if kv_count > 1_000_000 or tensor_count > 10_000_000:
        raise GGUFError(f"{path.name}: corrupt GGUF header")
    meta: dict[str, Any] = {}
    for _ in range(kv_count):
        key = r.string()
        if summary and key.startswith("tokenizer.") and "general.architecture" in meta:
            break
        vtype = r.take("<I")
        value = r.value(vtype, keep=keep_arrays or vtype != _ARRAY)
        if value is not None:
            meta[key] = value
    return GGUFInfo(path=path, version=version, tensor_count=tensor_count, metadata=meta)
