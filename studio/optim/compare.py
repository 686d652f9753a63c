"""Run one scenario under two settings of a teaching switch and compare the error curves.

The lesson of differentiable rasterization fits in one plot: the `camera` scenario with silhouette
antialiasing off (no visibility gradient: the camera never moves) and on (it converges).  The GUI's
Compare button and ``studio compare`` both call :func:`compare_runs`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..render.raster_pass import VISIBILITY_MODES
from ..render.shadow import SHADOW_MODES
from ..scene.params import GROUPS


def _visibility_word(word: str) -> str:
    if word.lower() not in VISIBILITY_MODES:
        raise ValueError(word)
    return word.lower()


def _shadow_mode(word: str) -> str:
    if word.lower() not in SHADOW_MODES:
        raise ValueError(word)
    return word.lower()


#: Teaching switches: option name -> how a command-line word becomes the option's value.
SWITCHES: dict[str, Callable[[str], Any]] = {
    "visibility": _visibility_word,
    "antialias": lambda s: s.lower() in ("on", "true", "1", "yes"),
    "mip": lambda s: "linear-mipmap-linear" if s.lower() in ("on", "true", "1", "yes") else "linear",
    "soft": lambda s: None if s.lower() in ("off", "none", "0") else float(s),
    "restarts": int,
    "sdf_alpha": lambda s: None if s.lower() in ("anneal", "none", "off") else float(s),
    "shadows": _shadow_mode,
}
#: Where each switch lives: an engine/scene option name.
OPTION_OF = {"visibility": "visibility", "antialias": "antialias", "mip": "filter_mode", "soft": "soft_sigma",
             "restarts": "restarts", "sdf_alpha": "sdf_alpha", "shadows": "shadows"}


class CompareError(ValueError):
    """An unknown switch or a value it cannot take; the message is one sentence."""


@dataclass(frozen=True)
class RunCurves:
    """One run of a comparison: its label, the switch value, and its curves (numpy arrays)."""

    label: str
    value: Any
    history: dict[str, np.ndarray]
    final_errors: dict[str, float]
    units: dict[str, str]


def compare_runs(scene_name: str, switch: str, words: tuple[str, str], *, backend: str = "torch",
                 device: str | None = None, steps: int | None = None, resolution: int | None = None,
                 progress: Callable[[str, int, int], None] | None = None,
                 cancel: threading.Event | None = None) -> list[RunCurves]:
    """Run ``scene_name`` twice, with ``switch`` set from each of ``words`` (e.g. ("off", "on")).

    Args:
        progress: called as (label, step, steps) while running.
        cancel: set it to stop early (the runs so far are returned).

    Raises:
        CompareError: unknown switch or a word it cannot parse.
    """
    from ..workspace import Options, build_engine

    if switch not in SWITCHES:
        raise CompareError(f"unknown switch {switch!r}; use one of {', '.join(SWITCHES)}.")
    values = []
    for word in words:  # all of them before the first run, so a typo costs no run
        try:
            values.append(SWITCHES[switch](word))
        except ValueError:
            raise CompareError(f"{switch} cannot be set to {word!r}.") from None
    runs = []
    for word, value in zip(words, values):
        scene, engine, _ = build_engine(Options(scene=scene_name, backend=backend, device=device,
                                                steps=steps, resolution=resolution))
        engine.set_option(OPTION_OF[switch], value)
        label = f"{switch} {word}"
        engine.start_thread()
        engine.start(until=engine.config.steps)
        stamp, snap = -1, None
        while True:
            snap = engine.wait_snapshot(stamp, timeout=0.5) or snap
            if snap is not None:
                stamp = snap.stamp
                if progress is not None:
                    progress(label, snap.step, engine.config.steps)
                if snap.finished or (not snap.running and snap.step >= engine.config.steps):
                    break
            if cancel is not None and cancel.is_set():
                break
        engine.stop()
        errors = scene.params.group_errors()
        runs.append(RunCurves(label, value, dict(snap.history) if snap else {},
                              {g: e.value for g, e in errors.items()}, {g: e.unit for g, e in errors.items()}))
        if cancel is not None and cancel.is_set():
            break
    return runs


def curves_csv(runs: list[RunCurves]) -> str:
    """The runs' group-error curves as CSV text: run, step, loss, then one column per group."""
    lines = ["run,step,loss," + ",".join(GROUPS)]
    for r in runs:
        h = r.history
        for i in range(len(h.get("step", []))):
            cells = [r.label, str(int(h["step"][i])), f"{h['loss'][i]:.6g}"]
            cells += ["" if np.isnan(h[g][i]) else f"{h[g][i]:.6g}" for g in GROUPS]
            lines.append(",".join(cells))
    return "\n".join(lines) + "\n"
