"""Start-up feedback: what a loading scene is doing, and its target views as they are rendered.

:func:`studio.workspace.build_engine` runs on a job thread and reports through a
:class:`LoadingProgress`; the GUI thread reads it once per frame and shows the sentence in the
status bar and the newest target view in the target pane, so the window is never a set of empty
panes.  No dearpygui here.
"""

from __future__ import annotations

import threading

import numpy as np


class LoadingProgress:
    """The latest ``(stamp, sentence, image)`` of a loading scene; written by the loading thread,
    read by the GUI thread (one tuple replaced at a time, so no lock is needed)."""

    def __init__(self) -> None:
        self.latest: tuple[int, str, np.ndarray | None] = (0, "", None)
        self._seen = 0

    def report(self, sentence: str, image: np.ndarray | None = None) -> None:
        """Called by :func:`~studio.workspace.build_engine`; keeps the last image when none is given."""
        stamp, _, last = self.latest
        self.latest = (stamp + 1, sentence, image if image is not None else last)

    def take(self) -> tuple[str, np.ndarray | None] | None:
        """What changed since the last call (sentence, image or None), or None when nothing did."""
        stamp, sentence, image = self.latest
        if stamp == self._seen:
            return None
        self._seen = stamp
        return sentence, image


def prewarm_imports() -> threading.Thread:
    """Import torch's compiler package on a background thread.

    Creating a torch optimiser imports ``torch._dynamo`` (about 1 s on an idle 2-core machine, several
    on a busy one) the first time.  The engine builds its optimiser at the first step, so the
    app calls this once the first render is on screen, while the user reads it: the first Start
    then finds the import done.
    """
    def work() -> None:
        try:
            import torch._dynamo  # noqa: F401
        except Exception:  # noqa: BLE001 - only a head start; the optimiser imports it again if needed
            pass

    t = threading.Thread(target=work, name="studio-prewarm", daemon=True)
    t.start()
    return t
