"""The data folder on disk: where things live, config.toml, and crash-safe writes."""
