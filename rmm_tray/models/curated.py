"""The short list of small instruct models the first run suggests (curated.toml
beside this module), each with this machine's fit estimate."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from importlib.resources import files
from typing import TYPE_CHECKING, Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from rmm_tray.errors import RmmError
from rmm_tray.models.gguf import quantization_from_name
from rmm_tray.units import human_size

if TYPE_CHECKING:
    from rmm_tray.app import App


@dataclass(frozen=True)
class Suggestion:
    repo: str
    file: str
    size: int
    about: str

    @property
    def quantization(self) -> str:
        return quantization_from_name(self.file).upper()


def suggestions() -> list[Suggestion]:
    """The list as shipped; RmmError naming the entry when the file is malformed."""
    data = tomllib.loads(files("rmm_tray.models").joinpath("curated.toml").read_text(encoding="utf-8"))
    out = []
    for n, entry in enumerate(data.get("model", []), 1):
        try:
            out.append(Suggestion(str(entry["repo"]), str(entry["file"]), int(entry["size"]),
                                  str(entry.get("about", ""))))
        except (KeyError, TypeError, ValueError) as exc:
            raise RmmError(f"curated.toml: model {n} is incomplete ({exc})") from None
    return out


def with_fit(app: "App") -> list[dict[str, Any]]:
    """Each suggestion with its fit on this machine ("fits", "tight", "too big"),
    those that fit first, then by size."""
    from rmm_tray.models.manage import remote_fit

    items = []
    for s in suggestions():
        fit = remote_fit(app, s.size, s.quantization)
        items.append({"repo": s.repo, "file": s.file, "size": s.size, "size_text": human_size(s.size),
                      "quantization": s.quantization, "about": s.about, "fit": fit.verdict})
    order = {"fits": 0, "tight": 1}
    return sorted(items, key=lambda i: (order.get(i["fit"], 2), i["size"]))
