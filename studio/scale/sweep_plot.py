"""``sweep.png``: each group's final error against each swept setting, the runs as spread."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..plot_png import spread_plot
from ..scene.params import GROUPS


def sweep_plot(path: str | Path, rows: Sequence[Mapping[str, Any]], keys: Sequence[str], *, title: str = "") -> None:
    """One panel per swept setting: its values on x, every run's final error per group on a log y
    axis (all other settings and the seeds pooled into the spread, the line joins medians); a
    dashed line marks each group's median starting error."""
    groups = [g for g in GROUPS if any(f"{g}_final" in r for r in rows)]
    starts = {g: float(np.median([float(r[f"{g}_initial"]) for r in rows if f"{g}_initial" in r])) for g in groups}
    panels = []
    for key in keys:
        cats = list(dict.fromkeys(str(r[key]) for r in rows if key in r))
        spreads = []
        for g in groups:
            unit = next(r[f"{g}_unit"] for r in rows if f"{g}_unit" in r)
            per = [[float(r[f"{g}_final"]) for r in rows if str(r.get(key)) == c and f"{g}_final" in r] for c in cats]
            spreads.append((f"{g} final error ({unit}); dashed: start", g, per))
        panels.append((key, cats, spreads))
    spread_plot(path, panels, title=title, ylabel="final error (log scale)", references=starts)
