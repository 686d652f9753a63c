"""Slow work off the GUI thread, with completions delivered back on it.

File dialogs lead to work that must not freeze the window: building a scene, reading a mesh,
writing a session or a video.  :class:`Jobs` runs such work on a small thread pool (or waits on a
Future the engine's worker fulfils) and calls ``on_done(result)`` or ``on_error(exc)`` from
:meth:`poll`, which the GUI calls once per frame, so callbacks may touch Dear PyGui.  Long jobs
(a comparison of two runs, a dataset export) report through a :class:`Progress` that the GUI
reads each frame and that carries their cancel switch.  No dearpygui import here.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable


class Jobs:
    #: Two threads may be busy for minutes (a comparison, a dataset export) while a scene loads.
    def __init__(self, workers: int = 4):
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="studio-job")
        self._pending: list[tuple[Future, Callable[[Any], None], Callable[[BaseException], None]]] = []

    def run(self, fn: Callable[[], Any], on_done: Callable[[Any], None],
            on_error: Callable[[BaseException], None]) -> Future:
        """Run ``fn()`` on the pool; its result or exception comes back through :meth:`poll`."""
        return self.watch(self._pool.submit(fn), on_done, on_error)

    def watch(self, fut: Future, on_done: Callable[[Any], None], on_error: Callable[[BaseException], None]) -> Future:
        """Deliver the outcome of a Future someone else fulfils (e.g. :meth:`Engine.submit`)."""
        self._pending.append((fut, on_done, on_error))
        return fut

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def poll(self) -> None:
        """Call the callbacks of the jobs that have finished (on the calling thread); an exception
        raised by ``on_done`` goes to the same job's ``on_error``."""
        if not self._pending:
            return
        waiting, done = [], []
        for job in self._pending:
            (done if job[0].done() else waiting).append(job)
        self._pending = waiting
        for fut, on_done, on_error in done:
            exc = fut.exception()
            if exc is None:
                try:
                    on_done(fut.result())
                    continue
                except Exception as err:  # noqa: BLE001 - a failing completion is reported like a failing job
                    exc = err
            on_error(exc)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class Progress:
    """How far a background job is, and the switch that cancels it.

    The job's thread calls :meth:`report`; the GUI reads :attr:`latest` once per frame.  One tuple
    is replaced at a time (atomic in CPython), so no lock is needed and a reader never sees a
    half-written state.
    """

    def __init__(self) -> None:
        self.cancel = threading.Event()
        self.latest: tuple[int, int, str] = (0, 0, "")  # (done, total, what is being done)

    def report(self, done: int, total: int, what: str = "") -> None:
        self.latest = (int(done), int(total), what)

    @property
    def fraction(self) -> float:
        done, total, _ = self.latest
        return done / total if total > 0 else 0.0
