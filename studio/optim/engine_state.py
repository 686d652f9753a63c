"""Saving and restoring an engine's run: :func:`state_of` and :func:`load_state`, all or nothing.

A restore checks every field of the state (types, shapes, finiteness, parameter, group and loss
names, the optimiser's state against the trainable parameters) *before* it changes anything, so
a bad session file leaves the run as it was; the first problem is one sentence.  Tensors are
copied in and out: the engine never shares a tensor (optimiser moments, step counts) with the
caller, so restoring the same state twice, or saving and continuing, never counts a step twice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any

import torch

from ..scene.params import GROUPS, ParameterError
from .engine_types import LossTerm
from .losses import LossError

if TYPE_CHECKING:
    from .engine import Engine

_FIELDS = ("step", "skipped_steps", "params", "initial", "lr", "group_enabled", "frozen", "losses", "history",
           "optimizer", "view")


def deep_copy(obj: Any) -> Any:
    """A copy of a (nested) optimiser state or state dict with every tensor cloned onto the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, dict):
        return {k: deep_copy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(deep_copy(v) for v in obj)
    return obj


def state_of(engine: "Engine") -> dict[str, Any]:
    """Everything needed to resume the run (see :meth:`Engine.state_dict`), copied."""
    return {
        "step": engine.step_count,
        "skipped_steps": engine.skipped_steps,
        "params": {p.name: p.value.detach().cpu().clone() for p in engine.params},
        "initial": {p.name: p.initial.detach().cpu().clone() for p in engine.params},
        "lr": {p.name: float(p.lr) for p in engine.params.trainable()},
        "group_enabled": dict(engine.group_enabled),
        "frozen": sorted(engine.frozen),
        "losses": [{"name": t.name, "weight": t.weight, "enabled": t.enabled, "params": dict(t.params)}
                   for t in engine.terms],
        "history": {k: list(v) for k, v in engine._history.items()},
        "optimizer": deep_copy(engine._optimizer.state_dict()) if engine._optimizer is not None else None,
        "generator": engine._gen.get_state(),  # which views the next steps sample
        "view": engine.display_view,
    }


def _bad(what: str, problem: str) -> ParameterError:
    return ParameterError(f"the session's {what} {problem}; open the scenario it was saved with, or choose "
                          "another session file.")


def _count(state: Mapping[str, Any], key: str) -> int:
    v = state[key]
    if isinstance(v, bool) or not isinstance(v, Integral) or int(v) < 0:
        raise _bad(key, f"must be a whole number of at least 0, not {v!r}")
    return int(v)


def _mapping(state: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    v = state[key]
    if not isinstance(v, Mapping) or not all(isinstance(k, str) for k in v):
        raise _bad(key, f"must be a table keyed by name, not {type(v).__name__}")
    return v


def _finite_number(what: str, v: object, minimum: float | None = None) -> float:
    if isinstance(v, bool) or not isinstance(v, Real) or not math.isfinite(float(v)):
        raise _bad(what, f"must be a finite number, not {v!r}")
    if minimum is not None and float(v) < minimum:
        raise _bad(what, f"must be at least {minimum:g}, not {v!r}")
    return float(v)


def _flag(what: str, v: object) -> bool:
    if not isinstance(v, bool):
        raise _bad(what, f"must be true or false, not {v!r}")
    return v


def _tensors(engine: "Engine", state: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """The parameter values and initial values, checked and copied onto the parameters' devices."""
    mine = set(engine.params.names())
    out = []
    for key, label in (("params", "value"), ("initial", "initial value")):
        values = _mapping(state, key)
        if set(values) != mine:
            odd = sorted(set(values) ^ mine)[0]
            where = "this scene has no" if odd in values else "the session has no"
            raise ParameterError(f"the session was saved for a different scene ({where} parameter {odd!r}); "
                                 "open the scenario it was saved with first.")
        copied = {}
        for p in engine.params:
            v = values[p.name]
            if not isinstance(v, torch.Tensor) or not (v.dtype.is_floating_point or v.dtype in (torch.int32, torch.int64)):
                raise _bad(f"{label} of {p.name}", f"must be a tensor of numbers, not {type(v).__name__}")
            if tuple(v.shape) != tuple(p.value.shape):
                raise ParameterError(f"the session's {label} of {p.name} has shape {tuple(v.shape)} but this "
                                     f"scene's has {tuple(p.value.shape)}; open the scenario (and resolution) "
                                     "it was saved with.")
            if not bool(torch.isfinite(v).all()):
                raise _bad(f"{label} of {p.name}", "contains NaN or Inf")
            copied[p.name] = v.detach().to(device=p.value.device, dtype=p.value.dtype).clone()
        out.append(copied)
    return out[0], out[1]


def _losses(engine: "Engine", state: Mapping[str, Any]) -> list[LossTerm]:
    entries = state["losses"]
    if isinstance(entries, (str, bytes)) or not isinstance(entries, Sequence) or not entries:
        raise LossError("the session has no losses; choose another session file.")
    terms = []
    for i, t in enumerate(entries):
        if not isinstance(t, Mapping) or not isinstance(t.get("name"), str):
            raise _bad(f"loss #{i + 1}", "has no name")
        name = t["name"]
        params = t.get("params", {})
        if not isinstance(params, Mapping):
            raise _bad(f"parameters of loss {name!r}", "must be a table")
        weight = _finite_number(f"weight of loss {name!r}", t.get("weight"), minimum=0.0)
        enabled = _flag(f"switch of loss {name!r}", t.get("enabled", True))
        terms.append(replace(engine._make_term(name, weight, params), enabled=enabled))  # LossError: not registered
    return terms


def _history(state: Mapping[str, Any]) -> dict[str, list[float]]:
    raw = _mapping(state, "history")
    out: dict[str, list[float]] = {}
    for k, v in raw.items():
        if isinstance(v, (str, bytes)) or not isinstance(v, Sequence):
            raise _bad(f"curve {k!r}", "must be a list of numbers")
        if any(isinstance(x, bool) or not isinstance(x, Real) for x in v):
            raise _bad(f"curve {k!r}", "holds something other than numbers")
        out[k] = [float(x) for x in v]
    lengths = {len(v) for v in out.values()}
    if len(lengths) > 1 or "step" not in out or "loss" not in out:
        raise _bad("curves", "are incomplete (no step or loss column, or columns of different lengths)")
    for g in GROUPS:  # a group without ground truth in the saving scene: no points, not a failing step
        out.setdefault(g, [math.nan] * len(out["step"]))
    return out


def _optimizer(engine: "Engine", state: Mapping[str, Any]) -> torch.optim.Optimizer | None:
    """A fresh optimiser holding a copy of the session's optimiser state."""
    optimizer = engine._make_optimizer()
    saved = state["optimizer"]
    if saved is None or optimizer is None:
        return optimizer
    if not isinstance(saved, Mapping) or not isinstance(saved.get("state"), Mapping):
        raise _bad("optimiser state", "is not an optimiser's state")
    try:
        optimizer.load_state_dict(deep_copy(dict(saved)))
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise ParameterError(f"the session's optimiser state does not fit this scene's trainable parameters "
                             f"({exc}); open the scenario it was saved with first.") from None
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for p, slots in optimizer.state.items():
        for key, v in slots.items():
            if not isinstance(v, torch.Tensor):
                continue
            if key != "step" and v.shape != p.shape:
                raise _bad("optimiser state", f"has a {key} of shape {tuple(v.shape)} for a parameter of shape "
                           f"{tuple(p.shape)}")
            if not bool(torch.isfinite(v).all()):
                raise _bad("optimiser state", f"has NaN or Inf in its {key} values")
    if len(optimizer.state) > len(params):
        raise _bad("optimiser state", "has more entries than this scene has trainable parameters")
    return optimizer


def load_state(engine: "Engine", state: Mapping[str, Any]) -> None:
    """Resume a run saved by :func:`state_of` (paused), checking everything first.

    Raises:
        ParameterError: a field is missing, of the wrong type or shape, not finite, or names a
            parameter, group or view this scene does not have (nothing was changed).
        LossError: it uses a loss that is not registered (e.g. a plugin that is not loaded).
    """
    if not isinstance(state, Mapping):
        raise _bad("state", f"must be a table, not {type(state).__name__}")
    missing = [k for k in _FIELDS if k not in state]
    if missing:
        raise _bad("state", f"has no {', '.join(missing)}")
    step, skipped = _count(state, "step"), _count(state, "skipped_steps")
    values, initial = _tensors(engine, state)
    lrs = {}
    for name, lr in _mapping(state, "lr").items():
        if name not in engine.params:
            raise ParameterError(f"the session sets the learning rate of {name!r}, which this scene does not have; "
                                 "open the scenario it was saved with first.")
        lrs[name] = _finite_number(f"learning rate of {name}", lr, minimum=0.0)
    switches = _mapping(state, "group_enabled")
    if set(switches) - set(GROUPS):
        raise _bad("group switches", f"name an unknown group {sorted(set(switches) - set(GROUPS))[0]!r}")
    group_enabled = {g: _flag(f"switch of group {g}", switches.get(g, True)) for g in GROUPS}
    frozen = state["frozen"]
    if isinstance(frozen, (str, bytes)) or not isinstance(frozen, Sequence) or \
            not all(isinstance(n, str) and n in engine.params for n in frozen):
        raise _bad("frozen parameters", "must be a list of this scene's parameter names")
    terms = _losses(engine, state)
    history = _history(state)
    optimizer = _optimizer(engine, state)
    generator = state.get("generator")
    if generator is not None:
        try:
            torch.Generator().set_state(generator)
        except (TypeError, RuntimeError, ValueError):
            raise _bad("random generator state", "is not a generator's state") from None
    view = state["view"]
    if isinstance(view, bool) or not isinstance(view, Integral) or not 0 <= int(view) < engine.scene.num_views:
        raise _bad("view", f"must be between 0 and {engine.scene.num_views - 1}, not {view!r}")

    # Everything checked: from here on nothing raises.
    with torch.no_grad():
        for p in engine.params:
            p.value.copy_(values[p.name])
            p.initial = initial[p.name]
    for name, lr in lrs.items():
        engine.params[name].lr = lr
    engine.terms = terms
    engine.group_enabled = group_enabled
    engine.frozen = set(frozen)
    engine._running = False
    engine._pending_steps = 0
    engine._message = None
    engine._reset_state()
    engine.step_count = step
    engine.skipped_steps = skipped
    engine._history = history
    engine._optimizer = optimizer
    engine._searched = engine._searched or step > 0
    if generator is not None:
        engine._gen.set_state(generator)
    engine.display_view = int(view)
