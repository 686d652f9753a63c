"""SDF renderer: sphere tracing without gradients, then one differentiable evaluation per pixel.

``render_sdf(model, origins, dirs, light_dirs)`` returns the same :class:`GBuffer` as the
rasterizer, so shading, losses and exports do not care which renderer ran.

How gradients arise (θ = the model's parameters, c = ray origins, v = ray directions):

- Hits.  The tracer (:mod:`studio.render.sdf_trace`, no autograd, compacted rays) finds t0 with
  f(c + t0 v) ≈ 0 and refines it by secant steps.  Then, with g = ∇f(x0) detached,

      t(θ, c, v) = t0 + sg[Δ] - (f(x0; θ) - sg[f(x0; θ)]) / sg[g·v],   x0 = c + t0 v,

  where Δ = -f/(g·v) is one Newton step applied to the value only.  Its derivative is the
  implicit-function one, ∂t/∂θ = -(∂f/∂θ)/(∇f·v), and likewise for c and v (f(x0) is expanded to
  first order in x0 for them).  x = c + t v is the differentiable surface point.  |g·v| is
  clamped below at ``grazing``·|g| so grazing rays cannot produce huge gradients.
- Normals.  n = ∇f(x) by autograd with ``create_graph`` when gradients are wanted, so shading
  gradients reach θ both directly (∂n/∂θ) and through the moving surface point (the Hessian).
- Silhouettes (Yariv et al. 2020, IDR).  A ray that misses keeps the point of its smallest
  distance, x_min = c + t_min v (t_min refined by golden-section search, then held fixed), and
  gets coverage sigmoid(-α f(x_min; θ)); it carries x_min's position, normal and colour so the
  composite colour·coverage + background·(1 - coverage) has geometry gradients at outlines.
  Hits have coverage 1.
- Planes combined by hard unions at the top of the model are intersected analytically and not
  marched (a ground plane costs nothing per step); they receive shadows but do not cast them, and
  shadow rays only march where they can pass near the bounded part of the model.
- Shadows.  Each surface point facing a light marches towards it recording the penumbra estimate
  min_t k·f(x + t l)/t and the t* of that minimum.  In the penumbra (0 < value < 1) the value is
  re-evaluated as k·f(x + t* l; θ)/t*, differentiable w.r.t. θ, x (hence camera and θ through the
  surface point) and the light direction l (the envelope theorem: t* is held fixed).  Fully lit
  (1) and fully blocked (0) points and points facing away from the light (0) have no gradient.
- Ambient occlusion (optional): a few distance samples along the normal, all differentiable.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from .backend import RenderInputError
from .checks import FLOAT32_64, check_finite, check_resolution, check_tensor
from .gbuffer import GBuffer
from .sdf_primitives import (Box, Capsule, Cylinder, Intersection, Node, Plane, Primitive, RoundedBox, SDFModel,
                             Sphere, Subtraction, Torus, Union, blend_weight, smooth_max, smooth_min)
from .sdf_trace import PrimaryTrace, penumbra_exit, ray_sphere, shadow_trace, trace_primary

__all__ = [
    "Box", "Capsule", "Cylinder", "Intersection", "Node", "Plane", "Primitive", "RoundedBox", "SDFModel",
    "Sphere", "Subtraction", "Torus", "TraceSettings", "Union", "blend_weight", "camera_rays", "render_sdf",
    "smooth_max", "smooth_min",
]

Tensor = torch.Tensor


@dataclass(frozen=True)
class TraceSettings:
    """Tracer settings.  Lengths marked "relative" are multiples of the model's bounding radius.

    Attributes:
        max_steps: sphere-tracing steps per camera ray.
        hit_eps: relative distance below which a ray has hit (and the tolerance |f| of a hit
            after refinement).
        pixel_eps: rays passing closer to a surface than this fraction of the pixel footprint
            stop marching (cone tracing: fewer steps); secant steps then either find the
            crossing (a hit) or the ray resumes marching behind the near miss.
        omega: largest relaxation of a step (1 = plain sphere tracing); see ``sphere_trace``.
        tail_fraction, tail_after: after ``tail_after`` steps, stop marching once fewer than this
            fraction of the rays remain; those go straight to the hit refinement (which decides
            hit or miss), saving the per-step overhead of long grazing-ray tails.
        resume_steps: step budget for rays that grazed a surface and resume marching behind it.
        near, far: ray interval in scene units (far bounds rays of unbounded models).
        grazing: lower bound of |∇f·v| / |∇f| in the implicit derivative.
        refine_iters: secant iterations that polish each hit (and tell grazing rays from hits).
        min_iters: golden-section iterations that polish each miss's closest approach.
        coverage_floor: misses whose coverage would be below this get exactly 0 (no gradient).
        shadow_steps: steps per shadow ray.
        shadow_start: relative distance from the surface where shadow rays start.
        shadow_eps: relative distance below which a shadow ray is blocked.
        shadow_min_step: relative smallest shadow step (thinner occluders may be missed).
        shadow_floor: shadow rays stop once their visibility estimate falls to this value (and
            count as blocked).
        shadow_min_iters: golden-section iterations locating the penumbra minimum of f/t.
        shadow_tail_after: like ``tail_after`` for shadow rays (same ``tail_fraction``).
        ao_distance: relative length of the ambient-occlusion probe along the normal.
        ao_strength: how strongly occluded probes darken (1 = proportional).
    """

    max_steps: int = 128
    hit_eps: float = 1e-4
    pixel_eps: float = 0.25
    omega: float = 2.0
    tail_fraction: float = 1e-3
    tail_after: int = 24
    resume_steps: int = 32
    near: float = 0.0
    far: float = 100.0
    grazing: float = 0.05
    refine_iters: int = 6
    min_iters: int = 16
    coverage_floor: float = 1e-4
    shadow_steps: int = 64
    shadow_start: float = 5e-3
    shadow_eps: float = 1e-4
    shadow_min_step: float = 5e-3
    shadow_floor: float = 0.02
    shadow_min_iters: int = 12
    shadow_tail_after: int = 16
    ao_distance: float = 0.1
    ao_strength: float = 1.5


# ---------------------------------------------------------------------------------------------- rays


def camera_rays(view: Tensor, fov_y_deg: float | Tensor, resolution: tuple[int, int],
                aspect: float | None = None) -> tuple[Tensor, Tensor]:
    """Pinhole rays through pixel centres, top row first, matching ``scene.camera`` conventions.

    Args:
        view: [4,4] or [B,4,4] world-to-camera matrix (as from ``look_at``; camera looks down -z,
            +y up).  Differentiable: gradients reach its entries.
        fov_y_deg: vertical field of view in degrees (float or tensor).
        resolution: (height, width) in pixels.
        aspect: width / height of the projection (default width / height of ``resolution``), as
            passed to ``perspective``.

    Returns:
        origins [B,3] (camera centres in world space) and dirs [B,H,W,3] unit world-space
        directions; pixel (i, j) is at NDC x = (2j+1)/W - 1, y = 1 - (2i+1)/H.
    """
    h, w = check_resolution(resolution)
    if not isinstance(view, torch.Tensor):
        raise RenderInputError(f"view must be a torch.Tensor [4,4] or [B,4,4] world-to-camera matrix, "
                               f"got {type(view).__name__}.")
    view = check_tensor("view", view, dtype=FLOAT32_64, ndims=(2, 3), device=view.device,
                        expected="a [4,4] or [B,4,4] float32/float64 world-to-camera matrix")
    if tuple(view.shape[-2:]) != (4, 4):
        raise RenderInputError(f"view must be a [4,4] or [B,4,4] world-to-camera matrix, got shape {list(view.shape)}.")
    check_finite("view", view)
    fov = torch.as_tensor(fov_y_deg, dtype=view.dtype, device=view.device)
    if fov.numel() != 1 or not bool(torch.isfinite(fov.detach()).all()) or not 0 < float(fov) < 180:
        raise RenderInputError(f"fov_y_deg must be one angle between 0 and 180 degrees, got {fov_y_deg!r}.")
    v = view if view.dim() == 3 else view.unsqueeze(0)
    rot, tr = v[:, :3, :3], v[:, :3, 3]
    origins = -(rot.transpose(1, 2) @ tr.unsqueeze(-1)).squeeze(-1)
    tan = torch.tan(torch.deg2rad(fov.reshape(())) / 2)
    asp = w / h if aspect is None else float(aspect)
    kw = {"dtype": view.dtype, "device": view.device}
    xs = ((2 * torch.arange(w, **kw) + 1) / w - 1) * (tan * asp)
    ys = (1 - (2 * torch.arange(h, **kw) + 1) / h) * tan
    d_cam = torch.stack([xs.expand(h, w), ys[:, None].expand(h, w), -torch.ones(h, w, **kw)], -1)
    dirs = torch.einsum("hwc,bcd->bhwd", d_cam, rot)
    return origins, torch.nn.functional.normalize(dirs, dim=-1)


# -------------------------------------------------------------------------------------------- checks


def _check_inputs(model, origins, dirs, light_dirs, alpha, shadow_k, forward) -> None:
    if not isinstance(model, SDFModel):
        raise RenderInputError(f"model must be an SDFModel (wrap primitives with SDFModel([...])), "
                               f"got {type(model).__name__}.")
    if not isinstance(origins, torch.Tensor):
        raise RenderInputError(f"origins must be a torch.Tensor [B,3] of camera positions, "
                               f"got {type(origins).__name__}.")
    dev = origins.device
    check_tensor("origins", origins, dtype=FLOAT32_64, ndims=(2,), last=3, device=dev,
                 expected="[B,3] float32/float64 camera positions")
    check_tensor("dirs", dirs, dtype=(origins.dtype,), ndims=(4,), last=3, device=dev,
                 expected=f"[B,H,W,3] unit ray directions of the same dtype as origins ({origins.dtype})")
    if dirs.shape[0] != origins.shape[0]:
        raise RenderInputError(f"dirs has {dirs.shape[0]} views but origins has {origins.shape[0]}; "
                               f"give one origin per view.")
    if dirs.shape[1] == 0 or dirs.shape[2] == 0 or dirs.shape[0] == 0:
        raise RenderInputError(f"dirs must have at least one view and one pixel, got shape {list(dirs.shape)}.")
    check_finite("origins", origins)
    check_finite("dirs", dirs)
    err = float((dirs.detach().norm(dim=-1) - 1).abs().max())
    if err > 1e-3:
        raise RenderInputError("dirs must be unit vectors; normalise them with "
                               "torch.nn.functional.normalize(dirs, dim=-1).")
    if light_dirs is not None:
        check_tensor("light_dirs", light_dirs, dtype=FLOAT32_64, ndims=(2,), last=3, device=dev,
                     expected="[L,3] directions towards the lights")
        check_finite("light_dirs", light_dirs)
        if light_dirs.shape[0] and float(light_dirs.detach().norm(dim=-1).min()) < 1e-12:
            raise RenderInputError("light_dirs contains a zero vector; give a direction towards each light.")
    if forward is not None:
        check_tensor("forward", forward, dtype=FLOAT32_64, ndims=(2,), last=3, device=dev,
                     expected="[B,3] camera viewing axes")
        if forward.shape[0] != origins.shape[0]:
            raise RenderInputError(f"forward must have one axis per view ({origins.shape[0]}), got {forward.shape[0]}.")
        check_finite("forward", forward)
    a = alpha.detach() if isinstance(alpha, torch.Tensor) else torch.tensor(alpha, dtype=torch.float64) \
        if isinstance(alpha, (int, float)) else None
    if a is None or a.numel() != 1 or not bool(torch.isfinite(a).all()) or float(a) <= 0:
        raise RenderInputError(f"alpha must be one positive finite number (the silhouette sharpness), got {alpha!r}.")
    if not isinstance(shadow_k, (int, float)) or not math.isfinite(shadow_k) or shadow_k <= 0:
        raise RenderInputError(f"shadow_k must be a positive number (penumbra hardness), got {shadow_k!r}.")
    model.check(dev)


def _pixel_footprint(dirs: Tensor) -> float:
    """Angle (radians) between neighbouring rays near the image centre."""
    _, h, w, _ = dirs.shape
    d = dirs.detach()[0]
    if w > 1:
        return float((d[h // 2, w // 2] - d[h // 2, w // 2 - 1]).norm())
    if h > 1:
        return float((d[h // 2, 0] - d[h // 2 - 1, 0]).norm())
    return 0.0


def _scatter(n: int, idx: Tensor, vals: Tensor, fill: float) -> Tensor:
    """A [n, ...] tensor filled with ``fill`` except rows ``idx`` = ``vals`` (differentiable)."""
    out = torch.full((n,) + tuple(vals.shape[1:]), fill, dtype=vals.dtype, device=vals.device)
    return out.index_put((idx,), vals)


def _smoothstep(x: Tensor) -> Tensor:
    return x * x * (3 - 2 * x)


# -------------------------------------------------------------------------------------------- render


def _plane_hits(planes: list[Plane], frozen: dict, o: Tensor, d: Tensor, near: float, far: float) -> Tensor:
    """Nearest analytic hit distance [N] of rays (o, d) [3,N] with the half-spaces of ``planes``
    (inf where none; ``near`` for origins already inside one)."""
    best = torch.full((o.shape[1],), math.inf, dtype=o.dtype, device=o.device)
    for pl in planes:
        f0 = pl.distance(o.unbind(0), frozen[id(pl)])
        nd = pl.distance((o + d).unbind(0), frozen[id(pl)]) - f0
        t = -f0 / nd
        t = torch.where((nd < 0) & (t >= near) & (t <= far), t, torch.full_like(t, math.inf))
        t = torch.where(f0 <= 0, torch.full_like(t, near), t)
        best = torch.minimum(best, t)
    return best


@dataclass
class _Scene:
    """What the stages of one render share: the model split for marching, and its scale."""

    model: SDFModel
    frozen: dict
    planes: list[Plane]  # intersected analytically (hard union at the root), cast no shadows
    others: list[Node]  # marched
    march_bound: tuple[list[float], float] | None  # sphere around the marched part (None: unbounded)
    occluder_bound: tuple[list[float], float] | None  # sphere around everything that casts shadows
    scale: float  # bounding radius: unit of the relative settings

    @staticmethod
    def of(model: SDFModel, dtype: torch.dtype, device: torch.device) -> "_Scene":
        planes, others = model.split_planes()
        march_bound = model.nodes_bound(others) if others else None
        if planes and others and march_bound is None:  # the rest is unbounded: march everything
            planes, others = [], [model.root]
            march_bound = model.bounding_sphere()
        occluder = march_bound if march_bound is not None else model.bounding_sphere(finite_only=True)
        scale = max(occluder[1], 1e-6) if occluder is not None else 1.0
        return _Scene(model, model.freeze(dtype, device), planes, others, march_bound, occluder, scale)

    def march_sdf(self, p: Tensor) -> Tensor:
        """No-grad distance of the marched part at component-major points [3,N]."""
        if not self.others:
            return torch.full_like(p[0], math.inf)
        return self.model.union_distance_t(self.others, p, self.frozen)


def _trace_camera(sc: _Scene, O: Tensor, D: Tensor, st: TraceSettings, cutoff: float, eps_abs: float,
                  eps_rel: float) -> PrimaryTrace:
    """No-grad stage for camera rays (O, D) [3,N]: see :func:`trace_primary`."""
    n, dt, dev = O.shape[1], O.dtype, O.device
    t_surface = _plane_hits(sc.planes, sc.frozen, O, D, st.near, st.far) if sc.planes else None
    if not sc.others:
        t_start = torch.full((n,), math.inf, dtype=dt, device=dev)
        t_end = torch.full((n,), -math.inf, dtype=dt, device=dev)
    elif sc.march_bound is not None:
        centre = torch.tensor(sc.march_bound[0], dtype=dt, device=dev)
        # Inflated by the silhouette cutoff: rays passing that close must be marched too.
        t_start, t_end = ray_sphere(O, D, centre, sc.march_bound[1] * 1.01 + cutoff + eps_abs)
        t_start, t_end = t_start.clamp_min(st.near), t_end.clamp_max(st.far)
    else:
        t_start = torch.full((n,), st.near, dtype=dt, device=dev)
        t_end = torch.full((n,), st.far, dtype=dt, device=dev)
    if t_surface is not None:
        t_end = torch.minimum(t_end, t_surface)
    return trace_primary(sc.march_sdf, O, D, t_start, t_end, eps_abs=eps_abs, eps_rel=eps_rel,
                         max_steps=st.max_steps, omega=st.omega, tail=int(st.tail_fraction * n),
                         tail_after=st.tail_after, refine_iters=st.refine_iters, min_iters=st.min_iters,
                         cutoff=cutoff, scale=sc.scale, t_surface=t_surface, resume_steps=st.resume_steps)


def _hit_points(model: SDFModel, c: Tensor, v: Tensor, t0: Tensor, *, grazing: float, cap: Tensor,
                needs_grad: bool, cam_grad: bool) -> tuple[Tensor, Tensor]:
    """Differentiable surface points of hits by implicit differentiation; (t [K], x [K,3]).

    c, v: [K,3] ray origins and directions (live); t0: [K] traced distances (no grad).
    """
    with torch.enable_grad():
        x0 = c + t0[:, None] * v
        xd = x0.detach().requires_grad_(True)
        f = model.distance(xd)
        (g,) = torch.autograd.grad(f.sum(), xd, retain_graph=needs_grad)
    gv = (g * v.detach()).sum(-1)
    floor = grazing * g.norm(dim=-1)
    den = torch.where(gv > 0, torch.maximum(gv, floor), torch.minimum(gv, -floor))  # |g·v| >= floor
    # One Newton step on the value only (not on the gradient), skipped for grazing rays.
    newton = torch.where(gv.abs() < floor, torch.zeros_like(gv), -f.detach() / den)
    newton = torch.maximum(torch.minimum(newton, cap), -cap)
    if not needs_grad:
        t = t0 + newton
        return t, (c + t[:, None] * v).detach()
    if cam_grad:  # f(x0) to first order in x0 = c + t0 v, so that c and v get their share
        f = f + (g * (x0 - x0.detach())).sum(-1)
    t = t0 + newton - (f - f.detach()) / den
    return t, c + t[:, None] * v


def _shadows(sc: _Scene, pts: Tensor, normal: Tensor, light_dirs: Tensor, st: TraceSettings, k: float,
             needs_grad: bool) -> tuple[Tensor, tuple[int, int]]:
    """Soft-shadow visibility [M,L] of points [M,3] with unit normals [M,3]; (visibility, counters)."""
    m, L = pts.shape[0], light_dirs.shape[0]
    dt, dev = pts.dtype, pts.device
    lights = torch.nn.functional.normalize(light_dirs.to(dt), dim=-1)
    with torch.no_grad():
        facing = (normal.detach()[:, None, :] * lights.detach()[None]).sum(-1) > 0  # [M,L]; others: 0
        pi, li = torch.nonzero(facing, as_tuple=True)
        so = pts.detach()[pi].transpose(0, 1).contiguous()
        sd = lights.detach()[li].transpose(0, 1).contiguous()
        if not sc.others:
            s_end = torch.full((pi.numel(),), -math.inf, dtype=dt, device=dev)
        elif sc.occluder_bound is not None:
            centre = torch.tensor(sc.occluder_bound[0], dtype=dt, device=dev)
            s_end = penumbra_exit(so, sd, centre, sc.occluder_bound[1] * 1.01 + 1e-6, k).clamp_max(st.far)
        else:
            s_end = torch.full((pi.numel(),), st.far, dtype=dt, device=dev)
        sr = shadow_trace(sc.march_sdf, so, sd, st.shadow_start * sc.scale, s_end, k=k,
                          eps=st.shadow_eps * sc.scale, min_step=st.shadow_min_step * sc.scale,
                          max_steps=st.shadow_steps, res_floor=st.shadow_floor, scale=sc.scale,
                          min_iters=st.shadow_min_iters, tail=int(st.tail_fraction * pi.numel()),
                          tail_after=st.shadow_tail_after)
    flat = pi * L + li
    vis = _scatter(m * L, flat, _smoothstep(sr.res), 0.0)
    pen = torch.nonzero((sr.res > 0) & (sr.res < 1)).squeeze(1)
    if needs_grad and pen.numel():
        # Penumbra: k·f(x + t* l)/t* with t* held fixed (envelope theorem), live in x, l and θ.
        pj, lj, ts = pi[pen], li[pen], sr.t_star[pen]
        q = pts[pj] + ts[:, None] * lights[lj]
        live = _smoothstep((k * sc.model.distance(q) / ts).clamp(0, 1))
        vis = vis.index_put((flat[pen],), live)
    return vis.reshape(m, L), (sr.steps, sr.ray_steps)


def _ambient_occlusion(model: SDFModel, pts: Tensor, normal: Tensor, samples: int, length: float,
                       strength: float) -> Tensor:
    """[M,1] openness in [0, 1] from ``samples`` distance probes along the normals (differentiable)."""
    hs = torch.arange(1, samples + 1, dtype=pts.dtype, device=pts.device) * (length / samples)
    probe = pts[None] + hs[:, None, None] * normal[None]
    f = model.distance(probe.reshape(-1, 3)).reshape(samples, -1)
    wts = 0.75 ** torch.arange(samples, dtype=pts.dtype, device=pts.device)
    occ = (wts[:, None] * (hs[:, None] - f) / hs[:, None]).sum(0) / wts.sum()
    return (1 - strength * occ).clamp(0, 1)[:, None]


def render_sdf(
    model: SDFModel,
    origins: Tensor,
    dirs: Tensor,
    light_dirs: Tensor | None = None,
    *,
    alpha: float | Tensor = 50.0,
    shadow_k: float = 8.0,
    ao_samples: int = 0,
    forward: Tensor | None = None,
    settings: TraceSettings | None = None,
    stats: dict | None = None,
) -> GBuffer:
    """Render an SDF model for a batch of views into a :class:`GBuffer` (top row first).

    Args:
        model: the shapes (:class:`SDFModel`).
        origins: [B,3] camera centres (world units; may require grad).
        dirs: [B,H,W,3] unit ray directions, same dtype (may require grad); see :func:`camera_rays`.
            The tracer runs in this dtype: float32 for speed, float64 for gradient checks.
        light_dirs: optional [L,3] directions *towards* directional lights (normalised here); when
            given, ``shadow`` [B,H,W,L] holds soft-shadow visibility (may require grad).
        alpha: silhouette sharpness in 1/scene units: coverage of a miss = sigmoid(-alpha·f_min).
            The engine anneals it upward; a float or a 0-dim tensor.
        shadow_k: penumbra hardness k in min k·f/t (larger = harder shadows).
        ao_samples: number of ambient-occlusion probes along the normal (0 = no ``occlusion``).
        forward: optional [B,3] unit viewing axes for ``depth``; by default the mean ray direction
            of each view (exact for the symmetric frusta of :func:`camera_rays`).
        settings: tracer settings (:class:`TraceSettings`).
        stats: optional dict that receives tracer counters (steps, rays marched, hits, ...) and
            the milliseconds spent in each stage.

    Returns:
        A GBuffer with mask (hard hits), coverage (1 on hits, sigmoid(-alpha·f_min) on misses),
        depth (along the viewing axis, hits only), position / normal / albedo (hits, and x_min on
        misses with coverage above ``settings.coverage_floor``), view_dir (-dirs on those pixels),
        tri_id (dominant primitive index) and object_id (that primitive's ``object_id``) on hits,
        -1 elsewhere, shadow [B,H,W,L] (1 where not computed), occlusion [B,H,W,1] when
        ``ao_samples`` > 0, and the identity ``finish``.  Empty pixels hold zeros.

    Raises:
        RenderInputError: wrong types, shapes, dtypes or devices, non-unit directions, NaN/Inf in
            rays, lights or model parameters.
    """
    clock = [time.perf_counter()]

    def lap(name: str) -> None:
        if stats is not None:
            now = time.perf_counter()
            stats[f"ms_{name}"] = (now - clock[0]) * 1e3
            clock[0] = now

    _check_inputs(model, origins, dirs, light_dirs, alpha, shadow_k, forward)
    st = settings or TraceSettings()
    B, H, W, _ = dirs.shape
    n_rays = B * H * W
    dt, dev = dirs.dtype, dirs.device
    sc = _Scene.of(model, dt, dev)
    v_flat = dirs.reshape(n_rays, 3)
    ray_view = torch.arange(n_rays, device=dev) // (H * W)
    needs_grad = torch.is_grad_enabled() and (
        origins.requires_grad or dirs.requires_grad or model.requires_grad()
        or (light_dirs is not None and light_dirs.requires_grad)
        or (isinstance(alpha, torch.Tensor) and alpha.requires_grad))
    lap("setup")

    # 1. Where: marching without autograd.
    a_val = float(alpha.detach()) if isinstance(alpha, torch.Tensor) else float(alpha)
    cutoff = math.log(1 / st.coverage_floor - 1) / a_val  # misses farther away get coverage 0
    eps_abs = st.hit_eps * sc.scale
    eps_rel = st.pixel_eps * _pixel_footprint(dirs)
    with torch.no_grad():
        O = origins.detach().transpose(0, 1).unsqueeze(2).expand(3, B, H * W).reshape(3, n_rays)
        D = v_flat.detach().transpose(0, 1).contiguous()
        tr = _trace_camera(sc, O, D, st, cutoff, eps_abs, eps_rel)
    hit_idx, miss_idx = tr.hit_idx, tr.miss_idx
    nh, nm = hit_idx.numel(), miss_idx.numel()
    lap("trace")

    # 2. Differentiable points: hits by implicit differentiation, misses at their closest approach.
    c_h, v_h = origins[ray_view[hit_idx]], v_flat[hit_idx]
    t_h, x_h = _hit_points(model, c_h, v_h, tr.t_hit, grazing=st.grazing, cap=eps_abs + eps_rel * tr.t_hit,
                           needs_grad=needs_grad, cam_grad=origins.requires_grad or dirs.requires_grad)
    x_m = origins[ray_view[miss_idx]] + tr.t_miss[:, None] * v_flat[miss_idx]
    pts = torch.cat([x_h, x_m], 0)
    if not needs_grad:
        pts = pts.detach()
    # 3. One evaluation at all of them: distance, colour, primitive, and the normal by autograd.
    with torch.enable_grad():
        p_eval = pts if pts.requires_grad else pts.detach().requires_grad_(True)
        f, colour, pid = model.evaluate(p_eval)
        (grad,) = torch.autograd.grad(f.sum(), p_eval, create_graph=needs_grad)
    normal = grad / grad.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    if nh:  # hits seen from inside a shape: turn the normal towards the camera
        back = torch.zeros(nh + nm, dtype=torch.bool, device=dev)
        back[:nh] = (normal[:nh].detach() * v_h.detach()).sum(-1) > 0
        normal = torch.where(back[:, None], -normal, normal)
    cov_m = torch.sigmoid(-alpha * f[nh:])
    lap("evaluate")

    # 4. Shadows and ambient occlusion at the same points.
    shadow_pts, sh_count = None, (0, 0)
    if light_dirs is not None and light_dirs.shape[0] > 0:
        shadow_pts, sh_count = _shadows(sc, pts, normal, light_dirs, st, float(shadow_k), needs_grad)
    lap("shadow")
    occ_pts = None
    if ao_samples > 0:
        occ_pts = _ambient_occlusion(model, pts, normal, ao_samples, st.ao_distance * sc.scale, st.ao_strength)

    # 5. Scatter into images.
    fwd = dirs.mean(dim=(1, 2)) if forward is None else forward.to(dt)
    fwd = torch.nn.functional.normalize(fwd, dim=-1)
    depth_h = (t_h * (v_h * fwd[ray_view[hit_idx]]).sum(-1))[:, None]
    idx_all = torch.cat([hit_idx, miss_idx])
    mask = torch.zeros(n_rays, 1, dtype=dt, device=dev)
    mask[hit_idx] = 1.0
    coverage = mask.index_put((miss_idx,), cov_m[:, None].to(dt))
    shown = mask.index_put((miss_idx,), torch.ones(nm, 1, dtype=dt, device=dev))
    tri_id = torch.full((n_rays,), -1, dtype=torch.int64, device=dev)
    tri_id[hit_idx] = pid[:nh]
    object_id = torch.where(tri_id >= 0, model.object_ids.to(dev)[tri_id.clamp_min(0)], tri_id)

    def img(x: Tensor, c: int) -> Tensor:
        x = x if needs_grad else x.detach()
        return x.to(dt).reshape(B, H, W, c)

    gb = GBuffer(
        mask=mask.reshape(B, H, W, 1),
        depth=img(_scatter(n_rays, hit_idx, depth_h, 0.0), 1),
        position=img(_scatter(n_rays, idx_all, pts, 0.0), 3),
        normal=img(_scatter(n_rays, idx_all, normal, 0.0), 3),
        view_dir=img(-v_flat * shown, 3),
        tri_id=tri_id.reshape(B, H, W),
        object_id=object_id.reshape(B, H, W),
        albedo=img(_scatter(n_rays, idx_all, colour, 0.0), 3),
        coverage=img(coverage, 1),
        shadow=None if shadow_pts is None else img(_scatter(n_rays, idx_all, shadow_pts, 1.0), shadow_pts.shape[1]),
        occlusion=None if occ_pts is None else img(_scatter(n_rays, idx_all, occ_pts, 1.0), 1),
    )
    lap("gbuffer")
    if stats is not None:
        stats.update(steps=tr.steps, ray_steps=tr.ray_steps, resumed=tr.resumed, rays=n_rays, hits=nh,
                     soft_misses=nm, shadow_steps=sh_count[0], shadow_ray_steps=sh_count[1])
    return gb
