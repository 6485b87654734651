"""First-party plugins. They use only rmm_tray's public API and register through
the same `rmm_tray` entry-point group as any third-party plugin."""
