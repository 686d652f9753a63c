"""Pure-PyTorch implementation of the four primitives with nvdiffrast's semantics.

Runs wherever torch runs (CPU, CUDA, MPS).  The design follows the notes in
``shared/notes/rasterization.md``:

- rasterize: the visibility search (:mod:`studio.render.raster_search`: per-triangle setup,
  exact runs of covered pixels per box row from homogeneous edge functions, so triangles that
  cross the camera plane need no clipping, and one ``scatter_reduce(amin)`` over a key that packs
  depth and triangle index: closest wins, ties go to the lower index) runs without autograd; the
  winners' barycentrics and depth are then recomputed from ``pos`` with differentiable
  arithmetic, which is where gradients come from.
- antialias: pixel pairs with different triangles, the front one's exit edge, its crossing
  position, and a blend whose weight depends continuously on the edge's projected vertices.

Work scales with covered pixels, not pixels x triangles or bounding boxes.
"""

from __future__ import annotations

import torch

from .backend import RenderInputError
from .barycentrics import barycentric_derivatives, plane_ratios, triangle_planes
from .checks import FLOAT32_64, check_finite, check_pos_tri, check_rast, check_resolution, check_tensor
from .compiled import Kernel, interpolate_rows
from .edge_grad import DEFAULT_DEPTH_TOLERANCE, checked_edge_grad
from .raster_search import DrawList, is_closed, search
from .topology import Topology, build_topology

# Candidates per chunk of the fragment search (about 60 bytes of temporaries each).  Chunks that
# stay in cache are faster than one big pass; 2**22 is the ceiling for exact float indices.
DEFAULT_CHUNK_FRAGMENTS = 1 << 18
_MAX_CHUNK_FRAGMENTS = 1 << 22
# Crossings slightly outside the pixel segment still count (1/16 px, as in the reference).
_AA_EPS = 1.0 / 16.0


def _resolve_device(device: torch.device | str | None) -> torch.device:
    if device is None:
        return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


class TorchBackend:
    """nvdiffrast's primitives in pure PyTorch.  See :class:`studio.render.backend.Backend`.

    Args:
        device: where tensors live (default: the current CUDA device, else the CPU).
        chunk_fragments: candidate pixels the visibility search handles at once (bounds memory).
        cull_back_faces: skip clockwise (back-facing) triangles in ``rasterize`` where that cannot
            change the image: the mesh is closed (every edge shared by two consistently wound
            triangles) and no vertex lies behind the near plane.  It assumes the camera is outside
            the mesh and faces wind counter-clockwise seen from outside (trimesh's and OpenGL's
            convention).  Off by default: nvdiffrast never culls.
        compiled: run the per-pixel interpolation pass through ``torch.compile`` (see
            :mod:`studio.render.compiled`: faster at high resolutions, seconds of compilation at
            the first call, eager fallback when compilation fails).  Off by default.
    """

    name = "torch"

    def __init__(self, device: torch.device | str | None = None, chunk_fragments: int = DEFAULT_CHUNK_FRAGMENTS,
                 cull_back_faces: bool = False, compiled: bool = False):
        self.device = _resolve_device(device)
        if not 1 <= int(chunk_fragments) <= _MAX_CHUNK_FRAGMENTS:
            raise ValueError(f"chunk_fragments must be between 1 and {_MAX_CHUNK_FRAGMENTS}, got {chunk_fragments}.")
        self.chunk_fragments = int(chunk_fragments)
        self.cull_back_faces = bool(cull_back_faces)
        self._interpolate_rows = Kernel(interpolate_rows, bool(compiled))
        self._topology: Topology | None = None
        self._closed_cache: tuple[Topology, bool] | None = None

    @property
    def compiled(self) -> bool:
        """True while the interpolation pass runs compiled (False when off or after a failed compile)."""
        return self._interpolate_rows.compiled

    def __repr__(self) -> str:
        return f"TorchBackend(device={self.device}{', compiled' if self.compiled else ''})"

    # ------------------------------------------------------------------ rasterize

    def rasterize(
        self,
        pos: torch.Tensor,
        tri: torch.Tensor,
        resolution: tuple[int, int],
        ranges: torch.Tensor | None = None,
        grad_db: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        pos, tri, ranges = check_pos_tri(pos, tri, ranges, self.device, FLOAT32_64)
        H, W = check_resolution(resolution)
        draws = DrawList.build(pos, tri, ranges)
        B = draws.num_images
        win_pix, win_draw = self._search(draws, tri, H, W)

        # Differentiable recomputation of (u, v, z/w) for the winning fragment of each pixel, from
        # per-triangle planes (see studio.render.barycentrics).
        planes = triangle_planes(draws.pos_flat, draws.verts)
        px, py = _pixel_ndc(win_pix % W, (win_pix // W) % H, W, H, pos.dtype)
        uvz = plane_ratios(planes, win_draw, px, py)
        tri_id = (draws.tri_id.index_select(0, win_draw) + 1).to(pos.dtype)
        rast = _scatter_rows(torch.cat([uvz, tri_id.unsqueeze(1)], 1), win_pix, B * H * W).view(B, H, W, 4)
        if not grad_db:
            return rast, torch.zeros(B, H, W, 0, dtype=pos.dtype, device=pos.device)
        db = barycentric_derivatives(planes, win_draw, px, py, uvz[:, :2], H, W)
        return rast, _scatter_rows(db, win_pix, B * H * W).view(B, H, W, 4)

    def _search(self, draws: DrawList, tri: torch.Tensor, H: int, W: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Winning (flat pixel, draw) pairs, int64 [N] each; see :func:`raster_search.search`."""
        cull = self.cull_back_faces and self._closed(tri)
        if cull:
            # A closed mesh shows its back faces wherever the near plane cuts it open.
            p = draws.pos_flat.detach()
            cull = bool(((p[:, 3] > 0) & (p[:, 2] >= -p[:, 3])).all())
        return search(draws, H, W, self.chunk_fragments, cull_back=cull)

    def _closed(self, tri: torch.Tensor) -> bool:
        topo = self._topology_for(tri, None)
        if self._closed_cache is None or self._closed_cache[0] is not topo:
            self._closed_cache = (topo, is_closed(topo))
        return self._closed_cache[1]

    # ------------------------------------------------------------------ interpolate

    def interpolate(
        self,
        attr: torch.Tensor,
        rast: torch.Tensor,
        tri: torch.Tensor,
        rast_db: torch.Tensor | None = None,
        diff_attrs: str | list[int] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        attr = check_tensor("attr", attr, dtype=FLOAT32_64, ndims=(2, 3), device=self.device,
                            expected="[B,V,C] or [V,C] float32 vertex attributes")
        rast = check_rast("rast", rast, self.device, FLOAT32_64)
        tri = check_tensor("tri", tri, dtype=torch.int32, ndims=(2,), last=3, device=self.device,
                           expected="[T,3] int32 vertex indices")
        B, H, W, _ = rast.shape
        if attr.dim() == 2:
            attr = attr.unsqueeze(0)
        if attr.shape[0] not in (1, B):
            raise RenderInputError(
                f"attr has batch size {attr.shape[0]} but rast has {B}; give [B,V,C] or [1,V,C] / [V,C]."
            )
        V, C = attr.shape[1], attr.shape[2]
        if tri.numel() > 0 and int(tri.max()) >= V:
            raise RenderInputError(f"tri holds vertex index {int(tri.max())} but attr has only {V} vertices.")
        pix, tri_idx = _covered(rast, tri.shape[0])
        verts = tri.long().index_select(0, tri_idx)  # [N,3]
        if attr.shape[0] > 1:
            verts = verts + (pix // (H * W) * V).unsqueeze(1)
        attr_flat = attr.reshape(-1, C)
        uv = rast.reshape(-1, 4)[:, :2].index_select(0, pix)
        out = self._interpolate_rows(attr_flat, verts, uv, pix, B * H * W).view(B, H, W, C)
        if diff_attrs is None:
            return out, torch.zeros(B, H, W, 0, dtype=out.dtype, device=out.device)
        if rast_db is None:
            raise RenderInputError("diff_attrs needs rast_db: call rasterize(..., grad_db=True) and pass rast_db.")
        rast_db = check_rast("rast_db", rast_db, self.device, FLOAT32_64)
        if rast_db.shape != rast.shape:
            raise RenderInputError(f"rast_db must have the shape of rast {tuple(rast.shape)}, got {tuple(rast_db.shape)}.")
        if diff_attrs == "all":
            chans = list(range(C))
        else:
            chans = [int(c) for c in diff_attrs]
            if any(c < 0 or c >= C for c in chans):
                raise RenderInputError(f"diff_attrs must list channel indices in 0..{C - 1}, got {diff_attrs!r}.")
        a0, a1, a2 = (attr_flat.index_select(0, verts[:, k]) for k in range(3))
        d0, d1 = a0 - a2, a1 - a2
        dudx, dudy, dvdx, dvdy = (t.unsqueeze(1) for t in rast_db.reshape(-1, 4).index_select(0, pix).unbind(1))
        if chans != list(range(C)):
            sel = torch.tensor(chans, device=attr.device)
            d0, d1 = d0.index_select(1, sel), d1.index_select(1, sel)
        da = torch.stack([d0 * dudx + d1 * dvdx, d0 * dudy + d1 * dvdy], 2).reshape(-1, 2 * len(chans))
        return out, _scatter_rows(da, pix, B * H * W).view(B, H, W, 2 * len(chans))

    # ------------------------------------------------------------------ texture

    def texture(
        self,
        tex: torch.Tensor,
        uv: torch.Tensor,
        uv_da: torch.Tensor | None = None,
        mip_level_bias: torch.Tensor | None = None,
        filter_mode: str = "auto",
        boundary_mode: str = "wrap",
        max_mip_level: int | None = None,
    ) -> torch.Tensor:
        from .texture import sample_texture

        return sample_texture(tex, uv, uv_da, mip_level_bias, filter_mode, boundary_mode, max_mip_level,
                              device=self.device)

    # ------------------------------------------------------------------ antialias

    def construct_topology(self, tri: torch.Tensor) -> Topology:
        tri = check_tensor("tri", tri, dtype=torch.int32, ndims=(2,), last=3, device=self.device,
                           expected="[T,3] int32 vertex indices")
        return build_topology(tri)

    def _topology_for(self, tri: torch.Tensor, topology_hash: object | None) -> Topology:
        if topology_hash is not None:
            if not isinstance(topology_hash, Topology) or not topology_hash.matches(tri):
                raise RenderInputError(
                    "topology_hash does not belong to this tri; build it with backend.construct_topology(tri)."
                )
            return topology_hash
        # One-entry cache: a render loop antialiases the same mesh every step.
        if self._topology is None or not self._topology.matches(tri):
            self._topology = build_topology(tri)
        return self._topology

    def antialias(
        self,
        color: torch.Tensor,
        rast: torch.Tensor,
        pos: torch.Tensor,
        tri: torch.Tensor,
        topology_hash: object | None = None,
        pos_gradient_boost: float = 1.0,
    ) -> torch.Tensor:
        color = check_tensor("color", color, dtype=FLOAT32_64, ndims=(4,), device=self.device,
                             expected="[B,H,W,C] float32 image")
        rast = check_rast("rast", rast, self.device, FLOAT32_64)
        if color.shape[:3] != rast.shape[:3]:
            raise RenderInputError(
                f"color is {tuple(color.shape[:3])} in [B,H,W] but rast is {tuple(rast.shape[:3])}; they must match."
            )
        ranges = None
        if pos.dim() == 2:
            ranges = torch.zeros(0, 2, dtype=torch.int32)
        pos, tri, _ = check_pos_tri(pos, tri, ranges, self.device, FLOAT32_64)
        if pos.dim() == 3 and pos.shape[0] != rast.shape[0]:
            raise RenderInputError(f"pos has batch size {pos.shape[0]} but rast has {rast.shape[0]}.")
        check_finite("color", color)
        topo = self._topology_for(tri, topology_hash)
        return _antialias(color, rast, pos, tri.long(), topo.opposite, float(pos_gradient_boost))

    def edge_grad(self, color: torch.Tensor, rast: torch.Tensor, pos: torch.Tensor, tri: torch.Tensor,
                  depth_tolerance: float = DEFAULT_DEPTH_TOLERANCE) -> torch.Tensor:
        return checked_edge_grad(color, rast, pos, tri, self.device, FLOAT32_64, depth_tolerance)


# ---------------------------------------------------------------------- helpers


def _pixel_ndc(col: torch.Tensor, row: torch.Tensor, W: int, H: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """NDC of pixel centres: column j -> (2j+1)/W - 1, row i -> (2i+1)/H - 1."""
    return (2 * col + 1).to(dtype) / W - 1.0, (2 * row + 1).to(dtype) / H - 1.0


def _scatter_rows(vals: torch.Tensor, idx: torch.Tensor, rows: int) -> torch.Tensor:
    """[rows, C] zeros with ``vals`` [N,C] written at row ``idx`` (differentiable in vals)."""
    return vals.new_zeros(rows, vals.shape[1]).index_copy(0, idx, vals)


def _covered(rast: torch.Tensor, num_tri: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat indices of covered pixels and their 0-based triangle indices."""
    tid = rast[..., 3].detach().reshape(-1)
    pix = (tid > 0).nonzero().squeeze(1)
    tri_idx = tid[pix].long() - 1
    if tri_idx.numel() > 0 and int(tri_idx.max()) >= num_tri:
        raise RenderInputError(
            f"rast refers to triangle {int(tri_idx.max())} but tri has only {num_tri}; pass the tri that was rasterized."
        )
    return pix, tri_idx


def _antialias(color: torch.Tensor, rast: torch.Tensor, pos: torch.Tensor, tri: torch.Tensor,
               opposite: torch.Tensor, boost: float) -> torch.Tensor:
    B, H, W, C = color.shape
    V = pos.shape[-2]
    batched_pos = pos.dim() == 3
    with torch.no_grad():
        tid = rast[..., 3].contiguous()  # [B,H,W] float triangle id + 1, 0 = background
        tflat, zflat = tid.view(-1), rast[..., 2].reshape(-1)
        vb = pos.detach().reshape(-1 if batched_pos else 1, V, 4)
        sil = _silhouette_edges(vb, tri, opposite, H, W)  # [nb,T,3]
        # Pixel pairs whose front triangle has no silhouette edge at all can never blend; on a
        # closed mesh that removes almost every pair inside the outline before any geometry.
        has_sil = torch.cat([torch.zeros(sil.shape[0], 1, dtype=torch.bool, device=sil.device), sil.any(-1)], 1)
        parts = []
        # Only the sparse pairs with different ids are looked at further (one dense pass each way).
        for d, (differ, step) in enumerate((
            (tid[:, :, :-1] != tid[:, :, 1:], 1),
            (tid[:, :-1, :] != tid[:, 1:, :], W),
        )):
            b, i, j = differ.nonzero().unbind(1)
            p0 = (b * H + i) * W + j
            t0, t1 = tflat.index_select(0, p0), tflat.index_select(0, p0 + step)
            z0, z1 = zflat.index_select(0, p0), zflat.index_select(0, p0 + step)
            front1 = (t0 == 0) | ((t1 > 0) & (z1 <= z0))  # pixel 1 holds the front surface
            ftri = torch.where(front1, t1, t0).long()  # 1-based
            img = b if batched_pos else torch.zeros_like(b)
            keep = has_sil.view(-1).index_select(0, img * has_sil.shape[1] + ftri).nonzero().squeeze(1)
            p0, front1, ftri, b = (t.index_select(0, keep) for t in (p0, front1, ftri, b))
            parts.append((p0, p0 + step, front1, ftri - 1, b, torch.full_like(b, d)))
        p0, p1, f1, ftri, b, d = (torch.cat(t) for t in zip(*parts))
        if p0.numel() == 0:
            return color
        sel, k = _aa_select(p0, f1, ftri, b if batched_pos else torch.zeros_like(b), d.bool(), pos, tri, sil, H, W)
        if sel.numel() == 0:
            return color
        p0, p1, f1, ftri, b, d = (t[sel] for t in (p0, p1, f1, ftri, b, d))

    # Differentiable part, only for the pairs that blend.
    dc = _aa_crossing(p0, f1, ftri, b, d.bool(), k, pos, tri, H, W)
    if boost != 1.0:
        dc = dc.detach() + boost * (dc - dc.detach())
    ds = torch.where(f1, -1.0, 1.0).to(dc.dtype)
    alpha = ds * (0.5 - dc.clamp(0.0, 1.0))
    with torch.no_grad():
        target = torch.where(alpha > 0, p0, p1)
    color_flat = color.reshape(-1, C)
    c01 = color_flat.index_select(0, torch.cat([p0, p1])).view(2, -1, C)
    # nvdiffrast's rule: pixel 0 moves towards pixel 1 when alpha > 0, else pixel 1 towards
    # pixel 0 (by -alpha); every blend reads the unmodified input colours.
    delta = alpha.unsqueeze(1) * (c01[1] - c01[0])
    return color_flat.index_add(0, target, delta).view(B, H, W, C)


def _pair_frame(p0: torch.Tensor, f1: torch.Tensor, ftri: torch.Tensor, b: torch.Tensor, d: torch.Tensor,
                pos: torch.Tensor, tri: torch.Tensor, H: int, W: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Front triangle's vertices [3,M] relative to the front pixel's centre, axes swapped for
    vertical pairs so that the other pixel always lies along +-x."""
    V = pos.shape[-2]
    front_pix = p0 + f1.long() * torch.where(d, W, 1)
    col, row = front_pix % W, (front_pix // W) % H
    verts = tri.index_select(0, ftri)
    if pos.dim() == 3:
        verts = verts + (b * V).unsqueeze(1)
    m = verts.shape[0]
    coords = pos.reshape(-1, 4).t().gather(1, verts.t().reshape(1, -1).expand(4, 3 * m)).view(4, 3, m)
    cx, cy, _, cw = coords.unbind(0)
    X = (cx / cw + 1) * (W / 2) - 0.5 - col.to(cx.dtype)
    Y = (cy / cw + 1) * (H / 2) - 0.5 - row.to(cy.dtype)
    return torch.where(d, Y, X), torch.where(d, X, Y)


def _aa_select(p0, f1, ftri, b, d, pos, tri, sil, H, W):
    """Which candidate pairs blend, and through which edge of the front triangle.

    Returns indices of the blending pairs and their edge index k (edge k joins vertices k+1 and
    k+2).  The edge is the one where the front triangle exits towards the other pixel (largest
    crossing of the pixel row), it must be a silhouette, at least as steep across the pair as
    along it, and cross within 1/16 px of the segment between the two centres.
    """
    x, y = _pair_frame(p0, f1, ftri, b, d, pos, tri, H, W)
    ds = torch.where(f1, -1.0, 1.0).to(x.dtype)
    xa, ya, xb, yb = x.roll(-1, 0), y.roll(-1, 0), x.roll(-2, 0), y.roll(-2, 0)
    dx, dy = xb - xa, yb - ya
    straddles = (ya >= 0) != (yb >= 0)
    dys = torch.where(straddles, dy, torch.ones_like(dy))
    cross_pos = torch.where(straddles, ds * (xa * dys - ya * dx) / dys, -float("inf"))
    k = cross_pos.argmax(0)
    m = torch.arange(k.numel(), device=k.device)
    best = cross_pos[k, m]
    good = (
        (best > -_AA_EPS) & (best < 1 + _AA_EPS)
        & sil[b, ftri, k]
        & (dy[k, m].abs() >= dx[k, m].abs())
    )
    sel = good.nonzero().squeeze(1)
    return sel, k[sel]


def _aa_crossing(p0, f1, ftri, b, d, k, pos, tri, H, W):
    """Crossing position [M] of edge k along the pair, measured from the front pixel (0 = its
    centre, 1 = the other pixel's centre), differentiable in ``pos``."""
    x, y = _pair_frame(p0, f1, ftri, b, d, pos, tri, H, W)
    m = torch.arange(k.numel(), device=k.device)
    ka, kb = (k + 1) % 3, (k + 2) % 3
    xa, ya, xb, yb = x[ka, m], y[ka, m], x[kb, m], y[kb, m]
    dx, dy = xb - xa, yb - ya
    ds = torch.where(f1, -1.0, 1.0).to(x.dtype)
    return ds * (xa * dy - ya * dx) / dy


def _screen(p: torch.Tensor, H: int, W: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Clip-space [...,4] -> continuous pixel coordinates with pixel (i, j) centred at (j, i)."""
    inv_w = 1.0 / p[..., 3]
    return (p[..., 0] * inv_w + 1) * (W / 2) - 0.5, (p[..., 1] * inv_w + 1) * (H / 2) - 0.5


def _silhouette_edges(vb: torch.Tensor, tri: torch.Tensor, opposite: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """[nb,T,3] True where edge k of a triangle can be a silhouette in screen space.

    An edge is a silhouette when the neighbour's opposite vertex projects to the same side of the
    edge as the triangle's own third vertex (the surface folds back) or when there is no
    neighbour.  Edges with a vertex at or behind the camera plane are skipped.
    """
    X, Y = _screen(vb, H, W)  # [nb,V]
    wpos = vb[..., 3] > 0
    k = torch.arange(3, device=vb.device)
    ia, ib = tri[:, (k + 1) % 3], tri[:, (k + 2) % 3]  # edge k endpoints [T,3]
    ic, io = tri, opposite  # own third vertex, opposite vertex across
    ax, ay, bx, by = X[:, ia], Y[:, ia], X[:, ib], Y[:, ib]
    own = (bx - ax) * (Y[:, ic] - ay) - (by - ay) * (X[:, ic] - ax)
    opp = (bx - ax) * (Y[:, io] - ay) - (by - ay) * (X[:, io] - ax)
    same_side = (own >= 0) == (opp >= 0)
    ok = wpos[:, ia] & wpos[:, ib] & wpos[:, ic] & wpos[:, io]
    return same_side & ok
