"""Live curves (ImPlot): error per parameter group vs step, and the total loss with its terms.

Group colours follow the original convergence figure (studio.scene.params.GROUP_COLORS: geometry
blue, materials red, lighting green, camera purple).  Series are rewritten only when a new
snapshot arrives, thinned to at most ``MAX_POINTS`` points, and the axes follow the data unless
the user unticks "follow" to zoom and pan.  Legends sit beside the plots, outside the data.
"""

from __future__ import annotations

import math
from typing import Sequence

import dearpygui.dearpygui as dpg
import numpy as np

from ..optim.engine import Snapshot
from ..scene.params import GROUP_COLORS, GROUPS
from .controls import Checkbox
from ..ticks import log_ticks, nice_ticks, tick_label
from .theme import line_theme

MAX_POINTS = 160  # ImPlot draws every segment, and with software OpenGL each one costs
TOTAL_COLOR = (235, 235, 235)
#: Colours of loss terms (none of them a group colour).
TERM_COLORS = [(255, 170, 40), (40, 200, 220), (240, 220, 60), (250, 120, 190), (150, 150, 255), (170, 220, 120)]
#: A dashed curve draws DASH_ON points' worth of line, then leaves DASH_OFF points out (ImPlot has no
#: dash style, but it leaves a gap at every NaN).  Shorter curves stay solid: their dashes would vanish.
DASH_ON, DASH_OFF, DASH_MIN_POINTS = 3, 2, 10
#: Margins of the followed axes: the y range grows by Y_PAD of its span above and below (so no curve
#: and no line width touches the frame), the x range by X_PAD on the right.
Y_PAD, X_PAD = 0.08, 0.02

def thin(x: np.ndarray, y: np.ndarray, positive: bool, max_points: int | None = None) -> tuple[list, list]:
    """Finite (and, for log axes, positive) points, at most ``max_points`` (default ``MAX_POINTS``).

    Long curves keep their envelope: the steps are cut into ``max_points / 2`` buckets and each
    bucket becomes its lowest and highest value, in the order the curve passes them, so the noise
    band and the spikes of a loss curve stay visible with a few hundred points.
    """
    max_points = MAX_POINTS if max_points is None else max_points
    keep = np.isfinite(y) & ((y > 0) if positive else True)
    x, y = x[keep], y[keep]
    if len(x) > max_points:
        starts = np.linspace(0, len(x), max_points // 2, endpoint=False).astype(int)
        ends = np.r_[starts[1:], len(x)] - 1
        lo, hi = np.minimum.reduceat(y, starts), np.maximum.reduceat(y, starts)
        falling = y[starts] > y[ends]
        x = np.stack([x[starts], x[ends]], 1).ravel()
        y = np.stack([np.where(falling, hi, lo), np.where(falling, lo, hi)], 1).ravel()
    return x.tolist(), y.tolist()


def dash(y: list[float]) -> list[float]:
    """``y`` with gaps (NaN) that make its line dashed: DASH_ON points drawn, DASH_OFF left out."""
    if len(y) < DASH_MIN_POINTS:
        return y
    period = DASH_ON + DASH_OFF
    return [v if i % period < DASH_ON else float("nan") for i, v in enumerate(y)]


class CurvePlot:
    """One plot of named curves that share a step axis.

    While it follows the data, the plot sets its own limits: the x axis spans the steps and the y
    axis the curves with a margin (``Y_PAD`` of the range, in log10 units on a log axis), so no curve
    lies on the frame; a log axis gets at least two labelled ticks (studio.ticks).  The legend sits
    outside the data, beside it.
    """

    def __init__(self, parent: int | str, title: str, y_label: str, legend: int = dpg.mvPlot_Location_East):
        self.plot = dpg.add_plot(label=title, parent=parent, height=200, width=300, no_menus=False)
        dpg.add_plot_legend(parent=self.plot, location=legend, outside=True)
        self.x_axis = dpg.add_plot_axis(dpg.mvXAxis, label="step", parent=self.plot)
        self.y_axis = dpg.add_plot_axis(dpg.mvYAxis, label=y_label, parent=self.plot)
        self.series: dict[str, int] = {}
        self.log = True
        self.follow = True
        self.limits: tuple[tuple[float, float], tuple[float, float]] | None = None  # (x, y) as last set
        self.ticks: list[float] = []  # the y ticks as last set (data units)
        self._log_shown = False
        self._data: dict[str, tuple[list, list]] = {}
        self._fixed_y: tuple[float, float] | None = None
        self._fitted: tuple | None = None  # (limits, log) last applied

    def set_log(self, on: bool) -> None:
        self.log = on
        self._apply_scale()

    def _apply_scale(self) -> None:
        # An empty log axis shows a range of 1e-300 to 1: stay linear until there is a curve.
        log = self.log and bool(self.series)
        if log != self._log_shown:
            self._log_shown = log
            dpg.configure_item(self.y_axis, scale=dpg.mvPlotScale_Log10 if log else dpg.mvPlotScale_Linear)

    def set_follow(self, on: bool) -> None:
        """Follow the data (limits set by :meth:`fit`), or leave the axes to the user's zoom and pan."""
        self.follow = on
        if on:
            self.fit()
            return
        self.limits = self._fitted = None
        for axis in (self.x_axis, self.y_axis):
            dpg.set_axis_limits_auto(axis)
        dpg.reset_axis_ticks(self.y_axis)

    def set_y_range(self, lo: float | None = None, hi: float | None = None) -> None:
        """Fix the error axis to [lo, hi], or fit it to the data again when either is None."""
        self._fixed_y = None if lo is None or hi is None else (float(lo), float(hi))
        self.fit()

    def fit(self) -> None:
        """Set the limits and ticks to the data (when following it)."""
        if not self.follow:
            return
        log = self._log_shown
        xs = [x for x, _ in self._data.values() if x]
        ys = [v for _, y in self._data.values() for v in y if math.isfinite(v) and (v > 0 or not log)]
        x0, x1 = (min(x[0] for x in xs), max(x[-1] for x in xs)) if xs else (0.0, 1.0)
        x1 = x0 + 1.0 if x1 <= x0 else x1 + X_PAD * (x1 - x0)
        if self._fixed_y is not None:
            y0, y1 = self._fixed_y
        elif ys:
            y0, y1 = _padded(min(ys), max(ys), log)
        else:
            y0, y1 = 0.0, 1.0
        limits = ((float(x0), float(x1)), (float(y0), float(y1)))
        if (limits, log) == self._fitted:
            return
        self.limits, self._fitted = limits, (limits, log)
        dpg.set_axis_limits(self.x_axis, *limits[0])
        dpg.set_axis_limits(self.y_axis, *limits[1])
        self.ticks = log_ticks(y0, y1) if log else nice_ticks(y0, y1)
        dpg.set_axis_ticks(self.y_axis, tuple((tick_label(t), t) for t in self.ticks))

    def reset(self) -> None:
        """No curves, axes back to their empty state (Reset, a new scene or mesh)."""
        self.keep_only(set())
        self._fixed_y = None
        self.limits = self._fitted = None
        self.fit()

    def set_curve(self, key: str, label: str, color: Sequence[int], x: np.ndarray, y: np.ndarray,
                  dashed: bool = False) -> None:
        """Add or replace curve ``key`` (the limits follow at :meth:`keep_only` or :meth:`fit`)."""
        xs, ys = thin(x, y, self.log)
        if dashed:
            ys = dash(ys)
        if key not in self.series:
            if not xs:
                return
            s = dpg.add_line_series(xs, ys, label=label, parent=self.y_axis)
            dpg.bind_item_theme(s, line_theme(color))
            self.series[key] = s
            self._apply_scale()
        else:
            s = self.series[key]
            dpg.set_value(s, [xs, ys])
            if dpg.get_item_label(s) != label:
                dpg.set_item_label(s, label)
        self._data[key] = (xs, ys)

    def keep_only(self, keys: set[str]) -> None:
        """Drop every curve not in ``keys``, then fit the axes to what is left."""
        for key in [k for k in self.series if k not in keys]:
            dpg.delete_item(self.series.pop(key))
            self._data.pop(key, None)
        self._apply_scale()
        self.fit()

    def points(self, key: str) -> int:
        """How many points the curve ``key`` shows (0 when absent)."""
        return len(dpg.get_value(self.series[key])[0]) if key in self.series else 0

    def rect(self) -> tuple[int, int, int, int]:
        x, y = dpg.get_item_rect_min(self.plot)
        w, h = dpg.get_item_rect_size(self.plot)
        return int(x), int(y), int(w), int(h)


def _padded(lo: float, hi: float, log: bool) -> tuple[float, float]:
    """[lo, hi] widened by ``Y_PAD`` of its span on each side (in log10 units on a log axis); a flat
    curve first gets a span around it (a factor of 2 each way on a log axis)."""
    if log:
        a, b = math.log10(lo), math.log10(hi)
        if b - a < 1e-9:
            a, b = a - 0.3, b + 0.3
        pad = Y_PAD * (b - a)
        return 10 ** (a - pad), 10 ** (b + pad)
    if hi - lo < 1e-12:
        half = max(abs(hi), 1.0) * 0.5
        lo, hi = lo - half, hi + half
    pad = Y_PAD * (hi - lo)
    return lo - pad, hi + pad


class Plots:
    """Group errors (left) and losses (right), with "log y" and "follow" switches for both."""

    def __init__(self, parent: int | str):
        bar = dpg.add_group(horizontal=True, parent=parent)
        self.log = Checkbox.add("log y", True, parent=bar, on_change=self._set_log)
        self.log.tooltip("Logarithmic error axes: errors that fall exponentially become straight lines.")
        self.follow = Checkbox.add("follow", True, parent=bar, on_change=self._set_follow)
        self.follow.tooltip("Keep the axes fitted to the data; untick to zoom (wheel) and pan (drag).")
        row = dpg.add_group(horizontal=True, parent=parent)
        self.errors = CurvePlot(row, "error per parameter group", "error")
        self.losses = CurvePlot(row, "loss and its terms", "loss")
        self._last: Snapshot | None = None

    def _set_log(self, on: bool) -> None:
        for p in (self.errors, self.losses):
            p.set_log(on)
        if self._last is not None:
            self.update(self._last)

    def _set_follow(self, on: bool) -> None:
        for p in (self.errors, self.losses):
            p.set_follow(on)

    def clear(self) -> None:
        """Empty plots with fresh axes (Reset, Randomise, a new scene or mesh)."""
        for p in (self.errors, self.losses):
            p.reset()
        self._last = None

    def update(self, snap: Snapshot) -> None:
        self._last = snap
        h = snap.history
        steps = h["step"]
        shown = set()
        for g in GROUPS:
            y = h.get(g)
            if y is None or not np.isfinite(y).any():
                continue
            err = snap.group_errors.get(g)
            label = f"{g} ({err.unit})" if err is not None and err.unit else g
            self.errors.set_curve(g, label, GROUP_COLORS[g], steps, y)
            shown.add(g)
        self.errors.keep_only(shown)
        shown = set()
        for i, key in enumerate(sorted(k for k in h if k.startswith("loss:"))):
            self.losses.set_curve(key, key[5:], TERM_COLORS[i % len(TERM_COLORS)], steps, h[key])
            shown.add(key)
        self.losses.set_curve("loss", "total (weighted sum)", TOTAL_COLOR, steps, h["loss"])  # drawn last, on top
        shown.add("loss")
        self.losses.keep_only(shown)

    def set_size(self, width: int, height: int) -> None:
        w = max(120, (width - 8) // 2)
        for p in (self.errors, self.losses):
            dpg.configure_item(p.plot, width=w, height=max(120, height))
