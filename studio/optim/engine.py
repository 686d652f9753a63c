"""The optimisation engine: a worker thread that fits scene parameters to target images.

Threading contract (see DESIGN.md): front ends (GUI, CLI, tests) call the command methods from any
thread; commands go into a queue and are applied by the worker *between* steps.  After steps the
worker publishes an immutable :class:`Snapshot` (numpy arrays and plain numbers) into a
latest-value slot that readers take with :meth:`Engine.latest`.  No lock is held across a render.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
import traceback
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Sequence, TypeVar

import numpy as np
import torch

from ..errors import memory_advice, out_of_memory
from ..render import modes as render_modes
from ..scene.params import GROUPS, GroupError, ParameterError
from . import gradient_views
from .losses import REGISTRY, LossContext, LossDef, LossError, LossFailure, call_loss
from .threads import ThreadTuner

log = logging.getLogger("studio.engine")

#: Consecutive failed (NaN/Inf) steps after which the engine pauses instead of spinning.
MAX_BAD_STEPS = 5
#: Render options a front end may change between steps (see Scene.options).
RENDER_OPTIONS = ("antialias", "filter_mode", "soft_sigma", "sdf_alpha", "shadows")
_MAX_EVENTS = 200
_PUBLISH_HZ = 30.0
_PUBLISH_BUDGET = 0.10  # fraction of worker time that publishing may take
#: Vertex arrows published at most (the longest ones): more would hide the render under them.
ARROWS = 250

T = TypeVar("T")


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


class EngineError(RuntimeError):
    """A command the engine cannot carry out; the message is one sentence."""


class Engine:
    """Fits ``scene.params`` to ``targets`` on a background thread.

    Args:
        scene: a Scene (``render(views) -> RenderOutput``, ``params``, ``num_views``).
        targets: target images, one per camera view of the scene.
        losses: (name, weight, params) triples; names are looked up in the loss registry.
        config: optimisation settings.
    """

    def __init__(self, scene: Any, targets: Targets, losses: Sequence[tuple[str, float, Mapping[str, float]]],
                 config: EngineConfig | None = None):
        self.scene = scene
        self.params = scene.params
        self.targets = targets
        self.config = config or EngineConfig()
        if targets.num_views != scene.num_views:
            raise EngineError(f"there are {targets.num_views} target images for {scene.num_views} camera views.")
        self.terms: list[LossTerm] = [self._make_term(n, w, p) for n, w, p in losses]
        if not self.terms:
            raise LossError("the engine needs at least one loss.")
        self._apply_group_lr()
        self.group_enabled = {g: True for g in GROUPS}
        self.frozen: set[str] = set()
        self.display_mode = render_modes.SHADED
        self.derivative: tuple[str, int] | None = None  # None until chosen (see _default_derivative)
        self._commands: queue.Queue = queue.Queue()
        self._slot: Snapshot | None = None
        self._slot_lock = threading.Lock()
        self._new_snapshot = threading.Condition(self._slot_lock)
        self._thread: threading.Thread | None = None
        self._running = False
        self._until: int | None = None
        self._pending_steps = 0
        self._stopped = False
        self.display_view = 0
        self._message: str | None = None
        self._events: list[str] = []
        self._stamp = 0
        if self.config.threads is not None and self.config.threads < 1:
            raise EngineError(f"threads must be at least 1, got {self.config.threads}.")
        self._tuner = ThreadTuner(self.config.threads, scene.device)
        self._reset_state()

    # ------------------------------------------------------------------ setup

    def _make_term(self, name: str, weight: float, params: Mapping[str, float] | None) -> LossTerm:
        d = REGISTRY.get(name)
        values = d.default_params()
        for k, v in (params or {}).items():
            if k not in d.params:
                known = ", ".join(d.params) or "none"
                raise LossError(f"loss {name!r} has no parameter {k!r}; its parameters are {known}.")
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise LossError(f"parameter {k!r} of loss {name!r} must be a finite number, got {v!r}.")
            values[k] = float(v)
        return LossTerm(d, float(weight), values)

    def _apply_group_lr(self) -> None:
        for p in self.params.trainable():
            if p.group in self.config.group_lr:
                p.lr = float(self.config.group_lr[p.group])

    def _reset_state(self) -> None:
        """Fresh optimiser, history and counters (parameters are left as they are)."""
        self.step_count = 0
        self._bad_steps = 0
        self.skipped_steps = 0
        self._gen = torch.Generator().manual_seed(self.config.seed)
        self._history: dict[str, list[float]] = {k: [] for k in ("step", "loss", *GROUPS)}
        for t in self.terms:
            self._history.setdefault(f"loss:{t.name}", [])
        self._step_times: list[float] = []
        self._metric_every = 1
        self._last_loss = float("nan")
        self._last_terms: dict[str, float] = {}
        self._good = {p.name: p.value.detach().clone() for p in self.params.trainable()}
        self._optimizer = self._make_optimizer()
        self._searched = self.config.restarts <= 0
        self._record_next = False
        self._step_record: StepRecord | None = None

    def _make_optimizer(self) -> torch.optim.Optimizer | None:
        groups = []
        for p in self.params.trainable():
            p.value.requires_grad_(True)
            groups.append({"params": [p.value], "lr": p.lr, "name": p.name})
        if not groups:
            return None
        if self.config.optimizer == "sgd":
            return torch.optim.SGD(groups, lr=0.01, momentum=0.9)
        if self.config.optimizer != "adam":
            raise EngineError(f"optimizer must be adam or sgd, got {self.config.optimizer!r}.")
        return torch.optim.Adam(groups, lr=0.01)

    # ------------------------------------------------------------------ public commands (any thread)

    def start_thread(self) -> "Engine":
        """Start the worker (idle until :meth:`start` or :meth:`step`).  Publishes a first snapshot."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._worker, name="studio-engine", daemon=True)
            self._thread.start()
            self._send("publish")
        return self

    def start(self, until: int | None = None) -> None:
        """Run continuously until paused, or until step ``until`` (then the snapshot says finished)."""
        self._send("run", (True, until))

    def pause(self) -> None:
        self._send("run", (False, None))

    def step(self, n: int = 1) -> None:
        """Take ``n`` single steps, then stay paused."""
        self._send("steps", int(n))

    def step_recorded(self) -> None:
        """Take one step and attach its :class:`StepRecord` (render, loss image, pixel gradient,
        gradient norms, values before and after, learning rates) to the snapshot that follows."""
        self._send("record_step")

    def reset(self) -> None:
        """Back to the initial parameters, a fresh optimiser and empty curves."""
        self._send("reset")

    def randomize(self, seed: int | None = None) -> None:
        """A new random initial guess for every trainable parameter (and reset)."""
        self._send("randomize", seed)

    def set_param(self, name: str, value: object) -> None:
        """Set a parameter's value (a slider drag); the render follows at the next publish."""
        self._send("set_param", (name, value))

    def set_lr(self, group: str, lr: float) -> None:
        """Learning rate of every trainable parameter in ``group``."""
        self._send("set_lr", (group, float(lr)))

    def set_group_enabled(self, group: str, enabled: bool) -> None:
        """Optimise ``group`` or hold it fixed (its curve keeps updating)."""
        self._send("set_group", (group, bool(enabled)))

    def set_loss_weight(self, name: str, weight: float) -> None:
        self._send("loss_weight", (name, float(weight)))

    def set_loss_enabled(self, name: str, enabled: bool) -> None:
        """Use a loss or leave it out (re-enabling a plugin that was disabled after a failure)."""
        self._send("loss_enabled", (name, bool(enabled)))

    def set_loss_param(self, name: str, key: str, value: float) -> None:
        """Set one declared hyper-parameter of a loss in use."""
        self._send("loss_param", (name, key, float(value)))

    def set_losses(self, losses: Sequence[tuple[str, float, Mapping[str, float]]]) -> None:
        """Replace the losses in use with (name, weight, params) triples."""
        self._send("losses", [tuple(x) for x in losses])

    def rebind_losses(self) -> None:
        """Look every loss in use up in the registry again (after plugins were reloaded), keeping
        weights and the values of parameters that still exist; losses that vanished are dropped."""
        self._send("rebind")

    def reload_losses(self, reloader: Callable[[], Sequence[str]]) -> None:
        """Run ``reloader()`` on the worker between steps (it re-imports plugin files and returns
        one message per problem), then :meth:`rebind_losses`.  The run and its state are kept."""
        self._send("reload", reloader)

    def set_option(self, key: str, value: object) -> None:
        """Change a render option (``RENDER_OPTIONS``) or ``restarts``; the render follows."""
        self._send("option", (key, value))

    def set_view(self, view: int) -> None:
        """Which camera view the snapshots show."""
        self._send("view", int(view))

    def call(self, fn: Callable[["Engine"], None]) -> None:
        """Run ``fn(engine)`` on the worker between steps (for front ends' own edits)."""
        self._send("call", fn)

    def submit(self, fn: Callable[["Engine"], T]) -> "Future[T]":
        """Run ``fn(engine)`` on the worker between steps and return a Future with its result (or
        the exception it raised).  Before :meth:`start_thread` it runs at once on the calling thread."""
        fut: Future = Future()

        def run(engine: "Engine") -> None:
            if fut.set_running_or_notify_cancel():
                try:
                    fut.set_result(fn(engine))
                except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
                    fut.set_exception(exc)

        if self._thread is None:
            run(self)
        else:
            self._send("call", run)
        return fut

    def set_display_mode(self, mode: str) -> None:
        """What ``Snapshot.display`` shows: one of :data:`studio.render.modes.ALL_MODES`."""
        self._send("display_mode", str(mode))

    def set_derivative(self, name: str, index: int = 0) -> None:
        """Which scalar the derivative render mode differentiates by: component ``index`` of the
        flattened parameter ``name`` (row-major, e.g. vertex i's y is 3·i + 1)."""
        self._send("derivative", (str(name), int(index)))

    def set_frozen(self, name: str, frozen: bool) -> None:
        """Hold one trainable parameter fixed (``True``) or optimise it again, whatever its group."""
        self._send("frozen", (name, bool(frozen)))

    def reset_param(self, name: str) -> None:
        """One parameter back to its initial value (the run and its curves go on)."""
        self._send("reset_param", name)

    def stop(self, timeout: float = 10.0) -> None:
        """End the worker thread and wait for it."""
        self._send("stop")
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def latest(self) -> Snapshot | None:
        """The most recent snapshot (never blocks)."""
        return self._slot

    def wait_snapshot(self, after_stamp: int = -1, timeout: float | None = None,
                      predicate: Callable[[Snapshot], bool] | None = None) -> Snapshot | None:
        """Block until a snapshot newer than ``after_stamp`` (and satisfying ``predicate``) exists."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._new_snapshot:
            while True:
                s = self._slot
                if s is not None and s.stamp > after_stamp and (predicate is None or predicate(s)):
                    return s
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._new_snapshot.wait(remaining)

    @property
    def running(self) -> bool:
        return self._running

    def _send(self, kind: str, arg: Any = None) -> None:
        if self._stopped:
            raise EngineError("the engine has been stopped; create a new one.")
        self._commands.put((kind, arg))

    # ------------------------------------------------------------------ worker

    def _worker(self) -> None:
        last_publish = 0.0
        publish_cost = 0.0
        while True:
            busy = self._running or self._pending_steps > 0
            force = False
            try:
                # Idle: sleep until a command arrives.  Busy: take what is queued, then step.
                item = self._commands.get(block=not busy)
                while True:
                    force = self._apply(*item) or force
                    if self._stopped:
                        break
                    item = self._commands.get_nowait()
            except queue.Empty:
                pass
            if self._stopped:
                break
            if force and not (self._running or self._pending_steps > 0):
                publish_cost = self._timed_publish()
                last_publish = time.monotonic()
                continue
            if not (self._running or self._pending_steps > 0):
                continue
            if self._running and self._until is not None and self.step_count >= self._until:
                self._running = False
                publish_cost = self._timed_publish(finished=True)
                last_publish = time.monotonic()
                continue
            recorded, self._record_next = self._record_next, False
            try:
                self._one_step(recorded)
            except Exception as exc:  # noqa: BLE001 - a failing step must not kill the session
                self._running = False
                self._pending_steps = 0
                self._event(f"step {self.step_count + 1} failed and the run was paused: {self._describe(exc)}",
                            traceback.format_exc())
                force = True
            if self._pending_steps > 0:
                self._pending_steps -= 1
            finished = self._running and self._until is not None and self.step_count >= self._until
            if finished:
                self._running = False
            idle_now = not (self._running or self._pending_steps > 0)
            interval = max(1.0 / _PUBLISH_HZ, publish_cost / _PUBLISH_BUDGET)
            if force or idle_now or time.monotonic() - last_publish >= interval:
                publish_cost = self._timed_publish(finished=finished)
                last_publish = time.monotonic()

    def _apply(self, kind: str, arg: Any) -> bool:
        """Apply one command; returns True when a fresh snapshot should follow."""
        try:
            if kind == "stop":
                self._stopped = True
                self._running = False
            elif kind == "run":
                self._running, self._until = bool(arg[0]), arg[1]
                return True
            elif kind == "steps":
                self._pending_steps += max(0, arg)
            elif kind == "record_step":
                self._pending_steps += 1
                self._record_next = True
            elif kind == "publish":
                return True
            elif kind == "reset":
                self.params.reset()
                self._running = False
                self._pending_steps = 0
                self._message = None
                self._reset_state()
                return True
            elif kind == "randomize":
                self.scene.randomize(self.config.seed + 1 if arg is None else int(arg))
                self.params.mark_initial()
                self._running = False
                self._reset_state()
                return True
            elif kind == "set_param":
                name, value = arg
                self.params[name].set(value)
                if name in self._good:
                    self._good[name] = self.params[name].value.detach().clone()
                return True
            elif kind == "reset_param":
                p = self.params[arg]
                p.set(p.initial)
                if arg in self._good:
                    self._good[arg] = p.value.detach().clone()
                return True
            elif kind == "frozen":
                name, on = arg
                p = self.params[name]  # an unknown name raises ParameterError with a hint
                (self.frozen.add if on else self.frozen.discard)(p.name)
                return True
            elif kind == "display_mode":
                if arg not in render_modes.ALL_MODES:
                    raise EngineError(f"render mode must be one of {', '.join(render_modes.ALL_MODES)}, got {arg!r}.")
                self.display_mode = arg
                return True
            elif kind == "derivative":
                name, index = arg
                n = self.params[name].value.numel()  # an unknown name raises ParameterError with a hint
                if not 0 <= index < n:
                    raise EngineError(f"{name} has {n} components (0 to {n - 1}); component {index} does not exist.")
                self.derivative = (name, index)
                return True
            elif kind == "set_lr":
                group, lr = arg
                if group not in GROUPS:
                    raise ParameterError(f"group must be one of {', '.join(GROUPS)}, got {group!r}.")
                for p in self.params.in_group(group):
                    p.lr = lr
                return True
            elif kind == "set_group":
                group, on = arg
                if group not in GROUPS:
                    raise ParameterError(f"group must be one of {', '.join(GROUPS)}, got {group!r}.")
                self.group_enabled[group] = on
                return True
            elif kind == "loss_weight":
                name, w = arg
                idx = [i for i, t in enumerate(self.terms) if t.name == name]
                if not idx:
                    raise LossError(f"loss {name!r} is not in use; in use: {', '.join(t.name for t in self.terms)}.")
                self.terms[idx[0]] = replace(self.terms[idx[0]], weight=w)
                return True
            elif kind in ("loss_enabled", "loss_param"):
                name = arg[0]
                idx = [i for i, t in enumerate(self.terms) if t.name == name]
                if not idx:
                    raise LossError(f"loss {name!r} is not in use; in use: {', '.join(t.name for t in self.terms)}.")
                t = self.terms[idx[0]]
                if kind == "loss_enabled":
                    self.terms[idx[0]] = replace(t, enabled=arg[1], failed=False)
                else:
                    key, value = arg[1], arg[2]
                    if key not in t.definition.params:
                        raise LossError(f"loss {name!r} has no parameter {key!r}; its parameters are "
                                        f"{', '.join(t.definition.params) or 'none'}.")
                    spec = t.definition.params[key]
                    self.terms[idx[0]] = replace(t, params={**t.params, key: min(max(value, spec.min), spec.max)})
                return True
            elif kind == "losses":
                terms = [self._make_term(n, w, p) for n, w, p in arg]
                if not terms:
                    raise LossError("at least one loss is needed.")
                self.terms = terms
                return True
            elif kind in ("rebind", "reload"):
                if kind == "reload":
                    # A problem may carry a traceback in ``details`` (see studio.optim.plugins).
                    for problem in arg():
                        self._event(str(problem), getattr(problem, "details", ""))
                kept = []
                for t in self.terms:
                    if t.name not in REGISTRY:
                        self._event(f"loss {t.name!r} is no longer registered and was removed.")
                        continue
                    d = REGISTRY.get(t.name)
                    params = {k: t.params.get(k, p.default) for k, p in d.params.items()}
                    retry = t.failed and d is not t.definition  # its plugin was re-imported: try again
                    kept.append(LossTerm(d, t.weight, params, t.enabled or retry, t.failed and not retry))
                self.terms = kept
                return True
            elif kind == "option":
                key, value = arg
                if key == "restarts":
                    self.config.restarts = max(0, int(value))
                    self._searched = self.config.restarts <= 0 or self.step_count > 0
                elif key in RENDER_OPTIONS:
                    self.scene.options[key] = value
                    self._tuner.retune()  # e.g. soft rasterization costs several times more per step
                else:
                    raise EngineError(f"unknown option {key!r}; options are {', '.join(RENDER_OPTIONS)}, restarts.")
                return True
            elif kind == "view":
                if not 0 <= arg < self.scene.num_views:
                    raise ParameterError(f"view must be between 0 and {self.scene.num_views - 1}, got {arg}.")
                self.display_view = arg
                return True
            elif kind == "call":
                arg(self)
                return True
            else:
                raise EngineError(f"unknown command {kind!r}.")
        except (ValueError, EngineError, KeyError) as exc:
            self._event(str(exc))
            return True
        return False

    # ------------------------------------------------------------------ one step

    def _sample_views(self) -> list[int]:
        n = self.scene.num_views
        k = min(self.config.views_per_step, n)
        if k == n:
            return list(range(n))
        return sorted(torch.randperm(n, generator=self._gen)[:k].tolist())

    def _loss(self, out: Any, target: torch.Tensor, views: list[int]) -> tuple[torch.Tensor, dict[str, float]]:
        """Weighted sum of the enabled losses.  A loss that raises or returns something unusable
        is disabled (one sentence in the status, traceback in the events) and the rest go on."""
        render = torch.cat([out.rgb, out.alpha], -1)
        ctx_base = dict(mask=target[..., 3:], render_alpha=out.alpha, parameters=self.params, scene=self.scene,
                        gbuffer=out.gbuffer, iteration=self.step_count, device=render.device)
        needs_grad = torch.is_grad_enabled() and any(p.value.requires_grad for p in self.params.trainable())
        total = torch.zeros((), device=render.device)
        values: dict[str, float] = {}
        for i, t in enumerate(self.terms):
            if not t.enabled or t.weight == 0.0:
                continue
            try:
                value = call_loss(t.definition, render, target, LossContext(params=dict(t.params), **ctx_base),
                                  needs_grad)
            except LossFailure as exc:
                self.terms[i] = replace(t, enabled=False, failed=True)
                others = [u.name for u in self.terms if u.enabled]
                rest = f"; the run continues with {', '.join(others)}" if others else "; no loss is left enabled"
                self._event(f"{exc} and was disabled{rest}.", exc.details)
                continue
            total = total + t.weight * value
            values[t.name] = float(value.detach())
        return total, values

    def _event(self, message: str, details: str = "") -> None:
        """Status message for the user (one sentence) plus a log entry with details."""
        self._message = message
        log.warning(message + ("\n" + details if details else ""))
        self._events.append(message + ("\n" + details.rstrip() if details else ""))
        del self._events[:-_MAX_EVENTS]

    def _one_step(self, recorded: bool = False) -> None:
        """One optimisation step; ``recorded`` also takes it apart into a :class:`StepRecord`."""
        if not self._searched:
            self._random_search()
        self._tuner.before_step()
        t0 = time.perf_counter()
        views = self._sample_views()
        target = self.targets.rgba(views)
        before_step = getattr(self.scene, "before_step", None)
        if before_step is not None:  # e.g. the SDF scene anneals its silhouette sharpness
            before_step(self.step_count, self.config.steps)
        out = self.scene.render(views)
        if recorded:  # keep d loss / d pixel, which backward would otherwise free on its way to the parameters
            for image in (out.rgb, out.alpha):
                if image.requires_grad:
                    image.retain_grad()
        total, terms = self._loss(out, target, views)
        trainable = [p for p in self.params.trainable() if self._optimised(p)]
        before = {p.name: p.value.detach().cpu().numpy().copy() for p in trainable} if recorded else {}
        for p in self.params.trainable():
            p.value.grad = None
        ok = bool(torch.isfinite(total))
        if ok and total.requires_grad:
            total.backward()
            ok = all(p.value.grad is None or bool(torch.isfinite(p.value.grad).all()) for p in trainable)
        self.step_count += 1
        if not ok:
            self._restore_good()
            self._bad_steps += 1
            self.skipped_steps += 1
            what = "loss" if not math.isfinite(float(total.detach())) else "gradient"
            self._event(f"step {self.step_count}: the {what} was NaN or Inf, so the step was skipped and the "
                        f"last good parameters were kept.")
            if self._bad_steps >= MAX_BAD_STEPS:
                self._running = False
                self._pending_steps = 0
                self._event(f"paused after {MAX_BAD_STEPS} steps in a row with NaN/Inf values; lower the learning "
                            f"rate, check the losses, or Reset.")
            if recorded:
                self._step_record = self._take_apart(views, out, target, total, terms, trainable, before, {}, True)
            return
        self._bad_steps = 0
        lrs: dict[str, float] = {}
        if self._optimizer is not None and trainable:
            for p in self.params.trainable():
                if not self._optimised(p):
                    p.value.grad = None
            # Exponential decay (as in nvdiffrast's samples): large steps early, and little Adam
            # jitter around the optimum at the end of the budget.
            ramp = self.config.lr_decay ** (min(self.step_count, self.config.steps) / max(self.config.steps, 1))
            for pg in self._optimizer.param_groups:
                pg["lr"] = self.params[pg["name"]].lr * ramp
                lrs[pg["name"]] = float(pg["lr"])
            self._optimizer.step()
            for p in trainable:
                p.project_()
                self._good[p.name].copy_(p.value.detach())
        self._step_times.append(time.perf_counter() - t0)
        self._tuner.after_step(self._step_times[-1])
        self._record(float(total.detach()), terms)
        if recorded:
            self._step_record = self._take_apart(views, out, target, total, terms, trainable, before, lrs, False)

    def _take_apart(self, views: list[int], out: Any, target: torch.Tensor, total: torch.Tensor,
                    terms: dict[str, float], trainable: list[Any], before: dict[str, np.ndarray],
                    lrs: dict[str, float], skipped: bool) -> StepRecord:
        """The :class:`StepRecord` of the step just taken (gradients are still on the tensors)."""
        def first(t: torch.Tensor | None, like: torch.Tensor) -> np.ndarray:
            return self._frozen((t if t is not None else torch.zeros_like(like))[0].detach().float().cpu().numpy())

        render, goal = first(out.rgb, out.rgb), first(target, target)
        error = np.square(render - goal[..., :3]).sum(-1)
        pixel_gradient = np.concatenate([first(out.rgb.grad, out.rgb), first(out.alpha.grad, out.alpha)], -1)
        norms = {p.name: float(p.value.grad.norm()) if p.value.grad is not None else 0.0 for p in trainable}
        groups: dict[str, float] = {}
        for p in trainable:
            groups[p.group] = groups.get(p.group, 0.0) + norms[p.name] ** 2
        return StepRecord(
            step=self.step_count, views=tuple(views), render=render, target=self._frozen(goal[..., :3].copy()),
            loss_image=self._frozen(error), pixel_gradient=self._frozen(pixel_gradient),
            loss=float(total.detach()), loss_terms=dict(terms), grad_norm=norms,
            group_grad_norm={g: math.sqrt(v) for g, v in groups.items()}, lr=lrs,
            before={k: self._frozen(v) for k, v in before.items()},
            after={p.name: self._frozen(p.value.detach().cpu().numpy().copy()) for p in trainable},
            optimizer=self.config.optimizer, skipped=skipped)

    def _optimised(self, p: Any) -> bool:
        return self.group_enabled[p.group] and p.name not in self.frozen

    def evaluate_loss(self, views: Sequence[int] | None = None) -> float:
        """Total loss over ``views`` (default all) at the current parameters, without gradients.

        Call it while the worker thread is not running, or from :meth:`call`.
        """
        views = list(range(self.scene.num_views)) if views is None else list(views)
        with torch.no_grad():
            total, _ = self._loss(self.scene.render(views), self.targets.rgba(views), views)
        return float(total)

    def _restore_good(self) -> None:
        with torch.no_grad():
            for name, v in self._good.items():
                self.params[name].value.copy_(v)
                self.params[name].value.grad = None

    def _random_search(self) -> None:
        """Greedy random restarts for rotation parameters before the gradient phase (the pose
        sample's trick against local minima): keep the best of ``restarts`` random orientations."""
        self._searched = True
        rots = [p for p in self.params.trainable() if p.metric == "rotation"]
        if not rots:
            return
        views = list(range(min(self.scene.num_views, max(1, self.config.views_per_step))))
        target = self.targets.rgba(views)
        with torch.no_grad():
            best = float(self._loss(self.scene.render(views), target, views)[0])
            best_values = [p.value.clone() for p in rots]
            for _ in range(self.config.restarts):
                for p in rots:
                    p.value.copy_(torch.nn.functional.normalize(torch.randn(p.value.shape, generator=self._gen), dim=-1))
                loss = float(self._loss(self.scene.render(views), target, views)[0])
                if loss < best:
                    best, best_values = loss, [p.value.clone() for p in rots]
            for p, v in zip(rots, best_values):
                p.value.copy_(v)
                self._good[p.name].copy_(v)
        self._event(f"random search: kept the best of {self.config.restarts} random orientations (loss {best:.4g}).")

    def _record(self, loss: float, terms: dict[str, float]) -> None:
        """Append this step to the curves.  Group errors are evaluated every k steps, with k
        chosen so that measuring costs at most ~10% of the optimisation (Chamfer distances of
        big meshes are not free); other steps get NaN, which plots skip."""
        self._last_loss = loss
        self._last_terms = terms
        errs: dict[str, GroupError] = {}
        if self.step_count % self._metric_every == 0 or self.step_count <= 1:
            t0 = time.perf_counter()
            errs = self.params.group_errors()
            cost = time.perf_counter() - t0
            step = float(np.median(self._step_times[-20:])) if self._step_times else cost
            self._metric_every = max(1, min(50, math.ceil(cost / (_PUBLISH_BUDGET * max(step, 1e-6)))))
        h = self._history
        h["step"].append(self.step_count)
        h["loss"].append(loss)
        for g in GROUPS:
            h[g].append(errs[g].value if g in errs else float("nan"))
        for t in self.terms:
            h.setdefault(f"loss:{t.name}", [float("nan")] * (len(h["step"]) - 1))
            h[f"loss:{t.name}"].append(terms.get(t.name, float("nan")))

    # ------------------------------------------------------------------ publishing

    def _timed_publish(self, finished: bool = False) -> float:
        t0 = time.perf_counter()
        try:
            self._publish(finished)
        except Exception as exc:  # noqa: BLE001 - the worker must outlive a failing picture (e.g. out of memory)
            self._running = False
            self._pending_steps = 0
            self._event(f"showing step {self.step_count} failed and the run was paused: {self._describe(exc)}",
                        traceback.format_exc())
            self._republish()
        return time.perf_counter() - t0

    def _republish(self) -> None:
        """The previous snapshot again, paused and with the latest message, when a new one cannot be made."""
        with self._new_snapshot:
            if self._slot is None:
                return
            self._stamp += 1
            self._slot = replace(self._slot, running=False, message=self._message, events=tuple(self._events),
                                 stamp=self._stamp)
            self._new_snapshot.notify_all()

    def _describe(self, exc: BaseException) -> str:
        """The failure in words; running out of memory says what to do about it."""
        if out_of_memory(exc):
            if torch.device(self.scene.device).type == "cuda":
                torch.cuda.empty_cache()  # give back what the failed step held, so a smaller run fits
            return memory_advice(exc)
        return f"{type(exc).__name__}: {exc}"

    def _publish(self, finished: bool = False) -> None:
        v = self.display_view
        with torch.no_grad():
            out = self.scene.render([v])
        render = self._frozen(out.rgb[0].clamp(0, 1).float().cpu().numpy())
        target = self._frozen(self.targets.rgb[v].clamp(0, 1).float().cpu().numpy())
        shown = self._display_fields(out, v)  # first: a failing view's message belongs in this snapshot
        recent = self._step_times[-20:]
        ms = 1000.0 * float(np.median(recent)) if recent else 0.0
        errors = self.params.group_errors()
        h = self._history
        if h["step"] and h["step"][-1] == self.step_count:
            # Measured anyway for the snapshot: fill the curves' point for this step if the
            # throttled metrics skipped it, so every run's curves end with a value.
            for g, e in errors.items():
                if math.isnan(h[g][-1]):
                    h[g][-1] = e.value
        self._stamp += 1
        snap = Snapshot(
            step=self.step_count,
            running=self._running,
            view=v,
            render=render,
            target=target,
            diff=self._frozen(np.abs(render - target).mean(-1)),
            alpha=self._frozen(out.alpha[0, ..., 0].float().cpu().numpy()),
            params={k: self._frozen(v) for k, v in self.params.numpy_values().items()},
            loss=self._last_loss,
            loss_terms=dict(self._last_terms),
            group_errors=errors,
            history={k: self._frozen(np.asarray(vals, dtype=np.float64)) for k, vals in self._history.items()},
            ms_per_step=ms,
            it_per_s=1000.0 / ms if ms > 0 else 0.0,
            threads=self._tuner.threads,
            threads_measuring=self._tuner.measuring,
            message=self._message,
            skipped_steps=self.skipped_steps,
            finished=finished,
            stamp=self._stamp,
            losses=tuple((t.name, t.weight, t.enabled, tuple(t.params.items())) for t in self.terms),
            events=tuple(self._events),
            frozen=tuple(sorted(self.frozen)),
            group_enabled=dict(self.group_enabled),
            group_lr=self._group_lr(),
            options={**self.scene.options, "restarts": self.config.restarts},
            step_record=self._step_record,
            **shown,
        )
        with self._new_snapshot:
            self._slot = snap
            self._new_snapshot.notify_all()

    def _group_lr(self) -> dict[str, float]:
        """The learning rate of each group with trainable parameters (that of its first one)."""
        out: dict[str, float] = {}
        for p in self.params.trainable():
            out.setdefault(p.group, p.lr)
        return out

    def _display_fields(self, out: Any, view: int) -> dict[str, Any]:
        """Snapshot fields of the selected render mode: ``display_mode`` and ``display`` (None for the
        shaded image itself), plus ``derivative`` and ``display_scale`` or ``arrows`` for the gradient
        views.  Those run a derivative per publish, so they cost only while their mode is selected."""
        mode = self.display_mode
        fields: dict[str, Any] = {"display_mode": mode, "display": None}
        if mode == render_modes.SHADED:
            return fields
        target = self.targets.rgba([view])

        def loss_of(render: Any, goal: torch.Tensor) -> torch.Tensor:
            return self._loss(render, goal, [view])[0]

        try:
            if mode == render_modes.DERIVATIVE:
                if self.derivative is None:
                    self.derivative = self._default_derivative(view, loss_of, target)
                name, index = self.derivative
                d_image = gradient_views.derivative_image(self.scene, name, index, view)
                # The channels' mean: one signed number per pixel, in linear RGB per parameter unit.
                image, scale = render_modes.signed_colors(d_image.mean(-1).unsqueeze(0))
                fields.update(derivative=(name, index), display_scale=scale)
            elif mode == render_modes.VERTEX_ARROWS:
                points, vectors = gradient_views.vertex_gradient_field(self.scene, loss_of, target, view,
                                                                       max_arrows=ARROWS)
                fields["arrows"] = self._frozen(torch.cat([points, vectors], 1).float().cpu().numpy())
                image = render_modes.shaded(out.rgb)
            else:
                def loss_fn(rgb: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
                    return loss_of(replace(out, rgb=rgb, alpha=alpha), target)

                image = render_modes.display_image(mode, out, loss_fn)
        except Exception as exc:  # noqa: BLE001 - a failing view must not end the worker; the run goes on
            self.display_mode = render_modes.SHADED
            self._event(f"the {mode!r} view failed ({type(exc).__name__}: {exc}), so the render shows the shaded "
                        f"image again.",
                        traceback.format_exc())
            return {"display_mode": render_modes.SHADED, "display": None}
        fields["display"] = self._frozen(image[0].float().cpu().numpy())
        return fields

    def _default_derivative(self, view: int, loss_of: Callable[[Any, torch.Tensor], torch.Tensor],
                            target: torch.Tensor) -> tuple[str, int]:
        """The derivative mode's scalar until one is chosen: the trainable component the loss pulls
        on hardest in this view (the largest |d loss / d θ|), so the first picture is never of a
        component that moves nothing on screen.  Kept from then on (it becomes ``derivative``)."""
        trainable = self.params.trainable()
        if not trainable:
            return self.params.names()[0], 0
        values = dict(self.params.values())
        leaves = {p.name: p.value.detach().clone().requires_grad_(True) for p in trainable}
        values.update(leaves)
        loss = loss_of(self.scene.render([view], values=values), target)
        if not loss.requires_grad:  # every loss is off: no component is pulled on
            return trainable[0].name, 0
        grads = torch.autograd.grad(loss, list(leaves.values()), allow_unused=True)
        best = max(((float(g.abs().max()), name, int(g.abs().argmax())) for name, g in zip(leaves, grads)
                    if g is not None), default=(0.0, trainable[0].name, 0))
        return best[1], best[2]

    # ------------------------------------------------------------------ sessions

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume this run: parameter values and the initial values Reset
        returns to, optimiser state, curves, learning rates, switches and losses (tensors as CPU
        copies).  Call it on the worker (:meth:`submit`) or while the worker is not running."""
        return {
            "step": self.step_count,
            "skipped_steps": self.skipped_steps,
            "params": {p.name: p.value.detach().cpu().clone() for p in self.params},
            "initial": {p.name: p.initial.detach().cpu().clone() for p in self.params},
            "lr": {p.name: float(p.lr) for p in self.params.trainable()},
            "group_enabled": dict(self.group_enabled),
            "frozen": sorted(self.frozen),
            "losses": [{"name": t.name, "weight": t.weight, "enabled": t.enabled, "params": dict(t.params)}
                       for t in self.terms],
            "history": {k: list(v) for k, v in self._history.items()},
            "optimizer": _to_cpu(self._optimizer.state_dict()) if self._optimizer is not None else None,
            "generator": self._gen.get_state(),  # which views the next steps sample
            "view": self.display_view,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume a run saved by :meth:`state_dict` (paused).  Call it on the worker (:meth:`submit`).

        Raises:
            ParameterError: the state belongs to a scene with other parameters or shapes.
            LossError: it uses a loss that is not registered (e.g. a plugin that is not loaded).
        """
        values, initial = state["params"], state["initial"]
        mine = set(self.params.names())
        if set(values) != mine:
            odd = sorted(set(values) ^ mine)[0]
            where = "this scene has no" if odd in values else "the session has no"
            raise ParameterError(f"the session was saved for a different scene ({where} parameter {odd!r}); "
                                 "open the scenario it was saved with first.")
        for p in self.params:
            for what, v in (("value", values[p.name]), ("initial value", initial[p.name])):
                if tuple(v.shape) != tuple(p.value.shape):
                    raise ParameterError(f"the session's {what} of {p.name} has shape {tuple(v.shape)} but this "
                                         f"scene's has {tuple(p.value.shape)}; open the scenario (and resolution) "
                                         "it was saved with.")
        terms = [replace(self._make_term(t["name"], t["weight"], t["params"]), enabled=bool(t["enabled"]))
                 for t in state["losses"]]
        if not terms:
            raise LossError("the session has no losses.")
        optimizer = self._make_optimizer()
        if state["optimizer"] is not None and optimizer is not None:
            try:
                optimizer.load_state_dict(state["optimizer"])
            except (ValueError, KeyError) as exc:
                raise ParameterError(f"the session's optimiser state does not fit this scene's trainable parameters "
                                     f"({exc}); open the scenario it was saved with first.") from None
        with torch.no_grad():
            for p in self.params:
                p.value.copy_(values[p.name].to(p.value))
                p.initial = initial[p.name].to(p.value).clone()
        for name, lr in state["lr"].items():
            if name in self.params:
                self.params[name].lr = float(lr)
        self.terms = terms
        self.group_enabled = {g: bool(state["group_enabled"].get(g, True)) for g in GROUPS}
        self.frozen = {n for n in state["frozen"] if n in self.params}
        self._running = False
        self._pending_steps = 0
        self._message = None
        self._reset_state()
        self.step_count = int(state["step"])
        self.skipped_steps = int(state["skipped_steps"])
        self._history = {k: [float(x) for x in v] for k, v in state["history"].items()}
        self._optimizer = optimizer
        self._searched = self._searched or self.step_count > 0
        if state.get("generator") is not None:
            self._gen.set_state(state["generator"])
        if 0 <= int(state["view"]) < self.scene.num_views:
            self.display_view = int(state["view"])

    @staticmethod
    def _frozen(a: np.ndarray) -> np.ndarray:
        a.flags.writeable = False
        return a


def _to_cpu(obj: Any) -> Any:
    """A copy of a (nested) optimiser state with every tensor moved to the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj
