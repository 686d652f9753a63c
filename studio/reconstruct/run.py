"""Build and run a reconstruction: capture -> ReconstructionScene + Engine -> output files.

The CLI (``studio reconstruct``), the studio (File > Open capture...) and ``bench/reconstruct.py``
all go through :func:`build_reconstruction`, so a run means the same everywhere.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from ..capture.model import Capture
from ..optim.engine import Engine, EngineConfig
from ..optim.plugins import discover_plugins
from ..render import get_backend
from ..workspace import check_loss_names
from .export import write_outputs
from .scene import DEFAULT_STAGES, ReconstructionScene, Stage, targets_of

#: RGB error plus the silhouette term: the background is black, so a dark object needs the mask.
DEFAULT_LOSSES = (("l1", 1.0), ("mask_iou", 1.0))


@dataclass
class ReconstructOptions:
    """How to reconstruct (see ``studio reconstruct --help``)."""

    steps: int = 600
    views_per_step: int = 4
    backend: str = "auto"
    device: str | None = None
    seed: int = 0
    losses: list[tuple[str, float]] = field(default_factory=lambda: list(DEFAULT_LOSSES))
    plugin_dirs: list[str] = field(default_factory=list)
    threads: int | None = None
    texture_size: int = 512
    hull_resolution: int = 64
    stages: tuple[Stage, ...] = DEFAULT_STAGES
    render_options: dict[str, Any] = field(default_factory=dict)


def build_reconstruction(capture: Capture, opts: ReconstructOptions) -> tuple[ReconstructionScene, Engine, list[str]]:
    """Scene (visual hull, first stage entered) and Engine for ``capture``; returns notes for the user.

    Raises:
        ReconstructionError: no training views, an empty mask, or cameras that see no common object.
        LossError: an unknown loss.
    """
    if opts.steps < 1:
        from .hull import ReconstructionError

        raise ReconstructionError(f"--steps must be at least 1, got {opts.steps}.")
    notes = discover_plugins(opts.plugin_dirs)
    check_loss_names([n for n, _ in opts.losses], notes)
    backend = get_backend(opts.backend, opts.device)
    torch.manual_seed(opts.seed)
    scene = ReconstructionScene(capture, backend, steps=opts.steps, views_per_step=opts.views_per_step,
                                stages=opts.stages, hull_resolution=opts.hull_resolution,
                                texture_size=opts.texture_size, **opts.render_options)
    config = EngineConfig(steps=opts.steps, views_per_step=opts.views_per_step, seed=opts.seed, threads=opts.threads)
    engine = Engine(scene, targets_of(capture, scene.device), [(n, w, {}) for n, w in opts.losses], config)
    return scene, engine, notes + scene.notes


def run_reconstruction(scene: ReconstructionScene, engine: Engine, out_dir: str | Path, progress: bool = True,
                       video: bool = True) -> dict[str, Any]:
    """Run the engine to its step budget (a tqdm bar on stderr; the engine logs each event), then
    write every output file.  Returns the summary.

    Raises:
        ReconstructionError: the run stopped early (its message says why).
    """
    from tqdm import tqdm

    from .hull import ReconstructionError

    steps = engine.config.steps
    t0 = time.perf_counter()
    engine.start_thread()
    engine.start(until=steps)
    stamp, snap = -1, None
    with tqdm(total=steps, desc="reconstruct", unit="step", dynamic_ncols=True, disable=not progress) as bar:
        while True:
            snap = engine.wait_snapshot(stamp, timeout=1.0)
            if snap is None:
                continue
            stamp = snap.stamp
            bar.update(snap.step - bar.n)
            psnr = snap.history.get("metric:heldout_psnr")
            held = psnr[~(psnr != psnr)] if psnr is not None else ()
            bar.set_postfix(loss=f"{snap.loss:.4g}", psnr=f"{held[-1]:.2f}" if len(held) else "-")
            if snap.finished or (not snap.running and snap.step >= steps):
                break
            if not snap.running and snap.message and snap.step < steps:
                engine.stop()
                raise ReconstructionError(f"the reconstruction stopped at step {snap.step}: {snap.message}")
    seconds = time.perf_counter() - t0
    engine.stop()
    return write_outputs(scene, out_dir, snap.history, snap.marks, seconds, snap.step, video=video)


def looks_like_capture(path: str | Path) -> bool:
    """Whether ``path`` names a capture rather than a scenario: a transforms json, or a folder with
    transforms*.json, a COLMAP model (cameras.txt / cameras.bin) or a ``sparse/0`` model."""
    p = Path(path).expanduser()
    if p.suffix.lower() == ".json":
        return True
    if not p.is_dir():
        return False
    return (any(p.glob("transforms*.json")) or any((p / n).exists() for n in ("cameras.txt", "cameras.bin"))
            or (p / "sparse" / "0").is_dir())


def build_capture_workspace(opts: Any, progress: Callable[[str, Any], None] | None = None
                            ) -> tuple[ReconstructionScene, Engine, list[str]]:
    """The studio's twin of ``studio reconstruct``: read the capture ``opts.scene`` (a
    :class:`studio.workspace.Options`) at ``opts.resolution`` and build its reconstruction;
    ``progress`` hears what is being done (as for :func:`studio.workspace.build_engine`)."""
    from ..capture import load_capture

    if progress is not None:
        progress(f"reading the capture {Path(opts.scene).name}", None)
    res = opts.resolution
    capture = load_capture(opts.scene, res=max(res) if isinstance(res, (tuple, list)) else res)
    if progress is not None:
        progress("carving the visual hull", None)
    defaults = ReconstructOptions()
    return build_reconstruction(capture, ReconstructOptions(
        steps=opts.steps or defaults.steps, backend=opts.backend, device=opts.device, seed=opts.seed or 0,
        losses=list(opts.losses) if opts.losses else list(DEFAULT_LOSSES), plugin_dirs=list(opts.plugin_dirs),
        threads=opts.threads))
