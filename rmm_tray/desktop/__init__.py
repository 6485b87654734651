"""What the popup asks of the core, without GUI toolkits: the chat and models
controllers, Markdown rendering, and the IPC endpoint. ``shell/`` draws them."""
