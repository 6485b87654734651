"""Chats: one turn end to end, the history contract, prompt templates and the
message drafts that filter plugins rewrite."""
