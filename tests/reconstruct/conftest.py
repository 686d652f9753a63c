"""A tiny synthetic capture rendered with the project's own rasterizer (in memory)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.capture.model import Capture, Intrinsics, View
from studio.render import get_backend
from studio.render.raster_pass import raster_gbuffer
from studio.render.shading import Lights, shade
from studio.scene.base import fibonacci_views
from studio.scene.camera import look_at, orbit_eye, to_clip
from studio.scene.mesh import vertex_normals
from studio.scene.procedural import critter


def render_capture(n_train: int = 12, n_test: int = 3, res: int = 48, subdivisions: int = 4) -> tuple[Capture, torch.Tensor, torch.Tensor]:
    """(capture, true vertices [V,3], true faces [T,3]) of a textured critter in the unit sphere."""
    m = critter(subdivisions)
    v = m.vertices - m.vertices.mean(0)
    v = v / v.norm(dim=1).max() * 0.8
    f = m.faces
    colors = 0.45 + 0.35 * torch.sin(6.0 * v) * torch.tensor([1.0, 0.6, -0.8])
    backend = get_backend("torch", "cpu")
    lights = Lights(torch.zeros(3), torch.nn.functional.normalize(torch.tensor([[0.4, 0.8, 0.4]]), dim=-1),
                    torch.tensor([[0.9, 0.9, 0.85]]), torch.tensor([[1.2, 1.2, 1.3]] + [[0.0] * 3] * 8))
    fov = 40.0
    fy = res / 2 / math.tan(math.radians(fov) / 2)
    intr = Intrinsics(fy, fy, res / 2, res / 2, res, res)
    views = []
    for i, (az, el) in enumerate(fibonacci_views(n_train + n_test, 70.0)):
        eye = orbit_eye(az, el, 2.8)
        w2c = look_at(eye)
        c2w = torch.linalg.inv(w2c)
        mvp = intr.projection() @ w2c
        gb = raster_gbuffer(backend, to_clip(v, mvp[None]).contiguous(), f, (res, res), world_pos=v,
                            normals=vertex_normals(v, f), eye=eye[None], forward=-w2c[2:3, :3], colors=colors)
        color = shade(gb, gb.albedo, lights, "lambert")
        out = gb.finish(torch.cat([color * gb.alpha, gb.alpha], -1))[0]
        views.append(View(f"v{i:03d}", out[..., :3].clamp(0, 1), out[..., 3], intr, c2w))
    test = tuple(views[i] for i in range(0, len(views), (n_train + n_test) // n_test))[:n_test]
    train = tuple(x for x in views if x not in test)
    return Capture(Path("synthetic"), "nerf", train, test), v, f


@pytest.fixture(scope="session")
def tiny_capture():
    return render_capture()
