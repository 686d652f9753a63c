"""UV texture for a reconstructed mesh: an xatlas unwrap, and vertex colours baked into it.

xatlas is an optional extra (``pip install -e '.[reconstruct]'``); without it the reconstruction
keeps its per-vertex colours.  The unwrap keeps the mesh's shared positions (the rasterizer's
antialiasing and the Laplacian need them) and returns its own index buffer ``uv_faces``, one row
per triangle, as :class:`studio.scene.mesh.Mesh` stores UVs.  Texel row 0 is at v = 0.
"""

from __future__ import annotations

import numpy as np
import torch

from ..render.backend import Backend

# Rounds of growing each chart by one texel into the empty space around it, so that bilinear
# and mipmapped lookups near a seam never average in the background.
_DILATE = 8


def unwrap(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(uv [Vt,2] float32 in [0, 1], uv_faces [T,3] int32 aligned with ``faces``), or None without xatlas."""
    try:
        import xatlas
    except ImportError:
        return None
    vmap, idx, uv = xatlas.parametrize(np.ascontiguousarray(vertices, np.float32), np.ascontiguousarray(faces, np.uint32))
    if not np.array_equal(vmap[idx].astype(np.int64), np.asarray(faces, np.int64)):
        return None  # xatlas reordered the triangles; keep vertex colours rather than guess
    return uv.astype(np.float32), idx.astype(np.int32)


def bake(backend: Backend, uv: torch.Tensor, uv_faces: torch.Tensor, faces: torch.Tensor, colors: torch.Tensor,
         size: int) -> torch.Tensor:
    """Rasterize per-vertex ``colors`` [V,3] into a [size,size,3] texture over ``uv`` [Vt,2] (indexed by
    ``uv_faces`` [T,3]; ``faces`` [T,3] index ``colors``), then dilate it into the empty texels."""
    dev = backend.device
    corners_uv = uv[uv_faces.long()].reshape(-1, 2)  # one clip vertex per triangle corner
    pos = torch.cat([corners_uv * 2 - 1, torch.zeros_like(corners_uv[:, :1]), torch.ones_like(corners_uv[:, :1])], 1)
    tri = torch.arange(corners_uv.shape[0], device=dev, dtype=torch.int32).reshape(-1, 3)
    attr = colors[faces.long()].reshape(-1, 3)
    rast, _ = backend.rasterize(pos[None].contiguous().to(dev), tri, (size, size), grad_db=False)
    tex, _ = backend.interpolate(attr[None].contiguous().to(dev), rast, tri)
    # Rasterizer row 0 is NDC y = -1, i.e. v = 0: already the texture's row order.
    return dilate(tex[0], rast[0, ..., 3] > 0)


def dilate(tex: torch.Tensor, filled: torch.Tensor, rounds: int = _DILATE) -> torch.Tensor:
    """Grow the ``filled`` [H,W] texels of ``tex`` [H,W,C] outwards by ``rounds`` texels (mean of filled
    neighbours); texels still empty afterwards get the mean colour."""
    t = (tex * filled[..., None]).permute(2, 0, 1)[None]
    w = filled[None, None].to(tex.dtype)
    kernel = torch.ones(1, 1, 3, 3, dtype=tex.dtype, device=tex.device)
    c = t.shape[1]
    for _ in range(rounds):
        s = torch.nn.functional.conv2d(t, kernel.expand(c, 1, 3, 3), padding=1, groups=c)
        n = torch.nn.functional.conv2d(w, kernel, padding=1)
        grow = (w == 0) & (n > 0)
        t = torch.where(grow, s / n.clamp(min=1), t)
        w = torch.where(grow, torch.ones_like(w), w)
    out = t[0].permute(1, 2, 0)
    mean = (out * w[0, 0, ..., None]).sum((0, 1)) / w.sum().clamp(min=1)
    return torch.where(w[0, 0, ..., None] > 0, out, mean)
