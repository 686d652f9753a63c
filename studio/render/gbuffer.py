"""The one intermediate every renderer hands to shading: a frozen G-buffer.

Rasterizer and SDF tracer both produce a :class:`GBuffer`, so shading, losses, render modes and the
dataset exporter never care which renderer ran.  All image-shaped fields are [B,H,W,C] (or [B,H,W]
for integer ids), top row first, in world space where they are geometric.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Callable

import torch


def _identity(color: torch.Tensor) -> torch.Tensor:
    return color


@dataclass(frozen=True)
class GBuffer:
    """Per-pixel surface data for one batch of views.

    Attributes:
        mask: [B,H,W,1] float, 1 where a surface covers the pixel centre, else 0 (hard).
        depth: [B,H,W,1] float, distance along the camera's viewing axis in scene units, 0 where empty.
        position: [B,H,W,3] world-space surface position (zeros where empty).
        normal: [B,H,W,3] unit world-space shading normal facing the camera side it was seen from
            (zeros where empty).
        view_dir: [B,H,W,3] unit vector from the surface towards the camera (zeros where empty).
        tri_id: [B,H,W] int64 triangle index (or SDF primitive index), -1 where empty.
        object_id: [B,H,W] int64 object index into the scene's object list, -1 where empty.
        uv: optional [B,H,W,2] texture coordinates.
        uv_da: optional [B,H,W,4] their screen-space derivatives (du/dX, du/dY, dv/dX, dv/dY) per pixel.
        albedo: optional [B,H,W,3] per-vertex colour interpolated by the renderer (linear RGB).
        coverage: optional [B,H,W,1] soft coverage in [0, 1] where the renderer has one (the SDF
            tracer's silhouette mask, or soft rasterization's); None means ``mask``.
        shadow: optional [B,H,W,L] visibility in [0, 1] of each directional light (1 = lit), from
            renderers that can trace shadows; None means fully lit.
        occlusion: optional [B,H,W,1] ambient occlusion in [0, 1] (1 = open); None means open.
        finish: the renderer's last step on a shaded [B,H,W,C] image (top row first):
            silhouette antialiasing for the rasterizer, identity elsewhere.  It is where visibility
            gradients come from, so losses must see its output.
    """

    mask: torch.Tensor
    depth: torch.Tensor
    position: torch.Tensor
    normal: torch.Tensor
    view_dir: torch.Tensor
    tri_id: torch.Tensor
    object_id: torch.Tensor
    uv: torch.Tensor | None = None
    uv_da: torch.Tensor | None = None
    albedo: torch.Tensor | None = None
    coverage: torch.Tensor | None = None
    shadow: torch.Tensor | None = None
    occlusion: torch.Tensor | None = None
    finish: Callable[[torch.Tensor], torch.Tensor] = _identity

    @property
    def shape(self) -> tuple[int, int, int]:
        """(B, H, W)."""
        b, h, w, _ = self.mask.shape
        return b, h, w

    @property
    def alpha(self) -> torch.Tensor:
        """[B,H,W,1] coverage used for compositing: the soft coverage if any, else the mask."""
        return self.mask if self.coverage is None else self.coverage

    def detach(self) -> "GBuffer":
        """A copy with every tensor detached and ``finish`` reduced to the identity."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, torch.Tensor):
                out[f.name] = v.detach()
        return replace(self, finish=_identity, **out)
