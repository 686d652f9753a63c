"""The torch backend on CUDA against nvdiffrast: same semantics, same numbers.

Runs only where a CUDA GPU is present (marker ``cuda``); the nvdiffrast comparisons also need
nvdiffrast installed.  Everywhere else these tests are skipped, never failed.
"""

from __future__ import annotations

import pytest
import torch
import trimesh

from studio.render import get_backend
from studio.render.torch_raster import TorchBackend

from .helpers import clip_mesh, mvp_matrix

pytestmark = pytest.mark.cuda

RES = (192, 256)


@pytest.fixture(scope="module")
def nvdr():
    pytest.importorskip("nvdiffrast.torch", reason="nvdiffrast is not installed")
    return get_backend("nvdiffrast", "cuda")


@pytest.fixture(scope="module")
def tb():
    return TorchBackend("cuda")


def _scene(device="cuda"):
    mesh = trimesh.creation.icosphere(subdivisions=4, radius=0.8)
    box = trimesh.creation.box(extents=(0.6, 0.6, 0.6))
    box.apply_translation((0.5, -0.3, 0.4))
    mesh = trimesh.util.concatenate([mesh, box])
    pos, tri = clip_mesh(mesh, mvp_matrix(az=25, el=15, dist=2.6, aspect=RES[1] / RES[0]))
    col = torch.rand(pos.shape[1], 3)
    return pos.to(device), tri.to(device), col.to(device)


def test_torch_backend_on_cuda_matches_cpu(tb):
    pos, tri, col = _scene()
    rast_gpu, _ = tb.rasterize(pos, tri, RES)
    rast_cpu, _ = TorchBackend("cpu").rasterize(pos.cpu(), tri.cpu(), RES)
    same = (rast_gpu[..., 3].cpu() == rast_cpu[..., 3]).float().mean()
    assert same >= 0.999
    img = tb.antialias(tb.interpolate(col, rast_gpu, tri)[0], rast_gpu, pos, tri)
    assert img.is_cuda and torch.isfinite(img).all()


def test_rasterize_parity(tb, nvdr):
    pos, tri, _ = _scene()
    r_t, db_t = tb.rasterize(pos, tri, RES)
    r_n, db_n = nvdr.rasterize(pos, tri, RES)
    ids_t, ids_n = r_t[..., 3], r_n[..., 3]
    assert (ids_t == ids_n).float().mean() >= 0.999
    both = (ids_t == ids_n) & (ids_t > 0)
    assert (r_t[..., :2][both] - r_n[..., :2][both]).abs().max() <= 1e-4
    assert (r_t[..., 2][both] - r_n[..., 2][both]).abs().max() <= 1e-4
    assert torch.allclose(db_t[both], db_n[both], atol=1e-4, rtol=1e-3)


def test_interpolate_antialias_outputs_and_gradients_parity(tb, nvdr):
    pos0, tri, col0 = _scene()
    results = []
    for be in (tb, nvdr):
        pos = pos0.clone().requires_grad_(True)
        col = col0.clone().requires_grad_(True)
        rast, _ = nvdr.rasterize(pos, tri, RES)  # same visibility for both: compare the rest
        img, _ = be.interpolate(col, rast, tri)
        img = be.antialias(img, rast, pos, tri)
        target = torch.full_like(img, 0.5)
        ((img - target) ** 2).sum().backward()
        results.append((img.detach(), pos.grad, col.grad))
    (img_t, gp_t, gc_t), (img_n, gp_n, gc_n) = results
    assert torch.allclose(img_t, img_n, atol=1e-4)
    assert torch.allclose(gc_t, gc_n, atol=1e-3, rtol=1e-3)
    assert torch.allclose(gp_t, gp_n, atol=1e-2 * gp_n.abs().max().item(), rtol=1e-2)


@pytest.mark.parametrize("filter_mode", ["nearest", "linear", "linear-mipmap-nearest", "linear-mipmap-linear"])
@pytest.mark.parametrize("boundary_mode", ["wrap", "clamp", "zero"])
def test_texture_parity(tb, nvdr, filter_mode, boundary_mode):
    gen = torch.Generator(device="cuda").manual_seed(3)
    tex = torch.rand(1, 64, 64, 3, device="cuda", generator=gen, requires_grad=True)
    uv = (torch.rand(1, 48, 48, 2, device="cuda", generator=gen) * 1.4 - 0.2).requires_grad_(True)
    uv_da = torch.rand(1, 48, 48, 4, device="cuda", generator=gen) * 0.05
    kwargs = dict(filter_mode=filter_mode, boundary_mode=boundary_mode)
    if "mipmap" in filter_mode:
        kwargs["uv_da"] = uv_da
    outs = []
    for be in (tb, nvdr):
        tex.grad = uv.grad = None
        out = be.texture(tex, uv, **kwargs)
        out.square().sum().backward()
        outs.append((out.detach(), tex.grad.clone(), uv.grad.clone()))
    (o_t, gt_t, gu_t), (o_n, gt_n, gu_n) = outs
    assert torch.allclose(o_t, o_n, atol=1e-4)
    assert torch.allclose(gt_t, gt_n, atol=1e-3)
    if filter_mode != "nearest":
        assert torch.allclose(gu_t, gu_n, atol=1e-2 * gu_n.abs().max().item())


def test_cube_map_parity(tb, nvdr):
    gen = torch.Generator(device="cuda").manual_seed(4)
    cube = torch.rand(1, 6, 32, 32, 3, device="cuda", generator=gen)
    d = torch.randn(1, 40, 40, 3, device="cuda", generator=gen)
    out_t = tb.texture(cube, d, filter_mode="linear", boundary_mode="cube")
    out_n = nvdr.texture(cube, d, filter_mode="linear", boundary_mode="cube")
    assert torch.allclose(out_t, out_n, atol=1e-3)
