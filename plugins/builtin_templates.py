"""A few everyday prompts, to use and to copy from (in the builder: Duplicate)."""

from rmm_tray import PromptBlock, PromptTemplate, VariableSpec, hookimpl

LANGUAGES = ("English", "French", "German", "Spanish", "Italian", "Portuguese", "Dutch",
             "Japanese", "Chinese")

TEMPLATES = [
    PromptTemplate(
        name="summarize",
        description="Summarize a text in a few bullet points",
        blocks=(
            PromptBlock("instructions", "Summarize the following text in {{points}} short "
                        "bullet points."),
            PromptBlock("user", "{{input}}"),
        ),
        variable_specs=(VariableSpec("points", "number", default="3", min=1, max=20,
                                     description="how many bullet points"),),
        tags=("writing",),
    ),
    PromptTemplate(
        name="translate",
        description="Translate a text into another language",
        blocks=(
            PromptBlock("system", "You are a careful translator. Reply with the translation only."),
            PromptBlock("instructions", "Translate into {{language}}:"),
            PromptBlock("user", "{{input}}"),
        ),
        variable_specs=(VariableSpec("language", "choice", default="English", options=LANGUAGES,
                                     description="the language to translate into"),),
        tags=("writing", "language"),
    ),
    PromptTemplate(
        name="explain-code",
        description="Explain what a piece of code does",
        body="Explain what this code does, step by step:\n\n```\n{{input}}\n```",
        tags=("code",),
    ),
    PromptTemplate(
        name="fix-grammar",
        description="Correct spelling and grammar, keeping the meaning",
        system="Reply with the corrected text only.",
        body="Correct the spelling and grammar of this text:\n\n{{input}}",
        tags=("writing",),
    ),
    PromptTemplate(
        name="rewrite-selection",
        description="Rewrite the text selected on the desktop in another tone",
        blocks=(
            PromptBlock("system", "You rewrite text. Reply with the rewritten text only."),
            PromptBlock("instructions", "Rewrite this text in a {{tone}} tone:"),
            PromptBlock("user", "{{selection}}"),
        ),
        variable_specs=(VariableSpec("tone", "choice", default="friendly",
                                     options=("friendly", "formal", "concise", "playful")),),
        tags=("writing", "selection"),
    ),
]


@hookimpl
def register_prompt_templates(register):  # type: ignore[no-untyped-def]
    for template in TEMPLATES:
        register(template)
