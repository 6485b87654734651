"""models/remotes.py, the one add/list/remove of OpenAI-compatible servers (the
CLI and the popup call it), against a small real server on loopback that lists
models and checks a bearer key: what is written, what the running App sees
without a restart, and each refusal as one line that changes nothing."""

from __future__ import annotations

import json
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rmm_tray.app import App
from rmm_tray.errors import RmmError
from rmm_tray.home.config import Config
from rmm_tray.home.paths import DataHome
from rmm_tray.models import remotes

pytestmark = pytest.mark.integration

KEY = "s3cret-key"


class _Models(BaseHTTPRequestHandler):
    """GET …/models: three models, for the key KEY (or for anyone under /open/)."""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/open/") or self.headers.get("Authorization") == f"Bearer {KEY}":
            body = json.dumps({"object": "list", "data": [{"id": m} for m in ("a", "b", "c")]})
            self._send(200, body.encode())
        else:
            self._send(401, b'{"error": {"message": "bad key"}}')

    def _send(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Models)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture()
def app(home: Path, monkeypatch: pytest.MonkeyPatch) -> App:
    # No keyring backend (forced): a typed key goes into config.toml, made private.
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    home_dir = DataHome.from_env().ensure()
    return App(home_dir, Config.load(home_dir.config_file))


def test_summary_counts_and_names_a_few() -> None:
    assert remotes.models_summary([]) == "0 models"
    assert remotes.models_summary(["a"]) == "1 model: a"
    assert remotes.models_summary(list("abcdefg")) == "7 models: a, b, c, d, e, …"


def test_added_server_is_in_the_running_apps_engines_and_removed_again(app: App, url: str) -> None:
    assert app.engines == {}
    added = remotes.add_server(app, "box", url + "/open")  # a URL with a path: used as given
    assert (added.models, added.key_in, added.base) == (["a", "b", "c"], "", url + "/open")
    assert list(app.engines) == ["box"]  # no restart: the cached engines were dropped
    listed = remotes.list_servers(app)
    assert [(s.name, s.models, s.error) for s in listed] == [("box", ["box:a", "box:b", "box:c"], None)]
    with pytest.raises(RmmError, match="there is a server 'box' already"):
        remotes.add_server(app, "box", url + "/open")
    remotes.remove_server(app, "box")
    assert app.engines == {} and "[[remote]]" not in app.home.config_file.read_text()
    with pytest.raises(RmmError, match="no server 'box'"):
        remotes.remove_server(app, "box")


def test_a_wrong_key_is_one_line_and_writes_nothing(app: App, url: str) -> None:
    before = app.home.config_file.read_text()
    with pytest.raises(RmmError) as refused:
        remotes.add_server(app, "keyed", url, api_key="wrong")
    assert str(refused.value) == "keyed: the server refused the API key (HTTP 401)"
    with pytest.raises(RmmError) as bare:
        remotes.check_server("keyed", url)
    assert str(bare.value) == "keyed: the server wants an API key (HTTP 401)"
    assert app.home.config_file.read_text() == before and app.engines == {}


def test_a_typed_key_without_a_keyring_is_in_a_private_config(app: App, url: str) -> None:
    added = remotes.add_server(app, "keyed", url, api_key=f"  {KEY} ")
    assert added.key_in == "config" and added.models == ["a", "b", "c"]
    assert stat.S_IMODE(app.home.config_file.stat().st_mode) == 0o600
    assert f'api_key = "{KEY}"' in app.home.config_file.read_text()
    assert remotes.list_servers(app)[0].key == "config.toml"  # where, never what
    assert app.engines["keyed"].models() == ["a", "b", "c"]


@pytest.mark.parametrize(("name", "url", "line"), [
    ("gpu box", "http://x:1", "a server's name is letters, digits, '-', '_' or '.', got 'gpu box'"),
    ("", "http://x:1", "a server's name is letters"),
    ("box", "", "a server needs its base URL"),
    ("box", "gpu-box:8080", "'gpu-box:8080' is not an http:// or https:// URL"),
])
def test_bad_names_and_urls_are_one_line(app: App, name: str, url: str, line: str) -> None:
    with pytest.raises(RmmError) as bad:
        remotes.add_server(app, name, url)
    assert str(bad.value).startswith(line)
    assert "[[remote]]" not in app.home.config_file.read_text()
