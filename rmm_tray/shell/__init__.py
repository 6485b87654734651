"""The desktop shell: tray icon, hotkey, popup window. The only modules that
import pystray, webview and pynput (ruff's banned-api rule enforces it)."""
