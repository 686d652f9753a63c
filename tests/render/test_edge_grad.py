"""edge_grad: identity forward, visibility gradients checked against supersampled coverage."""

from __future__ import annotations

import pytest
import torch

from studio.render import RenderInputError
from studio.render.edge_grad import edge_grad
from studio.render.torch_raster import TorchBackend

RES = 32
SS = 16  # supersampling factor per axis of the references here

TRIANGLE = torch.tensor([[[-0.62, -0.55, 0.0, 1.0], [0.71, -0.31, 0.0, 1.0], [-0.05, 0.66, 0.0, 1.0]]],
                        dtype=torch.float64)
ONE_TRI = torch.tensor([[0, 1, 2]], dtype=torch.int32)


@pytest.fixture(scope="module")
def be() -> TorchBackend:
    return TorchBackend("cpu")


def _coverage(be, pos, tri, res=RES, colors=None):
    """[res,res] box-filtered supersampled image (bottom-up) of white (or per-triangle ``colors``)
    triangles on black."""
    with torch.no_grad():
        rast, _ = be.rasterize(pos, tri, (res * SS, res * SS), grad_db=False)
        tid = rast[0, :, :, 3].long()
        val = (tid > 0).double() if colors is None else torch.cat([torch.zeros(1), colors.double()])[tid]
    return val.view(res, SS, res, SS).mean((1, 3))


def _edge_image(be, pos, tri, res=RES, colors=None):
    rast, _ = be.rasterize(pos, tri, (res, res))
    tid = rast[..., 3:].detach().long()
    col = (tid > 0).to(pos.dtype) if colors is None else torch.cat([torch.zeros(1), colors])[tid].to(pos.dtype)
    return be.edge_grad(col, rast, pos, tri)


def test_forward_is_the_colour_and_its_gradient_the_identity(be):
    pos = TRIANGLE.clone().requires_grad_(True)
    rast, _ = be.rasterize(pos, ONE_TRI, (RES, RES))
    color = torch.rand(1, RES, RES, 3, dtype=torch.float64, requires_grad=True)
    out = be.edge_grad(color, rast, pos, ONE_TRI)
    assert torch.equal(out, color)
    g = torch.rand_like(color)
    out.backward(g)
    assert torch.equal(color.grad, g)
    assert pos.grad is not None and pos.grad.abs().sum() > 0


@pytest.mark.parametrize("vertex", [0, 1, 2])
@pytest.mark.parametrize("axis", [0, 1])
def test_single_triangle_matches_the_coverage_derivative(be, vertex, axis):
    pos = TRIANGLE.clone().requires_grad_(True)
    _edge_image(be, pos, ONE_TRI).sum().backward()
    h = 0.03  # NDC, about half a pixel
    plus, minus = TRIANGLE.clone(), TRIANGLE.clone()
    plus[0, vertex, axis] += h
    minus[0, vertex, axis] -= h
    fd = float((_coverage(be, plus, ONE_TRI) - _coverage(be, minus, ONE_TRI)).sum()) / (2 * h)
    assert abs(fd) > 10
    assert pos.grad[0, vertex, axis].item() == pytest.approx(fd, rel=0.03)


def test_bad_arguments_are_named(be):
    rast, _ = be.rasterize(TRIANGLE, ONE_TRI, (RES, RES))
    color = torch.zeros(1, RES, RES, 3, dtype=torch.float64)
    with pytest.raises(RenderInputError, match="depth_tolerance"):
        be.edge_grad(color, rast, TRIANGLE, ONE_TRI, depth_tolerance=0)
    with pytest.raises(RenderInputError, match="color is"):
        be.edge_grad(color[:, :-1], rast, TRIANGLE, ONE_TRI)
    with pytest.raises(RenderInputError, match="rast refers to triangle"):
        be.edge_grad(color, rast * torch.tensor([1.0, 1, 1, 3], dtype=torch.float64), TRIANGLE, ONE_TRI)
    with pytest.raises(RenderInputError, match="color contains"):
        be.edge_grad(color * float("nan"), rast, TRIANGLE, ONE_TRI)
    with pytest.raises(RenderInputError, match="depth_tolerance"):
        edge_grad(color, rast, TRIANGLE, ONE_TRI, depth_tolerance="x")
