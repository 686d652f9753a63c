"""Losses: the registry, the context a loss sees, and the built-in image losses and regularisers.

A loss is a callable ``loss(render, target, ctx) -> scalar tensor`` registered under a name with a
default weight, a description and optional declared hyper-parameters (shown as sliders).  Built-in
losses register exactly the way plugins do (:func:`loss`), so the engine, the CLI (``--loss``) and
the GUI treat them alike.
"""

from __future__ import annotations

import inspect
import sys
import threading
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import torch

if TYPE_CHECKING:
    from ..scene.params import ParameterSet


class LossError(ValueError):
    """An unknown loss name or bad loss declaration; the message says which and what to do."""


@dataclass(frozen=True)
class Param:
    """A declared hyper-parameter of a loss: default value and slider range.

    Example: ``Param(2.0, min=1.0, max=4.0)``.
    """

    default: float
    min: float = 0.0
    max: float = 1.0
    step: float | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not self.min <= self.default <= self.max:
            raise LossError(f"Param default {self.default} must lie between min {self.min} and max {self.max}.")


@dataclass(frozen=True)
class LossDef:
    """A registered loss.

    Attributes:
        name: registry key (also the CLI/TOML name).
        fn: ``fn(render, target, ctx) -> scalar tensor``.
        weight: default weight in the total loss.
        description: one line shown as a tooltip.
        params: declared hyper-parameters by name.
        source: file (or module) it came from and ``line`` where it is defined, for error messages.
        builtin: shipped with the studio.
        override: a plugin loss that deliberately replaces the built-in of the same name.
    """

    name: str
    fn: Callable[..., torch.Tensor]
    weight: float = 1.0
    description: str = ""
    params: dict[str, Param] = field(default_factory=dict)
    source: str = ""
    line: int = 0
    builtin: bool = False
    override: bool = False

    def default_params(self) -> dict[str, float]:
        return {k: p.default for k, p in self.params.items()}


@dataclass
class LossContext:
    """What a loss may use besides the two images.

    Attributes:
        params: this loss's own hyper-parameter values by name (its declared ``Param``s).
        mask: [B,H,W,1] target coverage (1 inside the object; all ones when unknown).
        render_alpha: [B,H,W,1] antialiased coverage of the render (differentiable).
        parameters: the scene's ParameterSet (e.g. ``ctx.parameters["cube.vertices"].value``).
        scene: the Scene being fitted (meshes, topology, camera rig).
        gbuffer: the render's G-buffer (normals, depth, ids).
        iteration: optimisation step, from 0.
        device: torch device of the tensors.
    """

    params: dict[str, float]
    mask: torch.Tensor
    render_alpha: torch.Tensor
    parameters: "ParameterSet"
    scene: Any
    gbuffer: Any
    iteration: int
    device: torch.device

    def meshes(self) -> list[tuple[torch.Tensor, Any]]:
        """(vertex positions [V,3], MeshTopology) of every object whose vertices are optimised."""
        fitted = getattr(self.scene, "fitted_meshes", None)
        return fitted() if fitted is not None else []


class LossRegistry:
    """Name -> :class:`LossDef`.  Registering an existing name replaces it (hot reload)."""

    def __init__(self) -> None:
        self._defs: dict[str, LossDef] = {}
        # Per thread, so that a plugin imported on the engine's worker does not capture a loss that
        # another thread registers at the same moment.
        self._captures = threading.local()

    def register(self, d: LossDef) -> LossDef:
        captured = getattr(self._captures, "defs", None)
        if captured is not None:
            captured.append(d)
        else:
            self._defs[d.name] = d
        return d

    @contextmanager
    def capture(self) -> Iterator[list[LossDef]]:
        """Collect this thread's registrations in a list instead of applying them.

        Plugin discovery imports a file inside this block, then checks what it declared (name
        clashes, built-ins) before committing it, so a file that fails halfway registers nothing.
        """
        outer = getattr(self._captures, "defs", None)
        self._captures.defs = captured = []
        try:
            yield captured
        finally:
            self._captures.defs = outer

    def unregister(self, name: str) -> None:
        self._defs.pop(name, None)

    def get(self, name: str) -> LossDef:
        try:
            return self._defs[name]
        except KeyError:
            raise LossError(f"unknown loss {name!r}; available losses are {', '.join(sorted(self._defs))}.") from None

    def __contains__(self, name: object) -> bool:
        return name in self._defs

    def names(self) -> list[str]:
        return sorted(self._defs)

    def all(self) -> list[LossDef]:
        defs = dict(self._defs)  # a copy: plugins may be reloaded on the worker thread meanwhile
        return [defs[n] for n in sorted(defs)]


REGISTRY = LossRegistry()


def loss(name: str | None = None, weight: float = 1.0, description: str = "",
         params: dict[str, Param] | None = None, *, builtin: bool = False, override: bool = False,
         registry: LossRegistry | None = None) -> Callable[[Callable[..., torch.Tensor]], Callable[..., torch.Tensor]]:
    """Decorator registering ``fn(render, target, ctx) -> scalar tensor`` as a loss.

    Args:
        name: registry name (default: the function's name).
        weight: default weight.
        description: one line for tooltips and ``studio losses``.
        params: declared hyper-parameters, available as ``ctx.params[name]``.
        override: (plugins) replace the built-in loss of the same name; without it plugin
            discovery refuses the name.
    """
    def deco(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        # The compiled code, not the file on disk: a plugin file may have been edited since it was
        # imported, and its line numbers must match the code that runs.
        code = getattr(fn, "__code__", None)
        source = code.co_filename if code is not None else getattr(fn, "__module__", "")
        line = code.co_firstlineno if code is not None else 0
        doc = description or (inspect.getdoc(fn) or "").split("\n")[0]
        (registry or REGISTRY).register(LossDef(name or fn.__name__, fn, float(weight), doc, dict(params or {}),
                                                source, line, builtin, override))
        return fn
    return deco


class LossFailure(RuntimeError):
    """A loss misbehaved during a step.  ``str(exc)`` is one sentence naming the loss, its file and
    line, and what went wrong; ``details`` holds the traceback (for a log panel)."""

    def __init__(self, message: str, details: str = ""):
        super().__init__(message)
        self.details = details


def _where(d: LossDef, tb: traceback.StackSummary | None = None) -> str:
    """"file:line" of the failing line inside the loss's own file, else of its definition."""
    if tb is not None and d.source:
        own = [f for f in tb if Path(f.filename).resolve() == Path(d.source).resolve()]
        if own:
            return f"{Path(own[-1].filename).name}:{own[-1].lineno}"
    return f"{Path(d.source).name}:{d.line}" if d.source else d.name


def call_loss(d: LossDef, render: torch.Tensor, target: torch.Tensor, ctx: LossContext,
              needs_grad: bool) -> torch.Tensor:
    """Evaluate a loss and check what it returned.

    Raises:
        LossFailure: it raised anything (``SystemExit`` too; a ``KeyboardInterrupt`` on the main
            thread is the user's Ctrl-C and passes through), or returned something other than a finite
            scalar tensor, or (when ``needs_grad``) a tensor with no gradient path to the parameters.
    """
    kind = "built-in loss" if d.builtin else "loss plugin"
    try:
        value = d.fn(render, target, ctx)
    except BaseException as exc:  # noqa: BLE001 - a plugin may raise anything, SystemExit too; the run goes on
        if sys.is_finalizing() or (isinstance(exc, KeyboardInterrupt)
                                   and threading.current_thread() is threading.main_thread()):
            raise  # the interpreter exiting, or the user's own Ctrl-C
        tb = traceback.extract_tb(exc.__traceback__)
        raise LossFailure(f"{kind} {d.name!r} ({_where(d, tb)}) raised {exc.__class__.__name__}: {exc}",
                          traceback.format_exc()) from None
    problem = None
    if not isinstance(value, torch.Tensor):
        problem = f"returned {type(value).__name__}, not a tensor"
    elif value.numel() != 1:
        problem = f"returned a tensor of shape {list(value.shape)}, not a scalar"
    elif not bool(torch.isfinite(value.detach()).all()):
        problem = "returned NaN or Inf"
    elif needs_grad and not value.requires_grad:
        problem = "returned a tensor with no gradient path to the parameters (was it detached or built with numpy?)"
    if problem:
        raise LossFailure(f"{kind} {d.name!r} ({_where(d)}) {problem}")
    return value.reshape(())


# ---------------------------------------------------------------------- built-in image losses


@loss("l2", description="Mean squared error of the linear RGB images", builtin=True)
def l2_loss(render: torch.Tensor, target: torch.Tensor, ctx: LossContext) -> torch.Tensor:
    return (render[..., :3] - target[..., :3]).square().mean()


@loss("l1", description="Mean absolute error of the linear RGB images", builtin=True)
def l1_loss(render: torch.Tensor, target: torch.Tensor, ctx: LossContext) -> torch.Tensor:
    return (render[..., :3] - target[..., :3]).abs().mean()


@loss("huber", description="Huber (smooth L1) error: quadratic near zero, linear for outliers", builtin=True,
      params={"delta": Param(0.1, min=0.01, max=1.0, description="where quadratic turns linear")})
def huber_loss(render: torch.Tensor, target: torch.Tensor, ctx: LossContext) -> torch.Tensor:
    return torch.nn.functional.huber_loss(render[..., :3], target[..., :3], delta=ctx.params["delta"])


@loss("mask_iou", description="1 - soft IoU of the rendered coverage and the target mask (silhouettes)", builtin=True)
def mask_iou_loss(render: torch.Tensor, target: torch.Tensor, ctx: LossContext) -> torch.Tensor:
    a, m = ctx.render_alpha, ctx.mask
    inter = (a * m).sum((1, 2, 3))
    union = (a + m - a * m).sum((1, 2, 3)).clamp(min=1e-6)
    return (1 - inter / union).mean()


# ---------------------------------------------------------------------- built-in regularisers


def _sum_over_meshes(render: torch.Tensor, ctx: LossContext,
                     term: Callable[[torch.Tensor, Any], torch.Tensor]) -> torch.Tensor:
    """Sum of ``term(vertices, topology)`` over the fitted meshes; with none it is a zero that
    stays connected to the render, so the engine does not mistake it for a broken loss."""
    meshes = ctx.meshes()
    if not meshes:
        return render.sum() * 0.0
    return sum(term(v, topo) for v, topo in meshes)


@loss("laplacian", weight=1.0, builtin=True,
      description="Uniform Laplacian smoothness of the optimised meshes (keeps vertices near their neighbours' mean)")
def laplacian_reg(render: torch.Tensor, target: torch.Tensor, ctx: LossContext) -> torch.Tensor:
    from ..scene.mesh import laplacian_smoothness

    return _sum_over_meshes(render, ctx, lambda v, topo: laplacian_smoothness(v, topo))


@loss("edge_length", weight=1.0, builtin=True,
      description="Spread of the optimised meshes' edge lengths (keeps triangles evenly sized)")
def edge_length_reg(render: torch.Tensor, target: torch.Tensor, ctx: LossContext) -> torch.Tensor:
    from ..scene.mesh import edge_length_loss

    return _sum_over_meshes(render, ctx, lambda v, topo: edge_length_loss(v, topo.edges))


@loss("normal_consistency", weight=1.0, builtin=True,
      description="1 - cos between normals of adjacent faces of the optimised meshes (discourages folds)")
def normal_consistency_reg(render: torch.Tensor, target: torch.Tensor, ctx: LossContext) -> torch.Tensor:
    from ..scene.mesh import normal_consistency

    return _sum_over_meshes(render, ctx, lambda v, topo: normal_consistency(v, topo))
