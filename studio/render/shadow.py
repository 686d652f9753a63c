"""Shadow maps for rasterized scenes, with a soft visibility term that has gradients.

For each directional light the scene is rasterized once more, with the same backend, from the
light: an orthographic view fitted to the scene's bounding sphere (:class:`LightFrame`).  The map
keeps, per texel, the light-space depth of the nearest surface (from ``rasterize``'s z/w, so it is
differentiable in the occluders' vertex positions and, through the light's frame, in the light
direction) and its coverage, antialiased with the backend's ``antialias`` so that occluder
outlines move under gradients too.

Visibility of a shaded point p with light-space position (x, y) and depth z (scene units, growing
away from the light), for a light of angular radius θ (its *penumbra* parameter):

- ``hard``: the nearest texel, a step comparison ``z - bias > d``: 0 or 1.  Piecewise constant in
  everything, so the shadow gives the light, the penumbra and the occluders *no* gradient (the
  teaching lesson; the light still gets gradients from n·l shading).
- ``soft``: a percentage-closer soft shadow in the spirit of PCSS (Fernando 2005).  Every lookup is
  a bilinear blend of the four nearest texels' soft occlusion ``c_i · sigmoid((z - bias - d_i) / τ)``
  (τ = bias / 6, coverage c_i antialiased), so it is continuous in the lookup position.  A blocker
  search over a disk of radius (z - z_near)·tan θ gives the mean blocker depth z_b; the penumbra is
  w = (z - z_b)·tan θ (what a disc light of angular radius θ casts); the visibility is 1 minus the
  mean occlusion of taps spread over a disk of radius sqrt(w² + texel²) around (x, y).  Gradients
  reach the light direction (lookup positions and depths), θ (tap radii), the bias, and occluder
  vertices (depths and antialiased coverage).

The bias grows with the receiver's slope towards the light times the filter radius (receiver-plane
bias), so wide filters on tilted ground do not shadow the ground itself.  All tensors are float32
or float64 on the backend's device; nothing here knows about scenes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .backend import Backend, RenderInputError

SHADOW_MODES = ("off", "hard", "soft")
#: Taps of the blocker search and of the filter (a Vogel disk each).
SEARCH_TAPS = 8
FILTER_TAPS = 16
# Depth range of the light's orthographic view, as a multiple of the bounding radius: a margin so
# the scene never touches the near or far plane.
_DEPTH_MARGIN = 1.1
_MAX_SLOPE = 8.0


class ShadowError(RenderInputError):
    """A shadow mode or setting the renderer cannot use; the message is one sentence (a user error,
    reported like any bad render input)."""


def check_mode(mode: object) -> str:
    """``mode`` if it is one of :data:`SHADOW_MODES`.

    Raises:
        ShadowError: anything else.
    """
    if mode not in SHADOW_MODES:
        raise ShadowError(f"shadows must be one of {', '.join(SHADOW_MODES)}, got {mode!r}.")
    return str(mode)


@dataclass(frozen=True)
class LightFrame:
    """The orthographic view of one directional light, fitted to a bounding sphere.

    Attributes:
        axes: [3,3] rows (right, up, towards the light), orthonormal, world space; differentiable
            in the light direction.
        center: [3] centre of the bounding sphere (world, no gradient).
        radius: its radius in scene units.
    """

    axes: torch.Tensor
    center: torch.Tensor
    radius: float

    def to_light(self, points: torch.Tensor) -> torch.Tensor:
        """[...,3] world points -> [...,3] (x, y) in NDC of the map ([-1, 1] inside the sphere) and
        depth z in scene units, growing away from the light (0 at the centre)."""
        rel = points - self.center
        local = rel @ self.axes.T
        return torch.stack([local[..., 0] / self.radius, local[..., 1] / self.radius, -local[..., 2]], -1)

    def clip(self, points: torch.Tensor) -> torch.Tensor:
        """[V,3] world points -> [V,4] clip-space positions of the orthographic view (w = 1)."""
        lp = self.to_light(points)
        z = lp[..., 2:] / (self.radius * _DEPTH_MARGIN)
        return torch.cat([lp[..., :2], z, torch.ones_like(z)], -1)


def light_frame(direction: torch.Tensor, center: torch.Tensor, radius: float) -> LightFrame:
    """The frame of a light shining from ``direction`` [3] (towards the light, any length) onto a
    bounding sphere (``center`` [3], ``radius`` > 0 in scene units)."""
    d = torch.nn.functional.normalize(direction, dim=-1)
    # The reference "up" switches away from a light straight overhead, where it would be parallel.
    ref = torch.tensor([0.0, 0.0, 1.0] if abs(float(d[1].detach())) > 0.9 else [0.0, 1.0, 0.0], dtype=d.dtype, device=d.device)
    right = torch.nn.functional.normalize(torch.linalg.cross(ref, d), dim=-1)
    up = torch.linalg.cross(d, right)
    return LightFrame(torch.stack([right, up, d]), center.detach(), float(radius))


def bounding_sphere(points: torch.Tensor) -> tuple[torch.Tensor, float]:
    """(centre [3], radius) of the axis-aligned box around ``points`` [V,3], without gradients."""
    p = points.detach()
    center = (p.min(0).values + p.max(0).values) / 2
    return center, max(float((p - center).norm(dim=-1).max()) * 1.02, 1e-6)


@dataclass(frozen=True)
class ShadowMap:
    """One light's map: ``table`` [S*S, 2] (depth in scene units, coverage in [0, 1]) per texel in
    the rasterizer's row order (row 0 at map NDC y = -1), ``size`` S, and the light's frame.
    Empty texels have coverage 0."""

    table: torch.Tensor
    size: int
    frame: LightFrame


def render_shadow_maps(backend: Backend, vertices: torch.Tensor, tri: torch.Tensor, directions: torch.Tensor,
                       size: int, topology: object | None = None, antialias: bool = True) -> list[ShadowMap]:
    """Rasterize the scene from every light.

    Args:
        backend: the render backend (the scene's).
        vertices: [V,3] world-space vertex positions of every object (occluders and receivers).
        tri: [T,3] int32 triangles over shared vertices.
        directions: [L,3] directions towards each light.
        size: map resolution S in texels (square).
        topology: optional ``backend.construct_topology(tri)`` for the antialiasing.
        antialias: antialias the coverage (gradients for occluder outlines); hard shadows, which
            have no gradient, skip it.

    Returns:
        One :class:`ShadowMap` per light.
    """
    if size < 8:
        raise ShadowError(f"the shadow map resolution must be at least 8 texels, got {size}.")
    center, radius = bounding_sphere(vertices)
    frames = [light_frame(d, center, radius) for d in directions]
    pos = torch.stack([f.clip(vertices) for f in frames]).contiguous()
    rast, _ = backend.rasterize(pos, tri, (size, size), grad_db=False)
    cover = (rast[..., 3:] > 0).to(pos.dtype)
    depth = rast[..., 2:3] * (radius * _DEPTH_MARGIN)
    # Premultiplied: antialiasing blends coverage across outlines, and dividing the blended
    # coverage-weighted depth back out keeps the occluder's own depth on both sides of its edge.
    blended = torch.cat([cover, cover * depth], -1)
    if antialias:
        blended = backend.antialias(blended.contiguous(), rast, pos, tri, topology_hash=topology)
    cov = blended[..., :1]
    far = radius * _DEPTH_MARGIN
    d = torch.where(cov > 1e-6, blended[..., 1:] / cov.clamp(min=1e-6), torch.full_like(cov, far))
    table = torch.cat([d, cov.clamp(0.0, 1.0)], -1).reshape(len(frames), size * size, 2)
    return [ShadowMap(table[i], size, f) for i, f in enumerate(frames)]


def _vogel_disk(n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """[n,2] points spread evenly over the unit disk (golden-angle spiral)."""
    k = torch.arange(n, dtype=dtype, device=device)
    r = ((k + 0.5) / n).sqrt()
    a = k * math.pi * (3.0 - math.sqrt(5.0))
    return torch.stack([r * a.cos(), r * a.sin()], -1)


def _bilinear(smap: ShadowMap, xy: torch.Tensor):
    """The four texels around map NDC positions ``xy`` [...,2]: (weights [...,4], texels [...,4,2])."""
    s = smap.size
    j = (xy[..., 0] + 1) * (s / 2) - 0.5
    i = (xy[..., 1] + 1) * (s / 2) - 0.5
    j0, i0 = j.detach().floor(), i.detach().floor()
    fj, fi = j - j0, i - i0
    j0, i0 = j0.long(), i0.long()
    w = torch.stack([(1 - fi) * (1 - fj), (1 - fi) * fj, fi * (1 - fj), fi * fj], -1)
    rows = torch.stack([i0, i0, i0 + 1, i0 + 1], -1).clamp(0, s - 1)
    cols = torch.stack([j0, j0 + 1, j0, j0 + 1], -1).clamp(0, s - 1)
    texels = smap.table.index_select(0, (rows * s + cols).reshape(-1)).reshape(*w.shape, 2)
    return w, texels


def _slope(normals: torch.Tensor, frame: LightFrame) -> torch.Tensor:
    """[N] tangent of the angle between the receiver's normal and the light (how fast its own
    depth changes per unit across the map), capped."""
    c = (normals * frame.axes[2]).sum(-1).abs().clamp(min=1e-3)
    return ((1 - c * c).clamp(min=0).sqrt() / c).clamp(max=_MAX_SLOPE)


def _soft_occlusion(smap: ShadowMap, xy: torch.Tensor, z: torch.Tensor, bias: torch.Tensor):
    """Bilinear soft occlusion at taps ``xy`` [N,K,2] of receivers at depth ``z`` [N,1] with bias
    [N,K]: (occlusion [N,K], occlusion-weighted blocker depth [N,K])."""
    w, tex = _bilinear(smap, xy)
    tau = bias.unsqueeze(-1) / 6
    occ = tex[..., 1] * torch.sigmoid((z.unsqueeze(-1) - bias.unsqueeze(-1) - tex[..., 0]) / tau)
    return (w * occ).sum(-1), (w * occ * tex[..., 0]).sum(-1)


def visibility(smap: ShadowMap, points: torch.Tensor, normals: torch.Tensor, mode: str,
               bias: torch.Tensor | float, penumbra_deg: torch.Tensor | float) -> torch.Tensor:
    """Visibility in [0, 1] (1 = lit) of receivers from one light's map.

    Args:
        smap: the light's :class:`ShadowMap`.
        points: [N,3] world-space receiver positions.
        normals: [N,3] their unit normals (either side), for the slope-scaled bias.
        mode: "hard" or "soft" (see the module docstring).
        bias: depth bias in scene units (> 0), a float or a tensor with one element.
        penumbra_deg: the light's angular radius θ in degrees (soft mode), one element.

    Returns:
        [N] visibility; differentiable in soft mode, constant (no gradient) in hard mode.
    """
    mode = check_mode(mode)
    frame = smap.frame
    dt, dev = points.dtype, points.device
    bias = torch.as_tensor(bias, dtype=dt, device=dev).reshape(()).clamp(min=1e-5)
    texel = 2.0 * frame.radius / smap.size  # scene units per texel
    lp = frame.to_light(points)
    xy, z = lp[:, :2], lp[:, 2:]
    if mode == "off":
        return torch.ones(points.shape[0], dtype=dt, device=dev)
    slope = _slope(normals, frame)
    if mode == "hard":
        with torch.no_grad():
            s = smap.size
            j = ((xy[:, 0] + 1) * (s / 2)).floor().long().clamp(0, s - 1)
            i = ((xy[:, 1] + 1) * (s / 2)).floor().long().clamp(0, s - 1)
            tex = smap.table.index_select(0, i * s + j)
            hit = (tex[:, 1] > 0.5) & (z[:, 0] - bias - slope * 1.5 * texel > tex[:, 0])
            return (~hit).to(dt)
    tan_t = torch.tan(torch.deg2rad(torch.as_tensor(penumbra_deg, dtype=dt, device=dev).reshape(()).clamp(min=0.0)))
    to_ndc = 1.0 / frame.radius  # map NDC per scene unit

    search = ((z + frame.radius * _DEPTH_MARGIN) * tan_t).clamp(min=texel)  # [N,1] scene units
    taps = _vogel_disk(SEARCH_TAPS, dt, dev)
    b_search = bias + slope.unsqueeze(-1) * (1.5 * texel + search)  # [N,1]
    occ, occ_depth = _soft_occlusion(smap, xy.unsqueeze(1) + taps * (search * to_ndc).unsqueeze(-1), z,
                                     b_search.expand(-1, SEARCH_TAPS))
    weight = occ.sum(-1, keepdim=True)
    # Receivers with no blocker within the search radius (wider than any penumbra they could be
    # in) are lit, with no gradient to lose: only the others are filtered.
    near = (weight[:, 0] > 1e-4).nonzero().squeeze(-1)
    vis = torch.ones(points.shape[0], dtype=dt, device=dev)
    if near.numel() == 0:
        return vis
    z, xy, slope = z[near], xy[near], slope[near]
    blocker = occ_depth.sum(-1, keepdim=True)[near] / weight[near]
    width = (z - blocker).clamp(min=0.0) * tan_t
    radius = (width.square() + texel * texel).sqrt()  # the filter spans at least a texel
    taps = _vogel_disk(FILTER_TAPS, dt, dev)
    b_filter = bias + slope.unsqueeze(-1) * (1.5 * texel + radius)
    occ, _ = _soft_occlusion(smap, xy.unsqueeze(1) + taps * (radius * to_ndc).unsqueeze(-1), z,
                             b_filter.expand(-1, FILTER_TAPS))
    return vis.index_put((near,), 1.0 - occ.mean(-1))


def shadow_gbuffer_term(backend: Backend, vertices: torch.Tensor, tri: torch.Tensor, directions: torch.Tensor,
                        position: torch.Tensor, normal: torch.Tensor, *, mode: str, bias: torch.Tensor | float,
                        penumbra_deg: torch.Tensor, size: int, topology: object | None = None) -> torch.Tensor | None:
    """The G-buffer's ``shadow`` field for a rasterized scene.

    Args:
        backend, vertices, tri, directions, size, topology: as for :func:`render_shadow_maps`.
        position: [B,H,W,3] world-space surface positions (top row first).
        normal: [B,H,W,3] unit normals, zeros where no surface is shown (those pixels stay lit).
        mode: "off", "hard" or "soft".
        bias: depth bias in scene units.
        penumbra_deg: [L] angular radius of each light in degrees.

    Returns:
        [B,H,W,L] visibility in [0, 1] (1 = lit), or None when ``mode`` is "off" or there is no light.
    """
    mode = check_mode(mode)
    if mode == "off" or directions.shape[0] == 0:
        return None
    if mode == "soft":
        maps = render_shadow_maps(backend, vertices, tri, directions, size, topology)
    else:
        with torch.no_grad():
            maps = render_shadow_maps(backend, vertices.detach(), tri, directions.detach(), size, antialias=False)
    shown = normal.abs().sum(-1) > 0  # [B,H,W]
    idx = shown.reshape(-1).nonzero().squeeze(-1)
    pts = position.reshape(-1, 3).index_select(0, idx)
    nrm = normal.reshape(-1, 3).index_select(0, idx)
    out = []
    for li, smap in enumerate(maps):
        # Surfaces facing away from the light get none of it whatever their visibility: skipped.
        facing = ((nrm * smap.frame.axes[2].detach()).sum(-1) > 0).nonzero().squeeze(-1)
        vis = visibility(smap, pts.index_select(0, facing), nrm.index_select(0, facing), mode, bias, penumbra_deg[li])
        full = torch.ones(shown.numel(), dtype=position.dtype, device=position.device)
        out.append(full.index_put((idx.index_select(0, facing),), vis.to(position.dtype)))
    return torch.stack(out, -1).reshape(*shown.shape, len(maps))
