"""Turns a list of messages into the prompt text a model was trained on.

The GGUF's own ``tokenizer.chat_template`` comes first. Files without one (the
starter model among them) get a template chosen by architecture.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from rmm_tray.engine.types import EngineError

# Gemma has no system role: the system text opens the first user turn, as in
# Google's own template.
GEMMA = """{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
  {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
  {%- set loop_messages = messages[1:] -%}
{%- else -%}
  {%- set first_user_prefix = '' -%}
  {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
  {%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}
  {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') + message['content'] | trim + '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"""

CHATML = """{%- for message in messages -%}
{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\n' }}{%- endif -%}"""

LLAMA3 = """{{ bos_token }}
{%- for message in messages -%}
{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}
{%- endfor -%}
{%- if add_generation_prompt -%}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{%- endif -%}"""

FALLBACKS = {"gemma": GEMMA, "chatml": CHATML, "llama-3": LLAMA3}
_BY_ARCH = {"gemma": "gemma", "gemma2": "gemma", "gemma3": "gemma", "gemma3n": "gemma"}
_STOPS = {"gemma": ["<end_of_turn>"], "chatml": ["<|im_end|>"], "llama-3": ["<|eot_id|>"]}


@dataclass
class ChatFormat:
    name: str  # "gguf" or a fallback name
    formatter: Jinja2ChatFormatter
    stop: list[str]
    #: A plain completion: the prompt is the text as given, and the reply keeps
    #: its leading space (" Paris" continues "The capital is").
    raw: bool = False

    def render(self, messages: Sequence[dict[str, Any]]) -> str:
        if self.raw:
            return "".join(str(m.get("content") or "") for m in messages)
        try:
            return self.formatter(messages=list(messages)).prompt
        except Exception as exc:  # templates can raise_exception() on odd role orders
            raise EngineError(f"chat template ({self.name}) failed: {exc}") from None


def fallback_name(architecture: str) -> str:
    return _BY_ARCH.get(architecture, "chatml")


def choose_format(
    *, gguf_template: str | None, architecture: str, override: str, bos: str, eos: str
) -> ChatFormat:
    if override:
        if override not in FALLBACKS:
            names = ", ".join(sorted(FALLBACKS))
            raise EngineError(f"unknown chat_template '{override}' (known: {names})")
        name, template = override, FALLBACKS[override]
    elif gguf_template:
        name, template = "gguf", gguf_template
    else:
        name = fallback_name(architecture)
        template = FALLBACKS[name]
    stop = [eos] if name == "gguf" and eos else list(_STOPS.get(name, []))
    try:
        formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
    except Exception as exc:
        raise EngineError(f"the model's chat template does not parse: {exc}") from None
    return ChatFormat(name, formatter, [s for s in stop if s])


def raw_format(fmt: ChatFormat) -> ChatFormat:
    """``fmt`` for plain text completion: no template, no turn-end stop string."""
    return ChatFormat(f"{fmt.name}, raw", fmt.formatter, [], raw=True)
