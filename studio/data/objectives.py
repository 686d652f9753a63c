"""Hard-case objectives: losses that the edge-case search minimises before an image is rendered.

An objective is a loss like any other (``fn(render, target, ctx) -> scalar tensor``, declared with
:func:`studio.optim.losses.loss`), registered in :data:`OBJECTIVES` so that it does not show up
among the fitting losses.  It receives

- ``render``: [1,h,w,4] linear RGBA of the image at the search resolution, composited over the
  image's background (differentiable in the searched parameters);
- ``target``: the same before the search started (detached), for "stay close" terms;
- ``ctx``: a :class:`HardCaseContext` (a :class:`~studio.optim.losses.LossContext` with the focus
  object, per-object soft coverage, the background and the unoccluded coverage of the focus).

Any loss of the main registry (built-in or plugin) can be named as an objective too; it then sees
the same arguments.  To write one: ``@loss("my_objective", registry=OBJECTIVES)`` in a plugin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import torch

from ..optim.losses import LossContext, LossRegistry, Param, loss
from ..scene.camera import to_clip

#: Registry of hard-case objectives (searched before the main loss registry).
OBJECTIVES = LossRegistry()

# Rec. 709 luminance of linear RGB.
_LUMA = (0.2126, 0.7152, 0.0722)


@dataclass
class HardCaseContext(LossContext):
    """What a hard-case objective may use besides the two images.

    Attributes:
        focus: index (into the scene's objects) of the object the objective judges.
        coverage: [1,h,w,K] antialiased coverage of each of the K objects, in [0, 1],
            differentiable in geometry and camera through silhouette edges.
        background: [1,h,w,3] the image's linear background.
        values: the image's parameter tensors by name (searched ones require grad).
        unoccluded: ``unoccluded()`` -> [1,h,w] coverage of the focus object rendered with every
            other object left out (a second render; call it only when needed).
    """

    focus: int
    coverage: torch.Tensor
    background: torch.Tensor
    values: Mapping[str, torch.Tensor]
    unoccluded: Callable[[], torch.Tensor]


def _luminance(rgb: torch.Tensor) -> torch.Tensor:
    return (rgb[..., :3] * torch.tensor(_LUMA, dtype=rgb.dtype, device=rgb.device)).sum(-1)


@loss("low_contrast", registry=OBJECTIVES,
      description="Object as bright as its surroundings: squared Michelson contrast of mean luminances",
      params={"margin": Param(0.25, min=0.0, max=2.0, description="surroundings: box grown by this share")})
def low_contrast(render: torch.Tensor, target: torch.Tensor, ctx: HardCaseContext) -> torch.Tensor:
    """((L_object - L_around) / (L_object + L_around))^2 with L the mean luminance of the focus
    object's pixels and of the other pixels in its box grown by ``margin`` on every side."""
    lum = _luminance(render)
    cov = ctx.coverage[..., ctx.focus]
    with torch.no_grad():
        rows = (cov > 0.5).any(-1).nonzero()[:, -1]
        cols = (cov > 0.5).any(-2).nonzero()[:, -1]
        _, h, w = cov.shape
        around = torch.zeros_like(cov)
        if rows.numel():
            my = int(ctx.params["margin"] * (rows.max() - rows.min() + 1))
            mx = int(ctx.params["margin"] * (cols.max() - cols.min() + 1))
            around[:, max(0, int(rows.min()) - my):int(rows.max()) + 1 + my,
                   max(0, int(cols.min()) - mx):int(cols.max()) + 1 + mx] = 1.0
        around = around * (1 - cov)
    l_obj = (cov * lum).sum() / cov.sum().clamp(min=1e-6)
    l_around = (around * lum).sum() / around.sum().clamp(min=1e-6)
    return ((l_obj - l_around) / (l_obj + l_around).clamp(min=1e-3)).square()


@loss("occlusion", registry=OBJECTIVES,
      description="Hide the focus object behind the others while keeping a share of it visible",
      params={"keep": Param(0.3, min=0.0, max=1.0, description="visible share below which it is penalised"),
              "penalty": Param(20.0, min=0.0, max=1000.0, description="weight of the visibility penalty"),
              "attract": Param(1.0, min=0.0, max=100.0,
                               description="weight of the pull between the focus and the nearest object in front")})
def occlusion(render: torch.Tensor, target: torch.Tensor, ctx: HardCaseContext) -> torch.Tensor:
    """v + penalty * max(keep - v, 0)^2 + attract * max(v - keep, 0) * d^2.

    v is the focus object's visible share (its coverage in the image over its coverage with the
    other objects left out).  v only has a gradient where an occluder's outline crosses the focus,
    so d, the screen distance (NDC) between the focus's centre and the nearest centre of an object
    in front of it, pulls an occluder over a focus that is still in full view.
    """
    visible = ctx.coverage[..., ctx.focus].sum() / ctx.unoccluded().sum().clamp(min=1.0)
    loss = visible + ctx.params["penalty"] * torch.relu(ctx.params["keep"] - visible).square()
    mvp, _, _ = ctx.scene.cameras([0], ctx.values)
    objects = ctx.scene.objects
    centres = torch.stack([ctx.values[f"{o.name}.position"] for o in objects])
    clip = to_clip(centres, mvp)[0]  # [K,4]; w is the depth along the view axis
    ndc = clip[:, :2] / clip[:, 3:].clamp(min=1e-3)
    depth = clip[:, 3].detach()
    fronts = [k for k, o in enumerate(objects) if k != ctx.focus and depth[k] < depth[ctx.focus]
              and bool(ctx.values[f"{o.name}.scale"].detach().gt(0).all())]
    if fronts:
        d2 = torch.stack([(ndc[k] - ndc[ctx.focus]).square().sum() for k in fronts]).min()
        loss = loss + ctx.params["attract"] * torch.relu(visible - ctx.params["keep"]).detach() * d2
    return loss
