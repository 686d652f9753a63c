"""Slow work off the GUI thread, with completions delivered back on it.

File dialogs lead to work that must not freeze the window: building a scene, reading a mesh,
writing a session or a video.  :class:`Jobs` runs such work on a small thread pool (or waits on a
Future the engine's worker fulfils) and calls ``on_done(result)`` or ``on_error(exc)`` from
:meth:`poll`, which the GUI calls once per frame, so callbacks may touch Dear PyGui.  No
dearpygui import here.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable


class Jobs:
    def __init__(self, workers: int = 2):
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
