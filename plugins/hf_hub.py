"""The Hugging Face Hub as a model source: search GGUF repositories, list their
files (split files grouped), read the card's summary and licence, and download
one file with resume.

Everything goes through the ``huggingface_hub`` client, so ``HF_ENDPOINT``,
``HF_HUB_OFFLINE``, proxies from the standard environment variables and the
token ``hf auth login`` stored all work as they do for other Hub tools. The
client is imported on first use: listing local models never pays for it.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from rmm_tray import (
    DownloadCancelled,
    ModelSource,
    Progress,
    RemoteModelFile,
    RemotePart,
    RemoteRepo,
    RemoteRepoDetails,
    SourceError,
    hookimpl,
)

log = logging.getLogger(__name__)

SPLIT = re.compile(r"^(?P<stem>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)
QUANT = re.compile(
    r"(?<![A-Za-z0-9])((?:I?Q\d(?:_[A-Z0-9]+)*)|F16|BF16|F32|MXFP4|TQ\d_0)(?![A-Za-z0-9])", re.IGNORECASE
)
# http_get reads the body in chunks of DOWNLOAD_CHUNK_SIZE (10 MiB) and reports,
# writes and can be cancelled only between chunks: on a slow link that is a bar
# frozen for many seconds, a cancel that waits, and up to 10 MiB lost on a crash.
CHUNK_SIZE = 1 << 20
SORTS = {"downloads": "downloads", "recent": "last_modified", "likes": "likes"}
TOKEN_HINT = "set a token: HF_TOKEN, 'hf auth login', or [hub] token in config.toml"


def quantization_of(filename: str) -> str:
    match = QUANT.search(Path(filename).name.replace(".gguf", ""))
    return match.group(1).upper() if match else ""


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
        match = SPLIT.match(part.filename)
        if match:
            key = (match["stem"], int(match["count"]))
            splits.setdefault(key, {})[int(match["index"])] = part
        else:
            singles.append(RemoteModelFile(repo_id, part.filename, (part,), quantization_of(part.filename)))
    for (stem, count), parts in splits.items():
        if sorted(parts) != list(range(1, count + 1)):
            log.info("%s: split model %s is missing parts; skipped", repo_id, stem)
            continue
        ordered = tuple(parts[i] for i in range(1, count + 1))
        singles.append(RemoteModelFile(repo_id, ordered[0].filename, ordered, quantization_of(stem)))
    return sorted(singles, key=lambda f: (f.size, f.name))


def card_summary(text: str, limit: int = 400) -> str:
    """The first paragraph of prose in a model card: no front matter, headings,
    badges, tables or HTML."""
    body = re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.DOTALL)
    body = re.sub(r"<!--.*?-->", "", body, flags=re.DOTALL)
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
    match = re.search(r"\A---\n.*?^license:[ \t]*([^\n]+)$.*?\n---\n", text, flags=re.DOTALL | re.MULTILINE)
    return match.group(1).strip().strip("'\"") if match else ""


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
        with self._errors(f"search '{query}'"):
            found = self._api().list_models(
                search=query or None, filter="gguf", sort=SORTS.get(sort, "downloads"), limit=limit,
                # The Hub sends these fields only when asked for them.
                expand=["downloads", "likes", "lastModified", "gated"],
            )
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
            info = self._api().model_info(repo_id, files_metadata=True)
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
                                             headers=build_hf_headers(token=self.token), timeout=10)
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
    hub = app.config.data.get("hub", {}) if app is not None else {}
    register(HubSource(token=str(hub.get("token", "") or "") or None,
                       endpoint=str(hub.get("endpoint", "") or "") or None))
