"""SDF renderer: distance functions, smooth CSG, rays, G-buffer, gradients against finite differences."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import trimesh

from studio.render import RenderInputError
from studio.render.gbuffer import GBuffer
from studio.render.sdf import (Box, Capsule, Cylinder, Intersection, Plane, RoundedBox, SDFModel, Sphere, Subtraction,
                               Torus, TraceSettings, Union, blend_weight, camera_rays, render_sdf, smooth_max,
                               smooth_min)
from studio.render.shading import Lights, shade
from studio.render.torch_raster import TorchBackend
from studio.scene.camera import look_at, orbit_eye, perspective, to_clip

F64 = torch.float64


def t64(x, grad: bool = False) -> torch.Tensor:
    return torch.tensor(x, dtype=F64, requires_grad=grad)


def view64(eye, yaw_deg=0.0, pitch_deg=0.0) -> torch.Tensor:
    """World-to-camera [4,4] float64 for a camera at ``eye`` looking down -z, turned by yaw (about y)
    then pitch (about x); all differentiable."""
    eye = torch.as_tensor(eye, dtype=F64)
    ya, pa = torch.deg2rad(torch.as_tensor(yaw_deg, dtype=F64)), torch.deg2rad(torch.as_tensor(pitch_deg, dtype=F64))
    one, zero = torch.ones((), dtype=F64), torch.zeros((), dtype=F64)
    ry = torch.stack([torch.stack([torch.cos(ya), zero, torch.sin(ya)]), torch.stack([zero, one, zero]),
                      torch.stack([-torch.sin(ya), zero, torch.cos(ya)])])
    rx = torch.stack([torch.stack([one, zero, zero]), torch.stack([zero, torch.cos(pa), -torch.sin(pa)]),
                      torch.stack([zero, torch.sin(pa), torch.cos(pa)])])
    cam_to_world = ry @ rx
    rot = cam_to_world.transpose(0, 1)
    top = torch.cat([rot, -(rot @ eye)[:, None]], 1)
    return torch.cat([top, torch.tensor([[0.0, 0.0, 0.0, 1.0]], dtype=F64)], 0)


def lambert_image(gb: GBuffer, light: torch.Tensor, background: float = 0.2) -> torch.Tensor:
    lights = Lights(ambient=torch.full((3,), 0.1, dtype=F64), directions=light[None],
                    colors=torch.ones(1, 3, dtype=F64))
    colour = shade(gb, gb.albedo, lights, "lambert")
    return colour * gb.coverage + background * (1 - gb.coverage)


def erode(mask: torch.Tensor, times: int = 2) -> torch.Tensor:
    """[H,W] float mask shrunk by ``times`` pixels (4-neighbourhood)."""
    m = mask.clone()
    for _ in range(times):
        e = torch.zeros_like(m)
        e[1:-1, 1:-1] = m[1:-1, 1:-1] * m[:-2, 1:-1] * m[2:, 1:-1] * m[1:-1, :-2] * m[1:-1, 2:]
        m = e
    return m


def central_fd(fn, params: list[torch.Tensor], h: float = 1e-5) -> list[torch.Tensor]:
    """Central differences of the scalar fn() w.r.t. each element of each tensor in ``params``."""
    out = []
    with torch.no_grad():
        for p in params:
            g = torch.zeros_like(p)
            flat, gflat = p.view(-1), g.view(-1)
            for i in range(flat.numel()):
                old = flat[i].item()
                flat[i] = old + h
                hi = fn()
                flat[i] = old - h
                lo = fn()
                flat[i] = old
                gflat[i] = (hi - lo) / (2 * h)
            out.append(g)
    return out


def assert_grads_close(ana: list[torch.Tensor], fd: list[torch.Tensor], rtol: float = 0.02, floor: float = 1e-6):
    for a, f in zip(ana, fd):
        scale = max(float(f.abs().max()), floor)
        err = float((a - f).abs().max())
        assert err <= rtol * scale, f"analytic {a.tolist()} vs finite differences {f.tolist()}"


# --------------------------------------------------------------------------------- distance functions


def test_primitive_distances_match_closed_forms():
    x = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.5, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    m = SDFModel([Sphere([0, 0, 0], 1.0)])
    assert m.distance(x).tolist() == pytest.approx([1.0, -0.5, math.sqrt(2) - 1, -1.0])
    m = SDFModel([Box([0, 0, 0], [1.0, 0.5, 0.25])])
    assert m.distance(x).tolist() == pytest.approx([1.0, 0.0, 0.5, -0.25])
    m = SDFModel([RoundedBox([0, 0, 0], [1.0, 1.0, 1.0], 0.2)])
    corner = torch.tensor([[2.0, 2.0, 2.0]])
    assert float(m.distance(corner)) == pytest.approx(math.sqrt(3) * 1.2 - 0.2, abs=1e-5)
    assert float(m.distance(torch.tensor([[1.5, 0.0, 0.0]]))) == pytest.approx(0.5)
    m = SDFModel([Torus([0, 0, 0], 1.0, 0.25)])
    assert m.distance(torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 1.0, 1.0]])).tolist() == \
        pytest.approx([-0.25, 0.75, 0.75])
    m = SDFModel([Capsule([0, 0, 0], [0, 2, 0], 0.5)])
    assert m.distance(torch.tensor([[1.0, 1.0, 0.0], [0.0, 3.0, 0.0], [0.0, -1.0, 0.0]])).tolist() == \
        pytest.approx([0.5, 0.5, 0.5])
    m = SDFModel([Cylinder([0, 0, 0], 1.0, 2.0)])
    assert m.distance(torch.tensor([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [2.0, 3.0, 0.0], [0.0, 0.0, 0.0]])).tolist() == \
        pytest.approx([1.0, 1.0, math.sqrt(2), -1.0])
    m = SDFModel([Plane([0, 2.0, 0], -1.0)])
    assert m.distance(torch.tensor([[5.0, 1.0, 3.0], [0.0, -2.0, 0.0]])).tolist() == pytest.approx([2.0, -1.0])


def test_rotation_turns_the_shape_about_its_centre():
    quarter = [math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4)]  # 90 degrees about z
    rotated = SDFModel([Box([1.0, 0, 0], [2.0, 0.5, 0.5], rotation=quarter)])
    turned = SDFModel([Box([1.0, 0, 0], [0.5, 2.0, 0.5])])
    pts = torch.randn(200, 3) * 2
    assert torch.allclose(rotated.distance(pts), turned.distance(pts), atol=1e-5)
    as_matrix = SDFModel([Box([1.0, 0, 0], [2.0, 0.5, 0.5], rotation=[[0, -1.0, 0], [1.0, 0, 0], [0, 0, 1.0]])])
    assert torch.allclose(as_matrix.distance(pts), turned.distance(pts), atol=1e-5)


def test_parameter_gradients_of_the_distance_are_analytic():
    r = t64(0.7, grad=True)
    c = t64([0.1, 0.2, 0.3], grad=True)
    m = SDFModel([Sphere(c, r)])
    x = t64([[1.0, 1.0, 1.0]])
    m.distance(x).sum().backward()
    assert float(r.grad) == pytest.approx(-1.0)
    assert c.grad.tolist() == pytest.approx((-(x[0] - c) / (x[0] - c).norm()).tolist())


# ---------------------------------------------------------------------------------------- smooth CSG


def test_smooth_operations_tend_to_the_hard_ones():
    a, b = torch.randn(500, dtype=F64), torch.randn(500, dtype=F64)
    for k in (0.0, 1e-9, t64(0.0), t64(1e-9)):
        assert torch.allclose(smooth_min(a, b, k), torch.minimum(a, b), atol=1e-9)
        assert torch.allclose(smooth_max(a, b, k), torch.maximum(a, b), atol=1e-9)
    k = 0.3
    s = smooth_min(a, b, k)
    assert bool((s <= torch.minimum(a, b) + 1e-12).all()) and bool((s >= torch.minimum(a, b) - k / 4 - 1e-12).all())
    # The weights are those of the mix form: smin = mix(b, a, w) - k w (1 - w).
    w = blend_weight(a, b, k)
    assert torch.allclose(s, w * a + (1 - w) * b - k * w * (1 - w), atol=1e-12)


def test_hard_csg_models_are_min_max_of_their_parts():
    s = Sphere([0.3, 0, 0], 0.8)
    bx = Box([-0.2, 0.1, 0], [0.6, 0.4, 0.5])
    pts = torch.randn(300, 3)
    ds = SDFModel([Sphere([0.3, 0, 0], 0.8)]).distance(pts)
    db = SDFModel([Box([-0.2, 0.1, 0], [0.6, 0.4, 0.5])]).distance(pts)
    assert torch.allclose(SDFModel(Union(s, bx)).distance(pts), torch.minimum(ds, db))
    s, bx = Sphere([0.3, 0, 0], 0.8), Box([-0.2, 0.1, 0], [0.6, 0.4, 0.5])
    assert torch.allclose(SDFModel(Intersection(s, bx)).distance(pts), torch.maximum(ds, db))
    s, bx = Sphere([0.3, 0, 0], 0.8), Box([-0.2, 0.1, 0], [0.6, 0.4, 0.5])
    assert torch.allclose(SDFModel(Subtraction(s, bx)).distance(pts), torch.maximum(ds, -db))


def test_fold_builds_the_tree_left_to_right():
    pts = torch.randn(200, 3)
    def parts():
        return Sphere([0.0, 0, 0], 0.7), Box([0.5, 0, 0], [0.4, 0.4, 0.4]), Sphere([0, 0.5, 0], 0.3)

    a, b, c = parts()
    folded = SDFModel.fold([(a, "union", 0.0), (b, "union", 0.2), (c, "subtract", 0.1)])
    a, b, c = parts()
    tree = SDFModel(Subtraction(Union(a, b, k=0.2), c, k=0.1))
    assert torch.allclose(folded.distance(pts), tree.distance(pts))
    with pytest.raises(RenderInputError, match="op"):
        SDFModel.fold([(Sphere([0, 0, 0], 1.0), "union", 0.0), (Sphere([1, 0, 0], 1.0), "xor", 0.0)])


def test_colours_blend_with_the_smooth_min_weights_and_ids_follow_the_dominant_primitive():
    red = Sphere([-0.5, 0, 0], 0.6, colour=[1.0, 0.0, 0.0])
    blue = Sphere([0.5, 0, 0], 0.6, colour=[0.0, 0.0, 1.0], object_id=7)
    m = SDFModel(Union(red, blue, k=0.4))
    d, col, pid = m.evaluate(torch.tensor([[0.0, 0.3, 0.0], [-1.2, 0.0, 0.0], [1.2, 0.0, 0.0], [0.1, 0.0, 0.0]]))
    assert col[0].tolist() == pytest.approx([0.5, 0.0, 0.5])  # equidistant: half and half
    assert col[1].tolist() == pytest.approx([1.0, 0.0, 0.0]) and col[2].tolist() == pytest.approx([0.0, 0.0, 1.0])
    w_blue = 0.5 + 0.5 * 0.2 / 0.4  # |x-a|-r = 0.0, |x-b|-r = -0.2: blue closer by 0.2
    assert col[3].tolist() == pytest.approx([1 - w_blue, 0.0, w_blue])
    assert pid.tolist() == [0, 0, 1, 1]
    assert m.object_ids.tolist() == [0, 7]


def test_no_nan_gradients_at_zero_smoothness_or_equal_distances():
    k = t64(0.0, grad=True)
    a = t64([0.5, 0.3, -0.2], grad=True)
    b = t64([0.5, 0.1, -0.2], grad=True)
    (smooth_min(a, b, k).sum() + smooth_max(a, b, k).sum() + blend_weight(a, b, k).sum()).backward()
    for g in (k.grad, a.grad, b.grad):
        assert bool(torch.isfinite(g).all())
    # A whole render through a k = 0 union of two touching equal spheres (ties on the symmetry plane).
    r1, r2, kk = t64(0.5, grad=True), t64(0.5, grad=True), t64(0.0, grad=True)
    col1, col2 = t64([1.0, 0.2, 0.2], grad=True), t64([0.2, 0.2, 1.0], grad=True)
    m = SDFModel(Union(Sphere(t64([-0.5, 0, 0]), r1, colour=col1), Sphere(t64([0.5, 0, 0]), r2, colour=col2), k=kk))
    o, d = camera_rays(view64([0.0, 0.0, 3.0]), 40.0, (17, 17))
    light = t64([0.3, 0.5, 1.0], grad=True)
    gb = render_sdf(m, o, d, light[None])
    lambert_image(gb, light).sum().backward()
    for g in (r1.grad, r2.grad, kk.grad, col1.grad, col2.grad, light.grad):
        assert g is not None and bool(torch.isfinite(g).all())


# ---------------------------------------------------------------------------------------------- rays


def test_camera_rays_agree_with_perspective_and_look_at():
    eye = orbit_eye(30.0, 20.0, 3.0)
    view = look_at(eye)
    h, w = 12, 20
    proj = perspective(50.0, w / h)
    o, d = camera_rays(view, 50.0, (h, w))
    assert o.shape == (1, 3) and d.shape == (1, h, w, 3)
    assert torch.allclose(o[0], eye, atol=1e-5)
    # A point on the ray of pixel (i, j) projects to that pixel's centre (top row first).
    for i, j in [(0, 0), (3, 17), (11, 19), (6, 10)]:
        p = o[0] + 2.5 * d[0, i, j]
        clip = to_clip(p[None], proj @ view)[0, 0]
        ndc = clip[:2] / clip[3]
        assert ndc[0].item() == pytest.approx((2 * j + 1) / w - 1, abs=1e-5)
        assert ndc[1].item() == pytest.approx(1 - (2 * i + 1) / h, abs=1e-5)
    # And a random point lands on the pixel whose ray passes (within half a pixel) through it.
    pts = torch.randn(50, 3) * 0.5
    clip = to_clip(pts, proj @ view)[0]
    ndc = clip[:, :2] / clip[:, 3:]
    j = ((ndc[:, 0] + 1) / 2 * w).floor().long()
    i = ((1 - ndc[:, 1]) / 2 * h).floor().long()
    ok = (i >= 0) & (i < h) & (j >= 0) & (j < w)
    rays = d[0, i[ok], j[ok]]
    to_p = torch.nn.functional.normalize(pts[ok] - o[0], dim=-1)
    angle = torch.acos((rays * to_p).sum(-1).clamp(max=1.0))
    pixel_angle = 2 * math.tan(math.radians(25.0)) / h
    assert float(angle.max()) < 0.75 * pixel_angle


def test_mesh_and_sdf_of_the_same_sphere_line_up():
    mesh = trimesh.creation.icosphere(subdivisions=4, radius=0.8)
    view = look_at(orbit_eye(20.0, 15.0, 3.0))
    res = 32
    be = TorchBackend("cpu")
    pos = to_clip(torch.tensor(np.asarray(mesh.vertices), dtype=torch.float32), perspective(45.0) @ view)
    rast, _ = be.rasterize(pos.contiguous(), torch.tensor(np.asarray(mesh.faces), dtype=torch.int32), (res, res))
    mesh_mask = (rast[0, ..., 3] > 0).flip(0).float()  # the rasterizer is bottom-up
    o, d = camera_rays(view, 45.0, (res, res))
    gb = render_sdf(SDFModel([Sphere([0.0, 0.0, 0.0], 0.8)]), o, d)
    differ = (mesh_mask != gb.mask[0, ..., 0]).sum().item()
    assert mesh_mask.sum() > 200
    assert differ <= 4  # only pixels whose centre is between the polygon and the true sphere


# ------------------------------------------------------------------------------------------- G-buffer


def test_gbuffer_fields_shapes_and_orientation():
    top = Sphere([0.0, 0.6, 0.0], 0.3, colour=[1.0, 0.0, 0.0])
    bottom = Box([0.0, -0.6, 0.0], [0.3, 0.2, 0.3], colour=[0.0, 1.0, 0.0], object_id=5)
    m = SDFModel([top, bottom])
    views = torch.stack([look_at(torch.tensor([0.0, 0.0, 3.0])), look_at(torch.tensor([3.0, 0.0, 0.0]))])
    o, d = camera_rays(views, 45.0, (20, 16))
    gb = render_sdf(m, o, d, torch.tensor([[0.0, 1.0, 1.0], [1.0, 1.0, 0.0]]), ao_samples=3)
    assert gb.shape == (2, 20, 16)
    for name, c in [("mask", 1), ("depth", 1), ("position", 3), ("normal", 3), ("view_dir", 3), ("albedo", 3),
                    ("coverage", 1), ("shadow", 2), ("occlusion", 1)]:
        assert getattr(gb, name).shape == (2, 20, 16, c), name
    assert gb.tri_id.dtype == torch.int64 and gb.object_id.shape == (2, 20, 16)
    # Top row first: the sphere (id 0, red) is in the upper half, the box (id 1, object 5) below.
    upper, lower = gb.tri_id[:, :10], gb.tri_id[:, 10:]
    assert bool((upper[upper >= 0] == 0).all()) and bool((lower[lower >= 0] == 1).all())
    assert bool((gb.object_id[gb.tri_id == 1] == 5).all()) and bool((gb.object_id[gb.tri_id < 0] == -1).all())
    hit = gb.mask[..., 0] > 0
    assert torch.allclose(gb.albedo[hit & (gb.tri_id == 0)], torch.tensor([1.0, 0.0, 0.0]))
    assert torch.allclose(gb.normal[hit].norm(dim=-1), torch.ones(int(hit.sum())), atol=1e-5)
    assert bool(((gb.normal * gb.view_dir).sum(-1)[hit] > 0).all())  # normals face the camera
    # Depth is the distance along the viewing axis: z in camera space for view 0 (camera at z=3).
    assert torch.allclose(gb.depth[0][hit[0]][:, 0], 3.0 - gb.position[0][hit[0]][:, 2], atol=1e-5)
    assert torch.allclose(gb.coverage[hit], torch.ones(int(hit.sum()), 1))
    assert bool((gb.depth[~hit] == 0).all()) and bool((gb.tri_id[~hit] == -1).all())
    assert gb.finish(gb.albedo) is gb.albedo
    # A batch renders like its views one by one.
    single = render_sdf(m, o[1:], d[1:], torch.tensor([[0.0, 1.0, 1.0], [1.0, 1.0, 0.0]]), ao_samples=3)
    assert torch.equal(single.mask, gb.mask[1:]) and torch.allclose(single.normal, gb.normal[1:], atol=1e-6)


def test_surface_points_lie_on_the_surface_and_no_grad_render_is_detached():
    m = SDFModel([Torus([0.0, 0.0, 0.0], 0.7, 0.25, rotation=[0.9, 0.4, 0.0, 0.0]),
                  Cylinder([0.0, -0.7, 0.0], 1.2, 0.1)])
    o, d = camera_rays(look_at(orbit_eye(30.0, 30.0, 3.0)), 45.0, (32, 32))
    with torch.no_grad():
        gb = render_sdf(m, o, d)
    hit = gb.mask[0, ..., 0] > 0
    assert int(hit.sum()) > 100
    assert float(m.distance(gb.position[0][hit]).abs().max()) < 1e-4
    assert not gb.position.requires_grad and not gb.normal.requires_grad


def test_ambient_occlusion_darkens_a_crease():
    m = SDFModel([Plane([0.0, 1.0, 0.0], 0.0), Box([0.0, 0.5, -0.5], [1.0, 0.5, 0.5])])
    o, d = camera_rays(look_at(torch.tensor([0.0, 1.5, 3.0]), torch.tensor([0.0, 0.0, 0.5])), 40.0, (24, 24))
    gb = render_sdf(m, o, d, ao_samples=4)
    on_plane = (gb.tri_id[0] == 0) & (gb.mask[0, ..., 0] > 0)
    y = gb.position[0, ..., 2]  # z: distance in front of the wall at z = 0
    near = on_plane & (y < 0.1)
    far = on_plane & (y > 0.8)
    assert near.any() and far.any()
    assert float(gb.occlusion[0, ..., 0][near].mean()) < float(gb.occlusion[0, ..., 0][far].mean()) - 0.1


def test_planes_traced_analytically_match_marched_planes():
    def scene(k):
        return SDFModel(Union(Plane([0.0, 1.0, 0.0], -0.5), Sphere([0.0, 0.0, 0.0], 0.5),
                              Box([0.6, -0.3, 0.2], [0.2, 0.2, 0.2]), k=k))

    o, d = camera_rays(look_at(orbit_eye(30.0, 20.0, 3.0)).double(), 50.0, (24, 24))
    light = t64([[0.3, 1.0, 0.2]])
    fast, marched = render_sdf(scene(0.0), o, d, light), render_sdf(scene(1e-9), o, d, light)
    assert torch.equal(fast.mask, marched.mask) and torch.equal(fast.tri_id, marched.tri_id)
    hit = fast.mask[..., 0] > 0
    assert torch.allclose(fast.depth[hit], marched.depth[hit], atol=1e-6)
    assert torch.allclose(fast.normal[hit], marched.normal[hit], atol=1e-5)
    # The plane receives the shadows of the others (but casts none itself).
    assert float((fast.shadow[..., 0] - marched.shadow[..., 0]).abs().max()) < 0.02
    assert bool(((fast.shadow[..., 0] < 0.5) & (fast.tri_id == 0)).any())


@pytest.fixture
def one_thread():
    """Tiny matrix products hand work to MKL's thread pool, which stalls for whole scheduler
    quanta when another process holds the second core; one thread keeps the test fast there."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_neural_sdf_starts_as_a_sphere_and_learns(one_thread):
    from studio.render.sdf_neural import NeuralSDF, NeuralShape, eikonal_loss

    net = NeuralSDF(hidden=32, layers=2, radius=0.6).double()
    x = torch.rand(500, 3, dtype=F64) * 2 - 1
    assert torch.allclose(net(x), x.norm(dim=-1) - 0.6, atol=1e-6)
    assert eikonal_loss(net, x).item() < 1e-12
    model = SDFModel([NeuralShape(net, bound_radius=1.0, colour=[0.2, 0.4, 0.9])])
    o, d = camera_rays(view64([0.0, 0.0, 3.0]), 40.0, (16, 16))
    sphere = render_sdf(SDFModel([Sphere([0.0, 0.0, 0.0], 0.6)]), o, d)
    target = render_sdf(SDFModel([Box([0.0, 0.0, 0.0], [0.5, 0.35, 0.5])]), o, d).mask
    gb = render_sdf(model, o, d)
    assert torch.equal(gb.mask, sphere.mask)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    losses = []
    for _ in range(15):
        opt.zero_grad()
        gb = render_sdf(model, o, d, alpha=20.0)
        loss = ((gb.coverage - target) ** 2).mean() + 0.1 * eikonal_loss(model, x)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


# ------------------------------------------------------------------------------------------ gradients


def _fd_scene(prim: str, r, c, light):
    colour = t64([0.9, 0.5, 0.3])
    if prim == "sphere":
        shape = Sphere(c, r, colour=colour)
    elif prim == "box":
        shape = Box(c, torch.stack([r, 0.8 * r, 0.9 * r]), colour=colour, rotation=t64([0.9, 0.3, 0.2, 0.1]))
    else:
        shape = RoundedBox(c, torch.stack([r, 0.8 * r, 0.9 * r]), 0.25 * r, colour=colour,
                           rotation=t64([0.9, 0.3, 0.2, 0.1]))
    o, d = camera_rays(view64([0.3, 0.4, 3.0]), 40.0, (24, 24))
    return render_sdf(SDFModel([shape]), o, d, light[None])


@pytest.mark.parametrize("prim", ["sphere", "box", "rounded box"])
def test_colour_gradients_match_central_differences(prim):
    r = t64(0.8, grad=True)
    c = t64([0.05, -0.02, 0.1], grad=True)
    light = t64([0.4, 0.6, 0.7], grad=True)
    gb = _fd_scene(prim, r, c, light)
    inner = erode(gb.mask[0, ..., 0], 2)
    assert inner.sum() > 60
    wts = torch.rand(gb.mask.shape[:3] + (3,), dtype=F64, generator=torch.Generator().manual_seed(1))
    wts = wts * inner[None, ..., None]

    def colour_loss():
        return (lambert_image(_fd_scene(prim, r, c, light), light) * wts).sum()

    def depth_loss():
        return (_fd_scene(prim, r, c, light).depth * wts[..., :1]).sum()

    params = [r, c, light]
    for loss in (colour_loss, depth_loss):
        ana = torch.autograd.grad(loss(), params, allow_unused=True)
        ana = [torch.zeros_like(p) if a is None else a for a, p in zip(ana, params)]
        assert_grads_close(ana, central_fd(loss, params))
    if prim == "sphere":
        # Not trivially zero: the normal turns as the hit point moves (the Hessian term).
        assert abs(float(torch.autograd.grad(colour_loss(), r)[0])) > 1.0


def test_silhouette_coverage_grows_with_the_radius_just_outside_the_edge():
    r = t64(0.7, grad=True)
    c = t64([0.05, 0.0, 0.0], grad=True)
    o, d = camera_rays(view64([0.0, 0.0, 3.0]), 40.0, (24, 24))

    def coverage():
        return render_sdf(SDFModel([Sphere(c, r)]), o, d, alpha=30.0).coverage[0, ..., 0]

    cov = coverage()
    gb_mask = render_sdf(SDFModel([Sphere(c.detach(), r.detach())]), o, d).mask[0, ..., 0]
    ring = (gb_mask == 0) & (cov > 0.02)
    assert int(ring.sum()) >= 8
    wts = ring.to(F64) * torch.rand(24, 24, dtype=F64, generator=torch.Generator().manual_seed(2))
    per_pixel = torch.stack([torch.autograd.grad(cov[i, j], r, retain_graph=True)[0]
                             for i, j in ring.nonzero().tolist()[:6]])
    grads = torch.autograd.grad((cov * ring).sum(), r)[0]
    assert float(grads) > 0 and bool((per_pixel > 0).all())
    loss = lambda: (coverage() * wts).sum()  # noqa: E731
    assert_grads_close(list(torch.autograd.grad(loss(), [r, c])), central_fd(loss, [r, c]), rtol=0.02)


def test_silhouette_sharpness_is_adjustable():
    o, d = camera_rays(view64([0.0, 0.0, 3.0]), 40.0, (24, 24))
    m = SDFModel([Sphere(t64([0.0, 0.0, 0.0]), t64(0.7))])
    soft = render_sdf(m, o, d, alpha=10.0).coverage
    hard = render_sdf(m, o, d, alpha=200.0).coverage
    outside = render_sdf(m, o, d).mask == 0
    assert float(soft[outside].sum()) > 3 * float(hard[outside].sum()) > 0


def test_camera_gradients_match_central_differences():
    eye = t64([0.2, 0.3, 3.0], grad=True)
    angles = t64([4.0, -3.0], grad=True)  # yaw, pitch in degrees
    light = t64([0.3, 0.5, 0.8])
    m = SDFModel([RoundedBox(t64([0.0, 0.0, 0.0]), t64([0.6, 0.5, 0.4]), t64(0.2), colour=t64([0.8, 0.6, 0.4]),
                             rotation=t64([0.95, 0.2, 0.3, 0.0]))])

    def render():
        o, d = camera_rays(view64(eye, angles[0], angles[1]), 40.0, (24, 24))
        return render_sdf(m, o, d, light[None], alpha=40.0)

    gb = render()
    inner = erode(gb.mask[0, ..., 0], 2)
    ring = ((gb.mask[0, ..., 0] == 0) & (gb.coverage[0, ..., 0] > 0.02)).to(F64)
    g = torch.Generator().manual_seed(3)
    w_in = torch.rand(1, 24, 24, 3, dtype=F64, generator=g) * inner[None, ..., None]
    w_ring = torch.rand(1, 24, 24, 1, dtype=F64, generator=g) * ring[None, ..., None]
    colour_loss = lambda: (lambert_image(render(), light) * w_in).sum()  # noqa: E731
    coverage_loss = lambda: (render().coverage * w_ring).sum()  # noqa: E731
    for loss in (colour_loss, coverage_loss):
        ana = torch.autograd.grad(loss(), [eye, angles])
        assert_grads_close(list(ana), central_fd(loss, [eye, angles], h=1e-5))


# -------------------------------------------------------------------------------------------- shadows


SPHERE_C = (0.0, 0.6, 0.0)


def _shadow_scene(light, radius=0.4, res=48):
    m = SDFModel([Sphere(t64(SPHERE_C), radius), Plane(t64([0.0, 1.0, 0.0]), t64(0.0))])
    o, d = camera_rays(look_at(torch.tensor([0.0, 3.5, 2.5])).double(), 50.0, (res, res))
    return render_sdf(m, o, d, light[None], shadow_k=3.0)


def _shadow_centre(light) -> torch.Tensor:
    """Where the ray from the sphere's centre along -light meets the plane y = 0."""
    c, l = t64(SPHERE_C), light.detach()
    return c - c[1] / l[1] * l


def test_sphere_casts_a_soft_shadow_that_follows_the_light():
    centres = []
    for light in (t64([0.6, 1.0, -0.5]), t64([0.1, 1.0, -0.5])):
        gb = _shadow_scene(light)
        sh = gb.shadow[0, ..., 0]
        on_plane = (gb.tri_id[0] == 1) & (gb.mask[0, ..., 0] > 0)
        dist = (gb.position[0] - _shadow_centre(light)).norm(dim=-1)
        umbra, lit = on_plane & (dist < 0.25), on_plane & (dist > 1.4)
        assert int(umbra.sum()) >= 3 and float(sh[umbra].max()) < 0.05
        assert int(lit.sum()) > 100 and float(sh[lit].min()) > 0.99
        soft = on_plane & (sh > 0.05) & (sh < 0.95)
        assert int(soft.sum()) >= 3, "the penumbra should be soft"
        assert float(dist[soft].min()) > 0.3  # at the edge of the shadow, not inside it
        dark = on_plane & (sh < 0.5)
        centres.append(gb.position[0][dark].mean(0))
    # Moving the light towards -x by 0.5 moves the shadow towards +x by about 0.3.
    moved = centres[1] - centres[0]
    assert 0.15 < float(moved[0]) < 0.45 and abs(float(moved[2])) < 0.1


def test_shadow_gradients_match_central_differences():
    light = t64([0.6, 1.0, -0.5], grad=True)
    radius = t64(0.4, grad=True)
    gb = _shadow_scene(light, radius)
    on_plane = (gb.tri_id[0] == 1).to(F64)
    assert int(((gb.shadow[0, ..., 0] > 0.05) & (gb.shadow[0, ..., 0] < 0.95) & (on_plane > 0)).sum()) >= 3
    loss = lambda: (_shadow_scene(light, radius).shadow[0, ..., 0] * on_plane).sum()  # noqa: E731
    ana = torch.autograd.grad(loss(), [light, radius])
    assert float(ana[1]) < 0  # a bigger occluder darkens more
    assert_grads_close(list(ana), central_fd(loss, [light, radius]), rtol=0.02)


# ---------------------------------------------------------------------------------------- bad inputs


def _ok_inputs():
    o, d = camera_rays(look_at(torch.tensor([0.0, 0.0, 3.0])), 45.0, (4, 4))
    return SDFModel([Sphere([0.0, 0.0, 0.0], 0.5)]), o, d


@pytest.mark.parametrize("case, needle", [
    ("model", "model"),
    ("origins_shape", "origins"),
    ("dirs_shape", "dirs"),
    ("dirs_dtype", "dirs"),
    ("int_origins", "origins"),
    ("nan_dirs", "dirs"),
    ("not_unit", "dirs"),
    ("views", "views"),
    ("light_shape", "light_dirs"),
    ("light_zero", "light_dirs"),
    ("alpha", "alpha"),
    ("nan_radius", "radius"),
    ("nan_k", "k"),
])
def test_bad_input_names_the_argument(case, needle):
    m, o, d = _ok_inputs()
    kw = {}
    light = None
    if case == "model":
        m = Sphere([0, 0, 0], 1.0)
    elif case == "origins_shape":
        o = o[0]
    elif case == "dirs_shape":
        d = d[..., :2]
    elif case == "dirs_dtype":
        d = d.double()
    elif case == "int_origins":
        o = o.long()
    elif case == "nan_dirs":
        d = d.clone()
        d[0, 1, 1, 0] = float("nan")
    elif case == "not_unit":
        d = d * 2
    elif case == "views":
        o = torch.cat([o, o])
    elif case == "light_shape":
        light = torch.ones(3)
    elif case == "light_zero":
        light = torch.zeros(1, 3)
    elif case == "alpha":
        kw["alpha"] = -1.0
    elif case == "nan_radius":
        m = SDFModel([Sphere([0.0, 0.0, 0.0], float("nan"))])
    elif case == "nan_k":
        m = SDFModel(Union(Sphere([0.0, 0.0, 0.0], 0.5), Box([0.0, 0.0, 0.0], [0.3, 0.3, 0.3]), k=float("nan")))
    with pytest.raises(RenderInputError) as err:
        render_sdf(m, o, d, light, **kw)
    msg = str(err.value)
    assert needle in msg and msg.count(". ") == 0 and msg.endswith(".")
    assert isinstance(err.value, ValueError)


def test_bad_primitive_and_camera_arguments():
    with pytest.raises(RenderInputError, match="radius"):
        Sphere([0.0, 0.0, 0.0], [1.0, 2.0])
    with pytest.raises(RenderInputError, match="centre"):
        Box([0.0, 0.0], [1.0, 1.0, 1.0])
    with pytest.raises(RenderInputError, match="half_extents"):
        Box([0.0, 0.0, 0.0], torch.ones(3, dtype=torch.int64))
    with pytest.raises(RenderInputError, match="rotation"):
        Capsule([0, 0, 0], [0, 1, 0], 0.2, rotation=[1.0, 0.0, 0.0, 0.0])
    with pytest.raises(RenderInputError, match="union"):
        Union(Sphere([0, 0, 0], 1.0))
    with pytest.raises(RenderInputError, match="view"):
        camera_rays(torch.eye(3), 45.0, (4, 4))
    with pytest.raises(RenderInputError, match="fov_y_deg"):
        camera_rays(torch.eye(4), 190.0, (4, 4))
    with pytest.raises(RenderInputError, match="resolution"):
        camera_rays(torch.eye(4), 45.0, (4, 0))
    s = Sphere([0, 0, 0], 1.0)
    with pytest.raises(RenderInputError, match="twice"):
        SDFModel(Union(s, s))


def test_settings_are_a_frozen_dataclass():
    st = TraceSettings(max_steps=16)
    with pytest.raises(dataclasses.FrozenInstanceError):
        st.max_steps = 3  # type: ignore[misc]
