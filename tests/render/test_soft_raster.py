"""Soft rasterization (SoftRas): coverage values, limits, gradients, robustness and the teaching point."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import trimesh

from studio.render import RenderInputError
from studio.render.soft_raster import soft_coverage, soft_rasterize, support_radius
from studio.render.torch_raster import TorchBackend

from .helpers import clip_mesh, mvp_matrix

ONE_TRI = torch.tensor([[0, 1, 2]], dtype=torch.int32)
TRIANGLE = [[-0.62, -0.55, 0.0, 1.0], [0.71, -0.31, 0.0, 1.0], [-0.05, 0.66, 0.0, 1.0]]


@pytest.fixture
def be() -> TorchBackend:
    return TorchBackend("cpu")


def _pos(rows, dtype=torch.float64, grad=False) -> torch.Tensor:
    return torch.tensor([rows], dtype=dtype).requires_grad_(grad)


def _pixels(pos: torch.Tensor, H: int, W: int) -> np.ndarray:
    """[V,2] vertex positions in pixels (pixel (i, j) centred at (j, i))."""
    p = pos[0].detach().double().numpy()
    return np.stack([(p[:, 0] / p[:, 3] + 1) * W / 2 - 0.5, (p[:, 1] / p[:, 3] + 1) * H / 2 - 0.5], 1)


def _reference_d(v: np.ndarray, H: int, W: int) -> np.ndarray:
    """Signed squared distance [H,W] (px², positive inside) from pixel centres to triangle v [3,2]."""
    jj, ii = np.meshgrid(np.arange(W, dtype=float), np.arange(H, dtype=float))
    p = np.stack([jj, ii], -1)
    best = np.full((H, W), np.inf)
    sides = []
    for k in range(3):
        a, b = v[k], v[(k + 1) % 3]
        e = b - a
        t = np.clip(((p - a) @ e) / (e @ e), 0, 1)
        best = np.minimum(best, (((p - a) - t[..., None] * e) ** 2).sum(-1))
        sides.append(e[0] * (p[..., 1] - a[1]) - e[1] * (p[..., 0] - a[0]))
    sides = np.stack(sides)
    inside = (sides > 0).all(0) | (sides < 0).all(0)
    return np.where(inside, best, -best)


# ---------------------------------------------------------------------- values


def test_single_triangle_coverage_is_the_sigmoid_of_the_signed_squared_distance():
    H, W, sigma = 20, 24, 1.3
    pos = _pos(TRIANGLE)
    A = soft_coverage(pos, ONE_TRI, (H, W), sigma)[0, ..., 0].numpy()
    d = _reference_d(_pixels(pos, H, W), H, W)
    near = d > -support_radius(sigma) ** 2
    np.testing.assert_allclose(A[near], 1 / (1 + np.exp(-d[near] / sigma)), atol=1e-9)
    assert A[~near].max() < 1e-4  # beyond the support radius: below eps (or exactly 0)
    assert ((A >= 0) & (A <= 1)).all()


def _edge_distance(pos: torch.Tensor, tri: torch.Tensor, H: int, W: int) -> np.ndarray:
    """[H,W] distance in px from each pixel centre to the nearest projected mesh edge."""
    v = _pixels(pos, H, W)
    t = tri.long().numpy()
    a, b = v[t].reshape(-1, 2), v[np.roll(t, -1, 1)].reshape(-1, 2)  # [E,2]
    jj, ii = np.meshgrid(np.arange(W, dtype=float), np.arange(H, dtype=float))
    p = np.stack([jj, ii], -1).reshape(-1, 1, 2)
    e = b - a
    s = np.clip(((p - a) * e).sum(-1) / (e * e).sum(-1), 0, 1)
    return np.sqrt((((p - a) - s[..., None] * e) ** 2).sum(-1).min(1)).reshape(H, W)


def test_coverage_of_a_mesh_tends_to_the_hard_coverage_as_sigma_shrinks(be):
    H = W = 48
    pos, tri = clip_mesh(trimesh.creation.icosphere(subdivisions=2, radius=0.8), mvp_matrix(dist=2.6))
    rast, _ = be.rasterize(pos, tri, (H, W))
    hard = (rast[..., 3:] > 0).float()
    near_edge = _edge_distance(pos, tri, H, W)
    wrong = []
    for sigma in (1.0, 0.1, 0.01, 1e-3):
        A = soft_coverage(pos, tri, (H, W), sigma)
        assert bool(((A >= 0) & (A <= 1)).all())
        differs = ((A - hard).abs() > 1e-3)[0, ..., 0].numpy()
        wrong.append(int(differs.sum()))
        # A pixel can differ only where its centre is within a few sqrt(σ) of some edge.
        assert near_edge[differs].max() < 3 * math.sqrt(sigma), sigma
    assert wrong == sorted(wrong, reverse=True) and wrong[-1] < wrong[0] / 10, wrong


def test_coverage_across_an_edge_is_symmetric_monotone_and_strictly_between_0_and_1():
    H, W, sigma = 24, 24, 1.0
    x_edge = (10 + 0.5) / (W / 2) - 1  # the vertical edge passes through pixel column 10's centre
    pos = _pos([[x_edge, -3.0, 0.0, 1.0], [3.0, 0.0, 0.0, 1.0], [x_edge, 3.0, 0.0, 1.0]])
    A = soft_coverage(pos, ONE_TRI, (H, W), sigma)[0, 12, :, 0]
    assert A[10].item() == pytest.approx(0.5, abs=1e-12)
    r = support_radius(sigma)
    for k in range(1, math.ceil(r)):
        assert (A[10 + k] + A[10 - k]).item() == pytest.approx(1.0, abs=1e-9)
        assert (A[10 + k] - 1 / (1 + math.exp(-(k * k) / sigma))).abs() < 1e-9
    band = A[10 - math.ceil(r) + 1:10 + math.ceil(r)]
    assert bool((band.diff() > 0).all()), "coverage must rise monotonically into the triangle"
    assert bool(((band > 0) & (band < 1)).all())


def test_overlapping_triangles_aggregate_as_one_minus_the_product():
    H, W, sigma = 16, 16, 2.0
    tris = [TRIANGLE, [[-0.3, -0.7, 0.0, 1.0], [0.6, 0.4, 0.0, 1.0], [-0.6, 0.5, 0.0, 1.0]]]
    pos = _pos(tris[0] + tris[1])
    tri = torch.tensor([[0, 1, 2], [3, 4, 5]], dtype=torch.int32)
    A = soft_coverage(pos, tri, (H, W), sigma)[0, ..., 0]
    each = [soft_coverage(_pos(t), ONE_TRI, (H, W), sigma)[0, ..., 0] for t in tris]
    torch.testing.assert_close(A, 1 - (1 - each[0]) * (1 - each[1]), atol=1e-12, rtol=0)


# ---------------------------------------------------------------------- gradients


def test_gradcheck_coverage_float64():
    pos = _pos([[-0.7, -0.6, 0.1, 1.0], [0.5, -0.4, 0.2, 1.1], [-0.1, 0.5, 0.0, 0.9], [0.6, 0.6, 0.3, 1.2]], grad=True)
    tri = torch.tensor([[0, 1, 2], [1, 3, 2]], dtype=torch.int32)
    for sigma in (0.7, 2.0):
        assert torch.autograd.gradcheck(lambda p: soft_coverage(p, tri, (8, 10), sigma), (pos,), eps=1e-6, atol=1e-6)


def test_gradcheck_through_the_nearest_triangle_colour(be):
    pos = _pos([[-0.7, -0.6, 0.1, 1.0], [0.5, -0.4, 0.2, 1.1], [-0.1, 0.5, 0.0, 0.9], [0.6, 0.6, 0.3, 1.2]], grad=True)
    tri = torch.tensor([[0, 1, 2], [1, 3, 2]], dtype=torch.int32)
    colour = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.3, 0.3], [0.8, 0.1]], dtype=torch.float64)
    rast, _ = be.rasterize(pos.detach(), tri, (10, 12))

    def image(p):
        soft = soft_rasterize(p, tri, rast, 0.7)
        c, _ = be.interpolate(colour, soft.rast, tri)
        return c * soft.coverage

    assert bool(soft_rasterize(pos.detach(), tri, rast, 0.7).fringe.any())
    assert torch.autograd.gradcheck(image, (pos,), eps=1e-6, atol=1e-6)


def test_silhouette_sum_gradient_matches_finite_differences():
    H = W = 24
    sigma = 1.0
    pos = _pos(TRIANGLE, grad=True)
    soft_coverage(pos, ONE_TRI, (H, W), sigma).sum().backward()
    h = 1e-5
    for v in range(3):
        for c in range(2):
            plus, minus = pos.detach().clone(), pos.detach().clone()
            plus[0, v, c] += h
            minus[0, v, c] -= h
            area_plus = soft_coverage(plus, ONE_TRI, (H, W), sigma).sum()
            fd = (area_plus - soft_coverage(minus, ONE_TRI, (H, W), sigma).sum()) / (2 * h)
            assert pos.grad[0, v, c].item() == pytest.approx(fd.item(), rel=1e-5, abs=1e-6), (v, c)


def test_moving_any_rim_vertex_of_a_convex_polygon_outward_grows_the_silhouette():
    n = 9
    angles = torch.arange(n, dtype=torch.float64) * (2 * math.pi / n) + 0.1
    rim = torch.stack([0.6 * angles.cos() + 0.03, 0.55 * angles.sin() - 0.02], 1)
    verts = torch.cat([torch.tensor([[0.03, -0.02]], dtype=torch.float64), rim])
    pos = torch.cat([verts, torch.zeros(n + 1, 1, dtype=torch.float64), torch.ones(n + 1, 1, dtype=torch.float64)], 1)
    pos = pos.unsqueeze(0).requires_grad_(True)
    tri = torch.tensor([[0, 1 + k, 1 + (k + 1) % n] for k in range(n)], dtype=torch.int32)
    soft_coverage(pos, tri, (32, 32), 1.0).sum().backward()
    outward = torch.nn.functional.normalize(verts[1:] - verts[0], dim=1)
    along = (pos.grad[0, 1:, :2] * outward).sum(1)
    assert bool((along > 0).all()), along


# ---------------------------------------------------------------------- robustness


@pytest.mark.parametrize("degenerate", [
    [[-0.5, -0.5, 0.0, 1.0], [0.0, 0.0, 0.0, 1.0], [0.5, 0.5, 0.0, 1.0]],  # collinear
    [[-0.5, -0.5, 0.0, 1.0], [-0.5, -0.5, 0.0, 1.0], [0.5, 0.3, 0.0, 1.0]],  # two vertices coincide
    [[0.1, 0.1, 0.0, 1.0], [0.1, 0.1, 0.0, 1.0], [0.1, 0.1, 0.0, 1.0]],  # a point
    [[(2 * 5 + 1) / 16 - 1, (2 * 7 + 1) / 16 - 1, 0.0, 1.0]] * 3,  # a point on a pixel centre
])
def test_degenerate_triangles_give_no_nan_and_cover_nothing_inside(be, degenerate):
    pos = _pos(TRIANGLE + degenerate, dtype=torch.float32, grad=True)
    tri = torch.tensor([[0, 1, 2], [3, 4, 5]], dtype=torch.int32)
    rast, _ = be.rasterize(pos.detach(), tri, (16, 16))
    soft = soft_rasterize(pos, tri, rast, 1.0)
    col, _ = be.interpolate(torch.rand(6, 3), soft.rast, tri)
    ((col * soft.coverage).sum() + soft.coverage.sum()).backward()
    assert bool(torch.isfinite(soft.coverage).all()) and bool(torch.isfinite(pos.grad).all())
    alone = soft_coverage(pos.detach()[:, 3:], ONE_TRI, (16, 16), 1.0)
    assert float(alone.max()) <= 0.5 + 1e-6  # never inside: at most the value on its segment


def test_chunking_gives_identical_results():
    """Chunks change only the order of float sums (and which SIMD path a value takes)."""
    pos, tri = clip_mesh(trimesh.creation.icosphere(subdivisions=2, radius=0.8), mvp_matrix(dist=2.6))
    pos = torch.cat([pos, pos * torch.tensor([1.1, 0.9, 1.0, 1.0])]).requires_grad_(True)  # two images
    weights = torch.rand(2, 40, 40, 1)
    outs = []
    for chunk in (1 << 18, 1000, 40):
        A = soft_coverage(pos, tri, (40, 40), 1.5, chunk_fragments=chunk)
        (g,) = torch.autograd.grad((A * weights).sum(), pos)
        outs.append((A, g))
    for A, g in outs[1:]:
        torch.testing.assert_close(A, outs[0][0], rtol=0, atol=1e-6)
        torch.testing.assert_close(g, outs[0][1], rtol=1e-5, atol=1e-5)


def test_triangles_behind_the_camera_are_skipped_but_their_pixels_stay_covered(be):
    # A triangle that crosses the camera plane (one vertex has w < 0) at constant depth z/w = 0.5.
    pos = _pos([[-0.5, -0.5, 0.5, 1.0], [0.5, -0.5, 0.5, 1.0], [0.0, 0.6, -0.25, -0.5]], dtype=torch.float32, grad=True)
    rast, _ = be.rasterize(pos.detach(), ONE_TRI, (16, 16))
    soft = soft_rasterize(pos, ONE_TRI, rast, 1.0)
    covered = rast[..., 3:] > 0
    assert bool(covered.any())
    cov = soft.coverage.detach()
    assert bool((cov[covered] == 1).all()) and float(cov[~covered].abs().max()) == 0.0
    soft.coverage.sum().backward()
    assert bool(torch.isfinite(pos.grad).all())


def test_bad_sigma_is_one_clear_sentence():
    pos = _pos(TRIANGLE, dtype=torch.float32)
    for bad in (0.0, -1.0, float("nan"), "wide"):
        with pytest.raises(RenderInputError, match="soft_sigma"):
            soft_coverage(pos, ONE_TRI, (8, 8), bad)


# ---------------------------------------------------------------------- integration


def test_raster_pass_soft_mode_fills_coverage_and_the_fringe(be):
    from studio.render.raster_pass import raster_gbuffer

    pos, tri = clip_mesh(trimesh.creation.icosphere(subdivisions=2, radius=0.8), mvp_matrix(dist=2.6))
    V = pos.shape[1]
    kw = dict(world_pos=torch.rand(V, 3), normals=torch.nn.functional.normalize(torch.rand(V, 3), dim=1),
              eye=torch.tensor([[0.0, 0.0, 2.6]]), forward=torch.tensor([[0.0, 0.0, -1.0]]), colors=torch.rand(V, 3))
    hard = raster_gbuffer(be, pos, tri, (32, 32), **kw)
    soft = raster_gbuffer(be, pos, tri, (32, 32), soft_sigma=1.0, **kw)
    assert hard.coverage is None and soft.coverage is not None
    assert torch.equal(soft.mask, hard.mask) and torch.equal(soft.tri_id, hard.tri_id)
    fringe = (soft.mask[..., 0] == 0) & (soft.coverage[..., 0] > 1e-3)
    assert bool(fringe.any())
    assert bool((soft.albedo[fringe].abs().sum(-1) > 0).all()) and bool((soft.object_id[fringe] == 0).all())
    img = torch.rand(1, 32, 32, 4)
    assert soft.finish(img) is img
    for off in (None, 0.0):
        assert raster_gbuffer(be, pos, tri, (32, 32), soft_sigma=off, **kw).coverage is None


def test_camera_gradients_in_soft_mode_match_finite_differences_of_the_soft_loss():
    """White silhouette on black (the camera scenario), loss mask IoU + L2: every camera gradient is
    non-zero and agrees with central differences (the soft image is smooth in the camera)."""
    from studio.scenarios import load_spec
    from studio.workspace import build_scene, load_targets

    spec = load_spec("camera")
    spec.resolution = (48, 48)
    targets, _ = load_targets(build_scene(spec, "torch", "cpu"))
    scene = build_scene(spec, "torch", "cpu", soft_sigma=1.0)

    def loss(values):
        out = scene.render(values=values)
        a, m = out.alpha, targets.mask
        return 1 - (a * m).sum() / (a + m - a * m).sum() + ((out.rgb - targets.rgb) ** 2).mean()

    base = {k: v.detach().clone() for k, v in scene.params.values().items()}
    names, steps = ["camera.azimuth", "camera.elevation", "camera.distance"], [0.2, 0.2, 0.01]
    values = dict(base)
    for n in names:
        values[n] = base[n].clone().requires_grad_(True)
    loss(values).backward()
    with torch.no_grad():
        for n, h in zip(names, steps):
            fd = (loss({**base, n: base[n] + h}) - loss({**base, n: base[n] - h})) / (2 * h)
            g = values[n].grad.item()
            assert g != 0 and g == pytest.approx(fd.item(), rel=0.05), (n, g, fd.item())
    # Towards the truth (azimuth 40, elevation 25, distance 3 from 10, 5, 3.6) the loss falls.
    assert values["camera.azimuth"].grad < 0 and values["camera.elevation"].grad < 0
    assert values["camera.distance"].grad > 0


def _camera_run(opts: dict, steps: int) -> tuple[float, float]:
    from studio.optim.engine import Engine, EngineConfig
    from studio.scenarios import load_spec
    from studio.workspace import build_scene, load_targets

    spec = load_spec("camera")
    spec.resolution = (48, 48)
    targets, _ = load_targets(build_scene(spec, "torch", "cpu"))  # the scenario's own (antialiased) target
    scene = build_scene(spec, "torch", "cpu", **opts)
    engine = Engine(scene, targets, [(l.name, l.weight, l.params) for l in spec.losses],
                    EngineConfig(steps=steps, views_per_step=spec.views_per_step, seed=spec.seed,
                                 group_lr=spec.group_lr, restarts=spec.restarts))  # no lr decay in a short probe
    before = scene.params.group_errors()["camera"].value
    engine.start_thread()
    engine.start(until=steps)
    snap = engine.wait_snapshot(predicate=lambda s: s.finished, timeout=120)
    engine.stop()
    assert snap is not None and snap.step == steps and snap.skipped_steps == 0
    return before, scene.params.group_errors()["camera"].value


def test_teaching_point_hard_silhouettes_give_the_camera_no_gradient_soft_coverage_does():
    """The camera scenario (white silhouette on black): with hard rasterization and antialiasing off
    the image is piecewise constant in the camera, so the camera does not move at all; soft
    coverage gives the outline a gradient and the camera error falls."""
    before, after = _camera_run({"antialias": False}, steps=8)
    assert after == before
    before, after = _camera_run({"antialias": False, "soft_sigma": 1.0}, steps=15)
    assert after < 0.85 * before, (before, after)  # Adam at lr 0.5 deg/step: about 10 deg in 15 steps
