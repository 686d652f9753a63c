"""The engine's value types: what it fits (targets), the losses in use, its settings, the immutable
snapshots it publishes, and its errors.

Everything here is plain data: front ends (GUI, CLI, tests) import these without touching the
worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from ..scene.params import GroupError
from .losses import LossDef
from .watchdog import Stall

#: Seconds a step (or a command, or a publish) may run before the watchdog reports it.
WATCHDOG_S = 30.0


@dataclass(frozen=True)
class Targets:
    """What is fitted: per-view target images.

    Attributes:
        rgb: [N,H,W,3] linear RGB, top row first, one per camera view.
        mask: [N,H,W,1] coverage (ones when unknown).
    """

    rgb: torch.Tensor
    mask: torch.Tensor

    @property
    def num_views(self) -> int:
        return self.rgb.shape[0]

    def rgba(self, views: Sequence[int]) -> torch.Tensor:
        idx = torch.as_tensor(list(views), device=self.rgb.device)
        return torch.cat([self.rgb.index_select(0, idx), self.mask.index_select(0, idx)], -1)


@dataclass(frozen=True)
class LossTerm:
    """A loss in use: its definition, weight and hyper-parameter values.

    ``failed`` marks a term the engine switched off because the loss misbehaved (rather than the
    user): reloading its plugin switches it back on, while a loss the user switched off stays off.
    """

    definition: LossDef
    weight: float
    params: dict[str, float]
    enabled: bool = True
    failed: bool = False

    @property
    def name(self) -> str:
        return self.definition.name


@dataclass(frozen=True)
class StepRecord:
    """One optimisation step taken apart, for the step-through view (numpy arrays and plain numbers).

    The engine fills it while it takes the step (:meth:`Engine.step_recorded`), so every part belongs
    to the same iteration.  Images are of the step's first camera view, [H,W,...] float32, top row
    first.

    Attributes:
        step: the step it produced (``Snapshot.step`` right after it).
        views: the camera views the step rendered; the images show ``views[0]``.
        render: [H,W,3] linear RGB the loss saw; target: [H,W,3] its linear RGB target.
        loss_image: [H,W] per-pixel squared error |render - target|², summed over R, G, B: what
            the ``l2`` loss averages (other terms, e.g. mask IoU, are not sums over pixels).
        pixel_gradient: [H,W,4] d(total loss)/d(rendered R, G, B, coverage), signed: the signal the
            renderer's backward pass turns into parameter gradients.
        loss: the total (weighted) loss of the step; loss_terms: each term's unweighted value.
        grad_norm: optimised parameter -> L2 norm of d loss / d parameter (parameter units).
        group_grad_norm: group -> root of the sum of its parameters' squared gradient norms.
        lr: optimised parameter -> learning rate of this step (after the schedule's decay).
        before, after: optimised parameter -> its value before and after the optimiser step.
        optimizer: "adam" or "sgd".
        skipped: the loss or a gradient was NaN/Inf, so the step was skipped (``after == before``).
    """

    step: int
    views: tuple[int, ...]
    render: np.ndarray
    target: np.ndarray
    loss_image: np.ndarray
    pixel_gradient: np.ndarray
    loss: float
    loss_terms: dict[str, float]
    grad_norm: dict[str, float]
    group_grad_norm: dict[str, float]
    lr: dict[str, float]
    before: dict[str, np.ndarray]
    after: dict[str, np.ndarray]
    optimizer: str
    skipped: bool = False


@dataclass(frozen=True)
class Snapshot:
    """Immutable state published by the worker (numpy and plain Python only).

    Images are [H,W,3] float32 linear RGB, top row first, for the displayed view.
    """

    step: int
    running: bool
    view: int
    render: np.ndarray
    target: np.ndarray
    diff: np.ndarray  # [H,W] mean absolute difference per pixel
    alpha: np.ndarray  # [H,W] render coverage
    params: dict[str, np.ndarray]
    loss: float
    loss_terms: dict[str, float]
    group_errors: dict[str, GroupError]
    history: dict[str, np.ndarray]
    ms_per_step: float
    it_per_s: float
    message: str | None = None
    skipped_steps: int = 0
    finished: bool = False
    stamp: int = 0  # increases with every publish
    losses: tuple[tuple[str, float, bool, tuple[tuple[str, float], ...]], ...] = ()  # (name, weight, enabled, params)
    events: tuple[str, ...] = ()  # recent messages with details (tracebacks), oldest first
    display_mode: str = "shaded"  # the render mode of ``display`` (see studio.render.modes)
    display: np.ndarray | None = None  # [H,W,3] display-encoded image of display_mode; None for "shaded"
    frozen: tuple[str, ...] = ()  # trainable parameters held fixed one by one
    group_enabled: dict[str, bool] = field(default_factory=dict)  # group -> optimised
    group_lr: dict[str, float] = field(default_factory=dict)  # group -> learning rate of its trainable parameters
    options: dict[str, Any] = field(default_factory=dict)  # render options (RENDER_OPTIONS) and "restarts"
    derivative: tuple[str, int] | None = None  # (parameter, flat component) of the derivative mode's dI/dθ
    display_scale: float = 0.0  # derivative mode: |dI/dθ| (linear RGB per parameter unit) shown at full colour
    threads: int | None = None  # CPU threads of the steps (None on GPU devices)
    threads_measuring: bool = False  # the first steps are still timing the candidate thread counts
    arrows: np.ndarray | None = None  # vertex gradients mode: [N,4] (x, y, dx, dy) in pixels of the view
    step_record: StepRecord | None = None  # the latest step taken with Engine.step_recorded (None after reset)
    stalled: Stall | None = None  # the watchdog's report while a step runs past EngineConfig.watchdog_s
    marks: tuple[tuple[int, str], ...] = ()  # (step, sentence) of scene events (stage changes, remeshing)


@dataclass
class EngineConfig:
    """How to optimise: budget, batching, seed, learning rates and optimiser."""

    steps: int = 300
    views_per_step: int = 1
    seed: int = 0
    group_lr: dict[str, float] = field(default_factory=dict)
    optimizer: str = "adam"
    restarts: int = 0
    lr_decay: float = 1.0  # learning rates fall exponentially to this fraction at ``steps``
    threads: int | None = None  # CPU threads for the steps; None: measured (see studio.optim.threads)
    watchdog_s: float = WATCHDOG_S  # a step running longer is reported (Snapshot.stalled); may change while running


class EngineError(RuntimeError):
    """A command the engine cannot carry out; the message is one sentence."""


class CommandError(EngineError, ValueError):
    """A command sent with an argument of the wrong type or out of range, raised where it is sent
    (``Engine.set_param(...)``); the message is one sentence naming the argument."""
