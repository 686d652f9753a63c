"""Axis ticks that always label a plot: shared by the GUI's curves and the PNG/video plots.

A log axis over less than a decade would get no decade tick at all (ImPlot and the decade rule
show none or one); :func:`log_ticks` falls back to 1-2-5 and then to 1..9 multiples, and finally
to evenly spaced round values, so every axis carries at least two labelled ticks.
"""

from __future__ import annotations

import math

import numpy as np


def nice_ticks(lo: float, hi: float, most: int = 8) -> list[float]:
    """Round values (1, 2 or 5 times a power of ten apart) in [lo, hi]: the finest such spacing
    with at most ``most`` ticks (at least two when ``hi > lo``)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else []
    base = 10 ** (math.floor(math.log10(hi - lo)) - 1)
    for s in (base * m * 10**k for k in range(3) for m in (1, 2, 5)):
        ticks = [_round(t) for t in np.arange(math.ceil(lo / s - 1e-9) * s, hi + s * 1e-9, s)]
        if len(ticks) <= most:
            return ticks if len(ticks) >= 2 else [_round(lo), _round(hi)]
    return [_round(lo), _round(hi)]


def _round(v: float) -> float:
    return float(f"{v:.12g}")


def log_ticks(lo: float, hi: float, most: int = 8) -> list[float]:
    """Tick values for a log axis spanning [lo, hi] (data units, both > 0): decades when at least two
    fall inside, else 1-2-5 or 1..9 multiples of the decades, else round values; always >= 2."""
    if not (lo > 0 and hi > lo and math.isfinite(hi)):
        return [lo] if lo > 0 else []
    e0, e1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    for mults in ((1.0,), (1.0, 2.0, 5.0), tuple(float(m) for m in range(1, 10))):
        ticks = [_round(m * 10.0**e) for e in range(e0, e1 + 1) for m in mults if lo * (1 - 1e-9) <= m * 10.0**e <= hi * (1 + 1e-9)]
        if len(ticks) > most:
            stride = math.ceil(len(ticks) / most)
            ticks = ticks[::stride]
        if len(ticks) >= 2:
            return ticks
    return nice_ticks(lo, hi, most)


def tick_label(v: float) -> str:
    """A short label: 3 significant digits, exponent form for very small or large values."""
    return f"{v:.3g}"
