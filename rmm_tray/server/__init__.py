"""The local OpenAI- and Anthropic-compatible API on the tray's own engine.

Imported only when the server starts (``rmm-tray serve``, the tray's Local API
item, ``[server] enabled``): Starlette and uvicorn stay out of the tray's idle
memory and out of ``rmm-tray --help``. Only this package imports them.
"""
