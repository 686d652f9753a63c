"""How right are visibility gradients?  A linearised-loss check against supersampled coverage.

For a mesh and a camera the loss is linearised at the reference, ``L(v) = sum_px w * I(v)`` with
``w = 2 (ss(v0) - target)`` held fixed, where ``ss`` is ``factor`` x ``factor`` supersampled,
box-filtered coverage of a white-on-black silhouette and ``target`` is ``ss`` of the mesh moved
about 1 px.  Only ``dI/dv`` is judged: the derivative of ``L`` along a motion of the vertices,
through a visibility primitive (``edge_grad`` or ``antialias`` on the hard white-on-black image),
is compared with the central finite difference of ``sum_px w * ss(v)`` along the same motion.

Motions are vertex displacement fields [V,3] in world units per unit of the motion parameter,
scaled so the vertices' mean screen motion is 1 px (:func:`per_pixel`): the three translations
(camera right, up, towards the camera), two rotations (about the camera's up axis and about its
viewing axis, through the centroid) and a scale about the centroid (:func:`rigid_motions`), and
smooth random fields (:func:`smooth_fields`).  Used by ``tests/render/test_edge_grad.py`` and
``bench/visibility.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from .backend import Backend

#: The visibility primitives this check can judge (render option names).
CHECKED = ("edge", "antialias")


def project(verts: torch.Tensor, mvp: torch.Tensor) -> torch.Tensor:
    """World points [V,3] -> clip space [1,V,4] under one [4,4] matrix."""
    ph = torch.cat([verts, torch.ones_like(verts[:, :1])], 1)
    return (ph @ mvp.to(verts.dtype).t()).unsqueeze(0).contiguous()


def supersampled_coverage(backend: Backend, verts: torch.Tensor, tri: torch.Tensor, mvp: torch.Tensor,
                          resolution: int, factor: int = 8) -> torch.Tensor:
    """[H,W] float64 box-filtered coverage in [0, 1] (bottom-up rows) from a hard render at
    ``factor`` times the resolution per axis (``factor``² samples per pixel)."""
    with torch.no_grad():
        pos = project(verts.float(), mvp).to(backend.device)
        n = resolution * factor
        rast, _ = backend.rasterize(pos, tri, (n, n), grad_db=False)
        hit = (rast[0, :, :, 3] > 0).double().cpu()
    return hit.view(resolution, factor, resolution, factor).mean((1, 3))


def screen_motion(verts: torch.Tensor, field: torch.Tensor, mvp: torch.Tensor, resolution: int) -> torch.Tensor:
    """[V] screen-space speed in pixels of every vertex moving along ``field``."""
    eps = 1e-3

    def screen(v: torch.Tensor) -> torch.Tensor:
        p = project(v.double(), mvp.double())[0]
        return (p[:, :2] / p[:, 3:]) * (resolution / 2)

    return ((screen(verts + eps * field) - screen(verts - eps * field)) / (2 * eps)).norm(dim=1)


def per_pixel(verts: torch.Tensor, field: torch.Tensor, mvp: torch.Tensor, resolution: int) -> torch.Tensor:
    """``field`` scaled so that the vertices' mean screen motion is 1 px per unit."""
    return field / screen_motion(verts, field, mvp, resolution).mean().clamp(min=1e-12)


def _camera_axes(mvp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """World directions of screen right, screen up and towards the camera (rows of the inverse)."""
    inv = torch.linalg.inv(mvp.double())
    right, up, back = inv[:3, 0], inv[:3, 1], -inv[:3, 2]
    return (torch.nn.functional.normalize(right, dim=0), torch.nn.functional.normalize(up, dim=0),
            torch.nn.functional.normalize(back, dim=0))


def rigid_motions(verts: torch.Tensor, mvp: torch.Tensor, resolution: int) -> list[tuple[str, torch.Tensor]]:
    """(name, field [V,3]) of the 3 translations, 2 rotations and the scale, each 1 px per unit."""
    v = verts.double()
    right, up, back = _camera_axes(mvp)
    c = v.mean(0)
    rel = v - c
    fields = [
        ("translate x", right.expand_as(v)),
        ("translate y", up.expand_as(v)),
        ("translate z", back.expand_as(v)),
        ("rotate about up", torch.linalg.cross(up.expand_as(rel), rel, dim=1)),
        ("rotate about view", torch.linalg.cross(back.expand_as(rel), rel, dim=1)),
        ("scale", rel),
    ]
    return [(name, per_pixel(v, f, mvp, resolution)) for name, f in fields]


def smooth_fields(verts: torch.Tensor, mvp: torch.Tensor, resolution: int, count: int = 8, seed: int = 0,
                  waves: int = 3) -> list[torch.Tensor]:
    """``count`` smooth random displacement fields [V,3]: sums of ``waves`` 3D sine waves with
    wavelengths about the object's size and random directions, each 1 px per unit."""
    g = torch.Generator().manual_seed(seed)
    v = verts.double()
    size = float((v - v.mean(0)).norm(dim=1).max())
    out = []
    for _ in range(count):
        f = torch.zeros_like(v)
        for _ in range(waves):
            k = torch.nn.functional.normalize(torch.randn(3, generator=g, dtype=torch.float64), dim=0)
            k = k * (1.0 + 1.5 * torch.rand(1, generator=g, dtype=torch.float64)) / size
            phase = 2 * math.pi * torch.rand(1, generator=g, dtype=torch.float64)
            f = f + torch.sin(v @ k * math.pi + phase).unsqueeze(1) * torch.randn(3, generator=g, dtype=torch.float64)
        out.append(per_pixel(v, f, mvp, resolution))
    return out


def smooth_dents(verts: torch.Tensor, normals: torch.Tensor, mvp: torch.Tensor, resolution: int,
                 count: int = 6, seed: int = 1, peak_px: float = 1.0) -> torch.Tensor:
    """[V,3] displacement along the normals by ``count`` smooth Gaussian dents and bumps (width a
    quarter of the object's size), scaled so the largest screen motion is ``peak_px`` pixels."""
    g = torch.Generator().manual_seed(seed)
    v = verts.double()
    size = float((v - v.mean(0)).norm(dim=1).max())
    centres = v[torch.randint(0, v.shape[0], (count,), generator=g)]
    signs = torch.where(torch.rand(count, generator=g) < 0.5, -1.0, 1.0).double()
    d2 = ((v.unsqueeze(1) - centres.unsqueeze(0)) ** 2).sum(-1)
    height = (signs * torch.exp(-d2 / (2 * (0.25 * size) ** 2))).sum(1)
    field = height.unsqueeze(1) * normals.double()
    return field * (peak_px / screen_motion(v, field, mvp, resolution).max().clamp(min=1e-12))


def primitive_gradient(backend: Backend, visibility: str, verts: torch.Tensor, tri: torch.Tensor,
                       mvp: torch.Tensor, resolution: int, weight: torch.Tensor) -> torch.Tensor:
    """d/dv of sum_px weight * I(v) [V,3] float64, I the white-on-black hard render passed through
    the visibility primitive (``"edge"`` -> ``edge_grad``, ``"antialias"``).

    ``weight`` is [H,W] in the rasterizer's bottom-up layout."""
    from .raster_pass import visibility_finish

    v = verts.float().clone().requires_grad_(True)
    pos = project(v, mvp.float()).to(backend.device)
    rast, _ = backend.rasterize(pos, tri, (resolution, resolution), grad_db=False)
    white = (rast[..., 3:] > 0).float()
    image = visibility_finish(backend, visibility, rast, pos, tri)(white)
    (image[0, :, :, 0].double().cpu() * weight).sum().backward()
    return v.grad.double()


@dataclass(frozen=True)
class Check:
    """One motion: the derivative through each primitive and the finite-difference reference."""

    name: str
    reference: float
    derivative: dict[str, float]

    def ratio(self, visibility: str) -> float:
        return self.derivative[visibility] / self.reference if self.reference else float("nan")


@dataclass(frozen=True)
class FieldCheck:
    """Smooth fields against one dented target: the vectors of directional derivatives."""

    reference: torch.Tensor  # [K]
    derivative: dict[str, torch.Tensor]  # visibility -> [K]

    def cosine(self, visibility: str) -> float:
        return float(torch.nn.functional.cosine_similarity(self.derivative[visibility], self.reference, dim=0))

    def magnitude(self, visibility: str) -> float:
        return float(self.derivative[visibility].norm() / self.reference.norm())


def _fd(ss: Callable[[torch.Tensor], torch.Tensor], verts: torch.Tensor, field: torch.Tensor, weight: torch.Tensor,
        h: float) -> float:
    """Central difference of sum w * ss along ``field`` with step ``h`` (px)."""
    return float(((ss(verts + h * field) - ss(verts - h * field)) * weight).sum() / (2 * h))


def check_rigid(backend: Backend, verts: torch.Tensor, tri: torch.Tensor, mvp: torch.Tensor, resolution: int,
                visibilities: tuple[str, ...] = CHECKED, factor: int = 8, h: float = 0.5) -> list[Check]:
    """Each rigid motion against its own target (the mesh moved 1 px along it)."""
    def ss(v: torch.Tensor) -> torch.Tensor:
        return supersampled_coverage(backend, v, tri, mvp, resolution, factor)

    v0 = verts.double()
    base = ss(v0)
    out = []
    for name, field in rigid_motions(v0, mvp, resolution):
        weight = 2 * (base - ss(v0 + field))
        ref = _fd(ss, v0, field, weight, h)
        der = {vis: float((primitive_gradient(backend, vis, v0, tri, mvp, resolution, weight) * field).sum())
               for vis in visibilities}
        out.append(Check(name, ref, der))
    return out


def check_fields(backend: Backend, verts: torch.Tensor, normals: torch.Tensor, tri: torch.Tensor, mvp: torch.Tensor,
                 resolution: int, visibilities: tuple[str, ...] = CHECKED, count: int = 8, factor: int = 8,
                 h: float = 0.5, seed: int = 0) -> FieldCheck:
    """``count`` smooth random fields against one target with ~1 px smooth dents."""
    def ss(v: torch.Tensor) -> torch.Tensor:
        return supersampled_coverage(backend, v, tri, mvp, resolution, factor)

    v0 = verts.double()
    weight = 2 * (ss(v0) - ss(v0 + smooth_dents(v0, normals, mvp, resolution, seed=seed + 1)))
    fields = smooth_fields(v0, mvp, resolution, count, seed)
    ref = torch.tensor([_fd(ss, v0, f, weight, h) for f in fields], dtype=torch.float64)
    der = {}
    for vis in visibilities:
        grad = primitive_gradient(backend, vis, v0, tri, mvp, resolution, weight)
        der[vis] = torch.stack([(grad * f).sum() for f in fields])
    return FieldCheck(ref, der)
