"""Line plots written straight to PNG with Pillow (already installed with imageio).

The headless twin of the GUI's implot curves: ``studio compare`` draws error curves per group in
the groups' colours, a log y axis, ticks and a legend, without a plotting library.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .scene.params import GROUP_COLORS
from .ticks import log_ticks, nice_ticks, tick_label

Series = tuple[str, np.ndarray, np.ndarray, "str | tuple[int, int, int]"]  # (label, x, y, group or RGB colour)
_MARGIN = (70, 40, 20, 50)  # left, top, right, bottom in pixels


def plot_image(series: Sequence[Series], *, title: str = "", xlabel: str = "", ylabel: str = "",
               log_y: bool = False, size: tuple[int, int] = (900, 520), x_range: tuple[float, float] | None = None,
               legend: str = "inside", font_size: int = 13, line_width: int = 2) -> Image.Image:
    """A line plot as a Pillow image: series later in the list are drawn solid, earlier ones of the
    same group dashed (so "switch off" vs "switch on" runs of one group are told apart by line style).

    Each series is (label, x, y, colour), the colour a group name (its GROUP_COLORS entry) or an RGB
    tuple.  ``x_range`` fixes the x axis (e.g. to a run's step budget); ``legend`` "inside" puts it
    in the lower left corner (which falling curves leave empty), "right" in a column beside the plot.
    The y range is padded so no curve lies on the frame, and every axis has >= 2 labelled ticks.
    """
    w, h = size
    img = Image.new("RGB", size, (255, 255, 255))
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=font_size)
    left, top, right, bottom = _MARGIN
    labels = [s[0] for s in series]
    if legend == "right" and labels:
        right += 36 + int(max(d.textlength(t, font=font) for t in labels))
    pw, ph = w - left - right, h - top - bottom
    xs = [np.asarray(s[1]) for s in series if len(s[1])]
    ys = [np.asarray(s[2])[np.isfinite(s[2]) & ((np.asarray(s[2]) > 0) if log_y else True)] for s in series]
    if (not xs or not any(len(y) for y in ys)) and x_range is None:
        d.text((left, top), "no data", fill=(0, 0, 0), font=font)
        return img
    x0, x1 = x_range if x_range is not None else (float(min(x.min() for x in xs)), float(max(x.max() for x in xs)))
    yv = np.concatenate([y for y in ys if len(y)] or [np.ones(1)])
    y0, y1 = (math.log10(yv.min()), math.log10(yv.max())) if log_y else (float(yv.min()), float(yv.max()))
    if y1 - y0 < 1e-9:
        y0, y1 = y0 - 0.5, y1 + 0.5
    pad = 0.08 * (y1 - y0)  # keep curves (and their line width) off the frame
    y0, y1 = y0 - pad, y1 + pad
    x1 = x0 + 1 if x1 <= x0 else x1

    def to_px(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        yy = np.log10(np.maximum(y, 1e-300)) if log_y else y
        return np.stack([left + (x - x0) / (x1 - x0) * pw, top + (1 - (yy - y0) / (y1 - y0)) * ph], -1)

    yticks = log_ticks(10**y0, 10**y1, most=max(2, ph // 30)) if log_y else nice_ticks(y0, y1, max(2, ph // 30))
    for t in yticks:
        py = top + (1 - ((math.log10(t) if log_y else t) - y0) / (y1 - y0)) * ph
        d.line([(left, py), (left + pw, py)], fill=(230, 230, 230))
        label = tick_label(t)
        d.text((left - 6 - d.textlength(label, font=font), py - font_size // 2), label, fill=(60, 60, 60), font=font)
    for t in nice_ticks(x0, x1, max(2, pw // 70)):
        px = left + (t - x0) / (x1 - x0) * pw
        d.line([(px, top), (px, top + ph)], fill=(240, 240, 240))
        d.text((px - 10, top + ph + 6), f"{t:g}", fill=(60, 60, 60), font=font)
    d.rectangle([left, top, left + pw, top + ph], outline=(0, 0, 0))
    later = {s[3]: i for i, s in enumerate(series)}
    row = font_size + 3
    for i, (label, x, y, group) in enumerate(series):
        y = np.asarray(y)
        keep = np.isfinite(y) & ((y > 0) if log_y else True)
        pts = [tuple(p) for p in to_px(np.asarray(x)[keep], y[keep])]
        color = tuple(group) if not isinstance(group, str) else GROUP_COLORS.get(group, (0, 0, 0))
        dashed = later[group] != i
        for a, b in zip(pts[:-1], pts[1:]):
            if not dashed or int((a[0] - left) // 6) % 2 == 0:
                d.line([a, b], fill=color, width=line_width)
        if legend == "right":
            lx, ly = left + pw + 12, top + row * i
        else:
            lx, ly = left + 12, top + ph - 10 - row * (len(series) - i)
        for k in range(0, 24, 6 if dashed else 24):
            d.line([(lx + k, ly + 6), (lx + k + (3 if dashed else 24), ly + 6)], fill=color, width=2)
        d.text((lx + 30, ly), label, fill=(0, 0, 0), font=font)
    d.text((left, 12), title, fill=(0, 0, 0), font=font)
    d.text((left + pw // 2 - 20, h - 20), xlabel, fill=(0, 0, 0), font=font)
    d.text((left + 4, top + 4), ylabel, fill=(90, 90, 90), font=font)
    return img


def line_plot(path: str | Path, series: Sequence[Series], *, title: str = "", xlabel: str = "",
              ylabel: str = "", log_y: bool = False, size: tuple[int, int] = (900, 520)) -> None:
    """Write :func:`plot_image` to a PNG (parent folders are created)."""
    img = plot_image(series, title=title, xlabel=xlabel, ylabel=ylabel, log_y=log_y, size=size)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


#: One group's values at each category of a panel: (label, group for the colour, [values per category]).
Spread = tuple[str, str, Sequence[Sequence[float]]]


def spread_plot(path: str | Path, panels: Sequence[tuple[str, Sequence[str], Sequence[Spread]]], *,
                title: str = "", ylabel: str = "", log_y: bool = True,
                references: Mapping[str, float] | None = None, panel_size: tuple[int, int] = (420, 420)) -> None:
    """Write side-by-side panels of values against categories: a dot per value, a bar from the
    lowest to the highest (the spread, e.g. over seeds) and the medians joined by a line.

    Args:
        panels: (x axis label, category names, spreads); every spread has one list of values per
            category (empty where it has none).  Values <= 0 are left out on a log axis.
        references: group -> a value drawn as a dashed line across every panel (e.g. the error
            the runs started from).
    """
    references = dict(references or {})
    pw, ph = panel_size
    left, top, right, bottom = _MARGIN
    width = max(len(panels) * pw, 7 * len(title) + left + 10)  # room for the title (about 7 px per character)
    img = Image.new("RGB", (width, ph + 16 * max(len(p[2]) for p in panels) + 10), (255, 255, 255))
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=13)
    vals = [v for _, _, spreads in panels for _, _, per in spreads for vs in per for v in vs]
    vals = [v for v in vals + list(references.values()) if math.isfinite(v) and (v > 0 or not log_y)]
    if not vals:
        d.text((left, top), "no data", fill=(0, 0, 0), font=font)
        img.save(path)
        return
    tr = (lambda v: math.log10(v)) if log_y else (lambda v: v)
    y0, y1 = tr(min(vals)), tr(max(vals))
    if y1 - y0 < 1e-9:
        y0, y1 = y0 - 0.5, y1 + 0.5
    pad = 0.08 * (y1 - y0)
    y0, y1 = y0 - pad, y1 + pad
    w, h = pw - left - right, ph - top - bottom

    def py(v: float) -> float:
        return top + (1 - (tr(v) - y0) / (y1 - y0)) * h

    ticks = [t for t in (log_ticks(10**y0, 10**y1, most=7) if log_y else nice_ticks(y0, y1, most=7))
             if y0 <= tr(t) <= y1]
    for k, (xlabel, cats, spreads) in enumerate(panels):
        ox = k * pw
        for t in ticks:
            d.line([(ox + left, py(t)), (ox + left + w, py(t))], fill=(230, 230, 230))
            d.text((ox + 4, py(t) - 6), tick_label(t), fill=(60, 60, 60), font=font)
        d.rectangle([ox + left, top, ox + left + w, top + h], outline=(0, 0, 0))
        for group, v in references.items():
            if math.isfinite(v) and (v > 0 or not log_y):
                for x in range(ox + left, ox + left + w, 8):
                    d.line([(x, py(v)), (min(x + 4, ox + left + w), py(v))], fill=GROUP_COLORS.get(group, (0, 0, 0)),
                           width=1)
        step = w / max(len(cats), 1)
        for c, name in enumerate(cats):
            d.text((ox + left + step * (c + 0.5) - 3.5 * len(name), top + h + 6), name, fill=(0, 0, 0), font=font)
        d.text((ox + left + w // 2 - 3.5 * len(xlabel), ph - 20), xlabel, fill=(0, 0, 0), font=font)
        for s, (label, group, per) in enumerate(spreads):
            color = GROUP_COLORS.get(group, (0, 0, 0))
            # Groups side by side within a category, so that their spreads do not hide each other.
            shift = (s - (len(spreads) - 1) / 2) * min(14.0, step / (2 * len(spreads)))
            medians = []
            for c, vs in enumerate(per):
                vs = sorted(v for v in vs if math.isfinite(v) and (v > 0 or not log_y))
                if not vs:
                    continue
                x = ox + left + step * (c + 0.5) + shift
                d.line([(x, py(vs[0])), (x, py(vs[-1]))], fill=color, width=2)
                for v in vs:
                    d.ellipse([x - 3, py(v) - 3, x + 3, py(v) + 3], fill=color)
                medians.append((x, py(float(np.median(vs)))))
            if len(medians) > 1:
                d.line(medians, fill=color, width=1)
            if k == 0:
                ly = ph + 4 + 16 * s
                d.line([(left, ly + 7), (left + 24, ly + 7)], fill=color, width=2)
                d.text((left + 30, ly), label, fill=(0, 0, 0), font=font)
    d.text((left, 6), title, fill=(0, 0, 0), font=font)
    d.text((left, 22), ylabel, fill=(90, 90, 90), font=font)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
