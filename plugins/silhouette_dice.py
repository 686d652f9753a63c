"""Silhouette Dice with a tolerance band: ``1 - soft Dice`` of the render's coverage and the
target mask, per view, not scoring the pixels within a few pixels of the target's outline.

What it measures: how well the rendered silhouette covers the target's, as the Dice coefficient
(F1 score) ``2 |A and M| / (|A| + |M|)`` with soft (antialiased) coverage, averaged over the
views of the step.  Pixels closer than ``tolerance`` pixels to the target mask's outline get
weight 0: there, the mask is the least certain.

How it differs from the built-in ``mask_iou``: the built-in one scores every pixel with IoU,
which suits exact synthetic masks.  A mask from a segmenter, a matte or a hand-drawn outline is
often a pixel or two off along the outline; ``mask_iou`` then keeps pulling the geometry towards
that error and fights the colour losses.  Here such disagreements cost nothing, while whole
missing or extra parts still do.  Dice equals 2 IoU / (1 + IoU): the same optimum, but gentler
on small or thin silhouettes, where a one-pixel error is a large share of the union.

When to prefer it: fitting to photographs with estimated masks (``--target``/``--mask``).  Use
``tolerance = 0`` for plain per-view soft Dice.  With an unknown mask (all ones) a silhouette
loss says nothing useful; leave it out.

How it is written: masks come from ``ctx.mask`` (target, [B,H,W,1]) and ``ctx.render_alpha``
(the render's differentiable coverage), not from the images' colours.
"""

import torch
import torch.nn.functional as F

from studio.plugins import Param, loss


def outline_band(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """[N,1,H,W] in [0,1]: 1 within ``radius`` pixels of the outline of ``mask`` [N,1,H,W] (dilation minus erosion)."""
    k = 2 * radius + 1
    dilated = F.max_pool2d(mask, k, stride=1, padding=radius)
    eroded = -F.max_pool2d(-mask, k, stride=1, padding=radius)
    return dilated - eroded


@loss("silhouette_dice", weight=1.0, description="1 - soft Dice of render coverage and target mask per view, "
      "ignoring a band of uncertain pixels along the target's outline",
      params={"tolerance": Param(1, min=0, max=8, step=1, description="pixels on each side of the outline not scored")})
def silhouette_dice(render: torch.Tensor, target: torch.Tensor, ctx) -> torch.Tensor:
    """Mean over views of 1 - Dice (dimensionless, 0 = same silhouette outside the band)."""
    a = ctx.render_alpha.permute(0, 3, 1, 2)  # [B,1,H,W], differentiable in the geometry
    m = ctx.mask.permute(0, 3, 1, 2)
    radius = int(ctx.params["tolerance"])
    keep = 1 - outline_band(m, radius) if radius > 0 else torch.ones_like(m)
    overlap = (keep * a * m).sum(dim=(1, 2, 3))
    sizes = (keep * (a + m)).sum(dim=(1, 2, 3))
    smooth = 1.0  # one pixel: two empty silhouettes agree (Dice 1) instead of dividing 0 by 0
    return (1 - (2 * overlap + smooth) / (sizes + smooth)).mean()
