"""Models: the models/ folder, GGUF headers, fit estimates, per-model settings,
sources and downloads, and the use cases the CLI and the popup share."""
