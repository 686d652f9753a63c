"""Parameter sweeps: the grid of ``studio optimize`` runs over swept settings and seeds.

    from studio.scale import run_sweep

    rows = run_sweep("camera", {"antialias": ["on", "off"]}, seeds=[0, 1, 2], steps=60, out="sweeps/aa")

A setting is any option ``studio optimize`` takes, named without its dashes (``antialias``,
``soft``, ``mip``, ``restarts``, ``res``, ``backend``, ...), plus ``lr.GROUP`` (``--lr GROUP=V``)
and ``loss`` (``--loss``; ``l1=1+silhouette=0.5`` gives one run several losses).  A run is a pure
function of its settings (:func:`run_one`): it goes through ``studio optimize`` itself
(:func:`studio.cli.run_optimize`) in a temporary folder and returns its files and its row, so a Ray
worker needs no file system shared with the driver.  The driver writes::

    DIR/runs/<id>/   summary.json curves.csv params.json final.png log.txt  (one folder per run)
    DIR/sweep.csv    one row per run: settings, seconds, loss, each group's initial and final error
    DIR/sweep.png    final error per group against each swept setting, the seeds as spread
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import json
import logging
import os
import re
import shutil
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from ..paths import user_path
from ..scene.params import GROUPS
from .cluster import MAX_RETRIES, ScaleError, ray_session, task_error

# Options of `studio optimize` that a sweep sets itself or that are not a setting of the fit.
_NOT_SWEPT = {"out": "the sweep writes each run under DIR/runs/", "no_video": "sweep runs write no video",
              "help": "", "seed": "use --seeds", "steps": "use --steps"}


class SweepError(ScaleError):
    """A sweep setting ``studio optimize`` does not take, or a value it cannot parse; one sentence."""


@dataclass(frozen=True)
class SweepRun:
    """One grid point: its id (the folder name under ``runs/``) and its settings as (key, word) pairs."""

    id: str
    scene: str
    settings: tuple[tuple[str, str], ...]
    steps: int | None = None

    def argv(self, out: str | Path, threads: int | None = None, device: str | None = None) -> list[str]:
        """The ``studio optimize`` arguments of this run, writing into ``out``; ``threads`` and
        ``device`` apply unless the run's settings choose them."""
        argv = [self.scene, "--out", str(out), "--no-video"]
        if self.steps is not None:
            argv += ["--steps", str(self.steps)]
        keys = {k for k, _ in self.settings}
        if threads is not None and "threads" not in keys:
            argv += ["--threads", str(threads)]
        if device is not None and "device" not in keys:
            argv += ["--device", device]
        for key, word in self.settings:
            if key.startswith("lr."):
                argv += ["--lr", f"{key[3:]}={word}"]
            elif key == "loss":
                for part in word.split("+"):
                    argv += ["--loss", part]
            else:
                argv += [f"--{key.replace('_', '-')}", word]
        return argv


@dataclass(frozen=True)
class RunOutput:
    """What a run sends back: its files (name -> bytes) and its row of ``sweep.csv``."""

    run: SweepRun
    files: dict[str, bytes]
    row: dict[str, Any]


def parse_set(text: str) -> tuple[str, list[str]]:
    """``"KEY=V1,V2,..."`` -> (KEY, [V1, V2, ...]) (``--set`` on the command line).

    Raises:
        SweepError: no ``=`` or no values.
    """
    key, sep, values = text.partition("=")
    words = [w.strip() for w in values.split(",") if w.strip()]
    if not sep or not key.strip() or not words:
        raise SweepError(f"--set must look like KEY=V1,V2,... (e.g. antialias=on,off), got {text!r}.")
    return key.strip().replace("-", "_"), words


def parse_seeds(text: str) -> list[int]:
    """``"0-4"`` -> [0, 1, 2, 3, 4]; ``"0,3,7"`` -> [0, 3, 7]; ranges and lists combine (``"0-2,9"``).

    Raises:
        SweepError: anything else, or a descending range.
    """
    seeds: list[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
            raise SweepError(f"--seeds must be a range or list of whole numbers such as 0-4 or 0,3,7, got {text!r}.")
        lo = int(m.group(1))
        seeds += range(lo, int(m.group(2) or lo) + 1)
    return list(dict.fromkeys(seeds))


def _optimize_options() -> dict[str, argparse.Action]:
    """``studio optimize``'s options by their name without dashes (``no_video``, ``antialias``, ...)."""
    from ..cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {opt.lstrip("-").replace("-", "_"): a for a in sub.choices["optimize"]._actions
            for opt in a.option_strings if opt.startswith("--")}


def _check_value(key: str, word: str, action: argparse.Action) -> None:
    try:
        value = action.type(word) if callable(action.type) else word
    except (argparse.ArgumentTypeError, ValueError, TypeError) as exc:
        raise SweepError(f"--set {key}={word}: {str(exc).rstrip('.') or 'not a valid value'}.") from None
    if action.choices is not None and value not in action.choices:
        raise SweepError(f"--set {key}={word}: choose among {', '.join(map(str, action.choices))}.")


def check_settings(grid: Mapping[str, Sequence[str]]) -> None:
    """Check every key and value of a grid against ``studio optimize``'s own option parsing.

    Raises:
        SweepError: an unknown key, a key the sweep sets itself, or a value the option rejects.
    """
    options = _optimize_options()
    for key, words in grid.items():
        if key in _NOT_SWEPT:
            raise SweepError(f"--set {key} is not a sweep setting ({_NOT_SWEPT[key] or 'it prints help'}).")
        if key.startswith("lr."):
            action, check = options["lr"], [f"{key[3:]}={w}" for w in words]
        elif key == "loss":
            action, check = options["loss"], [p for w in words for p in w.split("+")]
        elif key in options and options[key].nargs != 0:
            action, check = options[key], list(words)
        else:
            known = sorted(k for k, a in options.items()
                           if a.nargs != 0 and k not in _NOT_SWEPT and k not in ("lr", "loss"))
            raise SweepError(f"unknown sweep setting {key!r}; studio optimize takes {', '.join(known)}, "
                             f"lr.GROUP and loss.")
        for word in check:
            _check_value(key, word, action)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", text).strip("-")


def make_grid(scene: str, grid: Mapping[str, Sequence[str]], seeds: Sequence[int] | None = None,
              steps: int | None = None) -> list[SweepRun]:
    """Every combination of the grid's values (the first key varies slowest), times every seed.

    Raises:
        SweepError: see :func:`check_settings`.
    """
    check_settings(grid)
    axes = [[(k, w) for w in words] for k, words in grid.items()]
    if seeds:
        axes.append([("seed", str(s)) for s in seeds])
    combos = list(itertools.product(*axes)) or [()]
    width = len(str(len(combos) - 1))
    runs = []
    for n, combo in enumerate(combos):
        label = "_".join(f"{k}-{_slug(w)}" for k, w in combo)
        runs.append(SweepRun(f"{n:0{width}d}" + (f"_{label}" if label else ""), scene, tuple(combo), steps))
    return runs


def run_one(run: SweepRun, threads: int | None = None, device: str | None = None) -> RunOutput:
    """Run one grid point through ``studio optimize`` in a temporary folder (the Ray task body).

    Args:
        threads: ``--threads`` of the run unless its settings choose (None: the optimiser measures).
        device: ``--device`` of the run unless its settings choose (None: CUDA if available).

    Returns:
        The run's files (``log.txt`` holds what the run printed) and its ``sweep.csv`` row.

    Raises:
        The user errors of ``studio optimize`` (unknown loss, bad value, unreadable scene, ...).
    """
    from ..cli import run_optimize
    from ..runtime import tune_cpu_allocator

    tune_cpu_allocator()
    log = io.StringIO()
    # The studio's log lines (backend, thread count) go to the run's log too, not to the terminal.
    logger, handler = logging.getLogger("studio"), logging.StreamHandler(log)
    saved = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        with tempfile.TemporaryDirectory(prefix="studio-sweep-") as tmp:
            with redirect_stdout(log), redirect_stderr(log):
                code = run_optimize(run.argv(tmp, threads, device))
            files = {p.name: p.read_bytes() for p in sorted(Path(tmp).iterdir()) if p.is_file()}
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
    files["log.txt"] = log.getvalue().encode()
    summary = json.loads(files["summary.json"])
    # A run that stopped early (NaN steps, a stuck step) still wrote its last good state.
    row: dict[str, Any] = {"run": run.id, **dict(run.settings), "complete": code == 0, "seconds": summary["seconds"],
                           "steps": summary["steps"], "loss_initial": summary["loss"]["initial"],
                           "loss_final": summary["loss"]["final"]}
    for group in GROUPS:
        if group in summary["groups"]:
            e = summary["groups"][group]
            row.update({f"{group}_initial": e["initial"], f"{group}_final": e["final"], f"{group}_unit": e["unit"]})
    return RunOutput(run, files, row)


def _write_run(out: Path, output: RunOutput) -> None:
    """``out/runs/<id>/``, written under a temporary name and renamed: a run folder is complete."""
    final = out / "runs" / output.run.id
    tmp = final.with_name(f".{final.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, data in output.files.items():
        (tmp / name).write_bytes(data)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)


def write_sweep_csv(path: str | Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """``sweep.csv``: one row per run, columns in first-seen order (settings, timings, errors)."""
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with Path(path).open("w", newline="") as f:
        w = csv.DictWriter(f, columns)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})


def _local_runs(runs: list[SweepRun], threads: int | None) -> Iterator[RunOutput]:
    for run in runs:
        yield run_one(run, threads)


def _ray_runs(runs: list[SweepRun], address: str | None, cpus_per_task: int, gpus_per_task: float,
              max_retries: int) -> Iterator[RunOutput]:
    with ray_session(address) as ray:
        task = ray.remote(run_one).options(num_cpus=cpus_per_task, num_gpus=gpus_per_task, max_retries=max_retries,
                                           retry_exceptions=False)
        # Runs without a GPU of their own fit on the CPU, even on a node that has one.
        device = "cuda" if gpus_per_task > 0 else "cpu"
        queued = [task.remote(run, cpus_per_task, device) for run in runs]
        try:
            while queued:
                ready, queued = ray.wait(queued, num_returns=1)
                try:
                    yield ray.get(ready[0])
                except ray.exceptions.RayTaskError as exc:
                    raise task_error(ray, exc) from None
        finally:
            for ref in queued:
                ray.cancel(ref, force=True)


def run_sweep(scene: str, grid: Mapping[str, Sequence[str]], *, out: str | Path, seeds: Sequence[int] | None = None,
              steps: int | None = None, ray: bool = False, address: str | None = None, cpus_per_task: int = 1,
              gpus_per_task: float = 0.0, threads: int | None = None,
              progress: Callable[[RunOutput, int, int], None] | None = None,
              max_retries: int = MAX_RETRIES) -> list[dict[str, Any]]:
    """Run the grid (one run after another, or as Ray tasks) and write ``out`` (see the module docstring).

    Args:
        scene: built-in scenario name or scene ``.toml``.
        grid: setting -> the words it takes, e.g. ``{"antialias": ["on", "off"], "lr.camera": ["0.1", "0.5"]}``.
        seeds: each grid point runs once per seed (None: once, with the scene's seed).
        steps: optimisation steps per run (None: the scene's budget).
        ray: run on Ray at ``address`` (see :mod:`studio.scale.cluster`), ``cpus_per_task`` CPUs
            (and torch threads) and ``gpus_per_task`` GPUs per run.
        threads: local runs' ``--threads`` (None: each run measures the fastest count).
        progress: called as ``progress(output, done, total)`` after each run is written.

    Returns:
        The ``sweep.csv`` rows in grid order: ``run``, the settings, ``complete`` (False when the
        run stopped before its budget), ``seconds`` (the run's optimisation wall time), ``steps``,
        ``loss_initial``, ``loss_final`` and, per group,
        ``<group>_initial``, ``<group>_final`` and ``<group>_unit``.

    Raises:
        SweepError: bad settings or seeds (before anything runs); ScaleError: Ray missing or
            unreachable; the user errors of ``studio optimize`` when a run fails.
    """
    from .sweep_plot import sweep_plot

    runs = make_grid(scene, grid, seeds, steps)
    if cpus_per_task < 1 or gpus_per_task < 0:
        raise SweepError(f"tasks need at least one CPU and 0 or more GPUs, got {cpus_per_task} and {gpus_per_task:g}.")
    root = user_path(out)
    if root.exists() and not root.is_dir():
        raise SweepError(f"--out {root} is a file; give a folder for the sweep (it is created if missing).")
    (root / "runs").mkdir(parents=True, exist_ok=True)
    outputs = (_ray_runs(runs, address, cpus_per_task, gpus_per_task, max_retries) if ray
               else _local_runs(runs, threads))
    rows: dict[str, dict[str, Any]] = {}
    for output in outputs:
        _write_run(root, output)
        rows[output.run.id] = output.row
        if progress is not None:
            progress(output, len(rows), len(runs))
    ordered = [rows[r.id] for r in runs]
    write_sweep_csv(root / "sweep.csv", ordered)
    keys = list(grid) or ["seed" if seeds else "run"]
    sweep_plot(root / "sweep.png", ordered, keys, title=f"{scene}: final error per group, {len(runs)} runs"
               + (f", {len(seeds)} seeds each" if seeds else ""))
    return ordered
