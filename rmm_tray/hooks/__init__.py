"""The plugin bus: hook specifications, the plugin host that loads and calls
plugins, and the plugin-facing types that are not about chats or models."""
