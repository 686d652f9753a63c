"""Named scene parameters in four groups, with bounds, learning rates, ground truth and error metrics.

Every quantity a scene renders from (vertex positions, colours, light direction, camera azimuth...)
is a :class:`Parameter` in one :class:`ParameterSet`: the GUI builds its sliders from them, the
engine optimises the trainable ones, and the error curves compare them with their ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping

import numpy as np
import torch

GROUPS = ("geometry", "material", "lighting", "camera")
#: Curve colours (RGB 0-255) of the original convergence figure.
GROUP_COLORS = {
    "geometry": (66, 133, 244),  # blue
    "material": (219, 68, 55),  # red
    "lighting": (15, 157, 88),  # green
    "camera": (142, 68, 173),  # purple
}
#: The unit a group's headline error is reported in, when one of its parameters has it.
GROUP_UNITS = {"geometry": "units", "material": "rgb", "lighting": "deg", "camera": "deg"}

METRICS = ("rmse", "angle", "rotation", "relative", "none")
UNITS = {"angle": "deg", "rotation": "deg", "relative": "fraction"}


class ParameterError(ValueError):
    """A parameter name or value the scene cannot use; the message says which and why."""


@dataclass(frozen=True)
class Slider:
    """GUI slider metadata for a scalar or each component of a small vector."""

    label: str
    min: float
    max: float
    step: float


def _as_tensor(x: object, like: torch.Tensor | None = None, dtype=torch.float32) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x, dtype=dtype)
    return t.to(like.device) if like is not None else t


@dataclass(eq=False)
class Parameter:
    """One named tensor of the scene.

    Attributes:
        name: dotted path, e.g. ``"cube.vertices"``, ``"light.sun.direction"``, ``"camera.azimuth"``.
        group: one of :data:`GROUPS`.
        value: the live tensor (a leaf; ``requires_grad`` while it is being optimised).
        lower, upper: bounds the value is projected into after every optimiser step (None = open).
        lr: learning rate (multiplied by the group's learning rate scale in the engine).
        trainable: declared free by the scene (the optimiser may change it).
        ground_truth: the true value when known (synthetic targets), same shape as ``value``.
        metric: how the error against ground truth is measured: "rmse" (in ``unit``), "angle"
            (degrees between direction vectors), "rotation" (degrees between quaternions (w,x,y,z)),
            "relative" (|v - gt| / |gt|) or "none".
        unit: unit of the rmse metric, e.g. "units" (scene units), "rgb", "deg".
        slider: slider metadata for scalars and small vectors (None for large tensors).
        normalize: renormalise after each step ("direction" vectors and quaternions).
        description: one line for tooltips.
        error_weights: optional non-negative weights (broadcastable to ``value``) for the rmse
            metric, e.g. how much each texel is seen by the cameras.
    """

    name: str
    group: str
    value: torch.Tensor
    lower: float | None = None
    upper: float | None = None
    lr: float = 0.01
    trainable: bool = False
    ground_truth: torch.Tensor | None = None
    metric: str = "rmse"
    unit: str = ""
    slider: Slider | None = None
    normalize: bool = False
    description: str = ""
    error_weights: torch.Tensor | None = None
    initial: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise ParameterError(f"parameter {self.name!r} has group {self.group!r}; use one of {', '.join(GROUPS)}.")
        if self.metric not in METRICS:
            raise ParameterError(f"parameter {self.name!r} has metric {self.metric!r}; use one of {', '.join(METRICS)}.")
        self.value = self.value.detach().clone().float()
        if self.ground_truth is not None:
            self.ground_truth = self.ground_truth.detach().clone().float().to(self.value.device)
            if self.ground_truth.shape != self.value.shape and self.metric not in ("none",):
                raise ParameterError(
                    f"ground truth of {self.name!r} has shape {tuple(self.ground_truth.shape)} but the value has "
                    f"{tuple(self.value.shape)}."
                )
        if self.slider is None and self.value.numel() <= 4:
            lo = self.lower if self.lower is not None else float(self.value.min()) - 1.0
            hi = self.upper if self.upper is not None else float(self.value.max()) + 1.0
            self.slider = Slider(self.name.split(".")[-1], float(lo), float(hi), float(hi - lo) / 200.0)
        self.initial = self.value.clone()

    @property
    def is_small(self) -> bool:
        """Scalars and small vectors get sliders; big tensors a summary row."""
        return self.value.numel() <= 4

    def project_(self) -> None:
        """Clamp into bounds and renormalise, in place, without autograd."""
        with torch.no_grad():
            if self.lower is not None or self.upper is not None:
                self.value.clamp_(self.lower, self.upper)
            if self.normalize:
                self.value.div_(self.value.norm(dim=-1, keepdim=True).clamp(min=1e-8))

    def set(self, value: object) -> None:
        """Replace the value (from a slider, a loaded session or a command), keeping the tensor."""
        v = _as_tensor(value, self.value)
        if v.numel() == self.value.numel() and v.shape != self.value.shape:
            v = v.reshape(self.value.shape)
        if v.shape != self.value.shape:
            raise ParameterError(
                f"{self.name} needs a value of shape {tuple(self.value.shape)}, got {tuple(v.shape)}."
            )
        if not bool(torch.isfinite(v).all()):
            raise ParameterError(f"{self.name} must be finite; got NaN or Inf.")
        with torch.no_grad():
            self.value.copy_(v)
        self.project_()

    def error(self) -> float | None:
        """Error against the ground truth in this parameter's unit, or None without one."""
        if self.ground_truth is None or self.metric == "none":
            return None
        return float(metric_value(self.metric, self.value.detach(), self.ground_truth, self.error_weights))

    @property
    def error_unit(self) -> str:
        return UNITS.get(self.metric, self.unit)


def metric_value(metric: str, value: torch.Tensor, truth: torch.Tensor,
                 weights: torch.Tensor | None = None) -> torch.Tensor:
    """The scalar error of ``value`` against ``truth`` under ``metric`` (see :class:`Parameter`);
    ``weights`` make the rmse a weighted one."""
    if metric == "rmse":
        sq = (value - truth).square()
        if weights is None:
            return sq.mean().sqrt()
        w = weights.expand_as(sq)
        return ((sq * w).sum() / w.sum().clamp(min=1e-12)).sqrt()
    if metric == "angle":  # float64: acos near 1 loses everything below ~0.03 deg in float32
        a = torch.nn.functional.normalize(value.reshape(-1, 3).double(), dim=-1)
        b = torch.nn.functional.normalize(truth.reshape(-1, 3).double(), dim=-1)
        return torch.rad2deg(torch.acos((a * b).sum(-1).clamp(-1.0, 1.0))).mean()
    if metric == "rotation":
        a = torch.nn.functional.normalize(value.reshape(-1, 4).double(), dim=-1)
        b = torch.nn.functional.normalize(truth.reshape(-1, 4).double(), dim=-1)
        return torch.rad2deg(2 * torch.acos((a * b).sum(-1).abs().clamp(max=1.0))).mean()
    if metric == "relative":
        return (value - truth).norm() / truth.norm().clamp(min=1e-8)
    raise ParameterError(f"unknown metric {metric!r}.")


@dataclass(frozen=True)
class GroupError:
    """The headline error of one group, and the unit it is in."""

    value: float
    unit: str


class ParameterSet:
    """An ordered collection of :class:`Parameter` with group-level views.

    ``derived_metrics`` lets the scene supply group errors that need more than one parameter
    (e.g. camera rotation in degrees from azimuth and elevation, or Chamfer distance of a deformed
    mesh); they take precedence over the per-parameter aggregation.
    """

    def __init__(self, params: list[Parameter] | None = None):
        self._params: dict[str, Parameter] = {}
        self.derived_metrics: dict[str, Callable[[], GroupError | None]] = {}
        for p in params or []:
            self.add(p)

    def add(self, p: Parameter) -> Parameter:
        if p.name in self._params:
            raise ParameterError(f"parameter {p.name!r} is defined twice.")
        self._params[p.name] = p
        return p

    def __getitem__(self, name: str) -> Parameter:
        try:
            return self._params[name]
        except KeyError:
            close = [n for n in self._params if name.split(".")[-1] in n]
            hint = f" Did you mean {', '.join(close[:3])}?" if close else ""
            raise ParameterError(f"the scene has no parameter {name!r}.{hint}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._params

    def __iter__(self) -> Iterator[Parameter]:
        return iter(self._params.values())

    def __len__(self) -> int:
        return len(self._params)

    def names(self) -> list[str]:
        return list(self._params)

    def in_group(self, group: str) -> list[Parameter]:
        return [p for p in self if p.group == group]

    def trainable(self) -> list[Parameter]:
        return [p for p in self if p.trainable]

    def values(self) -> dict[str, torch.Tensor]:
        """Current tensors by name (live, not copies)."""
        return {n: p.value for n, p in self._params.items()}

    def ground_truth_values(self) -> dict[str, torch.Tensor]:
        """Ground truth where known, else the current value: what the target scene renders from."""
        return {n: (p.ground_truth if p.ground_truth is not None and p.ground_truth.shape == p.value.shape else p.value)
                for n, p in self._params.items()}

    def numpy_values(self) -> dict[str, np.ndarray]:
        """Detached copies as numpy arrays (for snapshots and sessions)."""
        return {n: p.value.detach().cpu().numpy().copy() for n, p in self._params.items()}

    def load_values(self, values: Mapping[str, object], strict: bool = False) -> None:
        """Set several values; unknown names are ignored unless ``strict``."""
        for n, v in values.items():
            if n in self._params:
                self._params[n].set(v)
            elif strict:
                raise ParameterError(f"the scene has no parameter {n!r}.")

    def reset(self) -> None:
        """Every parameter back to its initial value."""
        for p in self:
            with torch.no_grad():
                p.value.copy_(p.initial)

    def mark_initial(self) -> None:
        """Take the current values as the new initial state (after a randomised start)."""
        for p in self:
            p.initial = p.value.detach().clone()

    def group_errors(self) -> dict[str, GroupError]:
        """Headline error per group with ground truth.

        A group's error is its derived metric when the scene registered one, else the mean error of
        its trainable parameters that report in the group's preferred unit (or, failing that, in
        the unit of its first such parameter).
        """
        out: dict[str, GroupError] = {}
        for g in GROUPS:
            if g in self.derived_metrics:
                e = self.derived_metrics[g]()
                if e is not None:
                    out[g] = e
                    continue
            errs = [(p.error(), p.error_unit) for p in self.in_group(g) if p.trainable]
            errs = [(e, u) for e, u in errs if e is not None]
            if not errs:
                continue
            units = [u for _, u in errs]
            unit = GROUP_UNITS[g] if GROUP_UNITS[g] in units else units[0]
            vals = [e for e, u in errs if u == unit]
            out[g] = GroupError(float(sum(vals) / len(vals)), unit)
        return out

    def param_errors(self) -> dict[str, tuple[float, str]]:
        """(error, unit) of every parameter with ground truth."""
        return {p.name: (e, p.error_unit) for p in self if (e := p.error()) is not None}


