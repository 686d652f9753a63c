"""rasterize and interpolate of the torch backend: hand-computed cases, references, gradients."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
import trimesh

from studio.render import RenderInputError
from studio.render.torch_raster import TorchBackend

from .helpers import clip_mesh, mvp_matrix, pixel_rays


@pytest.fixture
def be() -> TorchBackend:
    return TorchBackend("cpu")


@pytest.fixture(params=["eager", "compiled"])
def be_both(request) -> TorchBackend:
    """The eager backend and the one whose per-pixel passes run through torch.compile."""
    if request.param == "compiled" and shutil.which("c++") is None and shutil.which("g++") is None:
        pytest.skip("torch.compile's CPU backend needs a C++ compiler (none on PATH)")
    backend = TorchBackend("cpu", compiled=request.param == "compiled")
    yield backend
    # A compiled backend that fell back to eager would pass every test without testing anything.
    assert backend.compiled == (request.param == "compiled")


def tri_pos(*verts, dtype=torch.float32) -> torch.Tensor:
    return torch.tensor([list(verts)], dtype=dtype)


ONE_TRI = torch.tensor([[0, 1, 2]], dtype=torch.int32)


# ----------------------------------------------------------------------------- hand-computed


def test_one_triangle_coverage_barycentrics_and_derivatives(be):
    pos = tri_pos([-0.5, -0.5, 0.2, 1], [0.5, -0.5, 0.2, 1], [0, 0.5, 0.2, 1])
    rast, db = be.rasterize(pos, ONE_TRI, (8, 8))
    expected = torch.zeros(8, 8)
    expected[2, 2:6] = 1  # row 2 is NDC y = -0.375, near the base (bottom-up rows)
    expected[3, 3:5] = 1
    expected[4, 3:5] = 1
    assert torch.equal(rast[0, ..., 3], expected)
    # Pixel (4,4) centre = NDC (0.125, 0.125): solving p = u*v0 + v*v1 + (1-u-v)*v2 by hand.
    assert rast[0, 4, 4, :2].tolist() == pytest.approx([0.0625, 0.3125], abs=1e-6)
    assert rast[0, 4, 4, 2].item() == pytest.approx(0.2)
    # One pixel = 0.25 NDC: du/dX = -1 * 0.25, du/dY = -0.5 * 0.25, dv/dX = 0.25, dv/dY = -0.125.
    assert db[0, 4, 4].tolist() == pytest.approx([-0.25, -0.125, 0.25, -0.125], abs=1e-6)
    assert torch.all(rast[0][expected == 0] == 0) and torch.all(db[0][expected == 0] == 0)


def test_perspective_correct_barycentrics():
    # A triangle with different w per vertex: u, v must be the clip-space (perspective) weights.
    pos = tri_pos([-1.0, -1.0, 0.0, 1.0], [2.0, -2.0, 0.0, 2.0], [0.0, 3.0, 0.0, 3.0])
    rast, _ = TorchBackend().rasterize(pos, ONE_TRI, (16, 16))
    i, j = 9, 7
    px, py = (2 * j + 1) / 16 - 1, (2 * i + 1) / 16 - 1
    u, v = rast[0, i, j, :2].double()
    b = torch.stack([u, v, 1 - u - v])
    p = (b[:, None] * pos[0].double()).sum(0)
    assert p[0] / p[3] == pytest.approx(px, abs=1e-5) and p[1] / p[3] == pytest.approx(py, abs=1e-5)


def test_pixel_centre_rule_shared_edges_cover_each_pixel_once(be):
    # Two triangles of a square whose shared diagonal passes exactly through pixel centres.
    pos = torch.tensor([[[-1, -1, 0, 1], [1, -1, 0, 1], [1, 1, 0, 1], [-1, 1, 0, 1]]], dtype=torch.float32)
    tri = torch.tensor([[0, 1, 2], [0, 2, 3]], dtype=torch.int32)
    for res in [(8, 8), (7, 7), (6, 10)]:
        rast, _ = be.rasterize(pos, tri, res)
        assert bool((rast[..., 3] > 0).all()), f"a pixel was dropped at {res}"
    # With separate draws, a pixel on the shared edge must be claimed by exactly one triangle.
    pos2 = pos.expand(2, 4, 4).contiguous()
    lower, _ = be.rasterize(pos2, tri, (8, 8), ranges=None)
    ra, _ = be.rasterize(pos[0], tri, (8, 8), ranges=torch.tensor([[0, 1], [1, 1]], dtype=torch.int32))
    covered = (ra[0, ..., 3] > 0).int() + (ra[1, ..., 3] > 0).int()
    assert torch.equal(covered, torch.ones(8, 8, dtype=torch.int32))
    assert torch.equal(lower[0], lower[1])


def test_vertical_edge_on_pixel_centres_goes_to_one_side(be):
    # x = 0.25 is the centre of column 5 at width 8 ((2*5+1)/8 - 1 = 0.375; col 4 -> 0.125).
    # Use width 4: column 2 centre is x = 0.25.
    left = [[-1, -1, 0, 1], [0.25, -1, 0, 1], [0.25, 1, 0, 1], [-1, 1, 0, 1]]
    right = [[0.25, -1, 0, 1], [1, -1, 0, 1], [1, 1, 0, 1], [0.25, 1, 0, 1]]
    pos = torch.tensor([left + right], dtype=torch.float32)
    tri = torch.tensor([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]], dtype=torch.int32)
    ranges = torch.tensor([[0, 2], [2, 2]], dtype=torch.int32)
    rast, _ = be.rasterize(pos[0], tri, (4, 4), ranges=ranges)
    cover = (rast[..., 3] > 0).int()
    assert torch.equal(cover.sum(0), torch.ones(4, 4, dtype=torch.int32))
    assert bool((cover[0, :, :2] == 1).all()) and bool((cover[1, :, 3] == 1).all())


def test_depth_order_closest_wins_and_ties_go_to_lower_index(be):
    far_t = [[-1, -1, 0.5, 1], [1, -1, 0.5, 1], [0, 1, 0.5, 1]]
    near_t = [[-1, -1, -0.5, 1], [1, -1, -0.5, 1], [0, 1, -0.5, 1]]
    tri = torch.tensor([[0, 1, 2], [3, 4, 5]], dtype=torch.int32)
    for verts, winner in [(far_t + near_t, 2), (near_t + far_t, 1)]:
        rast, _ = be.rasterize(torch.tensor([verts], dtype=torch.float32), tri, (16, 16))
        ids = rast[0, ..., 3]
        assert set(ids[ids > 0].unique().tolist()) == {float(winner)}
        assert rast[0, 4, 8, 2].item() == pytest.approx(-0.5)
    same = torch.tensor([far_t + far_t], dtype=torch.float32)
    rast, _ = be.rasterize(same, tri, (16, 16))
    ids = rast[0, ..., 3]
    assert set(ids[ids > 0].unique().tolist()) == {1.0}


def test_empty_image_and_offscreen_triangles(be):
    rast, db = be.rasterize(torch.zeros(2, 3, 4), torch.zeros(0, 3, dtype=torch.int32), (5, 7))
    assert rast.shape == (2, 5, 7, 4) and db.shape == (2, 5, 7, 4)
    assert not rast.any() and not db.any()
    off = tri_pos([2, 2, 0, 1], [3, 2, 0, 1], [2, 3, 0, 1])
    rast, _ = be.rasterize(off, ONE_TRI, (8, 8))
    assert not rast.any()
    # Beyond the far plane (z/w > 1) and in front of the near plane (z/w < -1): clipped.
    for z in (1.5, -1.5):
        rast, _ = be.rasterize(tri_pos([-1, -1, z, 1], [1, -1, z, 1], [0, 1, z, 1]), ONE_TRI, (8, 8))
        assert not rast.any()


def test_degenerate_triangles_render_nothing_and_no_nan(be):
    line = tri_pos([-1, -1, 0, 1], [1, 1, 0, 1], [0, 0, 0, 1])
    point = tri_pos([0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 1])
    for pos in (line, point):
        p = pos.clone().requires_grad_(True)
        rast, db = be.rasterize(p, ONE_TRI, (9, 9))
        assert not rast.any()
        (rast.sum() + db.sum()).backward()
        assert torch.isfinite(p.grad).all()


def test_instance_and_range_modes_agree(be):
    mesh = trimesh.creation.icosphere(subdivisions=2, radius=0.7)
    pos_a, tri = clip_mesh(mesh, mvp_matrix(az=10))
    pos_b, _ = clip_mesh(mesh, mvp_matrix(az=70))
    inst, inst_db = be.rasterize(torch.cat([pos_a, pos_b]), tri, (32, 24))
    # Range mode: both copies in one vertex array, tri ids are global indices.
    V, T = pos_a.shape[1], tri.shape[0]
    pos_all = torch.cat([pos_a[0], pos_b[0]])
    tri_all = torch.cat([tri, tri + V])
    ranges = torch.tensor([[0, T], [T, T]], dtype=torch.int32)
    rng, rng_db = be.rasterize(pos_all, tri_all, (32, 24), ranges=ranges)
    assert torch.equal(inst[0], rng[0])
    assert torch.equal(inst[1, ..., :3], rng[1, ..., :3])
    covered = inst[1, ..., 3] > 0
    assert torch.equal(inst[1, ..., 3][covered] + T, rng[1, ..., 3][covered])
    assert torch.allclose(inst_db, rng_db)


def test_chunking_does_not_change_the_result():
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=0.9)
    pos, tri = clip_mesh(mesh, mvp_matrix())
    full, _ = TorchBackend().rasterize(pos, tri, (64, 64))
    small, _ = TorchBackend(chunk_fragments=100).rasterize(pos, tri, (64, 64))
    assert torch.equal(full, small)


# ----------------------------------------------------------------------------- references


def _raycast_ids(mesh: trimesh.Trimesh, mvp: torch.Tensor, h: int, w: int) -> np.ndarray:
    origins, dirs = pixel_rays(mvp, h, w)
    hit = mesh.ray.intersects_first(origins, dirs)
    return (hit + 1).reshape(h, w)  # -1 (miss) -> 0, like rast's background


def _test_mesh() -> trimesh.Trimesh:
    """Overlapping, non-convex, with concavities: a torus through a box and a sphere."""
    torus = trimesh.creation.torus(major_radius=0.6, minor_radius=0.18, major_sections=48, minor_sections=16)
    box = trimesh.creation.box(extents=(0.5, 0.5, 0.5))
    box.apply_translation((0.55, 0.0, 0.1))
    ball = trimesh.creation.icosphere(subdivisions=3, radius=0.3)
    ball.apply_translation((-0.3, 0.35, -0.2))
    return trimesh.util.concatenate([torus, box, ball])


def test_triangle_ids_agree_with_trimesh_ray_cast(be):
    mesh = _test_mesh()
    h, w = 96, 128
    mvp = mvp_matrix(az=35, el=25, dist=2.2, aspect=w / h)
    pos, tri = clip_mesh(mesh, mvp)
    rast, _ = be.rasterize(pos, tri, (h, w))
    ours = rast[0, ..., 3].long().numpy()
    ref = _raycast_ids(mesh, mvp, h, w)
    agree = (ours == ref).mean()
    assert (ref > 0).mean() > 0.25, "the reference view should be well covered"
    assert agree >= 0.995, f"only {agree:.4%} of pixels agree with the ray cast"


def test_triangles_crossing_the_camera_plane_render_like_a_ray_cast(be):
    # A ground plane that passes under and behind the camera: vertices have w <= 0.
    ground = trimesh.Trimesh(
        vertices=[[-20, -0.5, -20], [20, -0.5, -20], [20, -0.5, 20], [-20, -0.5, 20]],
        faces=[[0, 2, 1], [0, 3, 2]],
    )
    mvp = mvp_matrix(az=0, el=5, dist=2.0)
    pos, tri = clip_mesh(ground, mvp)
    assert bool((pos[0, :, 3] <= 0).any()), "the test needs vertices behind the camera"
    rast, db = be.rasterize(pos, tri, (48, 64))
    assert torch.isfinite(rast).all() and torch.isfinite(db).all()
    ours = rast[0, ..., 3].long().numpy()
    ref = _raycast_ids(ground, mvp, 48, 64)
    assert (ours > 0).mean() > 0.3
    assert (ours == ref).mean() >= 0.995
    # Perspective-correct barycentrics must reproduce the world hit point.
    origins, dirs = pixel_rays(mvp, 48, 64)
    covered = np.argwhere(ours > 0)
    i, j = covered[len(covered) // 2]
    t_id = ours[i, j] - 1
    u, v = rast[0, i, j, :2].double().numpy()
    verts = np.asarray(ground.vertices)[np.asarray(ground.faces)[t_id]]
    p = u * verts[0] + v * verts[1] + (1 - u - v) * verts[2]
    k = i * 64 + j
    t = (p - origins[k]) @ dirs[k]
    assert np.linalg.norm(origins[k] + t * dirs[k] - p) < 1e-3


# ----------------------------------------------------------------------------- gradients


def test_gradcheck_barycentrics_and_depth_wrt_pos(be):
    base = torch.tensor([[[-0.7, -0.6, 0.1, 1.0], [0.8, -0.5, 0.3, 1.3], [0.1, 0.9, -0.2, 0.9]]], dtype=torch.float64)

    def fn(p):
        rast, db = be.rasterize(p, ONE_TRI, (6, 6))
        return rast[..., :3], db

    pos = base.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(fn, (pos,), eps=1e-6, atol=1e-5)


def test_gradcheck_interpolate_attr_rast_and_derivatives(be_both):
    pos = torch.tensor([[[-0.8, -0.7, 0.0, 1.0], [0.9, -0.4, 0.0, 1.2], [-0.1, 0.8, 0.0, 0.8]]], dtype=torch.float64)
    rast, db = be_both.rasterize(pos, ONE_TRI, (5, 5))
    attr = torch.randn(1, 3, 2, dtype=torch.float64, requires_grad=True)
    uvz = rast[..., :3].detach().clone().requires_grad_(True)
    tri_id = rast[..., 3:].detach()  # an integer label: not differentiable
    d = db.detach().clone().requires_grad_(True)

    def fn(a, rr, dd):
        out, da = be_both.interpolate(a, torch.cat([rr, tri_id], -1), ONE_TRI, rast_db=dd, diff_attrs="all")
        return out, da

    assert torch.autograd.gradcheck(fn, (attr, uvz, d), eps=1e-6, atol=1e-6)


def test_rast_db_matches_finite_differences_of_barycentrics(be):
    pos = torch.tensor([[[-0.8, -0.8, 0.0, 1.0], [1.6, -0.9, 0.0, 2.0], [0.0, 2.4, 0.0, 3.0]]], dtype=torch.float64)
    rast, db = be.rasterize(pos, ONE_TRI, (64, 64))
    inner = (rast[0, 1:-1, 1:-1, 3] > 0) & (rast[0, 2:, 1:-1, 3] > 0) & (rast[0, :-2, 1:-1, 3] > 0) \
        & (rast[0, 1:-1, 2:, 3] > 0) & (rast[0, 1:-1, :-2, 3] > 0)
    du_dx = (rast[0, 1:-1, 2:, 0] - rast[0, 1:-1, :-2, 0]) / 2
    dv_dy = (rast[0, 2:, 1:-1, 1] - rast[0, :-2, 1:-1, 1]) / 2
    assert torch.allclose(db[0, 1:-1, 1:-1, 0][inner], du_dx[inner], atol=2e-4)
    assert torch.allclose(db[0, 1:-1, 1:-1, 3][inner], dv_dy[inner], atol=2e-4)


def test_interpolate_is_perspective_correct_with_screen_derivatives(be_both):
    # Interpolating clip (x, w) and dividing must give each pixel centre's NDC x; its screen
    # derivative by the quotient rule must be 2/W per pixel.
    pos = torch.tensor([[[-0.9, -0.9, 0.0, 1.0], [1.8, -0.6, 0.0, 2.0], [0.0, 2.1, 0.0, 3.0]]])
    rast, db = be_both.rasterize(pos, ONE_TRI, (32, 32))
    out, da = be_both.interpolate(pos[..., [0, 3]], rast, ONE_TRI, rast_db=db, diff_attrs="all")
    mask = rast[0, ..., 3] > 0
    x, w = out[0, ..., 0][mask], out[0, ..., 1][mask]
    cols = ((2 * torch.arange(32) + 1) / 32 - 1).expand(32, 32)[mask]
    assert torch.allclose(x / w, cols, atol=1e-5)
    dxdX, dwdX = da[0, ..., 0][mask], da[0, ..., 2][mask]
    assert torch.allclose((dxdX * w - x * dwdX) / (w * w), torch.full_like(w, 2 / 32), atol=1e-5)
    assert not out[0][~mask].any()


def test_interpolate_batched_and_broadcast_attributes(be_both):
    mesh = trimesh.creation.icosphere(subdivisions=1)
    pos, tri = clip_mesh(mesh, mvp_matrix())
    rast, _ = be_both.rasterize(pos.expand(2, -1, -1).contiguous(), tri, (16, 16))
    attr = torch.rand(pos.shape[1], 3)
    shared, _ = be_both.interpolate(attr, rast, tri)
    per_image, _ = be_both.interpolate(torch.stack([attr, attr * 2]), rast, tri)
    assert torch.allclose(shared[0], per_image[0])
    assert torch.allclose(per_image[1], 2 * shared[1])


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "pos, tri, match",
    [
        (torch.zeros(1, 3, 4, dtype=torch.int32), ONE_TRI, "pos must be"),
        (torch.zeros(3, 4), ONE_TRI, "pos must be"),
        (torch.zeros(1, 3, 3), ONE_TRI, "pos must be"),
        (torch.zeros(1, 3, 4), ONE_TRI.long(), "tri must be"),
        (torch.zeros(1, 3, 4), torch.tensor([[0, 1, 3]], dtype=torch.int32), "vertex index 3"),
        (torch.zeros(1, 3, 4), torch.tensor([[0, -1, 2]], dtype=torch.int32), "vertex index -1"),
        ([[0.0, 0, 0, 1]], ONE_TRI, "torch.Tensor"),
    ],
)
def test_bad_rasterize_input_names_the_argument(be, pos, tri, match):
    with pytest.raises(RenderInputError, match=match):
        be.rasterize(pos, tri, (4, 4))


def test_nan_in_pos_is_a_clear_error_not_a_black_image(be):
    pos = tri_pos([-1, -1, 0, 1], [1, -1, 0, 1], [0, float("nan"), 0, 1])
    with pytest.raises(RenderInputError, match="pos contains 1 NaN/Inf"):
        be.rasterize(pos, ONE_TRI, (4, 4))


@pytest.mark.parametrize("res", [(0, 4), (4,), "64", (4.5, 4), (-1, 8)])
def test_bad_resolution(be, res):
    with pytest.raises(RenderInputError, match="resolution"):
        be.rasterize(tri_pos([-1, -1, 0, 1], [1, -1, 0, 1], [0, 1, 0, 1]), ONE_TRI, res)


def test_bad_ranges_and_device(be):
    pos = torch.zeros(3, 4)
    with pytest.raises(RenderInputError, match="ranges must"):
        be.rasterize(pos, ONE_TRI, (4, 4), ranges=torch.tensor([[0, 1]]))
    with pytest.raises(RenderInputError, match="ranges must select"):
        be.rasterize(pos, ONE_TRI, (4, 4), ranges=torch.tensor([[0, 2]], dtype=torch.int32))
    with pytest.raises(RenderInputError, match="is on meta"):
        be.rasterize(torch.zeros(1, 3, 4, device="meta"), ONE_TRI, (4, 4))


def test_bad_interpolate_input(be_both):
    pos = tri_pos([-1, -1, 0, 1], [1, -1, 0, 1], [0, 1, 0, 1])
    rast, db = be_both.rasterize(pos, ONE_TRI, (4, 4))
    with pytest.raises(RenderInputError, match="attr has batch size 3"):
        be_both.interpolate(torch.zeros(3, 3, 2), rast, ONE_TRI)
    with pytest.raises(RenderInputError, match="attr has only 2 vertices"):
        be_both.interpolate(torch.zeros(2, 2), rast, ONE_TRI)
    with pytest.raises(RenderInputError, match="diff_attrs needs rast_db"):
        be_both.interpolate(torch.zeros(3, 2), rast, ONE_TRI, diff_attrs="all")
    with pytest.raises(RenderInputError, match="diff_attrs must list"):
        be_both.interpolate(torch.zeros(3, 2), rast, ONE_TRI, rast_db=db, diff_attrs=[2])
    with pytest.raises(RenderInputError, match="rast refers to triangle 0 but tri has only 0"):
        be_both.interpolate(torch.zeros(3, 2), rast, torch.zeros(0, 3, dtype=torch.int32))
