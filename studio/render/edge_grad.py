"""``edge_grad``: visibility gradients at every triangle boundary (rasterized edge gradients).

A fifth primitive beside ``antialias`` with the same inputs.  Its forward value is ``color``
unchanged (no blending, no antialiasing: the image stays the hard render); its backward adds the
derivative of the pixel colours with respect to ``pos`` that comes from visibility changes, at
silhouettes, at occlusion boundaries inside the object and between sub-pixel triangles alike.

The method follows Pidhorskyi et al., "Rasterized Edge Gradients: Handling Discontinuities
Differentiably" (2024), in our own formulation:

- Every pair of 4-adjacent pixels whose triangle ids differ (background included) shares a
  *micro-edge*: the 1 px long piece of pixel boundary between them.
- The *front* pixel of the pair is the one whose surface is nearer (smaller z/w; background is
  infinitely far); its triangle F owns the boundary.  F's screen-space barycentrics of the
  micro-edge's midpoint m are computed once (extrapolated outside F, held fixed), so m moves with
  F's projected vertices, ``X(pos) = sum_k beta_k * s_k(pos)`` in pixels.  A sub-pixel sliver
  therefore moves the boundary as the surface around it moves, whichever of its edges (or of its
  unseen neighbours' edges) the true outline is.
- Moving the micro-edge by ``d`` pixels along its normal n (from the front pixel to the back one)
  sweeps ``d`` px² (the micro-edge is 1 px long, a pixel is 1 px²) from the back colour to the
  front colour: ``(color[front] - color[back]) * n . dX`` in colour x px².  Summed over the
  staircase of micro-edges along any straight outline this is exactly the swept area times the
  colour step, the derivative of box-filtered (supersampled) coverage.
- Which pixel that area belongs to depends on where the true outline crosses the segment between
  the two pixel centres, in the front pixel's half or the back pixel's, equally likely and unknown
  for sub-pixel geometry; so half of it is credited to each pixel.  (Crediting all of it to the
  back pixel is as good for a smooth loss, but with a loss concentrated at the outline, as
  ``2 (render - target)`` is, growing outlines then come out about 1.6x too fast.)
- Where both sides are one continuous surface (two triangles of a smooth mesh, however small)
  moving the boundary between them changes nothing (the colour is continuous there; what the
  pixel colours do inside is already the barycentric gradient of ``rasterize``): those pairs are
  skipped.  A pair is one surface when, in either direction, one pixel's triangle plane
  extrapolated to the other pixel's centre meets the other's own surface: clip w within
  ``depth_tolerance`` (relative) and NDC depth z/w within twice that.  Consequence: flat-shaded
  creases (a cube's edges) get no visibility gradient here.

Work is proportional to the pixel pairs with a colour step; the differentiable part is one gather
of three projected vertices per pair and one scatter.
"""

from __future__ import annotations

import torch

from .backend import RenderInputError
from .checks import FLOAT32, check_finite, check_pos_tri, check_rast, check_tensor

#: Relative depth gap below which the two sides of a micro-edge count as one continuous surface.
DEFAULT_DEPTH_TOLERANCE = 0.01
# Screen-space triangles smaller than this (px², doubled) cannot carry a motion: their
# barycentrics are numerically meaningless.
_MIN_AREA2 = 1e-10


def edge_grad(
    color: torch.Tensor,
    rast: torch.Tensor,
    pos: torch.Tensor,
    tri: torch.Tensor,
    depth_tolerance: float = DEFAULT_DEPTH_TOLERANCE,
) -> torch.Tensor:
    """Identity on ``color`` whose backward carries the visibility gradient for ``pos``.

    Args:
        color: [B,H,W,C] float32 (or float64) shaded image in the rasterizer's layout (row 0 at
            NDC y = -1, bottom-up), e.g. composited over the background.
        rast: [B,H,W,4] output of ``rasterize`` for the same ``pos``/``tri`` (u, v, z/w, tri_id+1).
        pos: [B,V,4] clip-space positions (or [V,4] shared by all images, as with ``ranges``).
        tri: [T,3] int32 vertex indices; shared vertices are not needed (no topology is used).
        depth_tolerance: relative gap of clip w (and half the gap of z/w) across a pair below
            which both pixels are one continuous surface and the pair is skipped (> 0).

    Returns:
        [B,H,W,C] equal to ``color`` (the same values, not antialiased).  Gradients reach
        ``color`` unchanged (identity) and ``pos`` through the micro-edge motion described in the
        module docstring; nothing reaches ``rast``.

    Raises:
        RenderInputError: ``depth_tolerance`` not a positive number, or triangle ids in ``rast``
            outside ``tri``.  (Shapes, dtypes and devices are checked by the backends.)
    """
    try:
        tol = float(depth_tolerance)
    except (TypeError, ValueError):
        raise RenderInputError(f"depth_tolerance must be a positive number, got {depth_tolerance!r}.") from None
    if not tol > 0:
        raise RenderInputError(f"depth_tolerance must be a positive number (about 0.01), got {tol}.")
    B, H, W, C = color.shape
    with torch.no_grad():
        pairs = _micro_edges(color, rast, pos, tri, tol)
    if pairs is None:
        return color
    front, back, axis, sign, beta, verts, step = pairs
    # Differentiable: the micro-edge midpoint as a fixed combination of F's projected vertices.
    X, Y = _screen_coords(pos, verts, H, W)  # [3,M]
    moved = torch.where(axis, Y, X)
    g = sign * (beta * moved).sum(0)
    # Half of the swept area to each pixel of the pair (see the module docstring); exactly zero
    # forward.
    delta = (0.5 * step * (g - g.detach()).unsqueeze(1)).to(color.dtype)
    return color.reshape(-1, C).index_add(0, torch.cat([front, back]), torch.cat([delta, delta])).view(B, H, W, C)


def checked_edge_grad(color: object, rast: object, pos: object, tri: object, device: torch.device,
                      float_dtypes: tuple[torch.dtype, ...] = FLOAT32,
                      depth_tolerance: float = DEFAULT_DEPTH_TOLERANCE) -> torch.Tensor:
    """:func:`edge_grad` after the argument checks every backend applies (one sentence per
    mistake, as :class:`RenderInputError`); ``float_dtypes`` are the accepted float dtypes."""
    color = check_tensor("color", color, dtype=float_dtypes, ndims=(4,), device=device,
                         expected="[B,H,W,C] float32 image")
    rast = check_rast("rast", rast, device, float_dtypes)
    if color.shape[:3] != rast.shape[:3]:
        raise RenderInputError(
            f"color is {tuple(color.shape[:3])} in [B,H,W] but rast is {tuple(rast.shape[:3])}; they must match."
        )
    ranges = torch.zeros(0, 2, dtype=torch.int32) if isinstance(pos, torch.Tensor) and pos.dim() == 2 else None
    pos, tri, _ = check_pos_tri(pos, tri, ranges, device, float_dtypes)
    if pos.dim() == 3 and pos.shape[0] != rast.shape[0]:
        raise RenderInputError(f"pos has batch size {pos.shape[0]} but rast has {rast.shape[0]}.")
    check_finite("color", color)
    return edge_grad(color, rast, pos, tri, depth_tolerance)


def _flat_vertices(pos: torch.Tensor, tri: torch.Tensor, tri_idx: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
    """[M,3] rows of ``pos`` flattened to [B*V,4] (or [V,4]) for triangles ``tri_idx`` of images ``img``."""
    verts = tri.long().index_select(0, tri_idx)
    if pos.dim() == 3:
        verts = verts + (img * pos.shape[1]).unsqueeze(1)
    return verts


def _gather(pos: torch.Tensor, verts: torch.Tensor) -> torch.Tensor:
    """[4,3,M] clip coordinates (x, y, z, w) of the vertex rows ``verts`` [M,3]."""
    m = verts.shape[0]
    flat = pos.reshape(-1, 4).t()
    return flat.gather(1, verts.t().reshape(1, -1).expand(4, 3 * m)).view(4, 3, m)


def _screen_coords(pos: torch.Tensor, verts: torch.Tensor, H: int, W: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel coordinates [3,M] (pixel (i, j) centred at (j, i)) of the vertex rows ``verts``."""
    return _to_screen(_gather(pos, verts), H, W)


def _to_screen(c: torch.Tensor, H: int, W: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel coordinates [3,M] of clip coordinates [4,3,M]."""
    x, y, _, w = c.unbind(0)
    return (x / w + 1) * (W / 2) - 0.5, (y / w + 1) * (H / 2) - 0.5


def _barycentrics(X: torch.Tensor, Y: torch.Tensor, px: torch.Tensor, py: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Screen-space barycentrics [3,M] of points (px, py) [M] in triangles (X, Y) [3,M], and
    twice the signed triangle areas [M] (px²)."""
    Xa, Ya, Xb, Yb = X.roll(-1, 0), Y.roll(-1, 0), X.roll(-2, 0), Y.roll(-2, 0)
    e = (Xb - Xa) * (py - Ya) - (Yb - Ya) * (px - Xa)  # e_k: opposite vertex k
    area2 = e.sum(0)
    return e / torch.where(area2 == 0, torch.ones_like(area2), area2), area2


def _micro_edges(color: torch.Tensor, rast: torch.Tensor, pos: torch.Tensor, tri: torch.Tensor, tol: float):
    """Pixel pairs that carry a visibility gradient (no autograd).

    Returns None when there are none, else (front and back pixel flat indices [M], vertical pair [M] bool,
    normal sign [M], F's barycentrics of the midpoint [3,M], F's vertex rows [M,3], colour step
    front - back [M,C]).
    """
    B, H, W, C = color.shape
    tid = rast[..., 3].long()
    if tid.numel() and int(tid.max()) > tri.shape[0]:
        raise RenderInputError(
            f"rast refers to triangle {int(tid.max()) - 1} but tri has only {tri.shape[0]}; pass the tri that was rasterized."
        )
    zw = rast[..., 2]
    parts = []
    for vertical, step in ((False, 1), (True, W)):
        sl0 = (slice(None), slice(None, -1)) if vertical else (slice(None), slice(None), slice(None, -1))
        sl1 = (slice(None), slice(1, None)) if vertical else (slice(None), slice(None), slice(1, None))
        t0, t1, z0, z1 = tid[sl0], tid[sl1], zw[sl0], zw[sl1]
        front1 = (t0 == 0) | ((t1 > 0) & (z1 < z0))
        b, i, j = (t0 != t1).nonzero().unbind(1)
        p0 = (b * H + i) * W + j
        parts.append((p0, p0 + step, front1[b, i, j], torch.full_like(b, int(vertical)).bool(), b))
    p0, p1, f1, axis, img = (torch.cat(t) for t in zip(*parts))
    fp, bp = torch.where(f1, p1, p0), torch.where(f1, p0, p1)
    flat_color = color.detach().reshape(-1, C)
    step = flat_color.index_select(0, fp) - flat_color.index_select(0, bp)
    keep = (step != 0).any(1)
    fp, bp, axis, img, step = fp[keep], bp[keep], axis[keep], img[keep], step[keep]
    if fp.numel() == 0:
        return None

    flat_rast = rast.detach().reshape(-1, 4)
    ftri = flat_rast[fp, 3].long() - 1
    fverts = _flat_vertices(pos, tri, ftri, img)
    cf = _gather(pos.detach(), fverts)
    Xf, Yf = _to_screen(cf, H, W)
    fcol, frow = (fp % W).to(Xf.dtype), ((fp // W) % H).to(Xf.dtype)
    bcol, brow = (bp % W).to(Xf.dtype), ((bp // W) % H).to(Xf.dtype)
    beta, area2 = _barycentrics(Xf, Yf, 0.5 * (fcol + bcol), 0.5 * (frow + brow))
    ok = (area2.abs() > _MIN_AREA2) & (cf[3] > 0).all(0) & torch.isfinite(beta).all(0)

    # One continuous surface on both sides: no visibility change worth a gradient.
    btri = flat_rast[bp, 3].long() - 1
    both = btri >= 0
    if bool(both.any()):
        same = torch.zeros_like(ok)
        k = both.nonzero().squeeze(1)
        cb = _gather(pos.detach(), _flat_vertices(pos, tri, btri[k], img[k]))
        same[k] = _continuous(flat_rast, fp[k], bp[k], cf[:, :, k], cb, Xf[:, k], Yf[:, k], H, W, tol)
        ok &= ~same
    sel = ok.nonzero().squeeze(1)
    if sel.numel() == 0:
        return None
    sign = torch.where(bp > fp, 1.0, -1.0).to(pos.dtype)
    return fp[sel], bp[sel], axis[sel], sign[sel], beta[:, sel].to(pos.dtype), fverts[sel], step[sel]


def _continuous(flat_rast, fp, bp, cf, cb, Xf, Yf, H, W, tol) -> torch.Tensor:
    """[M] True where, in either direction, one pixel's triangle plane extrapolated to the other
    pixel's centre meets the other's own surface: clip w within ``tol`` (relative; the test that
    matters under perspective) and NDC depth z/w within ``2 tol`` (1% of the depth range for the
    default; the test that matters under an orthographic projection, whose w is constant)."""
    Xb, Yb = _to_screen(cb, H, W)

    def own(p: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        u, v = flat_rast[p, 0], flat_rast[p, 1]  # perspective-correct: w is their combination
        return u * c[3, 0] + v * c[3, 1] + (1 - u - v) * c[3, 2], flat_rast[p, 2]

    def gap(X, Y, c, p) -> torch.Tensor:
        # 1/w and z/w are affine in screen space over a planar triangle.
        lam, area2 = _barycentrics(X, Y, (p % W).to(X.dtype), ((p // W) % H).to(X.dtype))
        inv_w, zw = (lam / c[3]).sum(0), (lam * c[2] / c[3]).sum(0)
        w_own, zw_own = own(p, cf if c is cb else cb)
        w_gap = (1 / inv_w.clamp(min=1e-30) - w_own).abs() / w_own.abs()
        score = torch.maximum(w_gap, 0.5 * (zw - zw_own).abs())
        return torch.where((area2.abs() > _MIN_AREA2) & (inv_w > 0), score, torch.full_like(score, float("inf")))

    return torch.minimum(gap(Xf, Yf, cf, bp), gap(Xb, Yb, cb, fp)) <= tol
