"""The torch backend's compiled per-pixel passes: same values and gradients as eager, and a
compiler failure falls back to eager with a warning instead of failing the render."""

from __future__ import annotations

import logging
import shutil

import pytest
import torch
import trimesh

from studio.render import get_backend
from studio.render.compiled import Kernel, interpolate_rows
from studio.render.torch_raster import TorchBackend

from .helpers import clip_mesh, mvp_matrix

needs_compiler = pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None,
                                    reason="torch.compile's CPU backend needs a C++ compiler (none on PATH)")


def _shaded_step(be: TorchBackend, pos: torch.Tensor, tri: torch.Tensor, attr: torch.Tensor, res: int):
    """Image and gradients w.r.t. positions and attributes of rasterize + interpolate + antialias."""
    pos = pos.clone().requires_grad_(True)
    attr = attr.clone().requires_grad_(True)
    rast, _ = be.rasterize(pos, tri, (res, res), grad_db=False)
    out, _ = be.interpolate(attr, rast, tri)
    img = be.antialias(out, rast, pos, tri)
    (img * torch.linspace(0, 1, img.numel()).view_as(img)).sum().backward()
    return img.detach(), pos.grad, attr.grad


@needs_compiler
def test_compiled_step_matches_eager_on_a_dense_mesh():
    mesh = trimesh.creation.icosphere(subdivisions=4)  # 5,120 faces, many sub-pixel at 64 px
    pos, tri = clip_mesh(mesh, mvp_matrix())
    attr = torch.rand(pos.shape[1], 3, generator=torch.Generator().manual_seed(1))
    compiled = TorchBackend("cpu", compiled=True)
    got = _shaded_step(compiled, pos, tri, attr, 64)
    want = _shaded_step(TorchBackend("cpu"), pos, tri, attr, 64)
    assert compiled.compiled
    assert want[1].abs().sum() > 0 and want[2].abs().sum() > 0
    # float32 sums in another order (the fused backward adds per-vertex terms in its own order).
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-5 * float(w.abs().max()))


def test_a_failing_compile_falls_back_to_eager_with_one_warning(caplog, monkeypatch):
    def broken(*args):
        raise RuntimeError("no C++ compiler\nsecond line of the compiler's complaint")

    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: broken)
    kernel = Kernel(interpolate_rows, compiled=True)
    assert kernel.compiled
    attr = torch.rand(3, 2)
    verts = torch.tensor([[0, 1, 2], [2, 1, 0]])
    uv = torch.tensor([[0.2, 0.3], [0.5, 0.5]])
    pix = torch.tensor([1, 3])
    with caplog.at_level(logging.WARNING, logger="studio.render.compiled"):
        out = kernel(attr, verts, uv, pix, 4)
        again = kernel(attr, verts, uv, pix, 4)
    assert torch.equal(out, interpolate_rows(attr, verts, uv, pix, 4)) and torch.equal(again, out)
    assert not kernel.compiled
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert "RuntimeError: no C++ compiler" in warnings[0] and "runs it eagerly" in warnings[0]
    assert not out[0].any() and torch.allclose(out[1], 0.2 * attr[0] + 0.3 * attr[1] + 0.5 * attr[2])


def test_get_backend_reads_studio_compile(monkeypatch):
    monkeypatch.setenv("STUDIO_COMPILE", "1")
    assert get_backend("torch", "cpu").compiled
    monkeypatch.setenv("STUDIO_COMPILE", "0")
    assert not get_backend("torch", "cpu").compiled
    assert get_backend("torch", "cpu", compiled=True).compiled
