"""Finds, loads and calls plugins, keeping each one's failures to itself.

pluggy validates and registers the hook implementations. We load entry points
ourselves (pluggy's ``load_setuptools_entrypoints`` lets one failing import stop
the rest) and call implementations one by one, so a plugin that raises loses
only its own contribution.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

import pluggy

from rmm_tray.errors import one_line
from rmm_tray.hooks import specs as hookspecs

log = logging.getLogger(__name__)

FIRST_PARTY = "first-party"
ENTRY_POINT = "entry point"
DROP_IN = "drop-in"
DIST_NAME = "rmm-tray"


@dataclass
class PluginInfo:
    name: str
    source: str
    version: str = ""
    location: str = ""
    hooks: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def status(self) -> str:
        return "ok" if self.error is None else f"failed: {self.error}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "source": self.source,
            "location": self.location,
            "hooks": self.hooks,
            "status": "ok" if self.error is None else "failed",
            "error": self.error,
        }


def _one_line(exc: BaseException) -> str:
    """A plugin's failure names the exception's type: it is for the plugin's author."""
    return f"{type(exc).__name__}: {one_line(exc)}"


class PluginHost:
    """Owns the pluggy PluginManager and the record of every plugin it tried."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self._failed_hooks: set[tuple[str, str]] = set()

    # -- loading -----------------------------------------------------------

    def load(
        self,
        *,
        dropin_dir: Path | None = None,
        safe_mode: bool = False,
        allow: Iterable[str] | None = None,
        disabled: Iterable[str] = (),
    ) -> None:
        """First-party plugins always; third-party ones unless ``safe_mode``,
        limited to ``allow`` (``RMM_PLUGINS``) when given and minus ``disabled``."""
        allowed = set(allow) if allow is not None else None
        skip = set(disabled)

        def wanted(name: str) -> bool:
            if safe_mode or name in skip:
                return False
            return allowed is None or name in allowed

        for ep in sorted(entry_points(group=hookspecs.PROJECT), key=_first_party_first):
            first_party = _dist_name(ep) == DIST_NAME
            if not first_party and not wanted(ep.name):
                continue
            self._load_entry_point(ep, FIRST_PARTY if first_party else ENTRY_POINT)
        if dropin_dir is not None and dropin_dir.is_dir():
            for path in sorted(dropin_dir.glob("*.py")):
                if path.name.startswith("_") or not wanted(path.stem):
                    continue
                self._load_dropin(path)

    def _load_entry_point(self, ep: EntryPoint, source: str) -> None:
        dist = ep.dist
        info = PluginInfo(
            name=ep.name,
            source=source,
            version=dist.version if dist is not None else "",
            location=ep.value,
        )
        try:
            plugin = ep.load()
        except Exception as exc:  # a broken plugin must not stop the others
            self._record_failure(info, f"import failed: {_one_line(exc)}", exc)
            return
        self._register(plugin, info)

    def _load_dropin(self, path: Path) -> None:
        info = PluginInfo(name=path.stem, source=DROP_IN, location=str(path))
        module_name = f"rmm_tray_dropin_{path.stem}"
        try:
            spec = importlib.util.spec_from_file_location(module_name, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
        except Exception as exc:
            sys.modules.pop(module_name, None)
            self._record_failure(info, f"import failed: {_one_line(exc)}", exc)
            return
        info.version = str(getattr(module, "__version__", ""))
        self._register(module, info)

    def register(self, plugin: object, name: str, source: str = ENTRY_POINT) -> None:
        """Register an already-imported plugin object (tests, embedding apps)."""
        self._register(plugin, PluginInfo(name=name, source=source))

    def _register(self, plugin: object, info: PluginInfo) -> None:
        if info.name in self.infos:
            self._record_failure(info, "another plugin already has this name", None)
            return
        try:
            self.pm.register(plugin, name=info.name)
            self.pm.check_pending()
        except Exception as exc:  # wrong hook name or signature
            if self.pm.is_registered(plugin):
                self.pm.unregister(plugin)
            self._record_failure(info, f"invalid plugin: {_one_line(exc)}", exc)
            return
        info.hooks = sorted(
            hc.name for hc in self.pm.get_hookcallers(plugin) or [] if hc.has_spec()
        )
        self.infos[info.name] = info

    def _record_failure(self, info: PluginInfo, message: str, exc: BaseException | None) -> None:
        info.error = message
        self.infos.setdefault(info.name, info)
        log.error("plugin %s (%s): %s", info.name, info.source, message)
        if exc is not None:
            log.debug("plugin %s traceback", info.name, exc_info=exc)

    # -- calling -----------------------------------------------------------

    def call_each(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call every implementation of ``hook`` in load order; return
        (plugin name, result) for those that did not raise."""
        caller = getattr(self.pm.hook, hook)
        results: list[tuple[str, Any]] = []
        # get_hookimpls() lists them in load order (pluggy's own calls run them backwards).
        for impl in caller.get_hookimpls():
            args = {name: kwargs[name] for name in impl.argnames}
            try:
                results.append((impl.plugin_name, impl.function(**args)))
            except Exception as exc:
                self._hook_failed(impl.plugin_name, hook, exc)
        return results

    def collect(
        self, hook: str, check: Callable[[Any], bool], what: str, **kwargs: Any
    ) -> list[tuple[str, Any]]:
        """Run a ``register_*`` hook: each plugin calls ``register(obj)``; return (plugin, obj)."""
        found: list[tuple[str, Any]] = []
        current = {"plugin": ""}

        def register(obj: Any) -> None:
            if not check(obj):
                raise TypeError(f"register() expects a {what}, got {type(obj).__name__}")
            found.append((current["plugin"], obj))

        caller = getattr(self.pm.hook, hook)
        for impl in caller.get_hookimpls():
            current["plugin"] = impl.plugin_name
            before = len(found)
            args = {name: kwargs.get(name) for name in impl.argnames if name != "register"}
            try:
                impl.function(register=register, **args)
            except Exception as exc:
                del found[before:]  # a half-registered plugin contributes nothing
                self._hook_failed(impl.plugin_name, hook, exc)
        return found

    def _hook_failed(self, plugin: str, hook: str, exc: Exception) -> None:
        info = self.infos.get(plugin)
        message = f"in {hook}: {_one_line(exc)}"
        if info is not None and info.error is None:
            info.error = message
        if (plugin, hook) not in self._failed_hooks:
            self._failed_hooks.add((plugin, hook))
            log.error("plugin %s failed %s", plugin, message)
            log.debug("plugin %s traceback", plugin, exc_info=exc)
        else:
            log.debug("plugin %s failed again %s", plugin, message)


def _dist_name(ep: EntryPoint) -> str:
    dist = ep.dist
    if dist is None:
        return ""
    return (dist.metadata["Name"] or "").lower().replace("_", "-")


def _first_party_first(ep: EntryPoint) -> tuple[int, str]:
    return (0 if _dist_name(ep) == DIST_NAME else 1, ep.name)


def allowed_from_env() -> list[str] | None:
    raw = os.environ.get("RMM_PLUGINS")
    if raw is None:
        return None
    return [name.strip() for name in raw.split(",") if name.strip()]


