"""Driving the studio window from tests and benchmarks: a virtual X server, real input events,
frame pumping and screenshots.

- :func:`virtual_display` starts Xvfb (:func:`start_xvfb`: ``-displayfd`` picks a free display
  number) and points ``DISPLAY`` at it; :func:`gui_unavailable` says in one sentence why GUI
  tests must be skipped.
- :class:`Xdo` sends real X input events with xdotool (clicks, drags, keys) while the caller keeps
  pumping frames, exactly as a user's events reach the window.
- :func:`pump` runs :meth:`App.frame` until a condition holds; :func:`grab` saves the frame buffer
  (``dpg.output_frame_buffer``) and returns it as an [H,W,3] uint8 array.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np


def gui_unavailable() -> str | None:
    """Why a window cannot be opened here (None when it can): no Xvfb and no display, no xdotool..."""
    if os.environ.get("DISPLAY") is None and shutil.which("Xvfb") is None:
        return "no X display and no Xvfb (apt-get install xvfb xauth xdotool libgl1-mesa-dri)"
    try:
        import dearpygui  # noqa: F401
    except ImportError as exc:
        return f"dearpygui cannot be imported ({exc})"
    return None


def start_xvfb(width: int, height: int, *options: str) -> tuple[subprocess.Popen, str]:
    """Start Xvfb on a free display number (``-displayfd``) with a ``width`` x ``height`` x 24 screen
    and extra server ``options``; returns the process and its display name (":N") once it accepts
    connections.  Raises RuntimeError when Xvfb is missing or does not start."""
    if shutil.which("Xvfb") is None:
        raise RuntimeError("Xvfb is not installed (apt-get install xvfb)")
    r, w = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp",
                             *options], pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(w)
    with os.fdopen(r) as f:
        number = f.readline().strip()  # written once the server accepts connections
    if not number:
        stop_process(proc)
        raise RuntimeError("Xvfb did not start")
    return proc, f":{number}"


def stop_process(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    """Ask a child process to end; kill it if it has not after ``timeout`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def virtual_display(width: int = 1600, height: int = 1000) -> Iterator[str]:
    """Run Xvfb for the duration of the block with ``DISPLAY`` set to it; yields the display name.

    Uses the existing ``DISPLAY`` instead when Xvfb is not installed.
    """
    if shutil.which("Xvfb") is None:
        if not os.environ.get("DISPLAY"):
            raise RuntimeError(gui_unavailable() or "no display")
        yield os.environ["DISPLAY"]
        return
    proc, display = start_xvfb(width, height)
    old = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = display
    try:
        yield display
    finally:
        if old is None:
            os.environ.pop("DISPLAY", None)
        else:
            os.environ["DISPLAY"] = old
        stop_process(proc)


def pump(app, until: Callable[[], bool] | None = None, timeout: float = 20.0, frames: int = 1) -> bool:
    """Render at least ``frames`` frames, then more until ``until()`` is true; False on timeout."""
    deadline = time.monotonic() + timeout
    n = 0
    while True:
        if not app.frame():
            return False
        n += 1
        if n >= frames and (until is None or until()):
            return True
        if time.monotonic() > deadline:
            return False


def wait_for(app, predicate: Callable, timeout: float = 30.0):
    """Pump until the snapshot on screen satisfies ``predicate(snapshot)``; returns it (None on timeout)."""
    ok = pump(app, lambda: app._snap is not None and predicate(app._snap), timeout)
    return app._snap if ok else None


def grab(app, path: str | Path | None = None, timeout: float = 10.0) -> np.ndarray:
    """The window's frame buffer after the next frame, as [H,W,3] uint8 (also saved to ``path``)."""
    import dearpygui.dearpygui as dpg
    import imageio.v3 as iio

    out = Path(path) if path is not None else Path(tempfile.mkstemp(suffix=".png", prefix="studio-shot-")[1])
    out.unlink(missing_ok=True)
    pump(app, frames=2)  # textures and layout from the latest snapshot reach the screen
    dpg.output_frame_buffer(file=str(out))
    if not pump(app, lambda: out.exists() and out.stat().st_size > 0, timeout):
        raise RuntimeError(f"no screenshot was written to {out}")
    img = np.asarray(iio.imread(out))[..., :3]
    if path is None:
        out.unlink(missing_ok=True)
    return img


def crop(image: np.ndarray, rect: tuple[int, int, int, int], inset: int = 2) -> np.ndarray:
    """The part of a screenshot inside (x, y, width, height), ``inset`` pixels in from each edge."""
    x, y, w, h = rect
    return image[y + inset:y + h - inset, x + inset:x + w - inset]


class Xdo:
    """Real X input events for the studio window (xdotool), sent while the app keeps rendering."""

    def __init__(self, app, title: str | None = None):
        from .app import TITLE

        if shutil.which("xdotool") is None:
            raise RuntimeError("xdotool is not installed (apt-get install xdotool)")
        self.app = app
        self.window = self._find(title or TITLE)

    def _find(self, title: str) -> str:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            pump(self.app, frames=1)
            r = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", title], capture_output=True, text=True)
            ids = r.stdout.split()
            if ids:
                return ids[-1]
        raise RuntimeError(f"no window called {title!r} on {os.environ.get('DISPLAY')}")

    def _run(self, *args: str, settle: int = 3) -> None:
        """Run one xdotool command while pumping frames, then a few frames for the events to land."""
        proc = subprocess.Popen(["xdotool", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        pump(self.app, lambda: proc.poll() is not None, timeout=10)
        if proc.wait(5) != 0:
            raise RuntimeError(f"xdotool {' '.join(args)} failed: {proc.stderr.read().decode().strip()}")
        pump(self.app, frames=settle)

    def move(self, x: int, y: int) -> None:
        self._run("mousemove", "--window", self.window, str(int(x)), str(int(y)))

    def park(self) -> None:
        """Move the pointer to the bottom-right corner of the window, where it hovers nothing (no
        tooltip over the pictures)."""
        import dearpygui.dearpygui as dpg

        self.move(dpg.get_viewport_client_width() - 3, dpg.get_viewport_client_height() - 3)
        pump(self.app, frames=2)

    def click(self, x: int, y: int) -> None:
        """Left click at (x, y) in window pixels."""
        self.move(x, y)
        self._run("mousedown", "1")
        self._run("mouseup", "1")

    def drag(self, x0: int, y0: int, x1: int, y1: int, steps: int = 6) -> None:
        """Press at (x0, y0), move to (x1, y1) in ``steps`` moves, release."""
        self.move(x0, y0)
        self._run("mousedown", "1")
        for i in range(1, steps + 1):
            self.move(x0 + (x1 - x0) * i // steps, y0 + (y1 - y0) * i // steps)
        self._run("mouseup", "1")

    def key(self, name: str) -> None:
        """Press and release a key (xdotool names: space, s, r...) with the window focused."""
        self._run("windowfocus", "--sync", self.window, settle=1)
        self._run("key", "--clearmodifiers", name)

    def click_item(self, rect: tuple[int, int, int, int], fx: float = 0.5, fy: float = 0.5) -> None:
        """Click inside an item's (x, y, width, height), at fractions (fx, fy) of its size."""
        x, y, w, h = rect
        self.click(x + int(w * fx), y + int(h * fy))
