"""Finds, loads and calls plugins, keeping each one's failures to itself.

pluggy validates and registers the hook implementations. We load entry points
ourselves (pluggy's ``load_setuptools_entrypoints`` lets one failing import stop
the rest) and call implementations one by one, so a plugin that raises loses
only its own contribution.

Plugin code (an import, every hook call) runs on a worker thread of its own with
a time limit, and everything it raises is caught there, ``SystemExit`` and
``KeyboardInterrupt`` included: a plugin cannot end the app, and one that hangs
is abandoned (the thread is a daemon) and skipped for the rest of the session.
The calling thread only waits, so a real Ctrl+C from the person still stops it.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from rmm_tray.errors import one_line
from rmm_tray.hooks import specs as hookspecs

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

log = logging.getLogger(__name__)

FIRST_PARTY = "first-party"
ENTRY_POINT = "entry point"
DROP_IN = "drop-in"
DIST_NAME = "rmm-tray"

#: Time limits (seconds), overridden by config.toml's [plugins] hook_timeout_s and
#: startup_timeout_s. A register_* or filter hook is a quick call, and so is
#: shutdown (quitting waits for it); startup (in the background) may open files or
#: start a service, and an import may pull in a large library.
HOOK_TIMEOUT_S = 5.0
STARTUP_TIMEOUT_S = 30.0
LONG_HOOKS = frozenset({"startup"})


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
    if isinstance(exc, SystemExit):
        return f"SystemExit: the plugin tried to end the app (code {exc.code!r})"
    return f"{type(exc).__name__}: {one_line(exc)}"


class _TimedOut(Exception):
    pass


class _Raised(Exception):
    """What plugin code raised on its thread, whatever it was (SystemExit too),
    carried to the caller as an ordinary exception."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(_one_line(original))
        self.original = original


class _Call:
    """One piece of plugin code on its own daemon thread."""

    def __init__(self, fn: Callable[..., Any], kwargs: dict[str, Any], name: str) -> None:
        self._fn = fn
        self._kwargs = kwargs
        self._done = threading.Event()
        self.result: Any = None
        self.exc: BaseException | None = None
        self.abandoned = False
        threading.Thread(target=self._run, name=f"rmm-plugin-{name}", daemon=True).start()

    def _run(self) -> None:
        try:
            self.result = self._fn(**self._kwargs)
        except BaseException as exc:  # noqa: BLE001 - plugin code must not end the app
            self.exc = exc
        finally:
            self._done.set()

    def wait(self, timeout: float) -> Any:
        """The result; raises _Raised (what the plugin raised) or _TimedOut. Only
        waiting happens here, so a real Ctrl+C lands on the caller as usual."""
        if not self._done.wait(timeout):
            self.abandoned = True
            raise _TimedOut(f"did not return within {timeout:g} s")
        if self.exc is not None:
            raise _Raised(self.exc)
        return self.result


class PluginHost:
    """Owns the pluggy PluginManager and the record of every plugin it tried."""

    def __init__(self, *, hook_timeout_s: float = HOOK_TIMEOUT_S,
                 startup_timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.hook_timeout_s = float(hook_timeout_s)
        self.startup_timeout_s = float(startup_timeout_s)
        #: The plugins that own their name (loaded, or failed to load), by name.
        self.infos: dict[str, PluginInfo] = {}
        #: Every plugin tried, in order, including those refused for a taken name.
        self.tried: list[PluginInfo] = []
        self._failed_hooks: set[tuple[str, str]] = set()
        #: Plugins that overran a time limit: not called again this session.
        self._abandoned: set[str] = set()
        self._lock = threading.Lock()

    def timeout_for(self, hook: str) -> float:
        return self.startup_timeout_s if hook in LONG_HOOKS else self.hook_timeout_s

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
        # importlib.metadata (and the email parser under it) only when plugins load.
        from importlib.metadata import entry_points

        allowed = set(allow) if allow is not None else None
        skip = set(disabled)

        def wanted(name: str) -> bool:
            if safe_mode or name in skip:
                return False
            return allowed is None or name in allowed

        for ep in sorted(entry_points(group=hookspecs.PROJECT), key=_first_party_first):
            first_party = _dist_facts(ep)[0] == DIST_NAME
            if not first_party and not wanted(ep.name):
                continue
            self._load_entry_point(ep, FIRST_PARTY if first_party else ENTRY_POINT)
        if dropin_dir is not None and dropin_dir.is_dir():
            for path in sorted(dropin_dir.glob("*.py")):
                if path.name.startswith("_") or not wanted(path.stem):
                    continue
                self._load_dropin(path)

    def _load_entry_point(self, ep: EntryPoint, source: str) -> None:
        info = PluginInfo(
            name=ep.name,
            source=source,
            version=_dist_facts(ep)[1],
            location=ep.value,
        )
        if self._name_taken(info):
            return
        try:
            plugin = _Call(ep.load, {}, ep.name).wait(self.startup_timeout_s)
        except (_Raised, _TimedOut) as exc:  # a broken plugin must not stop the others
            self._record_failure(info, f"import failed: {_import_failure(exc)}", exc)
            return
        self._register(plugin, info)

    def _load_dropin(self, path: Path) -> None:
        info = PluginInfo(name=path.stem, source=DROP_IN, location=str(path))
        # Before its code runs: a drop-in named like a loaded plugin is refused unseen.
        if self._name_taken(info):
            return
        module_name = f"rmm_tray_dropin_{path.stem}"

        def load() -> Any:
            spec = importlib.util.spec_from_file_location(module_name, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
            return module

        try:
            module = _Call(load, {}, path.stem).wait(self.startup_timeout_s)
        except (_Raised, _TimedOut) as exc:
            sys.modules.pop(module_name, None)
            self._record_failure(info, f"import failed: {_import_failure(exc)}", exc)
            return
        info.version = str(getattr(module, "__version__", ""))
        self._register(module, info)

    def register(self, plugin: object, name: str, source: str = ENTRY_POINT) -> None:
        """Register an already-imported plugin object (tests, embedding apps)."""
        info = PluginInfo(name=name, source=source)
        if not self._name_taken(info):
            self._register(plugin, info)

    def _name_taken(self, info: PluginInfo) -> bool:
        owner = self.infos.get(info.name)
        if owner is None:
            return False
        info.error = f"name already taken by the {owner.source} plugin {owner.name!r}"
        self.tried.append(info)
        log.error("plugin %s (%s, %s) not loaded: %s", info.name, info.source,
                  info.location or "?", info.error)
        return True

    def _register(self, plugin: object, info: PluginInfo) -> None:
        try:
            self.pm.register(plugin, name=info.name)
            self.pm.check_pending()
        except (Exception, SystemExit, GeneratorExit) as exc:  # wrong hook name or signature
            if self.pm.is_registered(plugin):
                self.pm.unregister(plugin)
            self._record_failure(info, f"invalid plugin: {_one_line(exc)}", exc)
            return
        info.hooks = sorted(
            hc.name for hc in self.pm.get_hookcallers(plugin) or [] if hc.has_spec()
        )
        self.infos[info.name] = info
        self.tried.append(info)

    def _record_failure(self, info: PluginInfo, message: str, exc: BaseException | None) -> None:
        info.error = message
        if info.name not in self.infos:
            self.infos[info.name] = info
            self.tried.append(info)
        log.error("plugin %s (%s): %s", info.name, info.source, message)
        if exc is not None:
            exc = exc.original if isinstance(exc, _Raised) else exc
            log.debug("plugin %s traceback", info.name, exc_info=exc)

    # -- calling -----------------------------------------------------------

    def _impls(self, hook: str) -> list[Any]:
        # get_hookimpls() lists them in load order (pluggy's own calls run them backwards).
        return [impl for impl in getattr(self.pm.hook, hook).get_hookimpls()
                if impl.plugin_name not in self._abandoned]

    def _call(self, impl: Any, hook: str, kwargs: dict[str, Any]) -> tuple[bool, Any]:
        """Run one implementation; (True, result), or (False, None) after recording
        its failure."""
        call = _Call(impl.function, kwargs, impl.plugin_name)
        try:
            return True, call.wait(self.timeout_for(hook))
        except _TimedOut as exc:
            with self._lock:
                self._abandoned.add(impl.plugin_name)
            self._hook_failed(impl.plugin_name, hook, exc, timed_out=True)
        except _Raised as exc:
            self._hook_failed(impl.plugin_name, hook, exc.original)
        return False, None

    def call_each(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call every implementation of ``hook`` in load order; return
        (plugin name, result) for those that returned in time without raising."""
        results: list[tuple[str, Any]] = []
        for impl in self._impls(hook):
            ok, result = self._call(impl, hook, {name: kwargs[name] for name in impl.argnames})
            if ok:
                results.append((impl.plugin_name, result))
        return results

    def call_function(self, fn: Callable[[], Any], label: str) -> Any:
        """Run a function a plugin handed over (a prompt variable's value) as a
        hook runs: its own thread, the hook time limit. None when it fails."""
        call = _Call(fn, {}, label)
        try:
            return call.wait(self.hook_timeout_s)
        except (_TimedOut, _Raised) as exc:
            log.error("plugin function %s failed: %s", label, exc)
            return None

    def filter(self, hook: str, draft: Any, **kwargs: Any) -> Any:
        """Run a filter hook (before_send, after_reply) over ``draft``: each plugin
        rewrites a copy, kept only when it returned in time, without raising, with
        text in ``text``; so a failed or late plugin cannot change it afterwards."""
        for impl in self._impls(hook):
            mine = copy.copy(draft)
            args = {name: mine if name == "draft" else kwargs.get(name) for name in impl.argnames}
            ok, _ = self._call(impl, hook, args)
            if not ok:
                continue
            if not isinstance(mine.text, str):
                self._hook_failed(impl.plugin_name, hook,
                                  TypeError(f"left a non-text message ({type(mine.text).__name__})"))
                continue
            draft.text = mine.text
        return draft

    def collect(
        self, hook: str, check: Callable[[Any], bool], what: str, **kwargs: Any
    ) -> list[tuple[str, Any]]:
        """Run a ``register_*`` hook: each plugin calls ``register(obj)``; return (plugin, obj)."""
        found: list[tuple[str, Any]] = []
        for impl in self._impls(hook):
            mine: list[Any] = []
            done = threading.Event()  # a late register() from an abandoned call is dropped

            def register(obj: Any, mine: list[Any] = mine, done: threading.Event = done) -> None:
                if not check(obj):
                    raise TypeError(f"register() expects a {what}, got {type(obj).__name__}")
                if not done.is_set():
                    mine.append(obj)

            args = {name: kwargs.get(name) for name in impl.argnames if name != "register"}
            ok, _ = self._call(impl, hook, {"register": register, **args})
            done.set()
            if ok:  # a half-registered plugin contributes nothing
                found.extend((impl.plugin_name, obj) for obj in mine)
        return found

    def _hook_failed(self, plugin: str, hook: str, exc: BaseException, *,
                     timed_out: bool = False) -> None:
        info = self.infos.get(plugin)
        message = f"in {hook}: {exc}" if timed_out else f"in {hook}: {_one_line(exc)}"
        if timed_out:
            message += "; skipped for the rest of this session"
        if info is not None and (info.error is None or timed_out):
            info.error = message
        with self._lock:
            first = (plugin, hook) not in self._failed_hooks
            self._failed_hooks.add((plugin, hook))
        if first or timed_out:
            log.error("plugin %s failed %s", plugin, message)
            if not timed_out:
                log.debug("plugin %s traceback", plugin, exc_info=exc)
        else:
            log.debug("plugin %s failed again %s", plugin, message)


def _import_failure(exc: Exception) -> str:
    return str(exc) if isinstance(exc, _Raised) else f"{exc}; the plugin is skipped"


#: (normalized name, version) by distribution. importlib.metadata parses a
#: distribution's METADATA file (an email message) on every `.metadata` or
#: `.version`; read once, it is the same for each of the distribution's entry
#: points, and the CLI pays for it on every command that loads plugins. The
#: distribution is kept in the entry so that its id cannot be reused.
_DIST_FACTS: dict[int, tuple[Any, str, str]] = {}


def _dist_facts(ep: EntryPoint) -> tuple[str, str]:
    dist = ep.dist
    if dist is None:
        return "", ""
    known = _DIST_FACTS.get(id(dist))
    if known is None:
        meta = dist.metadata
        known = (dist, (meta["Name"] or "").lower().replace("_", "-"), meta["Version"] or "")
        _DIST_FACTS[id(dist)] = known
    return known[1], known[2]


def _first_party_first(ep: EntryPoint) -> tuple[int, str]:
    return (0 if _dist_facts(ep)[0] == DIST_NAME else 1, ep.name)


def allowed_from_env() -> list[str] | None:
    raw = os.environ.get("RMM_PLUGINS")
    if raw is None:
        return None
    return [name.strip() for name in raw.split(",") if name.strip()]
