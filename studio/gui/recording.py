"""File > Export > Record video: a run video (studio.video.RunVideo) fed from the snapshots the
window shows, encoded on its own thread so the window and the optimiser never wait for ffmpeg.

The GUI thread hands over snapshots that are due (one every K steps); when the encoder is still
busy with the previous frame the snapshot is skipped (the queue holds two), so memory stays bounded
and a slow machine gets fewer frames rather than a stalled window.  No dearpygui here.
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Any

from ..video import RunVideo


class Recording:
    """One video being recorded.

    Args:
        path: .mp4 (or .gif).
        steps: the run's step budget (the curves' x axis).
        every: steps between frames (default: about 150 frames over the budget).
    """

    def __init__(self, path: str | Path, steps: int, every: int | None = None):
        self.video = RunVideo(path, steps, every)
        self.dropped = 0
        self.error: BaseException | None = None
        self._offered: int | None = None  # the step of the last snapshot handed to the encoder
        self._queue: queue.Queue = queue.Queue(maxsize=2)
        self._thread = threading.Thread(target=self._work, name="studio-video", daemon=True)
        self._thread.start()

    @property
    def path(self) -> Path:
        return self.video.path

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            snap, force = item
            try:
                self.video.add(snap, force)
            except Exception as exc:  # noqa: BLE001 - reported when the recording stops
                self.error = exc

    def add(self, snap: Any, force: bool = False) -> None:
        """Offer a snapshot (GUI thread; never blocks)."""
        if self.error is not None or snap is None or snap.step == self._offered:
            return
        if not (force or self._offered is None or snap.step >= self._offered + self.video.every):
            return
        try:
            self._queue.put_nowait((snap, force))
            self._offered = snap.step
        except queue.Full:
            self.dropped += 1

    def stop(self, last: Any = None) -> Path:
        """Add ``last`` (the final snapshot) and finish the file; call off the GUI thread (it waits
        for the encoder).  Returns the path written.

        Raises:
            the encoder's error, or VideoError when no frame was recorded.
        """
        if last is not None:
            self._queue.put((last, True))
        self._queue.put(None)
        self._thread.join()
        if self.error is not None:
            raise self.error
        return self.video.close()
