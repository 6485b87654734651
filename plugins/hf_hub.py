"""The Hugging Face Hub as a model source: search GGUF repositories, list their
files (split files grouped), read the card's summary and licence, and download
one file with resume.

Everything goes through the ``huggingface_hub`` client, so ``HF_ENDPOINT``,
``HF_HUB_OFFLINE``, proxies from the standard environment variables and the
token ``hf auth login`` stored all work as they do for other Hub tools. The
client is imported on first use: listing local models never pays for it.

Settings: ``[plugins.huggingface]`` in config.toml (``token``, ``endpoint``); an
older config.toml's ``[hub]`` table is read when the plugin's own has no value.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from rmm_tray import (
    SPLIT_NAME,
    DoctorCheck,
    DownloadCancelled,
    ModelSource,
    PluginApp,
    Progress,
    RemoteModelFile,
    RemotePart,
    RemoteRepo,
    RemoteRepoDetails,
    SourceError,
    hookimpl,
    quantization_from_name,
)

log = logging.getLogger(__name__)

#: The entry point's name, and so the name of this plugin's table in config.toml.
NAME = "huggingface"
SETTINGS = ("token", "endpoint")
# http_get reads the body in chunks of DOWNLOAD_CHUNK_SIZE (10 MiB) and reports,
# writes and can be cancelled only between chunks: on a slow link that is a bar
# frozen for many seconds, a cancel that waits, and up to 10 MiB lost on a crash.
CHUNK_SIZE = 1 << 20
# The Hub's names for the sorts.
SORTS = {"downloads": "downloads", "recent": "lastModified", "likes": "likes"}
# The Hub's metadata calls: a person is waiting on them. (Downloads have their own
# timeouts and the core's retries.)
REQUEST_TIMEOUT_S = 10.0
TOKEN_HINT = f"set a token: HF_TOKEN, 'hf auth login', or [plugins.{NAME}] token in config.toml"


def settings(app: PluginApp | None) -> dict[str, str]:
    """``token`` and ``endpoint``: the plugin's table, else the ``[hub]`` table that
    config.toml had before plugins had their own; "" when neither sets one."""
    if app is None:
        return dict.fromkeys(SETTINGS, "")
    own = app.plugin_config(NAME)
    legacy = app.config.get("hub")
    legacy = legacy if isinstance(legacy, dict) else {}
    return {key: str(own.get(key) or legacy.get(key) or "") for key in SETTINGS}


def group_gguf_files(repo_id: str, files: list[RemotePart]) -> list[RemoteModelFile]:
    """One entry per model: single files as they are, split files (``-00001-of-00003``)
    as one entry when all their parts are there. Projector files (``mmproj``) are
    not chat models and are left out."""
    singles: list[RemoteModelFile] = []
    splits: dict[tuple[str, int], dict[int, RemotePart]] = {}
    for part in files:
        base = Path(part.filename).name
        if not base.lower().endswith(".gguf") or base.lower().startswith("mmproj"):
            continue
        match = SPLIT_NAME.match(part.filename)
        if match:
            key = (match["stem"], int(match["total"]))
            splits.setdefault(key, {})[int(match["part"])] = part
        else:
            singles.append(RemoteModelFile(repo_id, part.filename, (part,),
                                           quantization_from_name(base)))
    for (stem, count), parts in splits.items():
        if sorted(parts) != list(range(1, count + 1)):
            log.info("%s: split model %s is missing parts; skipped", repo_id, stem)
            continue
        ordered = tuple(parts[i] for i in range(1, count + 1))
        singles.append(RemoteModelFile(repo_id, ordered[0].filename, ordered,
                                       quantization_from_name(Path(stem).name)))
    return sorted(singles, key=lambda f: (f.size, f.name))


def _parse_card(text: str) -> tuple[dict[str, Any], str]:
    """A model card's metadata and its Markdown body, as huggingface_hub reads them."""
    if not text.lstrip().startswith("---"):
        return {}, text  # no front matter (and no library warning saying so)
    from huggingface_hub import ModelCard

    try:
        card = ModelCard(text, ignore_metadata_errors=True)
    except Exception as exc:  # front matter that is not YAML, or not a mapping
        log.info("model card metadata unreadable: %s", exc)
        return {}, text
    return card.data.to_dict(), card.text


def card_summary(text: str, limit: int = 400) -> str:
    """The first paragraph of prose in a model card: no front matter, headings,
    badges, tables or HTML."""
    body = re.sub(r"<!--.*?-->", "", _parse_card(text)[1], flags=re.DOTALL)
    for block in re.split(r"\n\s*\n", body):
        lines = [ln.strip() for ln in block.strip().splitlines()]
        if not lines or lines[0].startswith(("#", "|", "<", "![", "[![", "```", ">", "-", "*")):
            continue
        plain = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", " ".join(lines))
        plain = re.sub(r"[*_`]+", "", plain).strip()
        if len(plain) >= 20:
            return plain if len(plain) <= limit else plain[: limit - 1].rstrip() + "…"
    return ""


def card_license(text: str) -> str:
    """The ``license`` of a card's metadata ("" when it has none); a list of
    licences is joined with commas."""
    found = _parse_card(text)[0].get("license") or ""
    return ", ".join(map(str, found)) if isinstance(found, list) else str(found)


class _ProgressBar:
    """What ``http_get`` wants of a tqdm class: it reports bytes to ``progress`` and
    raises ``DownloadCancelled`` from inside the transfer loop once cancel is set."""

    def __init__(self, progress: Progress, cancel: threading.Event, total: int | None = None,
                 initial: int = 0, **_: Any) -> None:
        self.progress, self.cancel = progress, cancel
        self.n, self.total = initial, total or 0
        self.progress(self.n, self.total)

    def update(self, n: int = 1) -> None:
        self.n += n
        self.progress(self.n, self.total)
        if self.cancel.is_set():
            raise DownloadCancelled()

    def close(self) -> None:
        pass

    def __enter__(self) -> "_ProgressBar":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class HubSource(ModelSource):
    name = "huggingface"
    description = "GGUF models from the Hugging Face Hub (HF_ENDPOINT for a mirror)"
    remote = True

    def __init__(self, token: str | None = None, endpoint: str | None = None) -> None:
        self.token = token or None  # None: the client finds HF_TOKEN or the stored token
        self.endpoint = endpoint.rstrip("/") if endpoint else None  # None: HF_ENDPOINT or the Hub

    def handles(self, ref: str) -> bool:
        return False  # pulled by repo id through search/repo/download, not imported

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """The client's exceptions as one line a person can act on."""
        import httpx2
        from huggingface_hub import constants, errors

        try:
            yield
        except DownloadCancelled:
            raise
        except errors.OfflineModeIsEnabled:
            raise SourceError("offline mode (HF_HUB_OFFLINE is set): the Hub is not asked; "
                              "local models still work") from None
        except errors.GatedRepoError:
            raise SourceError(f"{what} is gated: accept its terms on the Hub, then {TOKEN_HINT}") from None
        except errors.RepositoryNotFoundError:
            raise SourceError(f"{what}: no such repository on the Hub (or it is private: {TOKEN_HINT})") \
                from None
        except errors.EntryNotFoundError:
            raise SourceError(f"{what}: no such file in the repository") from None
        except errors.HfHubHTTPError as exc:
            status = exc.response.status_code if exc.response is not None else "?"
            if status in (401, 403):
                raise SourceError(f"{what}: the Hub refused access ({status}); {TOKEN_HINT}") from None
            raise SourceError(f"{what}: the Hub answered {status}") from None
        except httpx2.TransportError as exc:  # refused, reset, timed out, proxy trouble
            where = self.endpoint or constants.ENDPOINT
            raise SourceError(f"cannot reach the Hub at {where} ({type(exc).__name__}): "
                              "check the connection or the proxy (HTTPS_PROXY)", retry=True) from None
        except OSError as exc:  # http_get's size check after a transfer that ended early
            if "Consistency check failed" in str(exc):
                raise SourceError(f"{what}: the transfer ended early", retry=True) from None
            raise

    def _api(self) -> Any:
        from huggingface_hub import HfApi

        return HfApi(token=self.token, endpoint=self.endpoint)

    def search(self, query: str, *, sort: str = "downloads", limit: int = 20) -> list[RemoteRepo]:
        from huggingface_hub import ModelInfo, constants
        from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

        params: dict[str, Any] = {
            "filter": "gguf", "sort": SORTS.get(sort, "downloads"), "limit": limit,
            # The Hub sends these fields only when asked for them.
            "expand": ["downloads", "likes", "lastModified", "gated"],
        }
        if query:
            params["search"] = query
        with self._errors(f"search '{query}'"):
            # The request HfApi.list_models makes, once: it retries a failed
            # connection for ~24 s, and a person is waiting on a search. One page
            # holds far more than `limit` results.
            response = get_session().get(f"{self.endpoint or constants.ENDPOINT}/api/models",
                                         params=params, headers=build_hf_headers(token=self.token),
                                         timeout=REQUEST_TIMEOUT_S)
            hf_raise_for_status(response)
            found = [ModelInfo(**{"siblings": None, **item}) for item in response.json()[:limit]]
            return [
                RemoteRepo(
                    id=m.id,
                    downloads=int(m.downloads or 0),
                    likes=int(m.likes or 0),
                    last_modified=m.last_modified.isoformat() if m.last_modified else "",
                    gated=bool(m.gated),
                )
                for m in found
            ]

    def repo(self, repo_id: str) -> RemoteRepoDetails:
        with self._errors(repo_id):
            info = self._api().model_info(repo_id, files_metadata=True, timeout=REQUEST_TIMEOUT_S)
        parts = [
            RemotePart(s.rfilename, int(s.lfs.size if s.lfs else s.size or 0),
                       s.lfs.sha256 if s.lfs else None)
            for s in info.siblings or []
        ]
        card = self._card_text(repo_id) if any(p.filename == "README.md" for p in parts) else ""
        data = info.card_data.to_dict() if info.card_data else {}
        license_ = data.get("license") or card_license(card)
        return RemoteRepoDetails(
            id=info.id,
            summary=card_summary(card),
            license=", ".join(license_) if isinstance(license_, list) else str(license_ or ""),
            gated=bool(info.gated),
            files=tuple(group_gguf_files(info.id, parts)),
        )

    def _card_text(self, repo_id: str) -> str:
        from huggingface_hub import hf_hub_url
        from huggingface_hub.utils import build_hf_headers, get_session

        try:
            with self._errors(repo_id):
                response = get_session().get(hf_hub_url(repo_id, "README.md", endpoint=self.endpoint),
                                             follow_redirects=True,
                                             headers=build_hf_headers(token=self.token),
                                             timeout=REQUEST_TIMEOUT_S)
                response.raise_for_status()
                return response.text[:200_000]
        except Exception as exc:  # the card is a nicety; the files matter
            log.info("%s: no model card (%s)", repo_id, exc)
            return ""

    def download(self, part: RemotePart, repo_id: str, out: BinaryIO, *, offset: int,
                 progress: Progress, cancel: threading.Event) -> None:
        from huggingface_hub import constants, hf_hub_url
        from huggingface_hub.file_download import http_get
        from huggingface_hub.utils import build_hf_headers

        constants.DOWNLOAD_CHUNK_SIZE = min(constants.DOWNLOAD_CHUNK_SIZE, CHUNK_SIZE)

        def bar(**kw: Any) -> _ProgressBar:
            return _ProgressBar(progress, cancel, **kw)

        with self._errors(f"{repo_id}/{part.filename}"):
            http_get(
                hf_hub_url(repo_id, part.filename, endpoint=self.endpoint),
                out,  # type: ignore[arg-type]
                resume_size=offset,
                headers=build_hf_headers(token=self.token),
                expected_size=part.size or None,
                tqdm_class=bar,  # type: ignore[arg-type]
            )


@hookimpl
def register_model_sources(register, app):  # type: ignore[no-untyped-def]
    hub = settings(app)
    register(HubSource(token=hub["token"] or None, endpoint=hub["endpoint"] or None))


@hookimpl
def doctor_checks(app: PluginApp) -> list[DoctorCheck]:
    """Where searches and downloads would go, without asking the network."""
    from huggingface_hub import constants

    hub = settings(app)
    endpoint = hub["endpoint"] or constants.ENDPOINT or "https://huggingface.co"
    token = ("HF_TOKEN" if os.environ.get("HF_TOKEN") else "config.toml" if hub["token"]
             else "stored by hf auth login" if Path(constants.HF_TOKEN_PATH).is_file() else "none")
    proxy = next((os.environ[k] for k in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")
                  if os.environ.get(k)), "")
    detail = f"{endpoint}; token: {token}" + (f"; proxy: {proxy}" if proxy else "")
    if constants.HF_HUB_OFFLINE:
        return [DoctorCheck("hub", "warn", detail + "; offline (HF_HUB_OFFLINE)",
                            "unset HF_HUB_OFFLINE to search and download; local models work either way")]
    return [DoctorCheck("hub", "ok", detail)]
