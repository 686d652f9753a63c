"""A step watchdog: notices a thread that has been busy with one piece of work for too long and
says what it is doing ("loss 'loop' from plugins/p_loop.py has been running for 30 s").

Python cannot stop a thread that is stuck in a loop, so nothing here tries: the stuck thread is
*abandoned* instead.  Its :class:`Heartbeat` is marked, and the next time the thread reaches a
stage boundary (``Heartbeat.stage`` / ``Heartbeat.check``) it raises :class:`Abandoned`, a
``BaseException`` that ends the thread without it touching the state it was working on, which a
new worker may own by then.  A thread that never comes back just stays a sleeping daemon.

The engine's worker marks its stages (render, each loss, backward, optimiser step, publish,
commands); :func:`run_guarded` watches plain calls such as importing plugin files, naming the
plugin file from the stuck thread's stack.
"""

from __future__ import annotations

import logging
import os
import sys
import sysconfig
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, TypeVar

T = TypeVar("T")
log = logging.getLogger("studio.watchdog")

# Code that is not the user's: a stuck frame in here is named by the user's frame that called it.
_LIBRARY_DIRS = tuple(sorted({os.path.realpath(p) for k, p in sysconfig.get_paths().items()
                              if k in ("stdlib", "platstdlib", "purelib", "platlib")}
                             | {os.path.realpath(Path(__file__).resolve().parents[1])}))


class StallError(RuntimeError):
    """Work that ran past the watchdog's limit in code the user brought (a plugin); the message is
    one sentence naming the file and line."""


class Abandoned(BaseException):
    """Raised inside an abandoned thread at its next stage boundary, so that it ends quietly."""


@dataclass(frozen=True)
class Stage:
    """What a watched thread is doing, in words.

    Attributes:
        what: e.g. "loss 'loop' from plugins/p_loop.py" or "the render of step 12".
        loss: the loss's registry name while a loss runs (front ends offer to disable it).
        source: the file of the code running, when known (a loss's plugin file).
    """

    what: str
    loss: str | None = None
    source: str | None = None


@dataclass(frozen=True)
class Stall:
    """A report of work past the limit: the stage running, for how long, in which step.

    Attributes:
        stage: what was running when the watchdog looked.
        seconds: how long the work (the whole step, say) had been running.
        step: the engine's step count when the work began (the last good state's step).
        where: "file line N" of the innermost user-code frame of the stuck thread, if any.
    """

    stage: Stage
    seconds: float
    step: int = 0
    where: str | None = None

    @property
    def sentence(self) -> str:
        at = f" (at {self.where})" if self.where and not self.stage.source else ""
        return f"{self.stage.what}{at} has been running for {self.seconds:.0f} s"


def short_path(path: str | os.PathLike) -> str:
    """``path`` relative to the working folder when it lies inside it (as users typed it), else absolute."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(p)


def _is_user_code(filename: str) -> bool:
    if not filename or filename.startswith("<"):
        return False
    real = os.path.realpath(filename)
    return not any(real.startswith(d + os.sep) for d in _LIBRARY_DIRS)


def culprit(thread_id: int | None) -> str | None:
    """"FILE line N" of the innermost frame of thread ``thread_id`` that is neither the studio's,
    Python's nor an installed package's code (a plugin, a front end's callback), or None."""
    if thread_id is None:
        return None
    frame = sys._current_frames().get(thread_id)
    while frame is not None:
        if _is_user_code(frame.f_code.co_filename):
            return f"{short_path(frame.f_code.co_filename)} line {frame.f_lineno}"
        frame = frame.f_back
    return None


class Heartbeat:
    """Where a worker is: the stage it is in and since when its current piece of work (a step, a
    command) has been running.  Written by the worker, read by a :class:`Watchdog`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since: float | None = None
        self._stage: Stage | None = None
        self._step = 0
        self._serial = 0  # one per piece of work, so that each is reported at most once
        self._thread: int | None = None
        self.abandoned = False

    def begin(self, stage: Stage, step: int = 0) -> None:
        """Start timing a piece of work (one step, one command)."""
        self.check()
        with self._lock:
            self._since, self._stage, self._step = time.monotonic(), stage, step
            self._serial += 1
            self._thread = threading.get_ident()

    def end(self) -> None:
        with self._lock:
            self._since = self._stage = None
        self.check()

    @contextmanager
    def stage(self, stage: Stage) -> Iterator[None]:
        """Name what runs inside the block (inside the current piece of work)."""
        self.check()
        with self._lock:
            outer, self._stage = self._stage, stage
        try:
            yield
        finally:
            with self._lock:
                self._stage = outer
        self.check()

    def check(self) -> None:
        """Raise :class:`Abandoned` in a thread that was given up on."""
        if self.abandoned and threading.get_ident() == self._thread:
            raise Abandoned()

    def current(self) -> tuple[int, Stage, float, int, int | None] | None:
        """(serial, stage, seconds running, step, thread id) of the work in progress, or None when idle."""
        with self._lock:
            if self._since is None or self._stage is None:
                return None
            return self._serial, self._stage, time.monotonic() - self._since, self._step, self._thread


class Watchdog:
    """A daemon thread that calls ``on_stall(Stall)`` once for each piece of work on ``beat`` that
    runs past ``limit_s()`` seconds (read on every check, so that it may change while it runs;
    checked a tenth of the limit apart, between 0.05 and 1 s)."""

    def __init__(self, beat: Heartbeat, limit_s: Callable[[], float], on_stall: Callable[[Stall], None],
                 name: str = "studio-watchdog"):
        self.beat, self.limit_s, self.on_stall = beat, limit_s, on_stall
        self._done = threading.Event()
        self._reported = -1
        self._thread = threading.Thread(target=self._watch, name=name, daemon=True)

    def start(self) -> "Watchdog":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._done.set()

    def _watch(self) -> None:
        while not self._done.wait(min(max(self.limit_s() / 10, 0.05), 1.0)):
            now = self.beat.current()
            if now is None:
                continue
            serial, stage, seconds, step, thread = now
            if seconds >= self.limit_s() and serial != self._reported:
                self._reported = serial
                try:
                    self.on_stall(Stall(stage, seconds, step, culprit(thread)))
                except Exception:  # noqa: BLE001 - a failing report must not end the watch
                    log.exception("reporting a stall failed")


def run_guarded(fn: Callable[[], T], limit_s: float, what: str) -> T:
    """``fn()`` on a daemon thread, watched: returns its result or re-raises what it raised.

    Work that is still running after ``limit_s`` seconds *inside user code* (a plugin file: see
    :func:`culprit`) is given up on; work inside the studio or its libraries (a big mesh loading)
    is waited for.

    Raises:
        StallError: "``what`` (at plugins/p_loop.py line 3) has been running for 30 s; ...".
    """
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            box["error"] = exc

    t = threading.Thread(target=run, name="studio-guarded", daemon=True)
    t0 = time.monotonic()
    t.start()
    while True:
        t.join(limit_s)
        if not t.is_alive():
            break
        where = culprit(t.ident)
        if where is not None:
            raise StallError(f"{what} (at {where}) has been running for {time.monotonic() - t0:.0f} s; fix that "
                             "file or move it out of the plugin folder, then try again.")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["result"]  # type: ignore[return-value]
