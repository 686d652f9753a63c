"""antialias of the torch backend: visibility gradients checked against supersampled coverage."""

from __future__ import annotations

import pytest
import torch
import trimesh

from studio.render import RenderInputError
from studio.render.topology import build_topology
from studio.render.torch_raster import TorchBackend

from .helpers import clip_mesh, mvp_matrix

RES = 32
SS = 16  # supersampling factor per axis for the reference


@pytest.fixture
def be() -> TorchBackend:
    return TorchBackend("cpu")


def _aa_image(be, pos, tri, res=RES, color_fn=None):
    """White shape on black: antialiased [1,H,W,1] image, differentiable in pos."""
    rast, _ = be.rasterize(pos, tri, (res, res))
    col = (rast[..., 3:] > 0).to(pos.dtype) if color_fn is None else color_fn(rast)
    return be.antialias(col, rast, pos, tri)


def _coverage_area(be, pos, tri, res=RES):
    """Covered area in output pixels, estimated from a SS x SS supersampled hard render."""
    with torch.no_grad():
        rast, _ = be.rasterize(pos, tri, (res * SS, res * SS), grad_db=False)
    return (rast[..., 3] > 0).double().sum().item() / (SS * SS)


TRIANGLE = torch.tensor([[[-0.62, -0.55, 0.0, 1.0], [0.71, -0.31, 0.0, 1.0], [-0.05, 0.66, 0.0, 1.0]]])
ONE_TRI = torch.tensor([[0, 1, 2]], dtype=torch.int32)


@pytest.mark.parametrize("vertex", [0, 1, 2])
@pytest.mark.parametrize("axis", [0, 1])
def test_silhouette_gradient_matches_supersampled_finite_difference(be, vertex, axis):
    pos = TRIANGLE.clone().requires_grad_(True)
    _aa_image(be, pos, ONE_TRI).sum().backward()
    grad = pos.grad[0, vertex, axis].item()
    h = 0.03  # NDC, about half a pixel at 32 px
    plus, minus = TRIANGLE.clone(), TRIANGLE.clone()
    plus[0, vertex, axis] += h
    minus[0, vertex, axis] -= h
    fd = (_coverage_area(be, plus, ONE_TRI) - _coverage_area(be, minus, ONE_TRI)) / (2 * h)
    assert abs(fd) > 1.0, "the reference derivative should be well away from zero"
    assert grad == pytest.approx(fd, rel=0.10), f"antialias gradient {grad:.3f} vs coverage derivative {fd:.3f}"


def test_silhouette_gradients_of_a_perspective_cube_match_supersampled_finite_differences(be):
    # A closed mesh under perspective and a weighted loss: d loss / d (every vertex x, y).
    # Agreement is checked on the whole gradient and on each large component.  Near silhouette
    # corners the method (like nvdiffrast's) is only approximate, an error that shrinks as 1/res
    # (45% -> 14% -> 6% at 32, 64, 96 px on the sharpest corner here) and shows most in small
    # components, so those are not checked one by one.
    res, ss = 96, 8
    mesh = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    pos0, tri = clip_mesh(mesh, mvp_matrix(az=30, el=25, dist=2.8), dtype=torch.float64)
    weight = torch.linspace(0.5, 1.5, res, dtype=torch.float64).view(1, 1, res, 1)

    pos = pos0.clone().requires_grad_(True)
    (_aa_image(be, pos, tri, res) * weight).sum().backward()
    grad = pos.grad[0, :, :2]

    def weighted_area(p):
        with torch.no_grad():
            rast, _ = be.rasterize(p, tri, (res * ss, res * ss), grad_db=False)
        cov = (rast[..., 3:] > 0).double().permute(0, 3, 1, 2)
        return (torch.nn.functional.avg_pool2d(cov, ss).permute(0, 2, 3, 1) * weight).sum().item()

    fd = torch.zeros_like(grad)
    for v in range(pos0.shape[1]):
        for axis in range(2):
            h = 0.01 * pos0[0, v, 3].item()
            plus, minus = pos0.clone(), pos0.clone()
            plus[0, v, axis] += h
            minus[0, v, axis] -= h
            fd[v, axis] = (weighted_area(plus) - weighted_area(minus)) / (2 * h)
    assert (grad - fd).norm() <= 0.10 * fd.norm(), f"antialias {grad.tolist()} vs reference {fd.tolist()}"
    large = fd.abs() > 0.4 * fd.abs().max()
    assert large.sum() >= 6
    assert torch.all((grad[large] - fd[large]).abs() <= 0.10 * fd[large].abs())


def test_gradient_sign_points_outward_on_every_edge_of_a_convex_shape(be):
    # A hexagon fan: pushing any rim vertex outwards grows a white-on-black image.
    angles = torch.arange(6) * (torch.pi / 3) + 0.2
    rim = torch.stack([0.7 * torch.cos(angles), 0.7 * torch.sin(angles), torch.zeros(6), torch.ones(6)], 1)
    pos = torch.cat([torch.tensor([[0.0, 0.0, 0.0, 1.0]]), rim]).unsqueeze(0).requires_grad_(True)
    tri = torch.tensor([[0, 1 + i, 1 + (i + 1) % 6] for i in range(6)], dtype=torch.int32)
    _aa_image(be, pos, tri).sum().backward()
    outward = rim[:, :2]
    radial = (pos.grad[0, 1:, :2] * outward).sum(1)
    assert bool((radial > 0).all()), radial
    assert pos.grad[0, 0, :2].abs().max() < 1e-6, "the interior fan vertex lies on no silhouette"


def _per_triangle_colours(rast, num_tri, dtype=torch.float32):
    palette = torch.rand(num_tri + 1, 3, generator=torch.Generator().manual_seed(1), dtype=dtype)
    palette[0] = 0
    return palette[rast[..., 3].long()]


def test_closed_mesh_has_no_blends_inside_its_outline(be):
    mesh = trimesh.creation.icosphere(subdivisions=2, radius=0.8)
    pos, tri = clip_mesh(mesh, mvp_matrix())
    rast, _ = be.rasterize(pos, tri, (64, 64))
    col = _per_triangle_colours(rast, tri.shape[0])
    out = be.antialias(col, rast, pos, tri)
    changed = (out != col).any(-1)[0]
    bg = rast[0, ..., 3] == 0
    near_bg = bg.clone()
    near_bg[1:] |= bg[:-1]
    near_bg[:-1] |= bg[1:]
    near_bg[:, 1:] |= bg[:, :-1]
    near_bg[:, :-1] |= bg[:, 1:]
    assert changed.any(), "the outline must be antialiased"
    assert not (changed & ~near_bg).any(), "a pixel inside the outline was blended"


def test_duplicated_vertices_turn_every_edge_into_a_silhouette(be):
    mesh = trimesh.creation.icosphere(subdivisions=2, radius=0.8)
    soup = trimesh.Trimesh(mesh.triangles.reshape(-1, 3), torch.arange(len(mesh.faces) * 3).view(-1, 3).numpy(), process=False)
    pos, tri = clip_mesh(soup, mvp_matrix())
    rast, _ = be.rasterize(pos, tri, (64, 64))
    col = _per_triangle_colours(rast, tri.shape[0])
    changed = (be.antialias(col, rast, pos, tri) != col).any(-1)[0]
    interior = rast[0, 20:44, 20:44, 3] > 0
    assert interior.all() and changed[20:44, 20:44].float().mean() > 0.3


def test_gradcheck_antialias_wrt_colour_and_positions(be):
    pos = TRIANGLE.double()
    rast, _ = be.rasterize(pos, ONE_TRI, (12, 12))
    col = torch.rand(1, 12, 12, 2, dtype=torch.float64, requires_grad=True)
    p = pos.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda c, q: be.antialias(c, rast, q, ONE_TRI), (col, p), eps=1e-7, atol=1e-6)


def test_pos_gradient_boost_scales_only_the_position_gradient(be):
    grads, images = [], []
    for boost in (1.0, 3.0):
        pos = TRIANGLE.clone().requires_grad_(True)
        rast, _ = be.rasterize(pos, ONE_TRI, (RES, RES))
        img = be.antialias((rast[..., 3:] > 0).float(), rast, pos, ONE_TRI, pos_gradient_boost=boost)
        img.sum().backward()
        grads.append(pos.grad.clone())
        images.append(img.detach())
    assert torch.equal(images[0], images[1])
    assert torch.allclose(grads[1], 3 * grads[0], atol=1e-5)


def test_batched_positions_match_single_renders(be):
    mesh = trimesh.creation.icosphere(subdivisions=2, radius=0.7)
    pa, tri = clip_mesh(mesh, mvp_matrix(az=0))
    pb, _ = clip_mesh(mesh, mvp_matrix(az=50, el=-20))
    both = torch.cat([pa, pb])
    rast, _ = be.rasterize(both, tri, (40, 40))
    col = _per_triangle_colours(rast, tri.shape[0])
    out = be.antialias(col, rast, both, tri)
    for i, p in enumerate((pa, pb)):
        r1, _ = be.rasterize(p, tri, (40, 40))
        single = be.antialias(_per_triangle_colours(r1, tri.shape[0]), r1, p, tri)
        assert torch.allclose(out[i], single[0])


def test_topology_finds_neighbours_and_boundaries():
    tet = torch.tensor([[0, 1, 2], [0, 3, 1], [1, 3, 2], [2, 3, 0]])
    topo = build_topology(tet)
    for t in range(4):
        for k in range(3):
            edge = {int(tet[t, (k + 1) % 3]), int(tet[t, (k + 2) % 3])}
            opp = int(topo.opposite[t, k])
            assert opp not in edge and opp != int(tet[t, k]), "closed mesh: every edge has a neighbour"
    single = build_topology(torch.tensor([[4, 5, 6]]))
    assert single.opposite.tolist() == [[4, 5, 6]], "boundary edges point back at the own vertex"


def test_topology_hash_is_reused_and_checked(be):
    mesh = trimesh.creation.icosphere(subdivisions=1)
    pos, tri = clip_mesh(mesh, mvp_matrix())
    rast, _ = be.rasterize(pos, tri, (16, 16))
    col = _per_triangle_colours(rast, tri.shape[0])
    topo = be.construct_topology(tri)
    assert torch.equal(be.antialias(col, rast, pos, tri, topology_hash=topo), be.antialias(col, rast, pos, tri))
    other = be.construct_topology(tri.flip(0).contiguous())
    with pytest.raises(RenderInputError, match="topology_hash does not belong"):
        be.antialias(col, rast, pos, tri, topology_hash=other)


def test_bad_antialias_input(be):
    rast, _ = be.rasterize(TRIANGLE, ONE_TRI, (8, 8))
    with pytest.raises(RenderInputError, match="color is"):
        be.antialias(torch.zeros(1, 8, 9, 3), rast, TRIANGLE, ONE_TRI)
    with pytest.raises(RenderInputError, match="pos has batch size 2"):
        be.antialias(torch.zeros(1, 8, 8, 3), rast, TRIANGLE.expand(2, 3, 4).contiguous(), ONE_TRI)
    with pytest.raises(RenderInputError, match="color contains"):
        be.antialias(torch.full((1, 8, 8, 3), float("nan")), rast, TRIANGLE, ONE_TRI)
