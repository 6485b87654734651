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
from rmm_tray.home.files import NotRegularFile, open_regular

MAGIC = b"GGUF"

_SCALARS = {
    0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i",
    6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d",
}
_STRING, _ARRAY = 8, 9
_U64 = struct.Struct("<Q").unpack_from

# ggml tensor types: (elements per block, bytes per block), as gguf-py's
# GGML_QUANT_SIZES has them; what a file's tensor data must hold.
_TENSOR_TYPES = {
    0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34),
    9: (32, 40), 10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210),
    15: (256, 292), 16: (256, 66), 17: (256, 74), 18: (256, 98), 19: (256, 50), 20: (32, 18),
    21: (256, 110), 22: (256, 82), 23: (256, 136), 24: (1, 1), 25: (1, 2), 26: (1, 4),
    27: (1, 8), 28: (1, 8), 29: (256, 56), 30: (1, 2), 34: (256, 54), 35: (256, 66),
    39: (32, 17),
}
_DEFAULT_ALIGNMENT = 32
_MAX_DIMS = 8  # ggml has 4; more is a corrupt header, not a model

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
    #: How long the file must be to hold every tensor its header lists (None:
    #: not known, e.g. a tensor type this reader does not know, or no tensors).
    data_end: int | None = None

    # The properties read values of any type (a hand-made header, a damaged
    # cache): one of the wrong type counts as missing.

    @property
    def architecture(self) -> str:
        value = self.metadata.get("general.architecture", "")
        return value if isinstance(value, str) else ""

    def arch_key(self, suffix: str) -> Any:
        return self.metadata.get(f"{self.architecture}.{suffix}")

    @property
    def context_length(self) -> int | None:
        value = self.arch_key("context_length")
        return value if type(value) is int and value > 0 else None

    @property
    def chat_template(self) -> str | None:
        value = self.metadata.get("tokenizer.chat_template")
        return value if isinstance(value, str) and value.strip() else None

    @property
    def quantization(self) -> str:
        ftype = self.metadata.get("general.file_type")
        if type(ftype) is int and ftype in FILE_TYPES:
            return FILE_TYPES[ftype]
        return quantization_from_name(self.path.name)

    @property
    def name(self) -> str:
        value = self.metadata.get("general.name")
        return value if isinstance(value, str) and value else self.path.stem

    @property
    def size_label(self) -> str:
        value = self.metadata.get("general.size_label", "")
        return value if isinstance(value, str) else ""

    def truncation(self, size: int) -> str | None:
        """Why a file of ``size`` bytes cannot hold what its header promises (one
        line), or None. llama.cpp only finds out when loading, after the header."""
        if self.data_end is None or size >= self.data_end:
            return None
        return (f"file is truncated: {size:,} of the {self.data_end:,} bytes its header "
                "promises (download or copy it again)")


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
        # A vocabulary is 100k+ strings and a model list walks past it (the keys
        # and the tensor list after it matter): a tight loop, no method calls, no
        # bounds test per string (unpack_from raises past the end; ~2x faster).
        buf, pos, end, unpack = self.buf, self.pos, self.end, _U64
        try:
            for _ in range(count):
                pos += 8 + unpack(buf, pos)[0]
        except struct.error:
            raise GGUFError(f"{self.name}: truncated GGUF header") from None
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
    """Parse the header, through the tensor list (which says how long the file must
    be: ``GGUFInfo.data_end``). Arrays (token lists) are skipped unless
    ``keep_arrays``. ``summary`` leaves the tokenizer's keys out (a model list does
    not show them) but reads on past them: llama.cpp writes ``general.file_type``
    after the tokenizer. Only a regular file is opened (see ``open_regular``)."""
    path = Path(path)
    try:
        with open_regular(path) as fh:
            head = fh.read(4)
            if head != MAGIC:
                raise GGUFError(f"{path.name}: not a GGUF file")
            # Through a memoryview: unpacking from it is about twice as fast as from
            # the mmap itself. Released before the mmap closes (nothing keeps it).
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf, memoryview(buf) as view:
                return _parse(view, path, keep_arrays, summary)
    except NotRegularFile as exc:
        raise GGUFError(str(exc)) from None
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
        assert key is not None
        vtype = r.take("<I")
        if summary and key.startswith("tokenizer."):
            r.value(vtype, keep=False)
            continue
        value = r.value(vtype, keep=keep_arrays or vtype != _ARRAY)
        if value is not None:
            meta[key] = value
    data_end = _data_end(r, tensor_count, meta.get("general.alignment"))
    return GGUFInfo(path=path, version=version, tensor_count=tensor_count, metadata=meta,
                    data_end=data_end)


def _data_end(r: _Reader, tensor_count: int, alignment: Any) -> int | None:
    """Where the last tensor's data ends: the aligned end of the tensor list plus
    the furthest offset + size (llama.cpp refuses a file shorter than that)."""
    end: int | None = 0
    for _ in range(tensor_count):
        r.string(keep=False)
        n_dims = r.take("<I")
        if n_dims > _MAX_DIMS:
            raise GGUFError(f"{r.name}: corrupt GGUF tensor list")
        elements = 1
        for _ in range(n_dims):
            elements *= r.take("<Q")
        ttype, offset = r.take("<I"), r.take("<Q")
        block = _TENSOR_TYPES.get(ttype)
        if block is None:
            end = None  # an unknown type's size cannot be told; keep parsing the list
        elif end is not None:
            end = max(end, offset + elements // block[0] * block[1])
    if not tensor_count or end is None:
        return None
    align = alignment if type(alignment) is int and alignment > 0 else _DEFAULT_ALIGNMENT
    start = -(-r.pos // align) * align
    return start + end
