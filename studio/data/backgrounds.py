"""Backgrounds behind the rendered objects: solid, gradient, fractal noise or a crop of a photo.

Each is a deterministic function of a :class:`~studio.data.randomize.BackgroundPlan` and returns a
[H,W,3] float32 linear-RGB tensor, top row first; the exporter composites the render over it with
the render's antialiased alpha (``rgb + background * (1 - alpha)``).
"""

from __future__ import annotations

import numpy as np
import torch

from ..images import read_image, resize, srgb_to_linear
from .randomize import BackgroundPlan

# Fractal noise: octaves, the weight ratio between successive ones, and the largest grid it is
# summed on before upsampling (the finest octave has at most 8 * 2**4 cells, so 256 loses nothing).
_NOISE_OCTAVES = 5
_NOISE_PERSISTENCE = 0.55
_NOISE_GRID = 256


def _blend(colors: np.ndarray, t: torch.Tensor) -> torch.Tensor:
    """[H,W] weights in [0, 1] -> [H,W,3] linear colour, from colors[0] to colors[1] (sRGB)."""
    lin = torch.from_numpy(srgb_to_linear(colors).astype(np.float32))
    return lin[0] + (lin[1] - lin[0]) * t.float().unsqueeze(-1)


def _upsample(t: torch.Tensor, size: int) -> torch.Tensor:
    """[h,w] -> [size,size] bilinear, corners aligned."""
    return torch.nn.functional.interpolate(t[None, None], size=(size, size), mode="bilinear", align_corners=True)[0, 0]


def _noise(seed: int, cells: int, size: int) -> torch.Tensor:
    """[size,size] fractal value noise in [0, 1]: bilinear lattices of cells * 2**k cells."""
    rng = np.random.default_rng(seed)
    grid = min(size, _NOISE_GRID)
    total = torch.zeros(grid, grid)
    for k in range(_NOISE_OCTAVES):
        n = cells * 2 ** k + 1
        total += _NOISE_PERSISTENCE ** k * _upsample(torch.from_numpy(rng.random((n, n)).astype(np.float32)), grid)
    total = (total - total.min()) / (total.max() - total.min()).clamp(min=1e-12)
    return _upsample(total, size) if grid != size else total


def _photo(plan: BackgroundPlan, size: int) -> torch.Tensor:
    img = read_image(plan.image)
    rgb = img[..., :3] if img.shape[-1] >= 3 else np.repeat(img[..., :1], 3, -1)
    h, w = rgb.shape[:2]
    side = max(1, int(round(plan.crop[0] * min(h, w))))
    y0 = int(round(plan.crop[2] * (h - side)))
    x0 = int(round(plan.crop[1] * (w - side)))
    crop = rgb[y0:y0 + side, x0:x0 + side]
    if plan.flip:
        crop = crop[:, ::-1]
    # Resized in sRGB, then linearised: a background needs no gamma-correct filtering, and the
    # conversion then runs on size**2 pixels instead of the photo's.
    return srgb_to_linear(resize(torch.from_numpy(np.ascontiguousarray(crop)), (size, size)).clamp(0, 1))


def make_background(plan: BackgroundPlan, size: int, scene_color: list[float]) -> torch.Tensor:
    """The [size,size,3] linear background of one image (CPU; possibly a broadcast view).

    Args:
        plan: the image's background decisions.
        size: side in pixels.
        scene_color: the scene file's ``[render] background`` (linear RGB), for kind "scene".
    """
    if plan.kind == "scene":
        return torch.tensor(scene_color, dtype=torch.float32).expand(size, size, 3)
    if plan.kind == "solid":
        return torch.from_numpy(srgb_to_linear(plan.colors[0]).astype(np.float32)).expand(size, size, 3)
    if plan.kind == "gradient":
        c = (torch.arange(size, dtype=torch.float32) + 0.5) / size - 0.5
        proj = float(np.cos(plan.angle)) * c[None, :] + float(np.sin(plan.angle)) * c[:, None]
        return _blend(plan.colors, proj / (2 * proj.abs().max()) + 0.5)
    if plan.kind == "noise":
        return _blend(plan.colors, _noise(plan.noise_seed, plan.noise_cells, size))
    return _photo(plan, size)
