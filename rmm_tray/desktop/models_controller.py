"""What the popup's Models view asks of the app: the Hub's catalogue, the
download queue, the models in models/ and the GGUF files other apps left on
this computer.

As with the chat controller, every action returns at once: the work runs on a
daemon thread and what the page should show comes back as events through
``emit``:

- ``models.results`` {query, sort, items: [{id, downloads, likes, last_modified, gated}]}
- ``models.repo`` {id, summary, license, gated, files: [{name, quantization, size, parts,
  fit, recommended, local_name}]}
- ``models.local`` {items: [{name, size, quantization, architecture, parameters, context,
  parts, path, linked, default, loaded, fit, error}]}
- ``models.found`` {items: [{name, size, source, label, path, imported}]}
- ``models.settings`` {name, settings, effective, trained_context, templates}: a model's own
  values (``[models."NAME"]``), what each setting comes to with the defaults under them,
  the context it was trained for (None when unknown), and the chat templates it may name
- ``downloads`` {items: [Download.to_dict() + {model}]}
- ``models.servers`` {items: [{name, base_url, key, models, error, summary}]}: the
  OpenAI-compatible servers of config.toml, each with its models now or its one line
- ``models.server_form`` {seq, action, ok, message}: what *Test connection* or *Add*
  in the Add server form came to (``seq`` is the page's, echoed back)
- ``models.notice`` {message} and ``models.error`` {message}: one line each
- ``view`` {name}: the page switches between "chat" and "models"

Nothing here imports a GUI toolkit or llama.cpp.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rmm_tray.desktop.work import Background
from rmm_tray.errors import RmmError
from rmm_tray.home.config import MODEL_SETTING_KEYS
from rmm_tray.models.acquire import catalogue, discover, import_model, local_name, pick_file, repo_files
from rmm_tray.models.manage import delete_model, pin_default
from rmm_tray.models.settings import CHAT_TEMPLATES, LOAD_KEYS, checked_settings
from rmm_tray.models.store import ModelNotFound, exact_model, list_models
from rmm_tray.units import human_size

if TYPE_CHECKING:
    from concurrent.futures import Future

    from rmm_tray.app import App
    from rmm_tray.desktop.chat_controller import ChatController
    from rmm_tray.models.downloads import Download
    from rmm_tray.models.sources import ModelSource, RemoteRepoDetails

log = logging.getLogger(__name__)

Emit = Callable[[dict[str, Any]], None]

SORTS = ("downloads", "recent", "likes")
SEARCH_LIMIT = 30
MAX_QUERY = 200
# The Downloader tells its listeners up to ~10 times a second per download; the
# page and the tray tooltip need far fewer updates to look live.
PUBLISH_EVERY_S = 0.25
ACTIVE = ("queued", "downloading", "verifying")



class ModelsController:
    def __init__(
        self,
        app: "App",
        emit: Emit,
        *,
        chat: "ChatController | None" = None,
        on_downloads: Callable[[list[dict[str, Any]], list[dict[str, Any]]], None] | None = None,
        work: Background | None = None,
    ) -> None:
        """``on_downloads(items, finished)`` runs on the publishing thread after each
        update: the tray shows progress in its tooltip and says when one finished."""
        self.app = app
        self.emit = emit
        self.chat = chat
        self.work = work or Background()
        self.on_downloads = on_downloads or (lambda items, finished: None)
        self.publish_every_s = PUBLISH_EVERY_S
        self._details: dict[str, tuple["ModelSource", "RemoteRepoDetails"]] = {}
        self._search_seq = 0
        self._lock = threading.Lock()
        self._changed = threading.Event()
        #: Set while the publisher has nothing left to send (tests wait on it).
        self.publisher_idle = threading.Event()
        self._dismissed: set[str] = set()
        self._finished: set[str] = set()
        self._started = False
        # config.toml is read, changed and written whole: one change at a time.
        self._config_lock = threading.Lock()

    # -- life cycle ----------------------------------------------------------

    def start(self, *, resume: bool = True) -> None:
        """Listen to the download queue and, in the background, queue again what
        a previous run left unfinished."""
        if self._started:
            return
        self._started = True
        self.app.downloads.listeners.append(self._download_changed)
        threading.Thread(target=self._publisher, name="rmm-downloads-publish", daemon=True).start()
        if resume:
            self._spawn("resume", self._resume)

    def _spawn(self, name: str, fn: Callable[..., None], *args: Any) -> "Future[Any]":
        """The Future is for tests and scripts to wait on; the page never does."""
        return self.work.run(f"models {name}", fn, *args,
                      on_error=lambda line: self.emit({"type": "models.error", "message": line}))

    # -- actions (any thread; never block) ------------------------------------

    def search(self, query: str = "", sort: str = "downloads") -> "Future[Any]":
        query = str(query).strip()[:MAX_QUERY]
        sort = sort if sort in SORTS else "downloads"
        with self._lock:
            self._search_seq += 1
            seq = self._search_seq
        return self._spawn("search", self._search, query, sort, seq)

    def open_repo(self, repo_id: str) -> "Future[Any]":
        return self._spawn("repo", self._open_repo, str(repo_id))

    def pull(self, repo_id: str, name: str) -> "Future[Any]":
        return self._spawn("pull", self._pull, str(repo_id), str(name))

    def cancel(self, job_id: str) -> None:
        self.app.downloads.cancel(str(job_id))

    def dismiss(self, job_id: str) -> None:
        """Take a finished download off the list (a running one stays)."""
        for job in self.app.downloads.jobs():
            if job.id == job_id and job.finished:
                self._dismissed.add(job.id)
        self._changed.set()

    def downloads(self) -> None:
        self._changed.set()

    def local(self) -> "Future[Any]":
        return self._spawn("list", self._emit_local)

    def delete(self, name: str) -> "Future[Any]":
        """The page has asked the person first; a loaded model is unloaded before."""
        return self._spawn("delete", self._delete, str(name))

    def set_default(self, name: str) -> "Future[Any]":
        return self._spawn("default", self._set_default, str(name))

    def use(self, name: str) -> None:
        """"Use this model": load it for the chat and go back to the chat. The chat
        loads only a model named exactly as the list shows it (never a path the
        page sent); it checks on its worker thread, as this must not block."""
        name = str(name)
        if self.chat is None:
            raise RmmError("there is no chat to use the model in")
        self.chat.set_model(name)
        self.emit({"type": "view", "name": "chat"})
        self.emit({"type": "focus"})

    def settings(self, name: str) -> "Future[Any]":
        """A model's own settings and the values in effect, for its settings form."""
        return self._spawn("settings", self._emit_settings, str(name))

    def save_settings(self, name: str, values: Any, unset: Any = ()) -> "Future[Any]":
        """Set the model's own ``values`` (text as typed, or numbers; an empty one
        is unset) and drop the keys in ``unset``. All are checked before anything
        is written: one bad value changes nothing."""
        return self._spawn("save-settings", self._save_settings, str(name), values, unset)

    def reset_settings(self, name: str) -> "Future[Any]":
        """Drop the model's own settings: it follows [model] and [generation] again."""
        return self._spawn("reset-settings", self._reset_settings, str(name))

    def discover(self) -> "Future[Any]":
        return self._spawn("discover", self._emit_found)

    def servers(self) -> "Future[Any]":
        return self._spawn("servers", self._emit_servers)

    def test_server(self, name: str, url: str, api_key: str, seq: str) -> "Future[Any]":
        """*Test connection*: the models the server lists with this key, or its one line."""
        return self._form("test", self._test_server, str(name), str(url), str(api_key), str(seq))

    def add_server(self, name: str, url: str, api_key: str, seq: str) -> "Future[Any]":
        """*Add*: tested first; a failure leaves config.toml as it was and the form open."""
        return self._form("add", self._add_server, str(name), str(url), str(api_key), str(seq))

    def remove_server(self, name: str) -> "Future[Any]":
        return self._spawn("remove-server", self._remove_server, str(name))

    def import_model(self, name: str) -> "Future[Any]":
        return self._spawn("import", self._import, str(name))

    # -- the Hub ---------------------------------------------------------------

    def _search(self, query: str, sort: str, seq: int) -> None:
        found = catalogue(self.app).search(query, sort=sort, limit=SEARCH_LIMIT)
        if seq != self._search_seq:
            return  # a newer search was typed meanwhile: its results will come
        self.emit({"type": "models.results", "query": query, "sort": sort, "items": [
            {"id": r.id, "downloads": r.downloads, "likes": r.likes,
             "last_modified": r.last_modified, "gated": r.gated} for r in found]})

    def _details_for(self, repo_id: str, *, fresh: bool = False) -> tuple["ModelSource", "RemoteRepoDetails"]:
        cached = None if fresh else self._details.get(repo_id)
        if cached is None:
            source = catalogue(self.app)
            cached = (source, source.repo(repo_id))
            self._details[repo_id] = cached
        return cached

    def _open_repo(self, repo_id: str) -> None:
        _, details = self._details_for(repo_id, fresh=True)
        self.emit({"type": "models.repo", "id": details.id, "summary": details.summary,
                   "license": details.license, "gated": details.gated,
                   "files": repo_files(self.app, details)})

    def _pull(self, repo_id: str, name: str) -> None:
        source, details = self._details_for(repo_id)
        file = pick_file(self.app, details, name)
        with self._config_lock:
            pin_default(self.app)  # the download must not become the default by sorting first
        job = self.app.downloads.submit(source, file)  # DownloadError: one line, at once
        self._dismissed.discard(job.id)
        self._changed.set()

    # -- downloads → page and tray ----------------------------------------------

    def _download_changed(self, job: "Download") -> None:
        """Called on the Downloader's thread: only wake the publisher."""
        self._changed.set()

    def _publisher(self) -> None:
        while True:
            self.publisher_idle.set()
            self._changed.wait()
            self.publisher_idle.clear()
            self._changed.clear()
            try:
                self._publish()
            except Exception:  # the publisher must outlive any one bad update
                log.exception("publishing downloads failed")
            time.sleep(self.publish_every_s)

    def download_items(self) -> list[dict[str, Any]]:
        items = []
        for job in self.app.downloads.jobs():
            if job.id in self._dismissed:
                continue
            item = job.to_dict()
            item["model"] = local_name(job.repo, job.name) if job.state == "done" else None
            items.append(item)
        return items

    def _publish(self) -> None:
        items = self.download_items()
        finished = [d for d in items if d["state"] in ("done", "failed", "cancelled")
                    and d["id"] not in self._finished]
        self._finished.update(d["id"] for d in finished)
        self.emit({"type": "downloads", "items": items})
        if any(d["state"] == "done" for d in finished):
            # A new model: the Models view's list and the chat's model picker show it.
            self._emit_local()
            if self.chat is not None:
                self.chat.push_state()
        self.on_downloads(items, finished)

    def _resume(self) -> None:
        resumed = self.app.downloads.resume_interrupted()
        if resumed:
            log.info("resuming %d interrupted download(s)", len(resumed))

    # -- models/ ---------------------------------------------------------------

    def local_items(self) -> list[dict[str, Any]]:
        models = list_models(self.app.home.models)
        try:
            default: Path | None = self.app.default_model()
        except ModelNotFound:
            default = None
        loaded = self.app.loaded.path if self.app.loaded is not None else None
        items = []
        for m in models:
            d = m.to_dict()
            items.append({
                "name": d["name"], "size": d["size"], "quantization": d["quantization"],
                "architecture": d["architecture"], "parameters": d["parameters"],
                "context": d["context_length"], "parts": d["parts"], "path": d["path"],
                "linked": d["linked"], "error": d["error"],
                "default": m.path == default, "loaded": m.path == loaded,
                "fit": local_fit(self.app, m),
            })
        return items

    def _emit_local(self) -> None:
        self.emit({"type": "models.local", "items": self.local_items()})

    def _exact(self, name: str) -> Path:
        """The model named exactly ``name`` in the list: acting on a fuzzy match
        could change another model, and a path could lead out of models/."""
        return exact_model(name, self.app.home.models)

    def _delete(self, name: str) -> None:
        # By its exact name, as the list shows it (delete_model refuses anything
        # else); unloads it first when it is the loaded model, forgets its settings.
        path = delete_model(self.app, name)
        if self.chat is not None and self.chat.model == path:
            self.chat.model = None
        self.emit({"type": "models.notice", "message": f"Deleted {name}"})
        self._after_models_changed()

    def _set_default(self, name: str) -> None:
        from rmm_tray.models.manage import set_default

        self._exact(name)
        with self._config_lock:
            set_default(self.app, name)
        self.emit({"type": "models.notice", "message": f"{name} is the default model"})
        self._after_models_changed()

    # -- one model's settings ----------------------------------------------------------

    def settings_event(self, name: str) -> dict[str, Any]:
        model = next((m for m in list_models(self.app.home.models) if m.name == name), None)
        if model is None:
            raise ModelNotFound(f"no model named '{name}' in models/")
        config = self.app.config
        return {"type": "models.settings", "name": name, "settings": config.model_settings(name),
                "effective": {key: config.model_value(name, key) for key in MODEL_SETTING_KEYS},
                "trained_context": model.info.context_length if model.info is not None else None,
                "templates": list(CHAT_TEMPLATES)}

    def _emit_settings(self, name: str) -> None:
        self.emit(self.settings_event(name))

    def _save_settings(self, name: str, values: Any, unset: Any) -> None:
        clean, dropped = checked_settings(values, unset)
        path, changed = self._change_settings(name, clean, dropped)
        if changed and self._is_loaded(path):
            # The engine compares a model's settings on each reply and reloads it
            # when they differ: nothing waits for a restart.
            what = "context" if "context_length" in changed else "settings"
            message = f"Saved; the model reloads with the new {what} on its next reply"
        else:
            message = "Saved; they apply from the model's next reply"
        self.emit({"type": "models.notice", "message": message})

    def _reset_settings(self, name: str) -> None:
        path, changed = self._change_settings(name, {}, (), reset=True)
        reload = "; it reloads on its next reply" if changed and self._is_loaded(path) else ""
        message = f"{short_name(name)} follows the defaults again{reload}"
        self.emit({"type": "models.notice", "message": message})

    def _change_settings(self, name: str, values: dict[str, Any], unset: tuple[str, ...], *,
                         reset: bool = False) -> tuple[Path, list[str]]:
        """Write the change (set_settings also refreshes app.config, which the
        engine and the chat read on every reply); return the load-time keys it changed."""
        from rmm_tray.models.manage import set_settings

        path = self._exact(name)
        with self._config_lock:
            before = self._load_values(name)
            # By path: a bare name would also be looked up in the working folder.
            set_settings(self.app, str(path), values, unset=unset, reset=reset)
            changed = [k for k in LOAD_KEYS if self._load_values(name)[k] != before[k]]
        self.emit(self.settings_event(name))
        self._emit_local()  # the fit verdict follows the context
        return path, changed

    def _load_values(self, name: str) -> dict[str, Any]:
        return {key: self.app.config.model_value(name, key) for key in LOAD_KEYS}

    def _is_loaded(self, path: Path) -> bool:
        loaded = self.app.loaded
        return loaded is not None and loaded.path == path

    def _after_models_changed(self) -> None:
        self._emit_local()
        if self.chat is not None:
            self.chat.push_state()

    # -- other apps' files -----------------------------------------------------------

    def _emit_found(self) -> None:
        self.emit({"type": "models.found", "items": discover(self.app)})

    def _import(self, name: str) -> None:
        paths = import_model(self.app, name)
        shown = ", ".join(p.relative_to(self.app.home.models).as_posix() for p in paths[:1])
        self.emit({"type": "models.notice", "message": f"Imported {shown}"})
        self._after_models_changed()
        self._emit_found()


    # -- OpenAI-compatible servers (models/remotes.py) ------------------------------

    def _form(self, action: str, fn: Callable[..., None], *args: Any) -> "Future[Any]":
        # The form shows its own failures: what was typed stays where it was typed.
        seq = args[-1]
        return self.work.run(f"models {action}-server", fn, *args, on_error=lambda line: self.emit(
            {"type": "models.server_form", "seq": seq, "action": action, "ok": False, "message": line}))

    def _emit_servers(self) -> None:
        from rmm_tray.models.remotes import list_servers, models_summary

        items = []
        for s in list_servers(self.app):
            item = s.to_dict()
            item["summary"] = models_summary([m.split(":", 1)[1] for m in s.models])
            items.append(item)
        self.emit({"type": "models.servers", "items": items})

    def _test_server(self, name: str, url: str, api_key: str, seq: str) -> None:
        from rmm_tray.models.remotes import check_server, models_summary

        models = check_server(name, url, api_key=api_key)
        self.emit({"type": "models.server_form", "seq": seq, "action": "test", "ok": True,
                   "message": models_summary(models)})

    def _add_server(self, name: str, url: str, api_key: str, seq: str) -> None:
        from rmm_tray.models.remotes import add_server, check_server, models_summary

        # Tested before the lock: a server that takes its time holds up no other change.
        models = check_server(name, url, api_key=api_key)
        with self._config_lock:
            added = add_server(self.app, name, url, api_key=api_key, check=False)
        where = {"config": "; its key is in config.toml (readable by you only)",
                 "keyring": "; its key is in the keyring"}.get(added.key_in, "")
        summary = models_summary(models)
        self.emit({"type": "models.server_form", "seq": seq, "action": "add", "ok": True,
                   "message": summary})
        self.emit({"type": "models.notice", "message": f"Added {added.name}: {summary}{where}"})
        self._after_servers_changed()

    def _remove_server(self, name: str) -> None:
        from rmm_tray.models.remotes import remove_server

        with self._config_lock:
            remove_server(self.app, name)
        if self.chat is not None and (self.chat.remote or "").split(":", 1)[0] == name:
            self.chat.remote = None  # its replies would have nowhere to come from
        self.emit({"type": "models.notice", "message": f"Removed {name}"})
        self._after_servers_changed()

    def _after_servers_changed(self) -> None:
        # The picker and the tray's menu ask the engines again: no restart needed.
        if self.chat is not None:
            self.chat.refresh_engines()
        self._emit_servers()


# -- helpers (pure; tested on their own) ----------------------------------------------


def local_fit(app: "App", model: Any) -> str:
    from rmm_tray.models import manage as model_manager

    if model.info is None or model.error:  # e.g. truncated: it fits nowhere
        return ""
    try:
        return model_manager.local_fit(app, model.name, model.info, model.size).verdict
    except Exception as exc:
        log.warning("no fit estimate for %s: %s", model.name, exc)
        return ""


def short_name(name: str, width: int = 28) -> str:
    """``gemma-3-270m-it-Q4_K_M.gguf`` → ``gemma-3…it-Q4_K_M.gguf``: the tail says
    which quantization, so it is the part kept."""
    name = name.rsplit("/", 1)[-1]
    if len(name) <= width:
        return name
    head = max(4, width // 4)
    return name[:head] + "…" + name[-(width - head - 1):]


def downloads_summary(items: list[dict[str, Any]]) -> str | None:
    """One line for the tray tooltip while downloads run; None when none does."""
    active = [d for d in items if d["state"] in ACTIVE]
    if not active:
        return None
    d = next((d for d in active if d["state"] != "queued"), active[0])
    name = short_name(d["name"])
    if d["state"] == "downloading":
        pct = int(100 * d["done"] / d["size"]) if d["size"] else 0
        line = f"downloading {name} {pct} %"
        if d["rate"]:
            line += f" · {human_size(d['rate'])}/s"
    elif d["state"] == "verifying":
        line = f"verifying {name}"
    else:
        line = f"{name} queued"
    if len(active) > 1:
        line += f" (+{len(active) - 1} more)"
    return line
