"""Compare: one scenario run twice in the background, with a teaching switch off and on, and both
runs' error curves overlaid in one plot.

The runs use engines of their own (:func:`studio.optim.compare.compare_runs` builds them from the
scenario file), never the interactive one, on a :class:`~studio.gui.jobs.Jobs` thread: the window
shows their progress, Cancel stops them after the current step, and the rest of the studio stays
live.  The plot has one colour per parameter group (those of the live curves), the first setting
dashed and the second solid, both named in the legend, on a logarithmic error axis.  Steps and
resolution may be lowered for a quick look; by default they are the scenario's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import dearpygui.dearpygui as dpg
import numpy as np

from ..optim.compare import SWITCHES, RunCurves, compare_runs
from ..render.soft_raster import DEFAULT_SIGMA
from ..scene.params import GROUP_COLORS, GROUPS
from .controls import Button, Combo, IntInput, ProgressBar, Text, TextInput
from .job_controls import JobControls
from .jobs import Jobs, Progress
from .plots import CurvePlot
from .status import INFO
from .teaching_switches import switches_for

_GREY = (150, 150, 150)
DEFAULT_RESTARTS = 64  # the "on" setting of restarts when the scene has none
Y_MARGIN = 1.6  # factor of room above the highest and below the lowest error (log axis)


def compare_words(switch: str, scene: Any, options: dict[str, Any]) -> tuple[str, str]:
    """The two settings compared by default, "off" first, in ``studio compare --values`` words.

    A fixed silhouette sharpness is the SDF's "off" (the scene's final, sharpest α) and annealing
    its "on"; soft rasterization is compared against the hard, antialiased silhouette, soft
    shadows against hard ones, and the visibility gradient "none" against the scene's own
    (antialias when that is none or soft).
    """
    if switch == "visibility":
        mode = str(options.get("visibility") or "antialias")
        return "none", mode if mode not in ("none", "soft") else "antialias"
    if switch == "soft":
        return "off", f"{float(options.get('soft_sigma') or DEFAULT_SIGMA):g}"
    if switch == "restarts":
        return "0", str(int(options.get("restarts") or 0) or DEFAULT_RESTARTS)
    if switch == "sdf_alpha":
        return f"{float(scene.settings['alpha_max']):g}", "anneal"
    if switch == "shadows":
        return "hard", "soft"
    return "off", "on"


def lesson_switch(choices: list[str]) -> str:
    """The switch a scene's lesson is about: the one only this kind of scene has (mipmapping for a
    texture, restarts for a rotation, the SDF's sharpness, hard vs soft shadows), else the
    visibility gradient."""
    return next((s for s in ("shadows", "mip", "restarts", "sdf_alpha") if s in choices), choices[0])


@dataclass(frozen=True)
class CompareRequest:
    """What to compare: the scenario as the workspace loaded it and the run settings."""

    scene: str
    backend: str
    device: str | None
    switch: str
    words: tuple[str, str]
    steps: int
    resolution: int


class CompareWindow:
    """A floating window: settings, Run / Cancel, progress, and the overlay plot.

    Args:
        jobs: where the comparison runs.
        report: one sentence for the status bar (and the log), with its level.
        fail: reports a failed job as one sentence (``App.fail``).
    """

    def __init__(self, jobs: Jobs, report: Callable[[str, str], None],
                 fail: Callable[[str, BaseException], None]):
        self.report = report
        self.runs: list[RunCurves] = []
        self._source: tuple[str, str, str | None] | None = None  # (scene, backend, device) of the workspace
        self._scene: Any = None  # the loaded scene (which switches apply, its SDF settings)
        self._options: dict[str, Any] = {}
        with dpg.window(label="Compare runs", show=False, width=780, height=600, pos=(240, 90),
                        no_saved_settings=True) as self.window:
            self.heading = Text("", wrap=0, parent=self.window)
            row = dpg.add_group(horizontal=True, parent=self.window)
            self.switch = Combo.add("switch", [], "", parent=row, width=110, on_change=self._switch_changed)
            self.switch.tooltip("The teaching switch that differs between the two runs (as in `studio compare`).")
            self.first = TextInput.add("first (dashed)", "off", parent=row, width=70)
            self.second = TextInput.add("second (solid)", "on", parent=row, width=70)
            for box in (self.first, self.second):
                box.tooltip("A setting of the switch: on/off, a sigma in px\u00b2 for soft, a count for restarts, "
                            "a fixed alpha or 'anneal' for sdf_alpha.")
            row = dpg.add_group(horizontal=True, parent=self.window)
            self.steps = IntInput.add("steps", 300, parent=row, width=70, lo=1, hi=100_000)
            self.steps.tooltip("Steps per run (default: the scenario's budget, where its lesson's claims hold).")
            self.resolution = IntInput.add("resolution", 128, parent=row, width=70, lo=16, hi=1024)
            self.resolution.tooltip("Render resolution of both runs in pixels (lower is faster).")
            self.run = Button("Run", self.start, parent=row, width=60)
            self.run.tooltip("Run the scenario twice in the background, with the first then the second setting.")
            self.cancel = Button("Cancel", self.stop, parent=row, width=60)
            self.cancel.tooltip("Stop after the current step; the curves so far are shown.")
            self.bar = ProgressBar(parent=self.window)
            self.summary = Text("", parent=self.window, color=_GREY, wrap=0)
            self.job = JobControls(jobs, fail, "comparing the runs", go=self.run, cancel=self.cancel, bar=self.bar,
                                   message=self.summary, starting="starting the runs...")
            self.plot = CurvePlot(self.window, "", "error (log scale)")
            dpg.configure_item(self.plot.plot, width=-1, height=-1)

    # ------------------------------------------------------------------ opening

    @property
    def visible(self) -> bool:
        return bool(dpg.is_item_shown(self.window))

    def open(self, opts: Any, scene: Any, steps: int, options: dict[str, Any]) -> None:
        """Show the window for the loaded scenario, set to the switch of its lesson (``opts``: its
        workspace Options; ``steps``: its step budget; ``options``: the engine's render options, for
        the default settings)."""
        self._source = (opts.scene, opts.backend, opts.device)
        self._scene, self._options = scene, dict(options)
        choices = [s for s in switches_for(scene) if s in SWITCHES]
        self.switch.items = choices
        if not self.busy:
            self.switch.value = lesson_switch(choices)
            self._switch_changed(self.switch.value)
            self.steps.value = int(steps)
            self.resolution.value = int(scene.resolution[0])
        self.heading.value = (f"{scene.spec.name}: the same scenario run twice with its own engines (the interactive "
                              "run is not touched), one setting of the switch each; error curves overlaid below.")
        dpg.show_item(self.window)
        dpg.focus_item(self.window)

    def _switch_changed(self, switch: str) -> None:
        first, second = compare_words(switch, self._scene, self._options)
        self.first.value, self.second.value = first, second

    # ------------------------------------------------------------------ running

    @property
    def busy(self) -> bool:
        return self.job.busy

    def request(self) -> CompareRequest:
        """The comparison the window is set to."""
        scene, backend, device = self._source
        return CompareRequest(scene, backend, device, self.switch.value,
                              (self.first.value.strip(), self.second.value.strip()),
                              self.steps.value, self.resolution.value)

    def start(self) -> None:
        """Run the comparison the window is set to, in the background."""
        if self.busy or self._source is None:
            return
        req = self.request()
        progress = Progress()
        labels = [f"{req.switch} {w}" for w in req.words]

        def on_step(label: str, step: int, steps: int) -> None:
            run = labels.index(label) if label in labels else 0
            progress.report(run * steps + step, 2 * steps, f"{label}: step {step}/{steps}")

        def work() -> list[RunCurves]:
            return compare_runs(req.scene, req.switch, req.words, backend=req.backend, device=req.device,
                                steps=req.steps, resolution=req.resolution, progress=on_step,
                                cancel=progress.cancel)

        self.runs = []
        self.plot.keep_only(set())
        self.plot.set_y_range()
        self.job.launch(progress, work, lambda runs: self._finished(req, runs))

    def stop(self) -> None:
        self.job.stop()

    def poll(self) -> None:
        """Once per frame: the progress bar."""
        self.job.poll()

    def _finished(self, req: CompareRequest, runs: list[RunCurves]) -> None:
        cancelled = self.job.cancelled
        self.show_runs(req, runs)
        self.bar.show(1.0 if not cancelled else self.bar.fraction, "cancelled" if cancelled else "done")
        self.report(f"compared {req.switch} {req.words[0]} and {req.words[1]} on {Path(req.scene).stem}"
                    f"{' (cancelled)' if cancelled else ''}.", INFO)

    # ------------------------------------------------------------------ the plot

    def show_runs(self, req: CompareRequest, runs: list[RunCurves]) -> None:
        """Overlay the runs' group-error curves: the first run dashed, the second solid."""
        self.runs = runs
        keys = set()
        lines: list[str] = []
        lows: list[float] = []
        highs: list[float] = []
        for i, run in enumerate(runs):
            h = run.history
            for g in GROUPS:
                y = h.get(g)
                if y is None or not np.isfinite(y).any():
                    continue
                unit = run.units.get(g, "")
                style = "dashed" if i == 0 else "solid"
                key = f"{i}:{g}"
                self.plot.set_curve(key, f"{g} - {run.label} ({style})", GROUP_COLORS[g], h["step"], y,
                                    dashed=i == 0)
                keys.add(key)
                shown = y[np.isfinite(y) & (y > 0)]
                if shown.size:
                    lows.append(float(shown.min()))
                    highs.append(float(shown.max()))
                if g in run.final_errors:
                    lines.append(f"{g} {run.label}: {run.final_errors[g]:.4g} {unit}".rstrip())
        self.plot.keep_only(keys)
        if highs:
            # A run that never moves is a flat line at the top: leave room above and below.
            self.plot.set_y_range(min(lows) / Y_MARGIN, max(highs) * Y_MARGIN)
        dpg.configure_item(self.plot.plot, label=f"{req.switch} {req.words[0]} (dashed) vs {req.words[1]} (solid)")
        self.summary.value = "final errors: " + "; ".join(lines) if lines else "no error curves to compare."

    def series_per_group(self) -> dict[str, int]:
        """How many curves the plot shows for each group."""
        out: dict[str, int] = {}
        for key in self.plot.series:
            g = key.split(":", 1)[1]
            out[g] = out.get(g, 0) + 1
        return out
