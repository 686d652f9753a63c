"""Step-through: one optimisation step shown in four stages, each with its numbers.

With step-through on, Step (toolbar button, S key, Run menu, or the pager's ">") first asks the
engine for a recorded step (:meth:`Engine.step_recorded`): the worker takes the whole step at once
and attaches its :class:`~studio.optim.engine.StepRecord` to the snapshot.  Each further Step shows
the next stage:

1/4 render      the picture the loss saw (first view of the step), with the parameters θ;
2/4 loss image  the per-pixel squared error, with the total loss and each term;
3/4 gradient    d loss / d pixel (red: brighter raises the loss, blue: lowers it), with the norm
                of d loss / dθ per parameter and per group;
4/4 update      θ before and after the optimiser step, the change and the learning rate.

The engine has already moved the parameters, but the window holds back the snapshot that carries
the record (:meth:`StepThrough.holds`) until stage 4, so sliders, curves and the main render change
exactly when the update is shown.  The next Step after stage 4 takes the next recorded step.
"""

from __future__ import annotations

import math
from typing import Callable

import dearpygui.dearpygui as dpg
import numpy as np
import torch

from ..images import heatmap, linear_to_srgb
from ..optim.engine import Snapshot, StepRecord
from ..render.modes import signed_colors
from .controls import Button, Checkbox, Text
from .images import ImageView

STAGES = ("render", "loss image", "gradient", "update")
PICTURE_PX = 200
_GREY = (150, 150, 150)


def _value_text(v: np.ndarray) -> str:
    """A parameter value for the table: its numbers when small, else the norm of the tensor."""
    flat = v.reshape(-1)
    if flat.size <= 4:
        return ", ".join(f"{x:.4g}" for x in flat)
    return f"norm {float(np.linalg.norm(flat)):.4g}"


def _change_text(before: np.ndarray, after: np.ndarray) -> str:
    """after - before: each component when small, else the RMS and largest change."""
    d = (after.astype(np.float64) - before).reshape(-1)
    if d.size <= 4:
        return ", ".join(f"{x:+.3g}" for x in d)
    return f"rms {math.sqrt(float(np.mean(d * d))):.3g}, max {float(np.abs(d).max()):.3g}"


class StepThrough:
    """The step-through section of the Teaching tab.

    Args:
        parent: container item.
        registry: texture registry for the stage picture.
        on_toggle: called with the new state when the user switches the mode on or off.
    """

    def __init__(self, parent: int | str, registry: int | str, on_toggle: Callable[[bool], None]):
        self.on_toggle = on_toggle
        self.root = dpg.add_group(parent=parent)
        self.enabled = Checkbox.add("step-through mode", False, parent=self.root, on_change=self._toggled)
        self.enabled.tooltip("Step shows one optimisation step in four stages: render, loss image, gradient, update.")
        pager = dpg.add_group(horizontal=True, parent=self.root)
        self.back = Button("<", lambda: self.go(self.stage - 1), parent=pager, width=28)
        self.back.tooltip("The previous stage of this step.")
        self.next = Button(">", self.step, parent=pager, width=28)
        self.next.tooltip("The next stage (the same as Step and the S key); after 4/4, the next step.")
        self.title = Text("", parent=pager)
        self.explain = Text("", parent=self.root, color=_GREY, wrap=0)
        self.picture = ImageView(self.root, "", registry)
        self.picture.set_size(PICTURE_PX)
        self.table_parent = dpg.add_group(parent=self.root)
        self.table: int | None = None
        self.rows: list[tuple[str, ...]] = []  # the table's rows as shown (for tests and scripts)
        self.stage = 0  # 0: no record shown yet; 1..4: the stage shown
        self.record: StepRecord | None = None
        self._request: Callable[[], None] | None = None
        self._held: Snapshot | None = None
        self._asked_after: int | None = None  # stamp of the latest snapshot when a recorded step was asked for
        self._latest_stamp = -1
        self._show_idle()

    # ------------------------------------------------------------------ state

    @property
    def on(self) -> bool:
        return self.enabled.value

    def attach(self, request: Callable[[], None]) -> None:
        """A new engine: ``request()`` asks it for one recorded step."""
        self._request = request
        self._forget()

    def _toggled(self, on: bool) -> None:
        self._forget()
        self.on_toggle(on)

    def _forget(self) -> None:
        self.record, self._held, self._asked_after, self.stage = None, None, None, 0
        self._show_idle()

    def step(self) -> None:
        """Step: the next stage of the record shown, or a new recorded step after stage 4."""
        if self.record is not None and 0 < self.stage < len(STAGES):
            self.go(self.stage + 1)
        elif self._asked_after is None and self._request is not None:
            self._asked_after = self._latest_stamp
            self._request()
            self.title.value = "taking one step..."

    def holds(self, snap: Snapshot) -> bool:
        """Whether the window must keep showing the previous snapshot instead of ``snap``: while the
        step ``snap`` carries is shown before its update stage.  Called every frame until ``snap``
        is shown."""
        self._latest_stamp = snap.stamp
        if self._asked_after is not None and snap.stamp > self._asked_after:
            self._asked_after = None
        if not self.on:
            return False
        rec = snap.step_record
        if rec is None or snap.step != rec.step:
            if self.record is not None and self.stage < len(STAGES):
                self._forget()  # the run moved on (Start, Reset, a plain step): nothing to hold
            return False
        self._held = snap
        if rec is not self.record:
            self.record = rec
            self.go(1)
        return self.stage < len(STAGES)

    # ------------------------------------------------------------------ showing

    def go(self, stage: int) -> None:
        """Show stage ``stage`` (1 to 4) of the current record."""
        if self.record is None:
            return
        self.stage = min(max(stage, 1), len(STAGES))
        rec = self.record
        name = STAGES[self.stage - 1]
        self.title.value = f"{self.stage}/{len(STAGES)} {name}  (step {rec.step})"
        self.back.enabled = self.stage > 1
        views = ", ".join(str(v) for v in rec.views)
        if self.stage == 1:
            self.explain.value = (f"The scene rendered at the current parameters, as the loss sees it: view "
                                  f"{rec.views[0]} (this step renders views {views}).")
            self._picture(linear_to_srgb(rec.render), "render")
            self._table(("parameter", "value"), [(n, _value_text(v)) for n, v in rec.before.items()])
        elif self.stage == 2:
            self.explain.value = ("Per-pixel squared error |render - target|\u00b2 over R, G, B (what the l2 loss "
                                  "averages). The loss is the weighted sum of the terms below.")
            self._picture(heatmap(rec.loss_image), "loss image (99th percentile = white)")
            rows = [("total (weighted)", f"{rec.loss:.5g}")] + [(t, f"{v:.5g}") for t, v in rec.loss_terms.items()]
            self._table(("loss", "value"), rows)
        elif self.stage == 3:
            colours, scale = signed_colors(torch.from_numpy(rec.pixel_gradient.sum(-1)).unsqueeze(0))
            self.explain.value = ("d loss / d pixel, summed over R, G, B and coverage: red where a brighter pixel "
                                  "raises the loss, blue where it lowers it. Backpropagation through the renderer "
                                  "turns it into the parameter gradients below.")
            self._picture(colours[0].numpy(), f"d loss / d pixel (full colour \u00b1{scale:.3g})")
            rows = [(n, f"{g:.4g}") for n, g in rec.grad_norm.items()]
            rows += [(f"{g} (group)", f"{v:.4g}") for g, v in rec.group_grad_norm.items()]
            self._table(("|d loss / d theta|", "L2 norm"), rows)
        else:
            after = self._held.render if self._held is not None else rec.render
            skipped = " The step was skipped (NaN or Inf), so nothing moved." if rec.skipped else ""
            self.explain.value = (f"The optimiser ({rec.optimizer}) moved every fitted parameter; the window now "
                                  f"shows the new values.{skipped}")
            self._picture(linear_to_srgb(after), "render after the update (the view on the left)")
            self._table(("parameter", "before", "after", "change", "lr"),
                        [(n, _value_text(rec.before[n]), _value_text(rec.after[n]),
                          _change_text(rec.before[n], rec.after[n]), f"{rec.lr.get(n, 0.0):.3g}") for n in rec.before])

    def _show_idle(self) -> None:
        self.title.value = "press Step" if self.on else "off"
        self.explain.value = ("Step then shows one iteration in four stages: 1/4 render, 2/4 loss image, "
                              "3/4 gradient, 4/4 update, with their numbers." if self.on else "")
        self.back.enabled = False
        for item in (self.picture.group, self.table_parent):
            dpg.configure_item(item, show=False)
        self.rows = []

    def _picture(self, image: np.ndarray, caption: str) -> None:
        h, w = image.shape[:2]
        self.picture.set_resolution(h, w)
        self.picture.update(np.clip(image, 0.0, 1.0).astype(np.float32))
        self.picture.caption.value = caption
        dpg.configure_item(self.picture.group, show=True)

    def _table(self, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
        if self.table is not None:
            dpg.delete_item(self.table)
        self.table = dpg.add_table(parent=self.table_parent, header_row=True, borders_innerH=True,
                                   policy=dpg.mvTable_SizingStretchProp)
        for h in header:
            dpg.add_table_column(label=h, parent=self.table)
        for row in rows:
            with dpg.table_row(parent=self.table):
                for cell in row:
                    dpg.add_text(cell)
        self.rows = [tuple(header)] + [tuple(r) for r in rows]
        dpg.configure_item(self.table_parent, show=True)
