"""The controls of one long background job: its start button, Cancel, a progress bar and a message.

The compare window and the dataset-export dialog both run minutes of work off the GUI thread
(:class:`~studio.gui.jobs.Jobs`); this keeps their buttons, progress and failure reporting alike.
"""

from __future__ import annotations

from typing import Any, Callable

from .controls import Button, ProgressBar, Text
from .errors import one_sentence
from .jobs import Jobs, Progress


class JobControls:
    """At most one job at a time behind ``go`` and ``cancel`` (widgets the dialog laid out).

    Args:
        jobs: where the work runs.
        fail: reports a failed job as one sentence (``App.fail``).
        what: the job for messages, e.g. "comparing the runs".
        go, cancel, bar, message: the dialog's widgets; ``message`` shows the failure sentence.
        starting: the progress text until the job reports something.
    """

    def __init__(self, jobs: Jobs, fail: Callable[[str, BaseException], None], what: str, *, go: Button,
                 cancel: Button, bar: ProgressBar, message: Text, starting: str = ""):
        self.jobs, self.fail, self.what = jobs, fail, what
        self.go, self.cancel, self.bar, self.message = go, cancel, bar, message
        self.starting = starting
        self.progress: Progress | None = None
        self.cancelled = False  # whether the job that finished last had been cancelled
        cancel.enabled = False

    @property
    def busy(self) -> bool:
        return self.progress is not None

    def launch(self, progress: Progress, work: Callable[[], Any], on_done: Callable[[Any], None]) -> None:
        """Run ``work()`` (which reports to ``progress`` and watches its cancel switch); ``on_done``
        gets its result on the GUI thread, after the buttons are back to idle."""
        self.progress, self.cancelled = progress, False
        self.go.enabled, self.cancel.enabled = False, True
        self.message.value = ""

        def finished(result: Any) -> None:
            self.cancelled = progress.cancel.is_set()
            self._idle()
            on_done(result)

        self.jobs.run(work, finished, self._failed)

    def stop(self) -> None:
        """Ask the job to stop (it ends at its next check of the cancel switch)."""
        if self.progress is not None:
            self.progress.cancel.set()
            self.cancel.enabled = False

    def poll(self) -> None:
        """Once per frame: the progress bar."""
        if self.progress is not None:
            what = "cancelling..." if self.progress.cancel.is_set() else self.progress.latest[2] or self.starting
            self.bar.show(self.progress.fraction, what)

    def _failed(self, exc: BaseException) -> None:
        self._idle()
        self.bar.show(0.0, "failed")
        self.fail(self.what, exc)
        self.message.value = one_sentence(self.what, exc)

    def _idle(self) -> None:
        self.progress = None
        self.go.enabled, self.cancel.enabled = True, False
