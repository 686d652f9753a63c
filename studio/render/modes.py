"""Render modes: what a render looks like besides its shaded colour, for the studio's render panel.

Each function turns one render (its G-buffer, or for the gradient mode the per-pixel loss gradient)
into display images [B,H,W,3] in [0, 1], top row first, already display-encoded: the shaded mode is
sRGB-encoded, the others are false colours meant to be shown as they are.  Pure torch, no GUI and
no scene knowledge: the engine computes the selected mode when it publishes a snapshot, and the
CLI and tests call the same functions.

Two modes need the scene itself, not just one render (:data:`SCENE_MODES`): the derivative image
dI/dθ of one parameter component and the vertex gradient arrows.  The engine computes them with
:mod:`studio.optim.gradient_views`; :func:`signed_colors` is their colour map.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from ..images import heatmap, linear_to_srgb
from .gbuffer import GBuffer

SHADED = "shaded"
NORMALS = "normals"
DEPTH = "depth"
MASK = "mask"
TRIANGLE_ID = "triangle id"
DERIVATIVE = "d image / d param"
VERTEX_ARROWS = "vertex gradients"
LOSS_GRADIENT = "loss gradient"
#: The modes of one render, which :func:`display_image` draws.
MODES = (SHADED, NORMALS, DEPTH, MASK, TRIANGLE_ID, LOSS_GRADIENT)
#: Modes that need the scene (a derivative, a loss gradient per vertex), not only one render.
SCENE_MODES = (DERIVATIVE, VERTEX_ARROWS)
#: Every mode, in the order a front end lists them (the three gradient views last).
ALL_MODES = (SHADED, NORMALS, DEPTH, MASK, TRIANGLE_ID, DERIVATIVE, VERTEX_ARROWS, LOSS_GRADIENT)
#: Colours of the diverging map of :func:`signed_colors` (linear RGB at full scale).
POSITIVE_COLOR = (1.0, 0.12, 0.05)  # red
NEGATIVE_COLOR = (0.1, 0.35, 1.0)  # blue
SCALE_QUANTILE = 0.95  # of the non-zero |values|: what :func:`signed_colors` shows at full colour

#: A loss of the rendered colour [B,H,W,3] and coverage [B,H,W,1] (both linear), as a scalar tensor.
PixelLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def shaded(rgb: torch.Tensor) -> torch.Tensor:
    """[B,H,W,3] linear RGB -> sRGB-encoded display colours."""
    return linear_to_srgb(rgb)


def normals(gb: GBuffer) -> torch.Tensor:
    """World-space shading normals mapped from [-1, 1] to [0, 1] per axis (x red, y green, z blue);
    black where nothing was hit."""
    return (gb.normal * 0.5 + 0.5) * gb.mask


def depth(gb: GBuffer) -> torch.Tensor:
    """Grey levels, near surfaces bright: depth mapped per image from [nearest, farthest] covered
    pixel to [1, 0.15]; black where nothing was hit."""
    d, m = gb.depth, gb.mask > 0.5
    big = torch.finfo(d.dtype).max
    near = torch.where(m, d, torch.full_like(d, big)).amin(dim=(1, 2, 3), keepdim=True)
    far = torch.where(m, d, torch.full_like(d, -big)).amax(dim=(1, 2, 3), keepdim=True)
    t = (d - near) / (far - near).clamp(min=1e-6)
    grey = torch.where(m, 1.0 - 0.85 * t.clamp(0, 1), torch.zeros_like(d))
    return grey.expand(*d.shape[:3], 3)


def mask(alpha: torch.Tensor) -> torch.Tensor:
    """[B,H,W,1] coverage (antialiased or soft where the renderer has it) as grey levels."""
    return alpha.clamp(0, 1).expand(*alpha.shape[:3], 3)


def triangle_id(ids: torch.Tensor) -> torch.Tensor:
    """[B,H,W] integer ids (-1 = empty) -> a distinct, stable colour per id; black where empty."""
    h = (ids.clamp(min=0) + 1) * 2654435761 % (1 << 32)  # Knuth's multiplicative hash
    rgb = torch.stack([(h >> s) & 255 for s in (0, 8, 16)], -1).float() / 255.0
    return torch.where((ids >= 0).unsqueeze(-1), 0.25 + 0.75 * rgb, torch.zeros_like(rgb))


def pixel_loss_gradients(loss_fn: PixelLoss, rgb: torch.Tensor,
                         alpha: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(d loss / d rgb [B,H,W,3], d loss / d alpha [B,H,W,1]), None where the loss ignores one: the
    signal the renderer's backward pass turns into parameter gradients."""
    rgb = rgb.detach().clone().requires_grad_(True)
    alpha = alpha.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        total = loss_fn(rgb, alpha)
        if not total.requires_grad:
            return None, None
        g_rgb, g_alpha = torch.autograd.grad(total, [rgb, alpha], allow_unused=True)
    return g_rgb, g_alpha


def pixel_loss_gradient(loss_fn: PixelLoss, rgb: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """[B,H,W] magnitude of d loss / d pixel: how much each pixel's colour and coverage pull on the
    loss."""
    sq = torch.zeros(rgb.shape[:3], device=rgb.device)
    for g in pixel_loss_gradients(loss_fn, rgb, alpha):
        if g is not None:
            sq = sq + g.square().sum(-1)
    return sq.sqrt()


def gradient_heatmap(magnitude: torch.Tensor) -> torch.Tensor:
    """[B,H,W] non-negative values -> heatmap colours, scaled to their 99th percentile."""
    return gradient_heatmap_scaled(magnitude)[0]


def gradient_heatmap_scaled(magnitude: torch.Tensor) -> tuple[torch.Tensor, float]:
    """[B,H,W] non-negative values -> (heatmap colours [B,H,W,3], the value shown as white: the
    99th percentile over the batch; 0 when every value is 0, a black image)."""
    mags = magnitude.detach().float().cpu().numpy()
    top = float(np.percentile(mags, 99)) if mags.size and mags.max() > 0 else 0.0
    if top <= 0 < mags.max():  # fewer than 1% of the pixels feel the loss: scale to the largest
        top = float(mags.max())
    out = heatmap(mags.reshape(-1, mags.shape[-1]), vmax=top).reshape(*mags.shape, 3) if top > 0 else \
        np.zeros((*mags.shape, 3), np.float32)
    return torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32)).to(magnitude.device), top


def signed_colors(values: torch.Tensor, scale: float | None = None) -> tuple[torch.Tensor, float]:
    """[B,H,W] signed values -> (diverging colours [B,H,W,3], the scale used).

    Zero is black, positive values red and negative values blue, with one symmetric scale: +scale
    is full red and -scale full blue (the magnitude is treated as linear light and sRGB-encoded,
    like every other picture).  ``scale`` defaults to the 95th percentile of the non-zero |values|
    over the batch: a moving outline changes its few pixels a hundred times more than shading
    changes the inside, and scaled to those the inside would look black (the outline saturates
    instead).  It is 0 (a black image) when every value is 0.
    """
    v = values.detach().float()
    if scale is None:
        nonzero = v.abs()[v != 0]
        scale = float(torch.quantile(nonzero[:1 << 24], SCALE_QUANTILE)) if nonzero.numel() else 0.0
    t = (v / scale).clamp(-1.0, 1.0) if scale > 0 else torch.zeros_like(v)
    pos = torch.tensor(POSITIVE_COLOR, device=v.device)
    neg = torch.tensor(NEGATIVE_COLOR, device=v.device)
    rgb = t.clamp(min=0).unsqueeze(-1) * pos + (-t).clamp(min=0).unsqueeze(-1) * neg
    return linear_to_srgb(rgb), float(scale)


def display_image_scaled(mode: str, out: Any, loss_fn: PixelLoss | None = None) -> tuple[torch.Tensor, float]:
    """:func:`display_image` and its colour scale: for :data:`LOSS_GRADIENT` the |d loss / d pixel|
    shown as white (per unit of linear RGB), else 0 (the mode has no scale)."""
    if mode == LOSS_GRADIENT:
        if loss_fn is None:
            raise ValueError("the loss gradient mode needs the loss (loss_fn).")
        return gradient_heatmap_scaled(pixel_loss_gradient(loss_fn, out.rgb, out.alpha))
    return display_image(mode, out, loss_fn), 0.0


def display_image(mode: str, out: Any, loss_fn: PixelLoss | None = None) -> torch.Tensor:
    """One render in ``mode`` as display colours [B,H,W,3].

    Args:
        mode: one of :data:`MODES`.
        out: a render with ``rgb`` [B,H,W,3] linear, ``alpha`` [B,H,W,1] and ``gbuffer``
            (a :class:`studio.scene.scene.RenderOutput`).
        loss_fn: for :data:`LOSS_GRADIENT`, the loss of (rgb, alpha) whose per-pixel gradient is shown.

    Raises:
        ValueError: an unknown mode, a mode of :data:`SCENE_MODES` (they need the scene, see
            :mod:`studio.optim.gradient_views`), or the gradient mode without ``loss_fn``.
    """
    gb = out.gbuffer
    with torch.no_grad():
        if mode == SHADED:
            return shaded(out.rgb)
        if mode == NORMALS:
            return normals(gb)
        if mode == DEPTH:
            return depth(gb)
        if mode == MASK:
            return mask(out.alpha)
        if mode == TRIANGLE_ID:
            return triangle_id(gb.tri_id)
    if mode == LOSS_GRADIENT:
        if loss_fn is None:
            raise ValueError("the loss gradient mode needs the loss (loss_fn).")
        return gradient_heatmap(pixel_loss_gradient(loss_fn, out.rgb, out.alpha))
    if mode in SCENE_MODES:
        raise ValueError(f"the {mode!r} mode needs the scene, not one render; see studio.optim.gradient_views.")
    raise ValueError(f"render mode must be one of {', '.join(MODES)}, got {mode!r}.")
