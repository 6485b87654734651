"""An example RunMyModel tray plugin.

It adds a prompt template, ``haiku``, and trims trailing whitespace from every
message before it goes to the model. It imports only from ``rmm_tray``, the
public plugin API.
"""

from rmm_tray import PromptTemplate, hookimpl

HAIKU = PromptTemplate(
    name="haiku",
    description="Write a haiku about a topic",
    system="You are a poet. Reply with the haiku only: three lines, 5-7-5 syllables.",
    body="Write a haiku about {{topic}}.",
)


@hookimpl
def register_prompt_templates(register):
    """Called once when the templates are collected; ``register`` takes each one."""
    register(HAIKU)


@hookimpl
def before_send(draft):
    """Called for each user message before it is sent; rewrite ``draft.text`` in place."""
    draft.text = draft.text.rstrip()
