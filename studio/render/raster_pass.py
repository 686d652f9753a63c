"""Rasterize a triangle mesh into a :class:`GBuffer` (the mesh renderer's half of the pipeline).

One rasterize and one interpolate per batch (all vertex attributes travel together), a second
interpolate for UVs when the mesh has a separate UV index buffer, then everything is flipped to
top-row-first.  The returned ``finish`` applies silhouette antialiasing to a shaded image, which
is where gradients reach vertex positions at occlusion boundaries.  With ``soft_sigma`` the
silhouette gradients come from soft rasterization instead (:mod:`studio.render.soft_raster`).
"""

from __future__ import annotations

import torch

from .backend import Backend
from .gbuffer import GBuffer
from .soft_raster import soft_rasterize


def _top_first(t: torch.Tensor) -> torch.Tensor:
    return t.flip(1)


def raster_gbuffer(
    backend: Backend,
    pos_clip: torch.Tensor,
    tri: torch.Tensor,
    resolution: tuple[int, int],
    *,
    world_pos: torch.Tensor,
    normals: torch.Tensor,
    eye: torch.Tensor,
    forward: torch.Tensor,
    colors: torch.Tensor | None = None,
    uv: torch.Tensor | None = None,
    uv_tri: torch.Tensor | None = None,
    tri_object: torch.Tensor | None = None,
    antialias: bool = True,
    topology: object | None = None,
    soft_sigma: float | None = None,
) -> GBuffer:
    """Rasterize and interpolate the surface attributes of a mesh.

    Args:
        backend: the render backend.
        pos_clip: [B,V,4] clip-space positions (one camera per batch image).
        tri: [T,3] int32 triangles over shared vertices.
        resolution: (height, width) in pixels.
        world_pos: [V,3] world-space vertex positions.
        normals: [V,3] world-space vertex normals (normalised per pixel after interpolation).
        eye: [B,3] camera positions in world space.
        forward: [B,3] unit viewing directions of the cameras (for depth).
        colors: optional [V,3] per-vertex colours, returned as ``albedo``.
        uv: optional [Vt,2] texture coordinates indexed by ``uv_tri`` [T,3] int32 (or by ``tri``
            when ``uv_tri`` is None).
        tri_object: optional [T] int64 object index of each triangle (default 0).
        antialias: let ``finish`` apply silhouette antialiasing (off only to show what it does).
        topology: optional ``backend.construct_topology(tri)`` result, reused across calls.
        soft_sigma: when set (σ in squared pixels, > 0; None or 0 = off), soft rasterization
            replaces antialiasing: ``coverage`` is the soft silhouette; pixels outside the hard
            coverage carry the surface of their nearest triangle (position, normal, view_dir,
            albedo, uv and object_id, so materials apply there; mask, depth and tri_id stay hard);
            ``finish`` is the identity because compositing over the background with ``coverage``
            is the soft step.

    Returns:
        A top-row-first :class:`GBuffer`.
    """
    rast, rast_db = backend.rasterize(pos_clip, tri, resolution, grad_db=uv is not None)
    soft = None
    if soft_sigma:
        soft = soft_rasterize(pos_clip, tri, rast, soft_sigma, rast_db=rast_db if uv is not None else None)
    surface = rast if soft is None else soft.rast  # which triangle and where, for the attributes
    parts = [world_pos, normals] + ([colors] if colors is not None else [])
    attrs, _ = backend.interpolate(torch.cat(parts, 1).contiguous(), surface, tri)
    position, normal = attrs[..., 0:3], attrs[..., 3:6]
    mask = (rast[..., 3:] > 0).to(position.dtype)
    shown = mask if soft is None else (surface[..., 3:] > 0).to(position.dtype)
    normal = torch.nn.functional.normalize(normal, dim=-1) * shown
    b = pos_clip.shape[0]
    to_eye = eye.view(b, 1, 1, 3) - position
    view_dir = torch.nn.functional.normalize(to_eye, dim=-1) * shown
    depth = -(to_eye * forward.view(b, 1, 1, 3)).sum(-1, keepdim=True) * mask
    tri_id = rast[..., 3].detach().long() - 1
    surface_tri = tri_id if soft is None else surface[..., 3].detach().long() - 1
    if tri_object is None:
        object_id = torch.where(surface_tri >= 0, 0, -1)
    else:
        object_id = torch.where(surface_tri >= 0, tri_object[surface_tri.clamp(min=0)], -1)

    uv_px = uv_da = None
    if uv is not None:
        uv_px, uv_da = backend.interpolate(uv, surface, tri if uv_tri is None else uv_tri,
                                           rast_db=rast_db if soft is None else soft.rast_db, diff_attrs="all")
        uv_px, uv_da = _top_first(uv_px), _top_first(uv_da)

    if soft is not None:
        def finish(color: torch.Tensor) -> torch.Tensor:
            return color
    elif antialias:
        def finish(color: torch.Tensor) -> torch.Tensor:
            return _top_first(backend.antialias(_top_first(color).contiguous(), rast, pos_clip, tri,
                                                topology_hash=topology))
    else:
        def finish(color: torch.Tensor) -> torch.Tensor:
            return color

    return GBuffer(
        mask=_top_first(mask),
        depth=_top_first(depth),
        position=_top_first(position),
        normal=_top_first(normal),
        view_dir=_top_first(view_dir),
        tri_id=_top_first(tri_id),
        object_id=_top_first(object_id),
        uv=uv_px,
        uv_da=uv_da,
        albedo=_top_first(attrs[..., 6:9]) if colors is not None else None,
        coverage=None if soft is None else _top_first(soft.coverage),
        finish=finish,
    )
