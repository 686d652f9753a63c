"""Soft rasterization (SoftRas, Liu et al. 2019): a smooth silhouette as a third visibility-gradient source.

Hard rasterization gives outlines no gradient; nvdiffrast's ``antialias`` gives them an analytic one
from the pixels the outline crosses.  Soft rasterization instead lets every triangle cover the pixels
*near* it a little, so moving an outline changes a whole band of pixels smoothly.

Definitions (all in pixel units; pixel (row i, column j) has its centre at (X, Y) = (j, i), row 0 is
NDC y = -1 as in ``rasterize``):

- d_j(p): signed squared distance from pixel centre p to the 2D outline of triangle j after the
  perspective divide, in px², positive inside.  Exact: the squared distance to the nearest of the
  three edge *segments*, written per edge as h² + m² with h the signed distance to the edge's line
  and m the overshoot past the edge's ends along it; inside means every h > 0.
- D_j(p) = sigmoid(d_j(p) / σ): the soft coverage of one triangle.  σ is in **squared pixels**, so
  one value means the same blur at every resolution: at σ = 1 the coverage is 0.5 on the outline,
  0.73 one pixel inside, 0.27 one pixel outside and 1e-4 three pixels out.  SoftRas's σ = 1e-4 (in
  NDC², a 2-unit-wide screen) is σ = 1e-4·(W/2)² px² here: 0.1 px² at 64², 1.6 px² at 256².  σ → 0
  gives the hard coverage back.
- A(p) = 1 - Π_j (1 - D_j(p)), computed as -expm1(Σ_j log sigmoid(-d_j/σ)) with the sum in float64
  (``index_add``), so no product underflows and A = 1 exactly deep inside.

Candidates.  Only triangles whose outline is within r = sqrt(σ·ln((1-ε)/ε)) px of a pixel matter
(D_j > ε, ε = 1e-4): each triangle's screen box grown by r is cut into row segments of a few pixels
(``_Layout``) and evaluated chunk by chunk as [pixel-in-segment, segment] arrays, in which every
per-triangle quantity broadcasts along the contiguous axis (no per-pixel gathers).  Work scales with
triangles × (size + 2r)², never pixels × triangles, and memory with the chunk size.  A custom
autograd function recomputes each chunk in the backward pass instead of storing candidates; its
gradient is closed-form (d is a minimum over the segment's points, so by the envelope theorem only
the nearest edge and point count) and reaches the clip-space positions through the projected
vertices and each edge's unit direction, normal and length.

Triangles with a vertex behind the camera or in front of the near plane (w <= 0 or z < -w), or with
every vertex beyond the far plane, are skipped (no clipping): their projection is not the triangle.
Pixels that such a triangle covers in the hard ``rast`` get coverage 1 in :func:`soft_rasterize`
(visible, without a soft-edge gradient).  Degenerate (zero-area) triangles are never "inside" but
blur their segment or point like any sliver (D <= 0.5), so coverage stays continuous as a triangle
collapses, and they produce no NaN.

Colour.  Soft coverage reaches pixels outside the hard coverage, which have no surface.
:func:`soft_rasterize` gives each such pixel the surface point of its *nearest triangle* (largest
d_j): the point of that triangle's outline closest to the pixel centre, written into ``rast`` as
perspective-correct barycentrics (and into ``rast_db`` as the barycentric derivatives there), so
``interpolate`` (any backend) yields its position, normal, colour and UV, and the composite
colour·A + background·(1 - A) has geometry gradients at silhouettes for shaded scenes too.  Pixels
inside the hard coverage keep the hard rasterizer's surface.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .backend import RenderInputError
from .checks import FLOAT32_64, check_pos_tri, check_rast, check_resolution

DEFAULT_SIGMA = 1.0  # px²
DEFAULT_EPS = 1e-4  # coverage below which a triangle is ignored at a pixel
DEFAULT_CHUNK_FRAGMENTS = 1 << 16  # candidates per chunk: arrays that stay in cache (measured)
_MAX_CHUNK_FRAGMENTS = 1 << 24
_KEY_EMPTY = torch.iinfo(torch.int64).max
_LOW32 = 0xFFFFFFFF


def support_radius(sigma: float, eps: float = DEFAULT_EPS) -> float:
    """Distance in px outside an outline at which one triangle's coverage falls to ``eps``."""
    return math.sqrt(sigma * math.log((1.0 - eps) / eps))


@dataclass(frozen=True)
class SoftRaster:
    """Result of :func:`soft_rasterize` (bottom-up, like ``rasterize``).

    Attributes:
        coverage: [B,H,W,1] soft silhouette A in [0, 1], differentiable in ``pos``.
        rast: [B,H,W,4] the hard ``rast`` with every soft-only pixel (A > 0, no hard surface) holding
            (u, v, z/w, triangle_id+1) of the closest outline point of its nearest triangle;
            differentiable in ``pos`` there.  Feed it to ``interpolate`` for colours; take hard
            masks and ids from the original ``rast``.
        fringe: [B,H,W] bool, the soft-only pixels.
        rast_db: the given ``rast_db`` with the barycentric derivatives at those closest points
            filled in (so texture lookups there pick the mip level of the outline), or None.
    """

    coverage: torch.Tensor
    rast: torch.Tensor
    fringe: torch.Tensor
    rast_db: torch.Tensor | None = None


def soft_coverage(
    pos: torch.Tensor,
    tri: torch.Tensor,
    resolution: tuple[int, int],
    sigma: float = DEFAULT_SIGMA,
    *,
    eps: float = DEFAULT_EPS,
    chunk_fragments: int = DEFAULT_CHUNK_FRAGMENTS,
) -> torch.Tensor:
    """Soft silhouette A [B,H,W,1] (bottom-up) of clip-space triangles, differentiable in ``pos``.

    Args:
        pos: [B,V,4] float32 (or float64) clip-space positions.
        tri: [T,3] int32 vertex indices.
        resolution: (height, width) in pixels.
        sigma: softness σ in px² (> 0).
        eps: per-triangle coverage below which a triangle is ignored at a pixel.
        chunk_fragments: (triangle, pixel) candidates evaluated at once; bounds the memory.
    """
    H, W = check_resolution(resolution)
    pos, tri = _check(pos, tri, sigma, eps, chunk_fragments)
    cover, _, _ = _coverage(pos, tri, H, W, float(sigma), float(eps), int(chunk_fragments))
    return cover.view(pos.shape[0], H, W, 1)


def soft_rasterize(
    pos: torch.Tensor,
    tri: torch.Tensor,
    rast: torch.Tensor,
    sigma: float = DEFAULT_SIGMA,
    *,
    rast_db: torch.Tensor | None = None,
    eps: float = DEFAULT_EPS,
    chunk_fragments: int = DEFAULT_CHUNK_FRAGMENTS,
) -> SoftRaster:
    """Soft coverage plus the nearest-triangle surface for pixels outside the hard coverage.

    Args:
        pos: [B,V,4] float32 (or float64) clip-space positions, as given to ``rasterize``.
        tri: [T,3] int32 vertex indices.
        rast: [B,H,W,4] output of ``rasterize(pos, tri, ...)`` (any backend).
        sigma: softness σ in px² (> 0).
        rast_db: optional [B,H,W,4] ``rast_db`` from the same call, extended to the fringe.
        eps, chunk_fragments: as in :func:`soft_coverage`.
    """
    pos, tri = _check(pos, tri, sigma, eps, chunk_fragments)
    rast = check_rast("rast", rast, pos.device, FLOAT32_64)
    B, H, W, _ = rast.shape
    if rast.shape[0] != pos.shape[0]:
        raise RenderInputError(f"pos has batch size {pos.shape[0]} but rast has {rast.shape[0]}; "
                               "pass the rast of this pos.")
    if rast_db is not None:
        rast_db = check_rast("rast_db", rast_db, pos.device, FLOAT32_64)
        if rast_db.shape != rast.shape:
            raise RenderInputError(f"rast_db must have the shape of rast {tuple(rast.shape)}, "
                                   f"got {tuple(rast_db.shape)}.")
    T, V = tri.shape[0], pos.shape[1]
    tid = rast[..., 3].detach().reshape(-1).long()  # 1-based, 0 = empty
    covered = tid > 0
    coverage, key, layout = _coverage(pos, tri, H, W, float(sigma), float(eps), int(chunk_fragments), ~covered)
    with torch.no_grad():
        full = tid.new_zeros(0)
        if bool(layout.skipped.any()):  # hard pixels of skipped triangles: visible, coverage 1
            pix = covered.nonzero().squeeze(1)
            draw = (pix // (H * W) * T + tid[pix] - 1).clamp(0, layout.skipped.numel() - 1)
            full = pix[layout.skipped[draw]]
        fringe = (coverage.detach() > 0) & (key != _KEY_EMPTY) & ~covered
        fpix = fringe.nonzero().squeeze(1)
        fdraw = layout.draw.index_select(0, key[fpix] & _LOW32)
    if full.numel() > 0:
        coverage = coverage.index_fill(0, full, 1.0)
    rast_flat = rast.reshape(-1, 4)
    if fpix.numel() > 0:
        b = fdraw // T
        verts = tri.long().index_select(0, fdraw % T) + (b * V).unsqueeze(1)
        rows, db = _nearest_point_rast(pos.reshape(-1, 4), verts, fpix % (H * W), H, W, rast_db is not None)
        rows = torch.cat([rows.to(rast.dtype), (fdraw % T + 1).to(rast.dtype).unsqueeze(1)], 1)
        rast_flat = rast_flat.index_copy(0, fpix, rows)
        if rast_db is not None:
            rast_db = rast_db.reshape(-1, 4).index_copy(0, fpix, db.to(rast_db.dtype)).view(B, H, W, 4)
    return SoftRaster(coverage.view(B, H, W, 1), rast_flat.view(B, H, W, 4), fringe.view(B, H, W), rast_db)


# ---------------------------------------------------------------------- internals


def _check(pos: object, tri: object, sigma: object, eps: object,
           chunk_fragments: object) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(pos, torch.Tensor):
        raise RenderInputError(f"pos must be a torch.Tensor [B,V,4] of clip-space positions, "
                               f"got {type(pos).__name__}.")
    pos, tri, _ = check_pos_tri(pos, tri, None, pos.device, FLOAT32_64)
    try:
        sigma = float(sigma)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise RenderInputError(f"soft_sigma must be a number of squared pixels, got {sigma!r}.") from None
    if not (math.isfinite(sigma) and sigma > 0):
        raise RenderInputError(f"soft_sigma must be a positive number of squared pixels (about 1), got {sigma}.")
    if not (isinstance(eps, (int, float)) and 0 < eps < 0.5):
        raise RenderInputError(f"eps must be between 0 and 0.5, got {eps!r}.")
    if not 1 <= int(chunk_fragments) <= _MAX_CHUNK_FRAGMENTS:  # type: ignore[arg-type]
        raise RenderInputError(f"chunk_fragments must be between 1 and {_MAX_CHUNK_FRAGMENTS}, "
                               f"got {chunk_fragments}.")
    return pos, tri


def _soft_triangles(pos: torch.Tensor, tri: torch.Tensor) -> torch.Tensor:
    """[B,T] True for triangles that take part: every vertex at w > 0 and behind the near plane
    (z >= -w), at least one vertex before the far plane (z <= w)."""
    z, w = pos[..., 2], pos[..., 3]
    front = (w > 0) & (z >= -w)
    near_far = z <= w
    t = tri.long()
    return front[:, t].all(-1) & near_far[:, t].any(-1)


def _project(pos: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """[B,V,4] clip space -> [B*V,2] pixel coordinates (differentiable; 0 where w <= 0)."""
    x, y, _, w = pos.reshape(-1, 4).unbind(1)
    ok = w > 0
    inv_w = 1.0 / torch.where(ok, w, torch.ones_like(w))
    X = torch.where(ok, (x * inv_w + 1) * (W / 2) - 0.5, torch.zeros_like(x))
    Y = torch.where(ok, (y * inv_w + 1) * (H / 2) - 0.5, torch.zeros_like(y))
    return torch.stack([X, Y], 1)


def _coverage(pos, tri, H, W, sigma, eps, chunk, nearest_for=None):
    """Coverage A [B*H*W] (dtype of pos, differentiable in pos), the layout and, with
    ``nearest_for`` ([B*H*W] bool: the pixels that need one), the nearest-band key [B*H*W] int64
    (low 32 bits: band index into ``layout.draw``; other pixels may hold anything)."""
    xy = _project(pos, H, W)
    with torch.no_grad():
        layout = _Layout(xy.detach(), pos.detach(), tri, H, W, sigma, eps, chunk)
        wanted = None if nearest_for is None else layout.segments_touching(nearest_for)
    cover, key = _SoftCoverage.apply(_band_table(xy, layout), layout, wanted)
    return layout.unpad(cover), layout.unpad(key) if wanted is not None else key, layout


# Candidate layout.  Each triangle's screen box (grown by the support radius) is cut into
# *segments* of ``strip`` pixels along a row (the last one of a row may reach past the box: a few
# extra candidates, each with coverage below eps).  A chunk of segments is evaluated as
# [strip, segments] arrays (pixel i of every segment in row i), so every per-segment quantity
# broadcasts along the contiguous axis: no per-pixel gathers, and the backward pass reduces over
# the short axis.  Pixels are indexed in images with ``strip`` spare columns on the right, where
# segments that cross the image border spill over harmlessly.
_STRIPS = (4, 6, 8, 10, 12, 14, 16, 20, 24, 32)
_SEGMENT_OVERHEAD = 4  # cost of one segment in cells (measured), for choosing the strip width


class _Layout:
    """Bands (kept triangles), their segments and the chunks, shared by forward and backward."""

    def __init__(self, xy: torch.Tensor, pos: torch.Tensor, tri: torch.Tensor, H: int, W: int,
                 sigma: float, eps: float, chunk: int):
        dev = xy.device
        B, V, T = pos.shape[0], pos.shape[1], tri.shape[0]
        self.sigma = sigma
        self.shape = (B, H, W)
        r = math.sqrt(sigma * math.log((1.0 - eps) / eps))
        verts = (tri.long().unsqueeze(0) + (torch.arange(B, device=dev) * V).view(B, 1, 1)).reshape(B * T, 3)
        p = xy.index_select(0, verts.reshape(-1)).view(-1, 3, 2)
        X, Y = p[..., 0], p[..., 1]
        ok = _soft_triangles(pos, tri).reshape(-1) & torch.isfinite(p).all(-1).all(-1)
        self.skipped = ~ok  # [B*T] draws without soft coverage
        c0 = torch.ceil((X.amin(1) - r).clamp(-1, W)).clamp(0, W)
        c1 = torch.floor((X.amax(1) + r).clamp(-1, W)).clamp(-1, W - 1)
        r0 = torch.ceil((Y.amin(1) - r).clamp(-1, H)).clamp(0, H)
        r1 = torch.floor((Y.amax(1) + r).clamp(-1, H)).clamp(-1, H - 1)
        bw = torch.where(ok, c1 - c0 + 1, 0.0).clamp(min=0).long()
        bh = torch.where(ok, r1 - r0 + 1, 0.0).clamp(min=0).long()
        keep = ((bw > 0) & (bh > 0)).nonzero().squeeze(1)
        self.draw = keep  # draw index (b*T + t) of each band
        self.verts = verts.index_select(0, keep)  # [N,3] rows of xy
        bw, bh, c0, r0 = bw[keep], bh[keep], c0[keep].long(), r0[keep].long()
        strips = torch.tensor(_STRIPS, device=dev)
        cost = (bh.unsqueeze(1) * ((bw.unsqueeze(1) + strips - 1) // strips)).sum(0) * (strips + _SEGMENT_OVERHEAD)
        self.strip = w = _STRIPS[int(cost.argmin())]
        self.stride = W + w  # row length of the padded pixel buffers
        self.num_padded = B * H * self.stride
        nstrip = (bw + w - 1) // w
        nseg = bh * nstrip
        band = torch.repeat_interleave(torch.arange(keep.numel(), device=dev), nseg)
        local = torch.arange(band.numel(), device=dev) - (torch.cumsum(nseg, 0) - nseg).index_select(0, band)
        ns = nstrip.index_select(0, band)
        row = r0.index_select(0, band) + local // ns
        col = c0.index_select(0, band) + (local % ns) * w
        self.band = band  # [S] band of each segment
        self.col, self.row = col, row  # [S] first pixel of each segment
        self.pix = ((keep // T).index_select(0, band) * H + row) * self.stride + col  # padded index
        per_chunk = max(1, chunk // w)
        n = band.numel()
        self.bounds = [(lo, min(lo + per_chunk, n)) for lo in range(0, n, per_chunk)]

    def segments_touching(self, pixels: torch.Tensor) -> torch.Tensor:
        """[S] bool: segments with at least one of ``pixels`` ([B*H*W] bool) among their cells."""
        B, H, W = self.shape
        w = self.strip
        img = torch.zeros(B * H, 1, self.stride, device=pixels.device)
        img[:, 0, :W] = pixels.view(B * H, W).to(img.dtype)
        window = torch.nn.functional.max_pool1d(img, w, 1).view(B * H, -1)  # any of cols c..c+w-1
        return window[self.pix // self.stride, self.pix % self.stride] > 0

    def unpad(self, t: torch.Tensor) -> torch.Tensor:
        """[B*H*stride] padded buffer -> [B*H*W]."""
        B, H, W = self.shape
        return t.view(B, H, self.stride)[..., :W].reshape(-1)


def _band_table(xy: torch.Tensor, layout: _Layout) -> torch.Tensor:
    """[N,3,7] per band and edge k (from vertex a = v_k to v_k+1): (ax, ay, nx, ny, ux, uy, L), with
    u the unit direction, n the inward unit normal and L the length; differentiable in ``xy``."""
    dt = xy.dtype
    p = xy.index_select(0, layout.verts.reshape(-1)).view(-1, 3, 2)  # [N,3,2]
    e = p.roll(-1, 1) - p
    L2 = (e * e).sum(-1)
    nonzero = L2 > 1e-24
    L = torch.sqrt(torch.where(nonzero, L2, torch.ones_like(L2)))
    # A zero-length edge is a point: any orthonormal frame gives its distance; alternate the
    # frame's direction between edges so that a fully collapsed triangle is never "inside".
    fallback = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [1.0, 0.0]], dtype=dt, device=xy.device)
    u = torch.where(nonzero.unsqueeze(-1), e / L.unsqueeze(-1), fallback)
    with torch.no_grad():
        area = e[:, 0, 0] * (-e[:, 2, 1]) - e[:, 0, 1] * (-e[:, 2, 0])
        orient = torch.where(area < 0, -1.0, 1.0).to(dt).view(-1, 1)
    n = torch.stack([-u[..., 1], u[..., 0]], -1) * orient.unsqueeze(-1)
    return torch.cat([p, n, u, (L * nonzero).unsqueeze(-1)], -1)


def _segment_coefficients(table: torch.Tensor, layout: _Layout) -> tuple[torch.Tensor, torch.Tensor]:
    """[5,3,S] per-segment affine coefficients (h0, hx, t0, tx, L) of the edges k = 0, 1, 2, and the
    gathered band rows [S,3,7] (for the backward pass).

    For pixel i of a segment starting at p0: h = n·(p - a) = h0 + hx·i is the signed distance to
    edge k's line (positive inside) and τ = u·(p - a) = t0 + tx·i the position along the edge; the
    squared distance to the edge segment is h² + (τ - clamp(τ, 0, L))².
    """
    dt = table.dtype
    g = table.reshape(-1, 21).index_select(0, layout.band).view(-1, 3, 7)
    rel_x = layout.col.to(dt).unsqueeze(1) - g[..., 0]
    rel_y = layout.row.to(dt).unsqueeze(1) - g[..., 1]
    h0 = g[..., 2] * rel_x + g[..., 3] * rel_y
    t0 = g[..., 4] * rel_x + g[..., 5] * rel_y
    coef = torch.stack([h0, g[..., 2], t0, g[..., 4], g[..., 6]], 0)  # [5,S,3]
    return coef.transpose(1, 2).contiguous(), g


def _band_gradient(grad_coef: torch.Tensor, g: torch.Tensor, layout: _Layout) -> torch.Tensor:
    """Chain rule of :func:`_segment_coefficients`: [5,3,S] -> [N,3,7]."""
    dt = g.dtype
    gh0, ghx, gt0, gtx, gL = grad_coef.transpose(1, 2)  # each [S,3]
    rel_x = layout.col.to(dt).unsqueeze(1) - g[..., 0]
    rel_y = layout.row.to(dt).unsqueeze(1) - g[..., 1]
    nx, ny, ux, uy = g[..., 2], g[..., 3], g[..., 4], g[..., 5]
    per_seg = torch.stack([
        -(gh0 * nx + gt0 * ux), -(gh0 * ny + gt0 * uy),
        gh0 * rel_x + ghx, gh0 * rel_y, gt0 * rel_x + gtx, gt0 * rel_y, gL,
    ], -1)  # [S,3,7]
    n_bands = layout.draw.numel()
    return per_seg.new_zeros(n_bands, 21).index_add_(0, layout.band, per_seg.view(-1, 21)).view(n_bands, 3, 7)


def _cells(coef: torch.Tensor, i: torch.Tensor):
    """Per-cell geometry of a chunk of segments (coef [5,3,s], i [1,strip,1]): the sign of d (+1
    inside) and the squared distance to the outline, both [strip,s], and for the three edges the
    signed line distance h, the overshoot past the edge's ends m = τ - clamp(τ, 0, L) and the squared
    distance q = h² + m², each [3,strip,s]."""
    h0, hx, t0, tx, L = coef.unsqueeze(2)  # each [3,1,s]
    h = torch.addcmul(h0, hx, i)
    m = torch.addcmul(t0, tx, i)
    m.sub_(torch.clamp(m, min=torch.zeros_like(L), max=L))
    q = h * h
    q.addcmul_(m, m)
    sign = h.amin(0).sign_()
    return sign, q.amin(0), h, m, q


class _SoftCoverage(torch.autograd.Function):
    """Band table [N,3,7] -> coverage A = 1 - exp(S) per padded pixel, S = Σ log(1 - sigmoid(d/σ))
    accumulated in float64, and the nearest-triangle key (int64: smallest -d, then lowest band)."""

    @staticmethod
    def forward(ctx, table: torch.Tensor, layout: _Layout, wanted: torch.Tensor | None):
        coef, gathered = _segment_coefficients(table.detach(), layout)
        dev, w = coef.device, layout.strip
        s = torch.zeros(layout.num_padded, dtype=torch.float64, device=dev)
        key = torch.full((layout.num_padded,) if wanted is not None else (0,), _KEY_EMPTY, dtype=torch.int64,
                         device=dev)
        i = torch.arange(w, dtype=coef.dtype, device=dev).view(1, w, 1)
        ivl = torch.arange(w, device=dev).unsqueeze(1)
        for lo, hi in layout.bounds:
            sign, qmin, _, _, _ = _cells(coef[..., lo:hi], i)
            d = sign.mul_(qmin)
            pix = (layout.pix[lo:hi].unsqueeze(0) + ivl).reshape(-1)
            # log(1 - sigmoid(x)) = log(sigmoid(-x)); -inf deep inside is fine (A = 1 there).
            contrib = torch.sigmoid(d * (-1.0 / layout.sigma)).log_()
            s.index_add_(0, pix, contrib.reshape(-1).to(torch.float64))
            if wanted is not None:  # only segments that reach a pixel which needs a nearest triangle
                sel = wanted[lo:hi].nonzero().squeeze(1)
                if sel.numel() > 0:
                    dist = d.index_select(1, sel).neg_().clamp_(min=0.0).add_(0.0)  # +0.0, never -0.0
                    bits = dist.float().view(torch.int32).long()  # non-negative floats sort like ints
                    k = bits.bitwise_left_shift_(32).bitwise_or_(layout.band[lo:hi].index_select(0, sel).unsqueeze(0))
                    key.scatter_reduce_(0, pix.view(w, -1).index_select(1, sel).reshape(-1), k.reshape(-1), "amin")
        cover = (0.0 - torch.expm1(s)).to(coef.dtype)
        ctx.layout = layout
        ctx.save_for_backward(coef, gathered, s)
        ctx.mark_non_differentiable(key)
        return cover, key

    @staticmethod
    def backward(ctx, grad_cover: torch.Tensor, _grad_key):
        layout: _Layout = ctx.layout
        coef, gathered, s = ctx.saved_tensors
        dev, w, dt = coef.device, layout.strip, coef.dtype
        grad_s = (grad_cover * s.exp().neg_()).to(dt)  # dA/dS = -exp(S)
        grad = torch.empty_like(coef)
        iv = torch.arange(w, dtype=dt, device=dev)
        i = iv.view(1, w, 1)
        basis = torch.stack([torch.ones_like(iv), iv])  # [2,strip]: sums and i-weighted sums
        ivl = torch.arange(w, device=dev).unsqueeze(1)
        for lo, hi in layout.bounds:
            sign, qmin, h, m, q = _cells(coef[..., lo:hi], i)
            pix = (layout.pix[lo:hi].unsqueeze(0) + ivl).reshape(-1)
            # dS/dd = -sigmoid(d/σ)/σ and d = sign·min_k q_k: dL/dq_k = g_k/2 for the first argmin k.
            g = torch.sigmoid(qmin.mul_(sign).mul_(1.0 / layout.sigma))
            g.mul_(grad_s.index_select(0, pix).view_as(g)).mul_(sign).mul_(-2.0 / layout.sigma)
            gk = torch.empty_like(q)
            rest = torch.sign(q[0] - torch.minimum(q[1], q[2])).clamp_(min=0.0).mul_(g)  # q0 is not the minimum
            torch.sub(g, rest, out=gk[0])
            torch.mul(torch.sign(q[1] - q[2]).clamp_(min=0.0), rest, out=gk[2])  # ... and q1 > q2
            torch.sub(rest, gk[2], out=gk[1])
            rows = grad[..., lo:hi]  # [5,3,s]
            rows[0:2] = (basis @ (gk * h)).transpose(0, 1)  # dq/dh = 2h
            rows[2:4] = (basis @ (gk * m)).transpose(0, 1)  # dq/dτ = 2m
            rows[4] = gk.mul_(m.clamp_(min=0.0)).sum(1).neg_()  # dq/dL = -2 max(m, 0)
        return _band_gradient(grad, gathered, layout), None, None


def _nearest_point_rast(pos_flat: torch.Tensor, verts: torch.Tensor, pix: torch.Tensor, H: int, W: int,
                        want_db: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """For each pixel ``pix`` (index within its image) and the triangle with vertex rows ``verts``
    [M,3]: (u, v, z/w) [M,3] of the triangle's outline point closest to the pixel centre,
    differentiable in ``pos_flat`` [N,4], and the barycentric derivatives there
    (du/dX, du/dY, dv/dX, dv/dY) [M,4] in pixels (no gradient), like ``rast_db``."""
    m = verts.shape[0]
    p = pos_flat.t().gather(1, verts.t().reshape(1, -1).expand(4, 3 * m)).view(4, 3, m)
    x, y, z, w = p.unbind(0)  # each [3,M]
    w_safe = torch.where(w > 0, w, torch.ones_like(w))
    X = (x / w_safe + 1) * (W / 2) - 0.5
    Y = (y / w_safe + 1) * (H / 2) - 0.5
    px, py = (pix % W).to(X.dtype), (pix // W).to(X.dtype)
    ex, ey = X.roll(-1, 0) - X, Y.roll(-1, 0) - Y  # edge k: v_k -> v_k+1
    qx, qy = px - X, py - Y
    L = ex * ex + ey * ey
    ok = L > 0
    t = torch.where(ok, (qx * ex + qy * ey) / torch.where(ok, L, torch.ones_like(L)), torch.zeros_like(L))
    t = t.clamp(0.0, 1.0)
    with torch.no_grad():
        k = ((qx - t * ex) ** 2 + (qy - t * ey) ** 2).argmin(0)  # closest edge [M]
    cols = torch.arange(m, device=pix.device)
    tk = t[k, cols]
    slots = torch.arange(3, device=pix.device).view(3, 1)
    zero = torch.zeros_like(tk)
    bary = torch.where(slots == k, 1.0 - tk, torch.where(slots == (k + 1) % 3, tk, zero))  # screen space [3,M]
    persp = bary / w_safe
    total = persp.sum(0)
    rows = torch.stack([persp[0] / total, persp[1] / total, (bary * z / w_safe).sum(0)], 1)
    if not want_db:
        return rows, None
    with torch.no_grad():  # rast_db at the closest point, as TorchBackend.rasterize computes it
        cx = (X[k, cols] + tk * ex[k, cols] + 0.5) * (2.0 / W) - 1.0
        cy = (Y[k, cols] + tk * ey[k, cols] + 0.5) * (2.0 / H) - 1.0
        (x0, x1, x2), (y0, y1, y2), (w0, w1, w2) = x, y, w
        q0, q1, q2 = x0 - cx * w0, x1 - cx * w1, x2 - cx * w2
        r0, r1, r2 = y0 - cy * w0, y1 - cy * w1, y2 - cy * w2
        e0, e1 = q1 * r2 - q2 * r1, q2 * r0 - q0 * r2
        s = e0 + e1 + (q0 * r1 - q1 * r0)
        ex0, ex1, ex2 = w2 * r1 - w1 * r2, w0 * r2 - w2 * r0, w1 * r0 - w0 * r1
        ey0, ey1, ey2 = q2 * w1 - q1 * w2, q0 * w2 - q2 * w0, q1 * w0 - q0 * w1
        sx, sy = ex0 + ex1 + ex2, ey0 + ey1 + ey2
        s2 = torch.where(s != 0, s * s, torch.ones_like(s))
        db = torch.stack([(ex0 * s - e0 * sx) * (2.0 / W), (ey0 * s - e0 * sy) * (2.0 / H),
                          (ex1 * s - e1 * sx) * (2.0 / W), (ey1 * s - e1 * sy) * (2.0 / H)], 1) / s2.unsqueeze(1)
        db = torch.where((s != 0).unsqueeze(1), db, torch.zeros_like(db))
    return rows, db
