"""The Capture tab: a reconstruction's views as thumbnails, its held-out PSNR curve, and its export.

Shown when the studio has a capture open (``studio gui DATASET`` or File > Open capture...).
Clicking a thumbnail shows that view in the picture row: the target pane shows the photo, the
render beside it comes from that view's camera, then the difference.  The curve is the held-out
PSNR (the views the fit never sees), with a vertical line at every stage change or remeshing.
*Export* writes the same files as ``studio reconstruct`` into a folder.
"""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path
from typing import Any, Callable

import dearpygui.dearpygui as dpg
import numpy as np

from ..images import linear_to_srgb
from ..optim.engine import Engine, Snapshot
from .controls import Button, Text
from .dialogs import FileDialog
from .plots import CurvePlot

THUMB = 56  # pixels per side
_PER_ROW = 5
_PSNR_COLOR = (240, 220, 60)
_NOTE_COLOR = (150, 150, 150)


def _thumbnail(image: np.ndarray, size: int = THUMB) -> list[float]:
    """[H,W,3] linear RGB -> flat RGBA floats of a size x size display thumbnail (nearest texel)."""
    h, w, _ = image.shape
    ys = (np.arange(size) + 0.5) * h / size
    xs = (np.arange(size) + 0.5) * w / size
    small = linear_to_srgb(np.clip(image[ys.astype(int)][:, xs.astype(int)], 0, 1))
    return np.concatenate([small, np.ones((size, size, 1))], -1).astype(np.float32).ravel().tolist()


class CapturePanel:
    """Args:
        parent: the tab to build in.
        on_view: called with a training view index when a thumbnail is clicked.
        on_export: called with the chosen output folder.
    """

    def __init__(self, parent: int | str, on_view: Callable[[int], None], on_export: Callable[[Path], None]):
        self.on_view = on_view
        with dpg.texture_registry() as self._registry:
            pass
        self.group = dpg.add_group(parent=parent)
        self.note = Text("No capture is open: File > Open capture... (a NeRF folder with transforms*.json, or a "
                         "COLMAP model folder).", parent=self.group, color=_NOTE_COLOR, wrap=360)
        self.summary = Text("", parent=self.group, wrap=360)
        self.thumbs = dpg.add_group(parent=self.group)
        self.psnr = CurvePlot(self.group, "held-out PSNR", "dB")
        self.psnr.set_log(False)
        dpg.configure_item(self.psnr.plot, width=-1, height=180)
        self._marks = dpg.add_inf_line_series([], label="stage / remesh", parent=self.psnr.y_axis)
        self.folder = FileDialog("Export reconstruction to a folder", [], on_export, directory=True)
        self.export = Button("Export reconstruction...", lambda: self.folder.open(), parent=self.group)
        self._rows: list[int] = []
        self._textures: list[int] = []
        self.buttons: list[int] = []  # one image button per training view (tests click them)
        self._shown_marks = -1
        self.active = False
        for item in (self.psnr.plot, self.export.item):
            dpg.hide_item(item)

    def attach(self, scene: Any) -> None:
        """A new scene: thumbnails of its capture's views, or the note when it is not a capture."""
        for item in self._rows + self._textures:  # a row takes its buttons with it
            dpg.delete_item(item)
        self._rows, self._textures, self.buttons = [], [], []
        self._shown_marks = -1
        capture = getattr(scene, "capture", None)
        self.active = capture is not None
        self.note.value = "" if self.active else self.note.value
        for item in (self.psnr.plot, self.export.item):
            dpg.configure_item(item, show=self.active)
        self.psnr.keep_only(set())
        if not self.active:
            self.summary.value = ""
            return
        h, w = capture.resolution
        self.summary.value = (f"{scene.spec.name.split(':', 1)[-1]} ({capture.layout}): {len(capture.views)} training views, "
                              f"{len(capture.test_views)} held out, {w}x{h}. Click a view to show it.")
        for i, view in enumerate(capture.views):
            if i % _PER_ROW == 0:
                self._rows.append(dpg.add_group(horizontal=True, parent=self.thumbs))
            tex = dpg.add_static_texture(THUMB, THUMB, _thumbnail(view.image.numpy()), parent=self._registry)
            button = dpg.add_image_button(tex, width=THUMB, height=THUMB, parent=self._rows[-1],
                                          callback=lambda *a, i=i: self.on_view(i))
            with dpg.tooltip(button):
                dpg.add_text(f"view {i}: {view.name}")
            self._textures.append(tex)
            self.buttons.append(button)

    def update(self, snap: Snapshot) -> None:
        """The held-out PSNR curve and the event marks of a new snapshot."""
        if not self.active:
            return
        y = snap.history.get("metric:heldout_psnr")
        if y is not None:
            self.psnr.set_curve("psnr", "held-out PSNR", _PSNR_COLOR, snap.history["step"], y)
        if len(snap.marks) != self._shown_marks:
            self._shown_marks = len(snap.marks)
            dpg.set_value(self._marks, [[float(s) for s, _ in snap.marks]])


def export_reconstruction(engine: Engine, snap: Snapshot, folder: Path) -> "Future[dict]":
    """Write the files of ``studio reconstruct`` for the reconstruction as it is at ``snap``, on the
    engine's thread (between steps); the Future holds the summary."""
    from ..reconstruct.export import write_outputs

    seconds = snap.step * snap.ms_per_step / 1000.0
    return engine.submit(lambda e: write_outputs(e.scene, folder, snap.history, snap.marks, seconds, snap.step))
