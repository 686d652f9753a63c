"""Engine commands: small typed values, checked where they are sent, each with its own handler.

A front end calls ``Engine.set_param(...)`` and friends on any thread; each builds one of these
frozen values, whose ``__post_init__`` checks the arguments' types and ranges and raises
:class:`CommandError` (one sentence naming the argument) *at the call*, so a wrong type never
reaches the worker.  The worker later calls :meth:`Command.apply` between steps; what can only be
judged against the engine's state (an unknown parameter name, a component out of range) raises
there and becomes a message in the snapshot, as does anything else a handler raises.

The handlers are the engine's own code kept beside it: they read and write its private state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Sequence

import numpy as np
import torch

from ..render import modes as render_modes
from ..render.raster_pass import VISIBILITY_MODES
from ..render.shadow import SHADOW_MODES
from ..scene.params import GROUPS, ParameterError
from .engine_types import CommandError, EngineError, LossTerm
from .losses import REGISTRY, LossError

if TYPE_CHECKING:
    from .engine import Engine

#: Render options a front end may change between steps (see Scene.options).
RENDER_OPTIONS = ("visibility", "antialias", "filter_mode", "soft_sigma", "sdf_alpha", "shadows")
FILTER_MODES = ("nearest", "linear", "linear-mipmap-nearest", "linear-mipmap-linear", "auto")


# ---------------------------------------------------------------------- argument checks


def _shown(v: object) -> str:
    text = repr(v)
    return (text if len(text) <= 40 else text[:37] + "...") + f" ({type(v).__name__})"


def _bad(call: str, arg: str, expected: str, v: object) -> CommandError:
    return CommandError(f"Engine.{call}: {arg} must be {expected}, got {_shown(v)}.")


def check_str(call: str, arg: str, v: object) -> str:
    if not isinstance(v, str):
        raise _bad(call, arg, "a string", v)
    return v


def check_bool(call: str, arg: str, v: object) -> bool:
    if isinstance(v, (bool, np.bool_)) or (isinstance(v, Integral) and int(v) in (0, 1)):
        return bool(v)
    raise _bad(call, arg, "True or False", v)


def check_int(call: str, arg: str, v: object, minimum: int | None = None) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, Integral):
        raise _bad(call, arg, "a whole number", v)
    if minimum is not None and int(v) < minimum:
        raise _bad(call, arg, f"at least {minimum}", v)
    return int(v)


def check_number(call: str, arg: str, v: object, minimum: float | None = None) -> float:
    """A finite real number (not a bool), at least ``minimum`` when given."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, Real) or not math.isfinite(float(v)):
        raise _bad(call, arg, "a finite number", v)
    if minimum is not None and float(v) < minimum:
        raise _bad(call, arg, f"a number of at least {minimum:g}", v)
    return float(v)


def check_callable(call: str, arg: str, v: object) -> Callable:
    if not callable(v):
        raise _bad(call, arg, "a function", v)
    return v


def check_values(call: str, arg: str, v: object) -> np.ndarray | torch.Tensor:
    """A number, a (nested) sequence of numbers, a numeric array or tensor, as a private copy
    (a caller changing its list afterwards does not change the command)."""
    if isinstance(v, torch.Tensor):
        if v.dtype.is_complex or v.dtype == torch.bool:
            raise _bad(call, arg, "a tensor of real numbers", v)
        return v.detach().clone()
    if isinstance(v, (bool, np.bool_, str, bytes)) or v is None:
        raise _bad(call, arg, "a number or an array of numbers", v)
    try:
        a = np.array(v)
    except (ValueError, TypeError):  # ragged nested lists
        raise _bad(call, arg, "a number or a rectangular array of numbers", v) from None
    if a.dtype.kind not in "iuf" or a.size == 0:
        raise _bad(call, arg, "a number or an array of numbers", v)
    return a.astype(np.float64)


def _check_losses(call: str, losses: object) -> tuple[tuple[str, float, dict[str, float]], ...]:
    if isinstance(losses, (str, bytes, Mapping)) or not isinstance(losses, Sequence):
        raise _bad(call, "losses", "a list of (name, weight, params) triples", losses)
    out = []
    for i, entry in enumerate(losses):
        if isinstance(entry, (str, bytes)) or not isinstance(entry, Sequence) or len(entry) != 3:
            raise _bad(call, f"losses[{i}]", "a (name, weight, params) triple", entry)
        name, weight, params = entry
        check_str(call, f"losses[{i}] name", name)
        w = check_number(call, f"the weight of loss {name!r}", weight, minimum=0.0)
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            raise _bad(call, f"the params of loss {name!r}", "a mapping of names to numbers", params)
        values = {check_str(call, f"a parameter name of loss {name!r}", k):
                  check_number(call, f"parameter {k!r} of loss {name!r}", x) for k, x in params.items()}
        out.append((name, w, values))
    return tuple(out)


def _option_value(key: str, value: object) -> object:
    call = "set_option"
    if key == "antialias":
        return check_bool(call, "antialias", value)
    if key == "visibility":
        if value not in VISIBILITY_MODES:
            raise _bad(call, "visibility", f"one of {', '.join(VISIBILITY_MODES)}", value)
        return value
    if key == "shadows":
        if value not in SHADOW_MODES:
            raise _bad(call, "shadows", f"one of {', '.join(SHADOW_MODES)}", value)
        return value
    if key == "filter_mode":
        if value not in FILTER_MODES:
            raise _bad(call, "filter_mode", f"one of {', '.join(FILTER_MODES)}", value)
        return value
    if key in ("soft_sigma", "sdf_alpha"):
        if value is None:
            return None
        v = check_number(call, key, value)
        if v <= 0:
            raise _bad(call, key, "a number above 0 (or None for off)", value)
        return v
    if key == "restarts":
        return check_int(call, "restarts", value, minimum=0)
    raise CommandError(f"Engine.set_option: unknown option {key!r}; options are {', '.join(RENDER_OPTIONS)}, "
                       "restarts.")


def _term_index(engine: "Engine", name: str) -> int:
    for i, t in enumerate(engine.terms):
        if t.name == name:
            return i
    raise LossError(f"loss {name!r} is not in use; in use: {', '.join(t.name for t in engine.terms)}.")


def _check_group(group: str) -> None:
    if group not in GROUPS:
        raise ParameterError(f"group must be one of {', '.join(GROUPS)}, got {group!r}.")


# ---------------------------------------------------------------------- commands


class Command:
    """A command for the worker.  ``apply`` returns True when a fresh snapshot should follow."""

    #: How messages about a failing handler name the command.
    label: ClassVar[str] = "a command"

    def apply(self, engine: "Engine") -> bool:  # pragma: no cover - every command defines it
        raise NotImplementedError

    def describe(self) -> str:
        return self.label


@dataclass(frozen=True)
class Stop(Command):
    label: ClassVar[str] = "stop"

    def apply(self, engine: "Engine") -> bool:
        engine._stopped = True
        engine._running = False
        return False


@dataclass(frozen=True)
class Publish(Command):
    label: ClassVar[str] = "publish"

    def apply(self, engine: "Engine") -> bool:
        return True


@dataclass(frozen=True)
class Run(Command):
    """Run continuously (``running``) until step ``until``, or pause."""

    running: bool
    until: int | None = None
    label: ClassVar[str] = "start"

    def __post_init__(self) -> None:
        object.__setattr__(self, "running", check_bool("start", "running", self.running))
        if self.until is not None:
            object.__setattr__(self, "until", check_int("start", "until", self.until, minimum=0))

    def apply(self, engine: "Engine") -> bool:
        engine._running, engine._until = self.running, self.until
        return True


@dataclass(frozen=True)
class Steps(Command):
    n: int
    record: bool = False  # take the step apart into a StepRecord (only with n == 1)
    label: ClassVar[str] = "step"

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", check_int("step", "n", self.n, minimum=0))

    def apply(self, engine: "Engine") -> bool:
        engine._pending_steps += self.n
        engine._record_next = engine._record_next or self.record
        return False


@dataclass(frozen=True)
class Reset(Command):
    label: ClassVar[str] = "reset"

    def apply(self, engine: "Engine") -> bool:
        engine.params.reset()
        engine._running = False
        engine._pending_steps = 0
        engine._message = None
        engine._reset_state()
        return True


@dataclass(frozen=True)
class Randomize(Command):
    seed: int | None = None
    label: ClassVar[str] = "randomize"

    def __post_init__(self) -> None:
        if self.seed is not None:
            object.__setattr__(self, "seed", check_int("randomize", "seed", self.seed))

    def apply(self, engine: "Engine") -> bool:
        engine.scene.randomize(engine.config.seed + 1 if self.seed is None else self.seed)
        engine.params.mark_initial()
        engine._running = False
        engine._reset_state()
        return True


@dataclass(frozen=True, eq=False)
class SetParam(Command):
    name: str
    value: Any
    label: ClassVar[str] = "set_param"

    def __post_init__(self) -> None:
        check_str("set_param", "name", self.name)
        object.__setattr__(self, "value", check_values("set_param", "value", self.value))

    def describe(self) -> str:
        return f"setting {self.name}"

    def apply(self, engine: "Engine") -> bool:
        p = engine.params[self.name]
        p.set(self.value)
        if self.name in engine._good:
            engine._good[self.name] = p.value.detach().clone()
        return True


@dataclass(frozen=True)
class ResetParam(Command):
    name: str
    label: ClassVar[str] = "reset_param"

    def __post_init__(self) -> None:
        check_str("reset_param", "name", self.name)

    def apply(self, engine: "Engine") -> bool:
        p = engine.params[self.name]
        p.set(p.initial)
        if self.name in engine._good:
            engine._good[self.name] = p.value.detach().clone()
        return True


@dataclass(frozen=True)
class SetFrozen(Command):
    name: str
    frozen: bool
    label: ClassVar[str] = "set_frozen"

    def __post_init__(self) -> None:
        check_str("set_frozen", "name", self.name)
        object.__setattr__(self, "frozen", check_bool("set_frozen", "frozen", self.frozen))

    def apply(self, engine: "Engine") -> bool:
        p = engine.params[self.name]  # an unknown name raises ParameterError with a hint
        (engine.frozen.add if self.frozen else engine.frozen.discard)(p.name)
        return True


@dataclass(frozen=True)
class SetDisplayMode(Command):
    mode: str
    label: ClassVar[str] = "set_display_mode"

    def __post_init__(self) -> None:
        check_str("set_display_mode", "mode", self.mode)

    def apply(self, engine: "Engine") -> bool:
        if self.mode not in render_modes.ALL_MODES:
            raise EngineError(f"render mode must be one of {', '.join(render_modes.ALL_MODES)}, got {self.mode!r}.")
        engine.display_mode = self.mode
        return True


@dataclass(frozen=True)
class SetDerivative(Command):
    name: str
    index: int = 0
    label: ClassVar[str] = "set_derivative"

    def __post_init__(self) -> None:
        check_str("set_derivative", "name", self.name)
        object.__setattr__(self, "index", check_int("set_derivative", "index", self.index))

    def apply(self, engine: "Engine") -> bool:
        n = engine.params[self.name].value.numel()  # an unknown name raises ParameterError with a hint
        if not 0 <= self.index < n:
            raise EngineError(f"{self.name} has {n} components (0 to {n - 1}); component {self.index} does not exist.")
        engine.derivative = (self.name, self.index)
        return True


@dataclass(frozen=True)
class SetLr(Command):
    group: str
    lr: float
    label: ClassVar[str] = "set_lr"

    def __post_init__(self) -> None:
        check_str("set_lr", "group", self.group)
        object.__setattr__(self, "lr", check_number("set_lr", "lr", self.lr, minimum=0.0))

    def apply(self, engine: "Engine") -> bool:
        _check_group(self.group)
        for p in engine.params.in_group(self.group):
            p.lr = self.lr
        return True


@dataclass(frozen=True)
class SetGroupEnabled(Command):
    group: str
    enabled: bool
    label: ClassVar[str] = "set_group_enabled"

    def __post_init__(self) -> None:
        check_str("set_group_enabled", "group", self.group)
        object.__setattr__(self, "enabled", check_bool("set_group_enabled", "enabled", self.enabled))

    def apply(self, engine: "Engine") -> bool:
        _check_group(self.group)
        engine.group_enabled[self.group] = self.enabled
        return True


@dataclass(frozen=True)
class SetLossWeight(Command):
    name: str
    weight: float
    label: ClassVar[str] = "set_loss_weight"

    def __post_init__(self) -> None:
        check_str("set_loss_weight", "name", self.name)
        object.__setattr__(self, "weight", check_number("set_loss_weight", "weight", self.weight, minimum=0.0))

    def apply(self, engine: "Engine") -> bool:
        i = _term_index(engine, self.name)
        engine.terms[i] = replace(engine.terms[i], weight=self.weight)
        return True


@dataclass(frozen=True)
class SetLossEnabled(Command):
    """Use a loss or leave it out; re-enabling clears the mark of a loss disabled after a failure."""

    name: str
    enabled: bool
    label: ClassVar[str] = "set_loss_enabled"

    def __post_init__(self) -> None:
        check_str("set_loss_enabled", "name", self.name)
        object.__setattr__(self, "enabled", check_bool("set_loss_enabled", "enabled", self.enabled))

    def apply(self, engine: "Engine") -> bool:
        i = _term_index(engine, self.name)
        engine.terms[i] = replace(engine.terms[i], enabled=self.enabled, failed=False)
        return True


@dataclass(frozen=True)
class SetLossParam(Command):
    """One declared hyper-parameter of a loss in use (clamped into its declared range)."""

    name: str
    key: str
    value: float
    label: ClassVar[str] = "set_loss_param"

    def __post_init__(self) -> None:
        check_str("set_loss_param", "name", self.name)
        check_str("set_loss_param", "key", self.key)
        object.__setattr__(self, "value", check_number("set_loss_param", "value", self.value))

    def apply(self, engine: "Engine") -> bool:
        i = _term_index(engine, self.name)
        t = engine.terms[i]
        if self.key not in t.definition.params:
            raise LossError(f"loss {self.name!r} has no parameter {self.key!r}; its parameters are "
                            f"{', '.join(t.definition.params) or 'none'}.")
        spec = t.definition.params[self.key]
        engine.terms[i] = replace(t, params={**t.params, self.key: min(max(self.value, spec.min), spec.max)})
        return True


@dataclass(frozen=True)
class SetLosses(Command):
    """Replace the losses in use with (name, weight, params) triples."""

    losses: tuple[tuple[str, float, dict[str, float]], ...]
    label: ClassVar[str] = "set_losses"

    def __post_init__(self) -> None:
        object.__setattr__(self, "losses", _check_losses("set_losses", self.losses))

    def apply(self, engine: "Engine") -> bool:
        terms = [engine._make_term(n, w, p) for n, w, p in self.losses]
        if not terms:
            raise LossError("at least one loss is needed.")
        engine.terms = terms
        return True


@dataclass(frozen=True)
class RebindLosses(Command):
    """Look every loss in use up in the registry again (after plugins were reloaded), keeping
    weights and the values of parameters that still exist; losses that vanished are dropped."""

    label: ClassVar[str] = "rebind_losses"

    def apply(self, engine: "Engine") -> bool:
        kept = []
        for t in engine.terms:
            if t.name not in REGISTRY:
                engine._event(f"loss {t.name!r} is no longer registered and was removed.")
                continue
            d = REGISTRY.get(t.name)
            params = {k: t.params.get(k, p.default) for k, p in d.params.items()}
            retry = t.failed and d is not t.definition  # its plugin was re-imported: try again
            kept.append(LossTerm(d, t.weight, params, t.enabled or retry, t.failed and not retry))
        engine.terms = kept
        return True


@dataclass(frozen=True)
class ReloadLosses(Command):
    """``reloader()`` (re-imports plugin files, returns one message per problem), then rebind."""

    reloader: Callable[[], Sequence[str]]
    label: ClassVar[str] = "reloading plugins"

    def __post_init__(self) -> None:
        check_callable("reload_losses", "reloader", self.reloader)

    def apply(self, engine: "Engine") -> bool:
        problems = self.reloader()
        if isinstance(problems, (str, bytes)) or not isinstance(problems, (Sequence, set, frozenset)):
            raise EngineError(f"the plugin reloader returned {_shown(problems)}, not a list of messages; the "
                              "losses in use were kept.")
        for problem in problems:
            # A problem may carry a traceback in ``details`` (see studio.optim.plugins).
            engine._event(str(problem), getattr(problem, "details", ""))
        return RebindLosses().apply(engine)


@dataclass(frozen=True)
class SetOption(Command):
    """A render option (``RENDER_OPTIONS``) or ``restarts``, checked per key."""

    key: str
    value: object
    label: ClassVar[str] = "set_option"

    def __post_init__(self) -> None:
        check_str("set_option", "key", self.key)
        object.__setattr__(self, "value", _option_value(self.key, self.value))

    def apply(self, engine: "Engine") -> bool:
        if self.key == "restarts":
            engine.config.restarts = self.value
            engine._searched = engine.config.restarts <= 0 or engine.step_count > 0
        else:
            engine.scene.options[self.key] = self.value
            engine._tuner.retune()  # e.g. soft rasterization costs several times more per step
        return True


@dataclass(frozen=True)
class SetView(Command):
    view: int
    label: ClassVar[str] = "set_view"

    def __post_init__(self) -> None:
        object.__setattr__(self, "view", check_int("set_view", "view", self.view))

    def apply(self, engine: "Engine") -> bool:
        if not 0 <= self.view < engine.scene.num_views:
            raise ParameterError(f"view must be between 0 and {engine.scene.num_views - 1}, got {self.view}.")
        engine.display_view = self.view
        return True


@dataclass(frozen=True)
class Call(Command):
    """``fn(engine)`` on the worker (front ends' own edits, :meth:`Engine.submit`)."""

    fn: Callable[["Engine"], object]
    label: ClassVar[str] = "a front end's call"
    what: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        check_callable("call", "fn", self.fn)

    def describe(self) -> str:
        return self.what or f"the call of {getattr(self.fn, '__qualname__', 'a function')}"

    def apply(self, engine: "Engine") -> bool:
        self.fn(engine)
        return True
