"""Rasterize a triangle mesh into a :class:`GBuffer` (the mesh renderer's half of the pipeline).

One rasterize and one interpolate per batch (all vertex attributes travel together), a second
interpolate for UVs when the mesh has a separate UV index buffer, then everything is flipped to
top-row-first.  The returned ``finish`` gives a shaded image its *visibility gradient*, the
derivative of the pixel colours w.r.t. vertex positions from occlusion boundaries moving, chosen
by the ``visibility`` render option (:data:`VISIBILITY_MODES`):

- ``"antialias"``: analytic silhouette antialiasing (the image is blended at silhouette edges);
- ``"edge"``: :func:`studio.render.edge_grad.edge_grad`, micro-edge gradients at every triangle
  boundary (the image stays the hard render);
- ``"soft"``: soft rasterization (:mod:`studio.render.soft_raster`), a blurred silhouette;
- ``"none"``: no visibility gradient (outlines cannot move; for teaching).
"""

from __future__ import annotations

import torch

from typing import Callable

from .backend import Backend, RenderInputError
from .gbuffer import GBuffer
from .soft_raster import DEFAULT_SIGMA, soft_rasterize

#: The values of the ``visibility`` render option.
VISIBILITY_MODES = ("antialias", "edge", "soft", "none")


def _top_first(t: torch.Tensor) -> torch.Tensor:
    return t.flip(1)


def resolve_visibility(visibility: str | None = None, antialias: bool = True,
                       soft_sigma: float | None = None) -> str:
    """The visibility mode from the option and its older aliases: an explicit ``visibility`` wins,
    else a ``soft_sigma`` means "soft", ``antialias=False`` means "none", otherwise "antialias".

    Raises:
        RenderInputError: ``visibility`` is not one of :data:`VISIBILITY_MODES`.
    """
    if visibility is None:
        return "soft" if soft_sigma else ("antialias" if antialias else "none")
    if visibility not in VISIBILITY_MODES:
        raise RenderInputError(f"visibility must be one of {', '.join(VISIBILITY_MODES)}, got {visibility!r}.")
    return visibility


def visibility_finish(backend: Backend, visibility: str, rast: torch.Tensor, pos: torch.Tensor, tri: torch.Tensor,
                      topology: object | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """The image-space step of a hard-rasterized visibility mode, in the rasterizer's bottom-up
    layout: [B,H,W,C] colour -> [B,H,W,C] ("antialias", "edge"; "none" and "soft" are the
    identity, soft's step being its coverage)."""
    if visibility == "antialias":
        return lambda color: backend.antialias(color.contiguous(), rast, pos, tri, topology_hash=topology)
    if visibility == "edge":
        return lambda color: backend.edge_grad(color.contiguous(), rast, pos, tri)
    if visibility in ("none", "soft"):
        return lambda color: color
    raise RenderInputError(f"visibility must be one of {', '.join(VISIBILITY_MODES)}, got {visibility!r}.")


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
    visibility: str | None = None,
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
        antialias: older alias of ``visibility`` ("antialias" when True, "none" when False), used
            when ``visibility`` is None.
        topology: optional ``backend.construct_topology(tri)`` result, reused across calls.
        soft_sigma: σ of soft rasterization in squared pixels (> 0; None or 0 = the default
            when ``visibility == "soft"``); alone it means ``visibility="soft"``.  With soft
            rasterization ``coverage`` is the soft silhouette; pixels outside the hard
            coverage carry the surface of their nearest triangle (position, normal, view_dir,
            albedo, uv and object_id, so materials apply there; mask, depth and tri_id stay hard);
            ``finish`` is the identity because compositing over the background with ``coverage``
            is the soft step.
        visibility: one of :data:`VISIBILITY_MODES` (see the module docstring), or None to take
            it from ``antialias`` and ``soft_sigma``.

    Returns:
        A top-row-first :class:`GBuffer`.
    """
    mode = resolve_visibility(visibility, antialias, soft_sigma)
    rast, rast_db = backend.rasterize(pos_clip, tri, resolution, grad_db=uv is not None)
    soft = None
    if mode == "soft":
        soft_sigma = soft_sigma or DEFAULT_SIGMA
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

    step = visibility_finish(backend, mode, rast, pos_clip, tri, topology)

    def finish(color: torch.Tensor) -> torch.Tensor:
        return color if mode in ("none", "soft") else _top_first(step(_top_first(color)))

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
