"""A few everyday prompt templates, to use and to copy from."""

from rmm_tray import PromptTemplate, hookimpl

TEMPLATES = [
    PromptTemplate(
        name="summarize",
        description="Summarize a text in a few bullet points",
        body="Summarize the following text in {{points}} short bullet points:\n\n{{input}}",
    ),
    PromptTemplate(
        name="translate",
        description="Translate a text into another language",
        system="You are a careful translator. Reply with the translation only.",
        body="Translate into {{language}}:\n\n{{input}}",
    ),
    PromptTemplate(
        name="explain-code",
        description="Explain what a piece of code does",
        body="Explain what this code does, step by step:\n\n```\n{{input}}\n```",
    ),
    PromptTemplate(
        name="fix-grammar",
        description="Correct spelling and grammar, keeping the meaning",
        system="Reply with the corrected text only.",
        body="Correct the spelling and grammar of this text:\n\n{{input}}",
    ),
]


@hookimpl
def register_prompt_templates(register):  # type: ignore[no-untyped-def]
    for template in TEMPLATES:
        register(template)
