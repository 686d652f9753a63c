"""The optimisation engine: a worker thread that fits scene parameters to target images.

Threading contract (see DESIGN.md): front ends (GUI, CLI, tests) call the command methods from any
thread.  Each builds a typed command (:mod:`studio.optim.commands`) whose arguments are checked at
the call (a wrong type raises :class:`CommandError` there); commands go into a queue and the worker
applies them *between* steps.  After steps the worker publishes an immutable :class:`Snapshot`
(numpy arrays and plain numbers, :mod:`studio.optim.engine_publish`) into a latest-value slot that
readers take with :meth:`Engine.latest`.  No lock is held across a render.

The worker never dies of what it runs: an exception (any ``BaseException`` but the interpreter
shutting down) in a command's handler, a step, a loss or a publish becomes one sentence in the
snapshot's ``message`` and ``events`` (with the traceback), and the run pauses where that is the
safe thing.  A step running past ``EngineConfig.watchdog_s`` is reported (``Snapshot.stalled``,
:mod:`studio.optim.watchdog`); :meth:`Engine.restarted` then abandons the stuck thread and goes on
from the last good state in a new engine.  Sessions: :mod:`studio.optim.engine_state`.
"""

from __future__ import annotations

import logging
import math
import queue
import sys
import threading
import time
import traceback
from concurrent.futures import Future
from dataclasses import replace
from typing import Any, Callable, Mapping, Sequence, TypeVar

import torch

from ..errors import memory_advice, out_of_memory
from ..scene.params import GROUPS
from . import commands as cmd
from .commands import RENDER_OPTIONS
from .engine_publish import ARROWS, make_snapshot
from .engine_state import load_state, state_of
from .engine_step import MAX_BAD_STEPS, one_step, restore_good
from .engine_types import (WATCHDOG_S, CommandError, EngineConfig, EngineError, LossTerm, Snapshot, StepRecord,
                           Targets)
from .losses import REGISTRY, LossContext, LossError, LossFailure, call_loss
from .threads import ThreadTuner
from .watchdog import Abandoned, Heartbeat, Stage, Stall, Watchdog, short_path

__all__ = ["ARROWS", "MAX_BAD_STEPS", "RENDER_OPTIONS", "WATCHDOG_S", "CommandError", "Engine", "EngineConfig",
           "EngineError", "LossTerm", "Snapshot", "StepRecord", "Targets"]

log = logging.getLogger("studio.engine")

_MAX_EVENTS = 200
_PUBLISH_HZ = 30.0
_PUBLISH_BUDGET = 0.10  # fraction of worker time that publishing may take
_UNBUILT = object()  # Engine._optimizer before its first use

T = TypeVar("T")


def _shutting_down() -> bool:
    """The interpreter is exiting: its exceptions in a daemon thread are not the run's failures."""
    return sys.is_finalizing()


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
        self.display_mode = "shaded"
        self.derivative: tuple[str, int] | None = None  # None until chosen (see engine_publish.default_derivative)
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
        self._events_lock = threading.Lock()  # the watchdog reports from its own thread
        self._stamp = 0
        self._beat = Heartbeat()
        self._watchdog: Watchdog | None = None
        self._stall: Stall | None = None
        if self.config.threads is not None and self.config.threads < 1:
            raise EngineError(f"threads must be at least 1, got {self.config.threads}.")
        if not (isinstance(self.config.watchdog_s, (int, float)) and self.config.watchdog_s > 0):
            raise EngineError(f"the watchdog limit must be a positive number of seconds, got {self.config.watchdog_s!r}.")
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
        for p in self.params.trainable():
            p.value.requires_grad_(True)  # now: the optimiser is only built after the first backward pass
        if self.config.optimizer not in ("adam", "sgd"):
            raise EngineError(f"optimizer must be adam or sgd, got {self.config.optimizer!r}.")
        self._optimizer_slot: torch.optim.Optimizer | None | object = _UNBUILT
        self._searched = self.config.restarts <= 0
        self._record_next = False
        self._step_record: StepRecord | None = None
        self._marks: list[tuple[int, str]] = []

    @property
    def _optimizer(self) -> torch.optim.Optimizer | None:
        """The torch optimiser over the trainable parameters (None when there are none), built at
        its first use: creating one imports ``torch._dynamo`` the first time (about 1 s on a 2-core
        machine), which would otherwise stand between opening a scene and its first render."""
        if self._optimizer_slot is _UNBUILT:
            self._optimizer_slot = self._make_optimizer()
        return self._optimizer_slot  # type: ignore[return-value]

    @_optimizer.setter
    def _optimizer(self, optimizer: torch.optim.Optimizer | None) -> None:
        self._optimizer_slot = optimizer

    def _make_optimizer(self) -> torch.optim.Optimizer | None:
        groups = []
        for p in self.params.trainable():
            p.value.requires_grad_(True)
            groups.append({"params": [p.value], "lr": p.lr, "name": p.name})
        if not groups:
            return None
        factory = getattr(self.scene, "make_optimizer", None)
        if factory is not None:  # e.g. the reconstruction's uniform Adam for its large-steps latent
            return factory(groups)
        if self.config.optimizer == "sgd":
            return torch.optim.SGD(groups, lr=0.01, momentum=0.9)
        if self.config.optimizer != "adam":
            raise EngineError(f"optimizer must be adam or sgd, got {self.config.optimizer!r}.")
        return torch.optim.Adam(groups, lr=0.01)

    def _scene_changed(self, events: Sequence[str]) -> None:
        """The scene replaced parameter tensors between steps (its ``before_step`` returned events):
        rebuild the optimiser over the new tensors, keep them as the last good values, and show
        each event in the log, the status bar and (as a mark at this step) on the curves."""
        self._optimizer = self._make_optimizer()
        self._good = {p.name: p.value.detach().clone() for p in self.params.trainable()}
        for text in events:
            self._event(text)
            self._marks.append((self.step_count, text))

    # ------------------------------------------------------------------ public commands (any thread)
    # Each checks its arguments here (CommandError at the call) and queues a command value.

    def start_thread(self) -> "Engine":
        """Start the worker (idle until :meth:`start` or :meth:`step`) and its watchdog.  Publishes a
        first snapshot."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._worker, name="studio-engine", daemon=True)
            self._watchdog = Watchdog(self._beat, lambda: self.config.watchdog_s, self._on_stall).start()
            self._thread.start()
            self._send(cmd.Publish())
        return self

    def start(self, until: int | None = None) -> None:
        """Run continuously until paused, or until step ``until`` (then the snapshot says finished)."""
        self._send(cmd.Run(True, until))

    def pause(self) -> None:
        self._send(cmd.Run(False))

    def step(self, n: int = 1) -> None:
        """Take ``n`` single steps, then stay paused."""
        self._send(cmd.Steps(n))

    def step_recorded(self) -> None:
        """Take one step and attach its :class:`StepRecord` (render, loss image, pixel gradient,
        gradient norms, values before and after, learning rates) to the snapshot that follows."""
        self._send(cmd.Steps(1, record=True))

    def reset(self) -> None:
        """Back to the initial parameters, a fresh optimiser and empty curves."""
        self._send(cmd.Reset())

    def randomize(self, seed: int | None = None) -> None:
        """A new random initial guess for every trainable parameter (and reset)."""
        self._send(cmd.Randomize(seed))

    def set_param(self, name: str, value: object) -> None:
        """Set a parameter's value (a slider drag): a number, a sequence, an array or a tensor of
        numbers; the render follows at the next publish."""
        self._send(cmd.SetParam(name, value))

    def set_lr(self, group: str, lr: float) -> None:
        """Learning rate (>= 0) of every trainable parameter in ``group``."""
        self._send(cmd.SetLr(group, lr))

    def set_group_enabled(self, group: str, enabled: bool) -> None:
        """Optimise ``group`` or hold it fixed (its curve keeps updating)."""
        self._send(cmd.SetGroupEnabled(group, enabled))

    def set_loss_weight(self, name: str, weight: float) -> None:
        self._send(cmd.SetLossWeight(name, weight))

    def set_loss_enabled(self, name: str, enabled: bool) -> None:
        """Use a loss or leave it out (re-enabling a plugin that was disabled after a failure)."""
        self._send(cmd.SetLossEnabled(name, enabled))

    def set_loss_param(self, name: str, key: str, value: float) -> None:
        """Set one declared hyper-parameter of a loss in use."""
        self._send(cmd.SetLossParam(name, key, value))

    def set_losses(self, losses: Sequence[tuple[str, float, Mapping[str, float]]]) -> None:
        """Replace the losses in use with (name, weight, params) triples."""
        self._send(cmd.SetLosses(losses))

    def rebind_losses(self) -> None:
        """Look every loss in use up in the registry again (after plugins were reloaded), keeping
        weights and the values of parameters that still exist; losses that vanished are dropped."""
        self._send(cmd.RebindLosses())

    def reload_losses(self, reloader: Callable[[], Sequence[str]]) -> None:
        """Run ``reloader()`` on the worker between steps (it re-imports plugin files and returns
        one message per problem), then :meth:`rebind_losses`.  The run and its state are kept."""
        self._send(cmd.ReloadLosses(reloader))

    def set_option(self, key: str, value: object) -> None:
        """Change a render option (``RENDER_OPTIONS``) or ``restarts``; the render follows."""
        self._send(cmd.SetOption(key, value))

    def set_view(self, view: int) -> None:
        """Which camera view the snapshots show."""
        self._send(cmd.SetView(view))

    def call(self, fn: Callable[["Engine"], None]) -> None:
        """Run ``fn(engine)`` on the worker between steps (for front ends' own edits); what it
        raises becomes a message, and the worker goes on."""
        self._send(cmd.Call(fn))

    def submit(self, fn: Callable[["Engine"], T]) -> "Future[T]":
        """Run ``fn(engine)`` on the worker between steps and return a Future with its result (or
        the exception it raised).  Before :meth:`start_thread` it runs at once on the calling thread."""
        cmd.check_callable("submit", "fn", fn)
        fut: Future = Future()

        def run(engine: "Engine") -> None:
            if fut.set_running_or_notify_cancel():
                try:
                    fut.set_result(fn(engine))
                except Abandoned:
                    raise
                except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
                    fut.set_exception(exc)

        if self._thread is None:
            run(self)
        else:
            self._send(cmd.Call(run, what=f"the call of {getattr(fn, '__qualname__', 'a function')}"))
        return fut

    def set_display_mode(self, mode: str) -> None:
        """What ``Snapshot.display`` shows: one of :data:`studio.render.modes.ALL_MODES`."""
        self._send(cmd.SetDisplayMode(mode))

    def set_derivative(self, name: str, index: int = 0) -> None:
        """Which scalar the derivative render mode differentiates by: component ``index`` of the
        flattened parameter ``name`` (row-major, e.g. vertex i's y is 3·i + 1)."""
        self._send(cmd.SetDerivative(name, index))

    def set_frozen(self, name: str, frozen: bool) -> None:
        """Hold one trainable parameter fixed (``True``) or optimise it again, whatever its group."""
        self._send(cmd.SetFrozen(name, frozen))

    def reset_param(self, name: str) -> None:
        """One parameter back to its initial value (the run and its curves go on)."""
        self._send(cmd.ResetParam(name))

    def stop(self, timeout: float = 10.0) -> None:
        """End the worker thread and wait for it (at most ``timeout`` seconds: a worker still busy
        then, e.g. stuck in a plugin's loop, is abandoned as a daemon).  Stopping twice is harmless."""
        if not self._stopped:
            self._commands.put(cmd.Stop())
        if self._thread is not None:
            if not self._beat.abandoned:  # an abandoned worker is not waited for
                self._thread.join(timeout)
            if self._thread.is_alive() and not self._beat.abandoned:
                log.warning("the engine's worker did not stop within %.0f s and was abandoned.", timeout)
                self.abandon()
            self._thread = None
        if self._watchdog is not None:
            self._watchdog.stop()

    def latest(self) -> Snapshot | None:
        """The most recent snapshot (never blocks)."""
        return self._slot

    def wait_snapshot(self, after_stamp: int = -1, timeout: float | None = None,
                      predicate: Callable[[Snapshot], bool] | None = None) -> Snapshot | None:
        """Block until a snapshot newer than ``after_stamp`` (and satisfying ``predicate``) exists.

        Returns None after ``timeout`` seconds, and at once when the worker has died (see
        :attr:`alive`), so that no front end waits forever on a thread that is gone.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._new_snapshot:
            while True:
                s = self._slot
                if s is not None and s.stamp > after_stamp and (predicate is None or predicate(s)):
                    return s
                if self._thread is not None and not self._thread.is_alive():
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._new_snapshot.wait(0.5 if remaining is None else min(remaining, 0.5))

    @property
    def running(self) -> bool:
        return self._running

    @property
    def alive(self) -> bool:
        """The worker thread is started and has neither ended nor been abandoned."""
        return self._thread is not None and self._thread.is_alive() and not self._beat.abandoned

    @property
    def dead(self) -> bool:
        """The worker was started and has ended although nobody stopped it (front ends say so)."""
        return self._thread is not None and not self._thread.is_alive() and not self._stopped

    @property
    def stalled(self) -> Stall | None:
        """The watchdog's report while the current step (command, publish) runs past the limit."""
        return self._stall

    def events(self) -> tuple[str, ...]:
        """Recent messages with details (tracebacks), oldest first."""
        with self._events_lock:
            return tuple(self._events)

    def _send(self, command: cmd.Command) -> None:
        if self._stopped:
            raise EngineError("the engine has been stopped; create a new one.")
        self._commands.put(command)

    # ------------------------------------------------------------------ a stuck worker

    def _on_stall(self, stall: Stall) -> None:
        """The watchdog's report (on its thread): one sentence saying what is running and what to do."""
        self._stall = stall
        if stall.stage.loss is not None:
            todo = (f"disable loss {stall.stage.loss!r} and restart from the last good state (step {stall.step}), "
                    "or keep waiting")
        else:
            todo = f"keep waiting, or stop and restart from the last good state (step {stall.step})"
        frame = sys._current_frames().get(self._thread.ident) if self._thread is not None else None
        stack = "".join(traceback.format_stack(frame)) if frame is not None else ""
        self._event(f"{stall.sentence}; {todo}.", "where it is running:\n" + stack if stack else "")
        self._republish()

    def abandon(self) -> None:
        """Give up on the worker: it gets no more commands, and if it ever comes back from the code
        it is stuck in, it ends at its next stage boundary without touching the run's state."""
        self._stopped = True
        self._beat.abandoned = True
        if self._watchdog is not None:
            self._watchdog.stop()

    def rescue_state(self) -> dict[str, Any]:
        """The last good state (as :meth:`state_dict`), readable from any thread while the worker is
        stuck: the parameters are those of the last step that completed."""
        state = state_of(self)
        state["params"] = {**state["params"], **{n: v.detach().cpu().clone() for n, v in self._good.items()}}
        return state

    def restore_last_good(self) -> None:
        """Put the parameters of the last completed step back, e.g. to write the outputs of a run that
        failed or got stuck.  Call it after :meth:`stop` (or :meth:`abandon`)."""
        restore_good(self)

    def restarted(self, disable: Sequence[str] = ()) -> "Engine":
        """A new engine (worker not started) on the same scene and targets, resumed from the last
        good state with the losses named in ``disable`` switched off; this engine's worker is
        abandoned.  Front ends swap it in for a stuck one."""
        state = self.rescue_state()
        self.abandon()
        state["losses"] = [{**t, "enabled": t["enabled"] and t["name"] not in disable} for t in state["losses"]]
        new = Engine(self.scene, self.targets, [(t.name, t.weight, t.params) for t in self.terms],
                     replace(self.config, group_lr=dict(self.config.group_lr)))
        new.load_state_dict(state)
        new.display_mode, new.derivative = self.display_mode, self.derivative
        new._event(f"restarted from the last good state (step {new.step_count})"
                   + (f" with {', '.join(repr(n) for n in disable)} disabled." if disable else "."))
        return new

    # ------------------------------------------------------------------ worker

    def _worker(self) -> None:
        try:
            self._work()
        except Abandoned:
            log.info("an abandoned engine worker came back and ended.")
        except BaseException as exc:  # noqa: BLE001 - the last resort: say so rather than vanish
            if _shutting_down():
                return
            self._running = False
            self._event(f"the optimisation worker stopped: {self._describe(exc)}; save the session and reload "
                        "the scene.", traceback.format_exc())
            self._republish(running=False)
        finally:
            if self._watchdog is not None:
                self._watchdog.stop()

    def _busy(self) -> bool:
        return self._running or self._pending_steps > 0

    def _work(self) -> None:
        last_publish = 0.0
        publish_cost = 0.0
        while True:
            force = False
            try:
                # Idle: sleep until a command arrives.  Busy: take what is queued, then step.
                item = self._commands.get(block=not self._busy())
                while True:
                    force = self._apply(item) or force
                    if self._stopped:
                        break
                    item = self._commands.get_nowait()
            except queue.Empty:
                pass
            if self._stopped:
                break
            if force and not self._busy():
                publish_cost = self._timed_publish()
                last_publish = time.monotonic()
                continue
            if not self._busy():
                continue
            if self._running and self._until is not None and self.step_count >= self._until:
                self._running = False
                publish_cost = self._timed_publish(finished=True)
                last_publish = time.monotonic()
                continue
            recorded, self._record_next = self._record_next, False
            force = self._guarded_step(recorded) or force
            if self._pending_steps > 0:
                self._pending_steps -= 1
            finished = self._running and self._until is not None and self.step_count >= self._until
            if finished:
                self._running = False
            interval = max(1.0 / _PUBLISH_HZ, publish_cost / _PUBLISH_BUDGET)
            if force or not self._busy() or time.monotonic() - last_publish >= interval:
                publish_cost = self._timed_publish(finished=finished)
                last_publish = time.monotonic()

    def _begin(self, what: str) -> None:
        self._beat.begin(Stage(what), self.step_count)

    def _end(self) -> None:
        """The current piece of work is over; a stall it was reported for is over too."""
        now = self._beat.current()
        stall, self._stall = self._stall, None
        self._beat.end()
        if stall is not None:
            took = f" after {now[2]:.0f} s" if now is not None else ""
            self._event(f"{stall.stage.what} finished{took}; the run goes on.")

    def _failed(self, what: str, exc: BaseException) -> None:
        """``what`` failed with ``exc``: one sentence in the status, the traceback in the events."""
        if isinstance(exc, Abandoned) or _shutting_down():
            raise exc
        self._event(f"{what}: {self._describe(exc)}", traceback.format_exc())

    def _apply(self, command: cmd.Command) -> bool:
        """Apply one command; returns True when a fresh snapshot should follow.  Whatever its
        handler raises becomes a message: the user's mistakes as their own sentence, anything
        else (a front end's failing call) with the traceback."""
        self._begin(command.describe())
        try:
            return command.apply(self)
        except (ValueError, EngineError) as exc:
            self._event(str(exc))
        except BaseException as exc:  # noqa: BLE001 - no command may end the worker
            self._failed(f"{command.describe()} failed", exc)
        finally:
            self._end()
        return True

    def _guarded_step(self, recorded: bool) -> bool:
        """One step; a failure pauses the run with one sentence.  Returns True when it failed."""
        self._begin(f"step {self.step_count + 1}")
        try:
            one_step(self, recorded)
            return False
        except BaseException as exc:  # noqa: BLE001 - a failing step (or plugin) must not kill the session
            self._running = False
            self._pending_steps = 0
            self._failed(f"step {self.step_count + 1} failed and the run was paused", exc)
            return True
        finally:
            self._end()

    # ------------------------------------------------------------------ publishing

    def _timed_publish(self, finished: bool = False) -> float:
        t0 = time.perf_counter()
        self._begin(f"showing step {self.step_count}")
        try:
            snap = make_snapshot(self, finished)
            with self._new_snapshot:
                self._stamp += 1
                self._slot = replace(snap, stamp=self._stamp)
                self._new_snapshot.notify_all()
        except BaseException as exc:  # noqa: BLE001 - the worker must outlive a failing picture (e.g. out of memory)
            self._running = False
            self._pending_steps = 0
            self._failed(f"showing step {self.step_count} failed and the run was paused", exc)
            self._republish(running=False)
        finally:
            self._end()
        return time.perf_counter() - t0

    def _republish(self, **changes: Any) -> None:
        """The previous snapshot again with the latest message, events and stall (and ``changes``),
        when a new one cannot be made."""
        with self._new_snapshot:
            if self._slot is None:
                return
            self._stamp += 1
            self._slot = replace(self._slot, message=self._message, events=self.events(), stalled=self._stall,
                                 stamp=self._stamp, **changes)
            self._new_snapshot.notify_all()

    def _describe(self, exc: BaseException) -> str:
        """The failure in words; running out of memory says what to do about it."""
        if out_of_memory(exc):
            if torch.device(self.scene.device).type == "cuda":
                torch.cuda.empty_cache()  # give back what the failed step held, so a smaller run fits
            return memory_advice(exc)
        text = str(exc).strip().splitlines()
        return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__

    def _event(self, message: str, details: str = "") -> None:
        """Status message for the user (one sentence) plus a log entry with details."""
        self._message = message
        log.warning(message + ("\n" + details if details else ""))
        with self._events_lock:
            self._events.append(message + ("\n" + details.rstrip() if details else ""))
            del self._events[:-_MAX_EVENTS]

    # ------------------------------------------------------------------ sessions

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume this run: parameter values and the initial values Reset
        returns to, optimiser state, curves, learning rates, switches and losses (tensors as CPU
        copies, never shared with the engine).  Call it on the worker (:meth:`submit`) or while
        the worker is not running."""
        return state_of(self)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume a run saved by :meth:`state_dict` (paused), all or nothing: every field is checked
        before anything changes, and the tensors are copied.  Call it on the worker (:meth:`submit`).

        Raises:
            ParameterError: a field is missing, mistyped, not finite, or belongs to a scene with
                other parameters or shapes (the run is left as it was).
            LossError: it uses a loss that is not registered (e.g. a plugin that is not loaded).
        """
        load_state(self, state)

    # ------------------------------------------------------------------ one step

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
                with self._beat.stage(self._loss_stage(t.definition)):
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

    @staticmethod
    def _loss_stage(d: Any) -> Stage:
        if d.builtin:
            return Stage(f"built-in loss {d.name!r}", loss=d.name)
        where = f" from {short_path(d.source)}" if d.source else ""
        return Stage(f"loss {d.name!r}{where}", loss=d.name, source=d.source or None)

    def evaluate_loss(self, views: Sequence[int] | None = None) -> float:
        """Total loss over ``views`` (default all) at the current parameters, without gradients.

        Call it while the worker thread is not running, or from :meth:`call`.
        """
        views = list(range(self.scene.num_views)) if views is None else list(views)
        with torch.no_grad():
            total, _ = self._loss(self.scene.render(views), self.targets.rgba(views), views)
        return float(total)
