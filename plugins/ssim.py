"""SSIM: ``1 - structural similarity`` between render and target (Wang et al. 2004).

What it measures: SSIM compares local brightness, contrast and structure (the covariance of the
two images) in a Gaussian window around every pixel, instead of the per-pixel difference that
``l1``/``l2`` take.  It cares about edges and texture contrast being in the right place and is
lenient about slow brightness drifts, which is closer to what a person notices.

When to use it: texture and detail fitting, often as ``l1`` + ``ssim`` (a common pairing in
inverse rendering), or to fit a photograph whose exposure you cannot match exactly.  It is
computed on linear RGB (what the engine hands losses); published SSIM scores use sRGB, so the
numbers differ slightly from an image-quality tool's.

Why no library: single-scale SSIM is the dozen lines below (a separable Gaussian blur and one
formula).  pytorch-msssim implements the same formula but has not been released since 2023;
kornia and torchmetrics do too, at the cost of a large dependency for one function.  The result
matches scikit-image's ``structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=1)`` (tests/optim/test_plugins.py checks it against an
independent implementation).

How to write a loss, in brief: decorate ``fn(render, target, ctx) -> scalar tensor`` with
``@loss``; declare hyper-parameters as ``Param``s and read them from ``ctx.params``.
"""

import torch
import torch.nn.functional as F

from studio.plugins import Param, loss


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur without padding ('valid'), [N,C,H,W] -> [N,C,H-2r,W-2r].

    The radius is scikit-image's (3.5 sigma, rounded), clipped so that an image keeps one pixel.
    """
    radius = min(int(3.5 * sigma + 0.5), (min(x.shape[-2:]) - 1) // 2)
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    g = g / g.sum()
    c = x.shape[1]
    x = F.conv2d(x, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def ssim(x: torch.Tensor, y: torch.Tensor, sigma: float = 1.5, data_range: float = 1.0) -> torch.Tensor:
    """Mean SSIM per image of x, y [N,C,H,W] (values in [0, data_range]) -> [N], 1 = identical."""
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2  # the paper's stabilising constants
    mx, my = gaussian_blur(x, sigma), gaussian_blur(y, sigma)
    vx = gaussian_blur(x * x, sigma) - mx * mx
    vy = gaussian_blur(y * y, sigma) - my * my
    cov = gaussian_blur(x * y, sigma) - mx * my
    s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.mean(dim=(1, 2, 3))


@loss("ssim", weight=1.0, description="1 - SSIM of the RGB images: matches local structure and contrast, "
      "lenient about brightness drift",
      params={"sigma": Param(1.5, min=0.5, max=4.0, description="Gaussian window size in pixels")})
def ssim_loss(render: torch.Tensor, target: torch.Tensor, ctx) -> torch.Tensor:
    """render, target: [B,H,W,4] linear RGB + alpha; returns 1 - mean SSIM (0 = identical, dimensionless)."""
    x = render[..., :3].permute(0, 3, 1, 2)  # conv2d wants channels first
    y = target[..., :3].permute(0, 3, 1, 2)
    return 1.0 - ssim(x, y, ctx.params["sigma"]).mean()
