"""Use cases: OpenAI-compatible servers as model sources (test, add, list, remove).

One implementation for `rmm-tray remote add|list|rm` and the popup's Models
view. The servers live in config.toml's ``[[remote]]`` tables, which the
first-party remote_openai plugin reads; its helpers (URL rules, the connection
test, the keyring) are used here so both ends agree on what a server is. A key
is never returned or printed: it stays in the environment variable named, in
the OS keyring, or (where there is none) in config.toml made private.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rmm_tray.errors import RmmError

if TYPE_CHECKING:
    from rmm_tray.app import App

#: How many model names a summary spells out before it only counts.
SHOWN_MODELS = 5


class RemoteUsage(RmmError):
    """A remote server that cannot be added or removed as asked."""


@dataclass(frozen=True)
class Added:
    name: str
    #: The OpenAI base the requests go to (``…/v1``).
    base: str
    #: The models it answered with; None when it was not asked (``--no-check``).
    models: list[str] | None
    #: Where its key is kept: "keyring", "config" (config.toml, mode 0600), "env" or "".
    key_in: str


@dataclass(frozen=True)
class ServerListing:
    name: str
    base_url: str
    #: Where the key comes from, as `remote list` shows it (never the key).
    key: str
    #: Full names, SERVER:MODEL.
    models: list[str] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "base_url": self.base_url, "key": self.key,
                "models": self.models, "error": self.error}


def _plugin() -> Any:
    from rmm_tray.plugins import remote_openai

    return remote_openai


def models_summary(models: list[str]) -> str:
    """``3 models: a, b, c``; a long list is cut after a few names."""
    count = f"{len(models)} model{'' if len(models) == 1 else 's'}"
    if not models:
        return count
    shown = ", ".join(models[:SHOWN_MODELS]) + (", …" if len(models) > SHOWN_MODELS else "")
    return f"{count}: {shown}"


def configured(app: "App") -> list[Any]:
    """The ``[[remote]]`` servers of config.toml (RemoteServer each)."""
    return _plugin().servers_from_config(app.config.get("remote"))


def _checked(name: str, url: str) -> str:
    ro = _plugin()
    name, url = name.strip(), url.strip()
    if not ro.valid_name(name):
        raise RemoteUsage(f"a server's name is letters, digits, '-', '_' or '.', got {name!r}")
    if not url:
        raise RemoteUsage("a server needs its base URL, e.g. http://gpu-box:8080")
    ro.api_base(url)
    return name


def check_server(name: str, url: str, *, api_key: str = "", api_key_env: str = "") -> list[str]:
    """Ask the server for its models with the key given; raises the plugin's one
    line (unreachable, TLS, a refused key, not an OpenAI server)."""
    ro = _plugin()
    name = _checked(name, url)
    return ro.OpenAIRemote(ro.RemoteServer(name, url.strip(), api_key_env, api_key.strip())).models()


def add_server(app: "App", name: str, url: str, *, api_key: str = "", api_key_env: str = "",
               check: bool = True) -> Added:
    """Test the server (unless ``check`` is off), then add it to config.toml and
    keep its key in the keyring, else in config.toml made private. Nothing is
    written when the test fails. ``app.config`` and ``app.engines`` follow."""
    ro = _plugin()
    name, url, api_key = _checked(name, url), url.strip(), api_key.strip()
    _refuse_taken(app, name)
    models = check_server(name, url, api_key=api_key, api_key_env=api_key_env) if check else None
    _refuse_taken(app, name, fresh=True)  # before the keyring: another server's key stays
    in_config = bool(api_key) and not ro.keyring_set(name, api_key)
    _write(app, ro.RemoteServer(name, url, api_key_env, api_key if in_config else ""))
    _forget(app, name)
    key_in = "config" if in_config else "keyring" if api_key else "env" if api_key_env else ""
    return Added(name, ro.api_base(url), models, key_in)


def remove_server(app: "App", name: str) -> None:
    """Take the server out of config.toml and its key out of the keyring."""
    from rmm_tray.home.config_edit import edit_config

    def change(doc: Any) -> None:
        # Looked up in the file itself, under its lock: what another process wrote counts.
        aot = doc.get("remote") or []
        if not any(t.get("name") == name for t in aot):
            raise RemoteUsage(f"no server '{name}'; see 'rmm-tray remote list'")
        for i in reversed(range(len(aot))):
            if aot[i].get("name") == name:
                del aot[i]
        if not len(aot):
            del doc["remote"]

    app.config = edit_config(app.home.config_file, change)
    _plugin().keyring_delete(name)
    _forget(app, name)


def list_servers(app: "App", timeout_s: float = 15.0) -> list[ServerListing]:
    """Each server with the models it serves now or its one line, all asked at once."""
    from rmm_tray.hooks.engines import engine_models

    ro = _plugin()
    servers = configured(app)
    listed = engine_models({s.name: ro.OpenAIRemote(s) for s in servers}, timeout_s=timeout_s)
    return [ServerListing(s.name, s.base_url, s.key_source(), e.models, e.error)
            for s, e in zip(servers, listed)]


def key_env_note(api_key_env: str) -> str | None:
    """A note when the variable named is not set in this process."""
    if api_key_env and not os.environ.get(api_key_env):
        return f"${api_key_env} is not set here; the key is read from it at each request"
    return None


# -- config.toml ---------------------------------------------------------------------


def _refuse_taken(app: "App", name: str, *, fresh: bool = False) -> None:
    """``fresh``: the file as it is now (the CLI may have added one while the app ran)."""
    from rmm_tray.home.config import Config

    config = Config.load(app.home.config_file, create=False) if fresh else app.config
    tables = config.get("remote")
    if any(s.name == name for s in _plugin().servers_from_config(tables)):
        raise RemoteUsage(f"there is a server '{name}' already; remove it first "
                          f"('rmm-tray remote rm {name}')")


def _write(app: "App", server: Any) -> None:
    import tomlkit

    from rmm_tray.home.config_edit import edit_config

    def change(doc: Any) -> None:
        # Checked again under the file's lock: another process may have added it meanwhile.
        if any(t.get("name") == server.name for t in doc.get("remote") or []):
            raise RemoteUsage(f"there is a server '{server.name}' already")
        if "remote" not in doc:
            doc["remote"] = tomlkit.aot()
        table = tomlkit.table()
        table["name"] = server.name
        table["base_url"] = server.base_url
        if server.api_key_env:
            table["api_key_env"] = server.api_key_env
        if server.api_key:
            table["api_key"] = server.api_key
        doc["remote"].append(table)

    path = app.home.config_file
    if server.api_key:
        _private(path)
    app.config = edit_config(path, change)
    if server.api_key:
        _private(path)


def _private(path: Path) -> None:
    """A key in config.toml: the file becomes readable by its owner only (the
    atomic write keeps the mode of the file it replaces)."""
    try:
        (path.resolve() if path.exists() else path).touch(mode=0o600, exist_ok=True)
        os.chmod(path.resolve(), 0o600)
    except OSError as exc:
        raise RmmError(f"config.toml: cannot make it private: {exc.strerror or exc}") from None


def _forget(app: "App", name: str) -> None:
    """The next request and list see the change without a restart: the engines
    are built again from the new config, and the keyring is asked again (the
    plugin remembers its answer for the process's life)."""
    _plugin().keyring_get.cache_clear()
    app.__dict__.pop("engines", None)  # App.engines is a cached_property
