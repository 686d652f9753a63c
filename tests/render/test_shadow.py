"""Shadow maps: visibility against a trimesh ray cast, gradients of the soft term against finite
differences, and the hard term's lack of gradient."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from studio.render import get_backend
from studio.render.shadow import ShadowError, render_shadow_maps, shadow_gbuffer_term, visibility

GROUND = [[-2, 0, -2], [2, 0, -2], [2, 0, 2], [-2, 0, 2]]
SQUARE = [[-0.5, 0.6, -0.5], [0.5, 0.6, -0.5], [0.5, 0.6, 0.5], [-0.5, 0.6, 0.5]]
FACES = [[0, 2, 1], [0, 3, 2], [4, 6, 5], [4, 7, 6]]


@pytest.fixture(scope="module")
def be():
    return get_backend("torch", "cpu")


def _ground_points(n: int, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    xs = torch.linspace(-1.9, 1.9, n, dtype=dtype)
    grid = torch.stack(torch.meshgrid(xs, xs, indexing="ij"), -1).reshape(-1, 2)
    pts = torch.stack([grid[:, 0], torch.zeros(len(grid), dtype=dtype), grid[:, 1]], -1)
    return pts, torch.tensor([0.0, 1.0, 0.0], dtype=dtype).expand_as(pts)


@pytest.mark.parametrize("direction", [[0.4, 1.0, 0.3], [-0.7, 0.6, 0.2]])
def test_visibility_matches_a_ray_cast_towards_the_light(be, direction):
    verts = torch.tensor(GROUND + SQUARE, dtype=torch.float32)
    d = torch.nn.functional.normalize(torch.tensor(direction), dim=0)
    smap = render_shadow_maps(be, verts, torch.tensor(FACES, dtype=torch.int32), d[None], 256)[0]
    pts, normals = _ground_points(80)
    occluder = trimesh.Trimesh(np.array(SQUARE), np.array(FACES[2:]) - 4, process=False)
    hit = occluder.ray.intersects_any(pts.numpy() + [0, 1e-4, 0], np.repeat(d.numpy()[None], len(pts), 0))
    lit = torch.from_numpy(~hit)
    hard = visibility(smap, pts, normals, "hard", 0.01, 0.0)
    soft = visibility(smap, pts, normals, "soft", 0.01, 0.2)  # a sun of 0.2 deg: a penumbra under a texel
    assert 0.04 < 1 - lit.float().mean() < 0.5  # the test sees a real shadow
    assert (hard.bool() == lit).float().mean() > 0.99
    assert ((soft > 0.5) == lit).float().mean() > 0.99
    assert set(hard.unique().tolist()) <= {0.0, 1.0}


def test_a_larger_light_widens_the_penumbra_but_keeps_the_umbra(be):
    verts = torch.tensor(GROUND + SQUARE, dtype=torch.float32)
    # Slightly off vertical: straight down, the square's diagonal would run exactly through texel
    # centres, which the torch rasterizer's tie rule currently leaves empty.
    smap = render_shadow_maps(be, verts, torch.tensor(FACES, dtype=torch.int32), torch.tensor([[0.03, 1.0, 0.02]]),
                              256)[0]
    pts, normals = _ground_points(60)
    partial = [((v > 0.05) & (v < 0.95)).sum().item() for v in
               (visibility(smap, pts, normals, "soft", 0.01, deg) for deg in (1.0, 10.0))]
    assert partial[1] > 2 * partial[0]
    centre = visibility(smap, torch.zeros(1, 3), torch.tensor([[0.0, 1.0, 0.0]]), "soft", 0.01, 10.0)
    assert centre.item() < 0.02


def test_soft_visibility_gradients_match_finite_differences(be):
    """d(visibility)/d(light direction, an occluder vertex, the penumbra) in float64: through the
    lookup positions, the shadow map's depth (rasterize's z/w) and the antialiased coverage."""
    dt = torch.float64
    base = torch.tensor(GROUND[:4] + [[-0.5, 0.6, -0.5], [0.6, 0.6, -0.4], [0.0, 0.7, 0.6]], dtype=dt)
    tri = torch.tensor([[0, 2, 1], [0, 3, 2], [4, 6, 5]], dtype=torch.int32)
    pts = torch.tensor([[0.3, 0, 0.3], [0.1, 0, 0.2], [0.9, 0, 0.2], [-0.2, 0, 0.8], [0.45, 0, -0.1]], dtype=dt)
    normals = torch.tensor([0.0, 1.0, 0.0], dtype=dt).expand_as(pts)

    def vis(direction, vertex, penumbra):
        verts = torch.cat([base[:5], vertex[None], base[6:]])
        smap = render_shadow_maps(be, verts, tri, direction[None], 24)[0]
        return visibility(smap, pts, normals, "soft", 0.02, penumbra)

    inputs = (torch.tensor([0.3, 1.0, 0.2], dtype=dt, requires_grad=True), base[5].clone().requires_grad_(True),
              torch.tensor(12.0, dtype=dt, requires_grad=True))
    v = vis(*inputs)
    assert ((v > 0.05) & (v < 0.95)).sum() >= 2  # points in the penumbra, where the gradient lives
    assert torch.autograd.gradcheck(vis, inputs, eps=1e-6, atol=1e-5)
    grads = torch.autograd.grad(v.sum(), inputs)
    assert all(g.abs().sum() > 1e-3 for g in grads)


def test_hard_shadows_give_the_light_no_gradient(be):
    verts = torch.tensor(GROUND + SQUARE, dtype=torch.float32)
    d = torch.tensor([0.4, 1.0, 0.3], requires_grad=True)
    pos, normals = _ground_points(8)
    shadow = shadow_gbuffer_term(be, verts, torch.tensor(FACES, dtype=torch.int32), d[None], pos.view(1, 8, 8, 3),
                                 normals.reshape(1, 8, 8, 3), mode="hard", bias=0.01, penumbra_deg=torch.tensor([5.0]),
                                 size=64)
    assert shadow.shape == (1, 8, 8, 1) and not shadow.requires_grad and (shadow == 0).any()
    soft = shadow_gbuffer_term(be, verts, torch.tensor(FACES, dtype=torch.int32), d[None], pos.view(1, 8, 8, 3),
                               normals.reshape(1, 8, 8, 3), mode="soft", bias=0.01, penumbra_deg=torch.tensor([5.0]),
                               size=64)
    soft.sum().backward()
    assert d.grad.abs().sum() > 0


def test_bad_mode_and_resolution_are_one_sentence(be):
    verts = torch.tensor(GROUND, dtype=torch.float32)
    with pytest.raises(ShadowError, match="shadows must be one of off, hard, soft"):
        shadow_gbuffer_term(be, verts, torch.tensor(FACES[:2], dtype=torch.int32), torch.tensor([[0.0, 1.0, 0.0]]),
                            torch.zeros(1, 2, 2, 3), torch.zeros(1, 2, 2, 3), mode="blurry", bias=0.01,
                            penumbra_deg=torch.tensor([1.0]), size=64)
    with pytest.raises(ShadowError, match="at least 8 texels"):
        render_shadow_maps(be, verts, torch.tensor(FACES[:2], dtype=torch.int32), torch.tensor([[0.0, 1.0, 0.0]]), 4)
