"""Remembers the KV state of recent chats, so returning to one does not
re-process its whole history. Bounded in bytes; least recently used goes first.

llama-cpp-python's own save_state() also copies a logits array of
n_tokens x vocab floats (1 MB a token for Gemma's 262k vocabulary); we keep only
the sequence's KV data and its token ids.
"""

from __future__ import annotations

import ctypes
from collections import OrderedDict
from dataclasses import dataclass

import llama_cpp
import numpy as np

SEQ = 0


@dataclass
class ChatState:
    tokens: np.ndarray
    data: bytes

    @property
    def nbytes(self) -> int:
        return len(self.data) + self.tokens.nbytes


def save(llama: llama_cpp.Llama) -> ChatState | None:
    n = llama.n_tokens
    if n == 0:
        return None
    ctx = llama.ctx
    size = llama_cpp.llama_state_seq_get_size(ctx, SEQ)
    buf = (ctypes.c_uint8 * size)()
    written = llama_cpp.llama_state_seq_get_data(ctx, buf, size, SEQ)
    if written == 0:
        return None
    return ChatState(tokens=np.array(llama.input_ids[:n], copy=True), data=bytes(buf)[:written])


def restore(llama: llama_cpp.Llama, state: ChatState) -> bool:
    ctx = llama.ctx
    llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(ctx), True)
    buf = (ctypes.c_uint8 * len(state.data)).from_buffer_copy(state.data)
    if llama_cpp.llama_state_seq_set_data(ctx, buf, len(state.data), SEQ) == 0:
        llama.reset()
        return False
    n = len(state.tokens)
    llama.input_ids[:n] = state.tokens
    llama.n_tokens = n
    # The logits in the context are not those of this state: make generate()
    # decode at least one token before it samples.
    llama._requires_eval = True
    return True


class StateCache:
    def __init__(self, capacity_bytes: int) -> None:
        self.capacity = capacity_bytes
        self._items: OrderedDict[str, ChatState] = OrderedDict()
        self.size = 0

    def put(self, key: str, state: ChatState) -> None:
        self.pop(key)
        if state.nbytes > self.capacity:
            return
        self._items[key] = state
        self.size += state.nbytes
        while self.size > self.capacity:
            _, old = self._items.popitem(last=False)
            self.size -= old.nbytes

    def pop(self, key: str) -> ChatState | None:
        state = self._items.pop(key, None)
        if state is not None:
            self.size -= state.nbytes
        return state

    def clear(self) -> None:
        self._items.clear()
        self.size = 0

    def __contains__(self, key: str) -> bool:
        return key in self._items
