"""File > Export dataset...: a synthetic, labelled YOLO dataset (:func:`studio.data.export_dataset`)
from the window.

A floating window with the export's main options (scene, number of images, output folder, task,
image size, validation share, seed, minimum visible pixels, overwrite), a progress bar and
Export / Cancel.  The export runs on a :class:`~studio.gui.jobs.Jobs` thread and reports through a
:class:`~studio.gui.jobs.Progress`, so the window and the interactive run stay live, and Cancel
stops it after the current image (the pairs written so far stay complete).  Bad options or an
unusable scene end as one sentence in the window and the status bar.  When the export completes,
its ``preview.png`` (the first images with their labels drawn) is shown in the window.

The scene defaults to the loaded one when every object in it has a class name (the labels need
them), else to ``objects``, the scenario made for dataset export.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import dearpygui.dearpygui as dpg
import numpy as np

from ..data import ExportConfig, ExportResult, export_dataset
from ..data.config import TASKS
from ..images import read_image
from ..scenarios import list_scenarios, load_spec
from .controls import Button, Checkbox, Combo, IntInput, NumberInput, ProgressBar, Text, TextInput
from .dialogs import FileDialog
from .job_controls import JobControls
from .jobs import Jobs, Progress
from .status import INFO

DEFAULT_SCENE = "objects"
PREVIEW_PX = 540  # width of the preview picture in the window
_GREY = (150, 150, 150)
_FIELD_PX = 160


def labelled(spec: Any) -> bool:
    """Whether a scene can be exported: a mesh scene whose objects all have a class name or are
    declared scenery (``[export] unlabelled``)."""
    scenery = set(spec.extra.get("export", {}).get("unlabelled", ()))
    return spec.kind == "mesh" and bool(spec.objects) and all(o.class_name or o.name in scenery for o in spec.objects)


def exportable_scenarios() -> list[str]:
    """Built-in scenarios whose objects all have class names."""
    return [i.name for i in list_scenarios() if labelled(load_spec(i.path))]


@dataclass(frozen=True)
class Finished:
    """A completed export and its preview sheet ([H,W,3] float, or None without one)."""

    result: ExportResult
    preview: np.ndarray | None


class ExportDialog:
    """Args:
        jobs: where the export runs.
        report: one sentence for the status bar (and the log), with its level.
        fail: reports a failed job as one sentence (``App.fail``).
    """

    def __init__(self, jobs: Jobs, report: Callable[[str, str], None], fail: Callable[[str, BaseException], None]):
        self.report = report
        self.result: ExportResult | None = None
        self._device: tuple[str, str | None] = ("auto", None)
        d = ExportConfig()
        with dpg.texture_registry() as self._registry:
            pass
        self.folder_dialog = FileDialog("Dataset folder", [], self._folder_chosen, directory=True)
        with dpg.window(label="Export dataset", show=False, width=600, height=640, pos=(300, 60),
                        no_saved_settings=True) as self.window:
            dpg.add_text("Randomised renders of a scene with occlusion-aware labels, in Ultralytics YOLO format "
                         "(images/, labels/, data.yaml, preview.png).", wrap=0, color=_GREY)
            self.scene = Combo.add("scene", [], d.scene, parent=self.window, width=_FIELD_PX)
            self.scene.tooltip("A scene whose objects all have class names; its [export] section says what each "
                               "image randomises.")
            self.n = IntInput.add("images", d.n, parent=self.window, width=_FIELD_PX, lo=1, hi=10_000_000)
            row = dpg.add_group(horizontal=True, parent=self.window)
            self.out = TextInput.add("##out", "", parent=row, width=390, hint="output folder")
            self.out.tooltip("Created if missing; it must be empty unless overwrite is ticked.")
            self.browse = Button("Browse...", self.folder_dialog.open, parent=row)
            dpg.add_text("output folder", parent=row)
            self.task = Combo.add("task", TASKS, d.task, parent=self.window, width=_FIELD_PX)
            self.task.tooltip("detect: one box per visible object; segment: its outline polygons.")
            self.imgsz = IntInput.add("image size (px)", d.imgsz, parent=self.window, width=_FIELD_PX, lo=32, hi=4096)
            self.val = NumberInput.add("validation share", d.val_fraction, parent=self.window, width=_FIELD_PX,
                                       fmt="%.2f")
            self.val.tooltip("Fraction of the images in the validation split, in [0, 1).")
            self.seed = IntInput.add("seed", d.seed, parent=self.window, width=_FIELD_PX)
            self.seed.tooltip("Image i is drawn from the random generator of (seed, i): the same seed gives the same "
                              "dataset.")
            self.min_px = IntInput.add("min visible px", d.min_visible_px, parent=self.window, width=_FIELD_PX, lo=1)
            self.min_px.tooltip("Objects that show fewer pixels than this (hidden, cut off) get no label.")
            self.overwrite = Checkbox.add("overwrite", d.overwrite, parent=self.window)
            self.overwrite.tooltip("Replace a dataset already in the folder.")
            row = dpg.add_group(horizontal=True, parent=self.window)
            self.export = Button("Export", self.start, parent=row, width=80)
            self.cancel = Button("Cancel", self.stop, parent=row, width=80)
            self.bar = ProgressBar(parent=self.window)
            self.message = Text("", parent=self.window, wrap=0)
            self.job = JobControls(jobs, fail, "exporting the dataset", go=self.export, cancel=self.cancel,
                                   bar=self.bar, message=self.message)
            self._preview_holder = dpg.add_group(parent=self.window)
            self._preview: tuple[int, int] | None = None  # (texture, image) items of the shown preview

    # ------------------------------------------------------------------ opening

    @property
    def visible(self) -> bool:
        return bool(dpg.is_item_shown(self.window))

    def open(self, current: Any | None, backend: str = "auto", device: str | None = None) -> None:
        """Show the dialog; ``current`` is the loaded scene's spec (None when nothing is loaded)."""
        self._device = (backend, device)
        choices = exportable_scenarios()
        if current is not None and labelled(current) and current.name not in choices:
            choices.append(current.name)
        self.scene.items = choices
        if not self.busy:
            self.scene.value = current.name if current is not None and labelled(current) else DEFAULT_SCENE
            if not self.out.value:
                self.out.value = str(Path.cwd() / "datasets" / self.scene.value)
        dpg.show_item(self.window)
        dpg.focus_item(self.window)

    def _folder_chosen(self, path: Path) -> None:
        self.out.value = str(path)

    def config(self) -> ExportConfig:
        """The export the dialog is set to."""
        backend, device = self._device
        return ExportConfig(scene=self.scene.value, out=self.out.value.strip(), n=self.n.value, task=self.task.value,
                            imgsz=self.imgsz.value, val_fraction=float(self.val.value), seed=self.seed.value,
                            min_visible_px=self.min_px.value, backend=backend, device=device,
                            overwrite=self.overwrite.value)

    # ------------------------------------------------------------------ running

    @property
    def busy(self) -> bool:
        return self.job.busy

    def start(self) -> None:
        """Export in the background with the dialog's options."""
        if self.busy:
            return
        config = self.config()
        if not str(config.out):
            self.message.value = "Choose an output folder first."
            return
        progress = Progress()
        progress.report(0, config.n, "building the scene...")

        def work() -> Finished:
            result = export_dataset(config, progress=lambda done, planned: progress.report(
                done, planned, f"{done}/{planned} images"), cancel=progress.cancel)
            sheet = read_image(result.preview)[..., :3] if result.preview is not None else None
            return Finished(result, sheet)

        self._clear_preview()
        self.job.launch(progress, work, self._finished)

    def stop(self) -> None:
        self.job.stop()

    def poll(self) -> None:
        """Once per frame: the progress bar."""
        self.job.poll()

    def _finished(self, done: Finished) -> None:
        r = self.result = done.result
        self.bar.show(r.written / max(r.planned, 1), f"{r.written}/{r.planned} images")
        if r.cancelled:
            sentence = (f"dataset export cancelled after {r.written} of {r.planned} images; the pairs in {r.out} "
                        "are complete and data.yaml points at them.")
        else:
            labels = ", ".join(f"{n} {k}" for k, n in r.labels.items())
            sentence = (f"exported {r.written} images ({r.splits['train']} train, {r.splits['val']} val; labels: "
                        f"{labels}) to {r.out} in {r.seconds:.1f} s.")
        self.message.value = sentence
        self.report(sentence, INFO)
        if done.preview is not None:
            self._show_preview(done.preview)

    # ------------------------------------------------------------------ preview

    def _clear_preview(self) -> None:
        if self._preview is not None:
            texture, image = self._preview
            dpg.delete_item(image)
            dpg.delete_item(texture)
            self._preview = None

    def _show_preview(self, sheet: np.ndarray) -> None:
        """The contact sheet (sRGB-encoded [H,W,3] floats) at the dialog's width."""
        self._clear_preview()
        h, w = sheet.shape[:2]
        rgba = np.ones((h, w, 4), np.float32)
        rgba[..., :3] = sheet
        texture = dpg.add_static_texture(w, h, rgba.ravel(), parent=self._registry)
        scale = PREVIEW_PX / w
        image = dpg.add_image(texture, width=int(w * scale), height=int(h * scale), parent=self._preview_holder)
        self._preview = (texture, image)

    @property
    def preview_shown(self) -> bool:
        return self._preview is not None

    def preview_rect(self) -> tuple[int, int, int, int]:
        """(x, y, width, height) of the preview picture in viewport pixels, as last drawn."""
        image = self._preview[1]
        (x, y), (w, h) = dpg.get_item_rect_min(image), dpg.get_item_rect_size(image)
        return int(x), int(y), int(w), int(h)
