"""Tests for studio.render.texture: nvdiffrast's texture() semantics in plain PyTorch.

References are independent of the implementation where possible: hand-computed values,
``torch.nn.functional.grid_sample`` for bilinear filtering, ``avg_pool2d`` for mip levels, an
eigenvalue solve for the level of detail, the OpenGL cube-map table for face orientation, and
finite differences (gradcheck) for gradients.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from studio.render.backend import RenderInputError
from studio.render.texture import sample_texture
from studio.render.torch_raster import TorchBackend

CPU = torch.device("cpu")
MIP_MODES = ("linear-mipmap-nearest", "linear-mipmap-linear")


def tex_sample(tex, uv, uv_da=None, bias=None, filter_mode="auto", boundary_mode="wrap", max_mip_level=None):
    return sample_texture(tex, uv, uv_da, bias, filter_mode, boundary_mode, max_mip_level, device=CPU)


def row_uv(us, v=0.5, dtype=torch.float32):
    """[1,1,N,2] coordinates with the given u values and a fixed v."""
    us = torch.as_tensor(us, dtype=dtype)
    return torch.stack([us, torch.full_like(us, v)], -1).view(1, 1, -1, 2)


def grid_sample_ref(tex, uv, boundary_mode):
    """Bilinear reference from grid_sample (align_corners=False uses the same texel centres)."""
    img = tex.permute(0, 3, 1, 2)
    if boundary_mode == "wrap":
        # Wrap = fractional part of uv on a texture padded by one texel of its opposite edges.
        _, _, h, w = img.shape
        img = F.pad(img, (1, 1, 1, 1), mode="circular")
        frac = uv - torch.floor(uv)
        uv = torch.stack([(frac[..., 0] * w + 1) / (w + 2), (frac[..., 1] * h + 1) / (h + 2)], -1)
        padding = "border"
    else:
        padding = {"clamp": "border", "zero": "zeros"}[boundary_mode]
    out = F.grid_sample(img, uv * 2 - 1, mode="bilinear", padding_mode=padding, align_corners=False)
    return out.permute(0, 2, 3, 1)


def pooled(tex, k):
    """Mip level k of a square power-of-two texture, as [B,h,w,C]."""
    if k == 0:
        return tex
    return F.avg_pool2d(tex.permute(0, 3, 1, 2), 2**k).permute(0, 2, 3, 1)


# ---------------------------------------------------------------------- nearest / linear, hand-computed


def test_texel_centres_and_axis_convention():
    # tex[i, j] = 10 i + j on a 2x4 texture: u must index the width (j), v the height (i).
    tex = (10 * torch.arange(2.0).view(2, 1) + torch.arange(4.0)).view(1, 2, 4, 1)
    i, j = torch.meshgrid(torch.arange(2.0), torch.arange(4.0), indexing="ij")
    uv = torch.stack([(j + 0.5) / 4, (i + 0.5) / 2], -1).view(1, 2, 4, 2)
    for mode in ("nearest", "linear"):
        for boundary in ("wrap", "clamp", "zero"):
            assert torch.equal(tex_sample(tex, uv, filter_mode=mode, boundary_mode=boundary), tex)


def test_linear_between_texels():
    tex = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 2, 2, 1)
    uv = torch.tensor([[0.5, 0.25], [0.25, 0.5], [0.5, 0.5], [0.375, 0.25], [0.25 + 0.125, 0.25 + 0.125]]).view(1, 1, 5, 2)
    out = tex_sample(tex, uv, filter_mode="linear", boundary_mode="clamp").flatten()
    # (0.375, 0.375): x = y = 0.25 -> 0.75*0.75*1 + 0.25*0.75*2 + 0.75*0.25*3 + 0.25*0.25*4 = 1.75
    assert torch.allclose(out, torch.tensor([1.5, 2.0, 2.5, 1.25, 1.75]))


def test_nearest_picks_containing_texel():
    tex = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 1, 4, 1)
    out = tex_sample(tex, row_uv([0.0, 0.2499, 0.25, 0.74, 0.9999]), filter_mode="nearest").flatten()
    assert out.tolist() == [1.0, 1.0, 2.0, 3.0, 4.0]


@pytest.mark.parametrize(
    "boundary, filter_mode, expected",
    [
        # u:                  0     0.125  0.5   1.0   1.125  -0.125  1.2
        ("wrap", "linear", [2.5, 1.0, 2.5, 2.5, 1.0, 4.0, 1.3]),
        ("clamp", "linear", [1.0, 1.0, 2.5, 4.0, 4.0, 1.0, 4.0]),
        ("zero", "linear", [0.5, 1.0, 2.5, 2.0, 0.0, 0.0, 0.0]),
        ("wrap", "nearest", [1.0, 1.0, 3.0, 1.0, 1.0, 4.0, 1.0]),
        ("clamp", "nearest", [1.0, 1.0, 3.0, 4.0, 4.0, 1.0, 4.0]),
        ("zero", "nearest", [1.0, 1.0, 3.0, 0.0, 0.0, 0.0, 0.0]),
    ],
)
def test_boundary_modes_at_and_outside_unit_square(boundary, filter_mode, expected):
    # A 1x4 texture [1, 2, 3, 4]: texel centres at u = 1/8, 3/8, 5/8, 7/8.
    tex = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 1, 4, 1)
    uv = row_uv([0.0, 0.125, 0.5, 1.0, 1.125, -0.125, 1.2])
    out = tex_sample(tex, uv, filter_mode=filter_mode, boundary_mode=boundary).flatten()
    assert torch.allclose(out, torch.tensor(expected), atol=1e-6)


def test_zero_mode_fades_in_v_too():
    tex = torch.ones(1, 2, 2, 1)
    uv = torch.tensor([[0.25, 0.0], [0.25, -0.25], [0.25, 1.0], [0.0, 0.0]]).view(1, 1, 4, 2)
    out = tex_sample(tex, uv, filter_mode="linear", boundary_mode="zero").flatten()
    assert torch.allclose(out, torch.tensor([0.5, 0.0, 0.5, 0.25]))


@pytest.mark.parametrize("boundary", ["wrap", "clamp", "zero"])
def test_linear_matches_grid_sample(boundary):
    g = torch.Generator().manual_seed(1)
    tex = torch.rand(2, 5, 7, 3, generator=g)
    uv = torch.rand(2, 6, 9, 2, generator=g) * 1.6 - 0.3
    out = tex_sample(tex, uv, filter_mode="linear", boundary_mode=boundary)
    assert torch.allclose(out, grid_sample_ref(tex, uv, boundary), atol=1e-5)


def test_texture_batch_broadcasts_and_indexes():
    g = torch.Generator().manual_seed(2)
    uv = torch.rand(3, 4, 4, 2, generator=g)
    shared = torch.rand(1, 4, 4, 2, generator=g)
    out = tex_sample(shared, uv, filter_mode="linear")
    assert torch.allclose(out, grid_sample_ref(shared.expand(3, -1, -1, -1), uv, "wrap"), atol=1e-5)
    per_image = torch.rand(3, 4, 4, 2, generator=g)
    out = tex_sample(per_image, uv, filter_mode="nearest")
    for b in range(3):
        assert torch.equal(out[b : b + 1], tex_sample(per_image[b : b + 1], uv[b : b + 1], filter_mode="nearest"))


# ---------------------------------------------------------------------- constant textures


@pytest.mark.parametrize("filter_mode", ["auto", "nearest", "linear", *MIP_MODES])
@pytest.mark.parametrize("boundary", ["wrap", "clamp", "zero", "cube"])
def test_constant_texture_stays_constant(filter_mode, boundary):
    g = torch.Generator().manual_seed(3)
    colour = torch.tensor([0.3, 0.6, 0.9])
    if boundary == "cube":
        tex = colour.expand(1, 6, 8, 8, 3).contiguous()
        uv = torch.randn(1, 8, 8, 3, generator=g)
        uv[0, 0, :4] = torch.tensor([[1.0, 1.0, 1.0], [-1.0, 1.0, -1.0], [1.0, -0.999, 0.999], [0.0, 1.0, 1.0]])
        uv_da = torch.randn(1, 8, 8, 6, generator=g) * 0.5
    else:
        tex = colour.expand(1, 8, 8, 3).contiguous()
        if boundary == "zero":
            # Zero mode is only constant where the footprint stays on level-0 texel centres.
            uv = 1 / 16 + torch.rand(1, 8, 8, 2, generator=g) * (14 / 16)
            uv_da = torch.rand(1, 8, 8, 4, generator=g) * 0.05
        else:
            uv = torch.rand(1, 8, 8, 2, generator=g) * 5 - 2
            uv_da = torch.randn(1, 8, 8, 4, generator=g)
    bias = None if boundary == "zero" else torch.rand(1, 8, 8, generator=g) * 2
    out = tex_sample(tex, uv, uv_da, bias, filter_mode, boundary)
    assert torch.allclose(out, colour.expand_as(out), atol=1e-6)


# ---------------------------------------------------------------------- mip levels


@pytest.mark.parametrize("filter_mode", MIP_MODES)
def test_footprint_of_2k_texels_picks_level_k(filter_mode):
    g = torch.Generator().manual_seed(4)
    tex = torch.rand(1, 16, 16, 2, generator=g)
    for k in range(5):
        size = 2**k / 16
        # The centre of texel (1, 2) of level k (clamped to the last texel on small levels).
        nk = 16 >> k
        i, j = min(1, nk - 1), min(2, nk - 1)
        uv = torch.tensor([(j + 0.5) / nk, (i + 0.5) / nk]).view(1, 1, 1, 2)
        expected = pooled(tex, k)[0, i, j]
        for da in ([size, 0.0, 0.0, size], [size, 0.0, 0.0, size / 2], [0.0, size / 4, size, 0.0]):
            uv_da = torch.tensor(da).view(1, 1, 1, 4)
            out = tex_sample(tex, uv, uv_da, filter_mode=filter_mode)
            assert torch.allclose(out.flatten(), expected, atol=1e-6), (k, da)


def test_trilinear_blend_weight_from_bias():
    g = torch.Generator().manual_seed(5)
    tex = torch.rand(1, 8, 8, 3, generator=g)
    uv = torch.rand(1, 4, 5, 2, generator=g)
    for k, f in ((0, 0.25), (1, 0.5), (2, 0.875)):
        bias = torch.full((1, 4, 5), k + f)
        lo = grid_sample_ref(pooled(tex, k), uv, "wrap")
        hi = grid_sample_ref(pooled(tex, k + 1), uv, "wrap")
        out = tex_sample(tex, uv, None, bias, "linear-mipmap-linear")
        assert torch.allclose(out, (1 - f) * lo + f * hi, atol=1e-5)
        out = tex_sample(tex, uv, None, bias, "linear-mipmap-nearest")
        assert torch.allclose(out, lo, atol=1e-5)


def test_level_of_detail_is_log2_of_footprint_major_axis():
    # Non-square texture: u is scaled by the width (16), v by the height (8).
    g = torch.Generator().manual_seed(6)
    tex = torch.rand(1, 8, 16, 2, generator=g)
    uv = torch.rand(1, 3, 7, 2, generator=g)
    uv_da = torch.randn(1, 3, 7, 4, generator=g, dtype=torch.float64) * 0.1
    jac = torch.stack([uv_da[..., 0:2] * 16, uv_da[..., 2:4] * 8], -2)  # [[ds/dX, ds/dY], [dt/dX, dt/dY]]
    major_sq = torch.linalg.eigvalsh(jac.transpose(-1, -2) @ jac)[..., -1]
    # The bias places every level strictly inside the pyramid, so the blend shows any error.
    lod = 0.5 + 3 * torch.rand(1, 3, 7, generator=g, dtype=torch.float64)
    bias = lod - 0.5 * torch.log2(major_sq)
    out = tex_sample(tex, uv, uv_da.float(), bias.float(), "linear-mipmap-linear")
    ref = tex_sample(tex, uv, None, lod.float(), "linear-mipmap-linear")
    assert torch.allclose(out, ref, atol=1e-5)


def test_level_is_clamped_to_pyramid_and_max_mip_level():
    g = torch.Generator().manual_seed(7)
    tex = torch.rand(1, 8, 8, 3, generator=g)
    uv = torch.rand(1, 2, 3, 2, generator=g)
    big = torch.full((1, 2, 3), 10.0)
    assert torch.allclose(tex_sample(tex, uv, None, big), tex.mean((1, 2)).view(1, 1, 1, 3).expand(1, 2, 3, 3), atol=1e-6)
    limited = tex_sample(tex, uv, None, big, max_mip_level=1)
    assert torch.allclose(limited, grid_sample_ref(pooled(tex, 1), uv, "wrap"), atol=1e-5)
    negative = tex_sample(tex, uv, None, -big)
    assert torch.allclose(negative, tex_sample(tex, uv, filter_mode="linear"))
    # max_mip_level=0 turns mipmapping off, as in nvdiffrast.
    assert torch.equal(tex_sample(tex, uv, None, big, max_mip_level=0), tex_sample(tex, uv, filter_mode="linear"))


def test_auto_mode_picks_trilinear_only_with_footprint():
    g = torch.Generator().manual_seed(8)
    tex = torch.rand(1, 8, 8, 1, generator=g)
    uv = torch.rand(1, 3, 3, 2, generator=g)
    bias = torch.full((1, 3, 3), 1.5)
    assert torch.equal(tex_sample(tex, uv), tex_sample(tex, uv, filter_mode="linear"))
    assert torch.equal(tex_sample(tex, uv, None, bias), tex_sample(tex, uv, None, bias, "linear-mipmap-linear"))


def test_pyramid_of_thin_texture_halves_only_the_long_side():
    # 2x8 -> 1x4 -> 1x2 -> 1x1: once the height is 1 the width is averaged in pairs.
    g = torch.Generator().manual_seed(9)
    tex = torch.rand(1, 2, 8, 1, generator=g)
    uv = torch.rand(1, 2, 4, 2, generator=g)
    level2 = F.avg_pool2d(tex.permute(0, 3, 1, 2), (2, 4)).permute(0, 2, 3, 1)  # 1x2
    out = tex_sample(tex, uv, None, torch.full((1, 2, 4), 2.0))
    assert torch.allclose(out, grid_sample_ref(level2, uv, "wrap"), atol=1e-6)
    out = tex_sample(tex, uv, None, torch.full((1, 2, 4), 5.0))
    assert torch.allclose(out, tex.mean().expand_as(out), atol=1e-6)


def test_odd_size_needs_max_mip_level():
    tex = torch.rand(1, 6, 6, 1)
    uv = torch.rand(1, 2, 2, 2)
    bias = torch.full((1, 2, 2), 5.0)
    with pytest.raises(RenderInputError, match="max_mip_level=1"):
        tex_sample(tex, uv, None, bias)
    out = tex_sample(tex, uv, None, bias, max_mip_level=1)  # 6x6 -> 3x3 is fine
    assert torch.allclose(out, grid_sample_ref(pooled(tex, 1), uv, "wrap"), atol=1e-6)


# ---------------------------------------------------------------------- cube maps

# OpenGL's cube-map table: per face, (sc, tc) as a function of the direction r with |major| = 1,
# written here as the direction for given (sc, tc).
GL_FACE_DIRECTION = (
    lambda sc, tc: (1.0, -tc, -sc),  # +x: sc = -rz, tc = -ry
    lambda sc, tc: (-1.0, -tc, sc),  # -x: sc = +rz, tc = -ry
    lambda sc, tc: (sc, 1.0, tc),  # +y: sc = +rx, tc = +rz
    lambda sc, tc: (sc, -1.0, -tc),  # -y: sc = +rx, tc = -rz
    lambda sc, tc: (sc, -tc, 1.0),  # +z: sc = +rx, tc = -ry
    lambda sc, tc: (-sc, -tc, -1.0),  # -z: sc = -rx, tc = -ry
)


def labelled_cube(w=4):
    """Cube map whose texel (face f, row i, column j) holds 100 f + 10 i + j."""
    f, i, j = torch.meshgrid(torch.arange(6.0), torch.arange(float(w)), torch.arange(float(w)), indexing="ij")
    return (100 * f + 10 * i + j).view(1, 6, w, w, 1)


@pytest.mark.parametrize("filter_mode", ["nearest", "linear"])
def test_cube_face_selection_for_axis_directions(filter_mode):
    tex = torch.arange(6.0).view(1, 6, 1, 1, 1).expand(1, 6, 4, 4, 1).contiguous()
    dirs = torch.tensor([[2.0, 0, 0], [-1, 0, 0], [0, 3, 0], [0, -1, 0], [0, 0, 0.5], [0, 0, -1]])
    out = tex_sample(tex, dirs.view(1, 1, 6, 3), filter_mode=filter_mode, boundary_mode="cube")
    assert out.flatten().tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


def test_cube_face_orientation_follows_opengl():
    w = 4
    tex = labelled_cube(w)
    dirs, expected = [], []
    for f in range(6):
        for sc, tc in ((-0.8, -0.3), (0.3, -0.8), (0.6, 0.1), (-0.2, 0.9)):
            j, i = math.floor((sc + 1) / 2 * w), math.floor((tc + 1) / 2 * w)
            dirs.append(GL_FACE_DIRECTION[f](sc, tc))
            expected.append(100 * f + 10 * i + j)
    uv = torch.tensor(dirs).view(1, 1, -1, 3) * 1.7  # lookups need not be unit vectors
    out = tex_sample(tex, uv, filter_mode="nearest", boundary_mode="cube")
    assert out.flatten().tolist() == [float(e) for e in expected]


def test_cube_corner_takes_mean_of_three_texels():
    w = 4
    tex = labelled_cube(w)
    # Direction (1, 1, 1) hits the corner texels +x (0, 0), +y (w-1, w-1) and +z (0, w-1).
    expected = (0 + 200 + 10 * (w - 1) + (w - 1) + 400 + (w - 1)) / 3
    out = tex_sample(tex, torch.ones(1, 1, 1, 3), filter_mode="linear", boundary_mode="cube")
    assert out.item() == pytest.approx(expected, rel=1e-6)


def test_cube_zero_direction_samples_zero():
    tex = torch.ones(1, 6, 2, 2, 1)
    out = tex_sample(tex, torch.zeros(1, 1, 1, 3), filter_mode="linear", boundary_mode="cube")
    assert out.item() == 0.0


@pytest.mark.parametrize("bias", [None, 0.6])
def test_cube_filtering_is_continuous_across_edges_and_corners(bias):
    g = torch.Generator().manual_seed(10)
    tex = torch.rand(1, 6, 8, 8, 2, generator=g)
    # Points on the 12 edges and 8 corners of the cube [-1,1]^3, nudged onto either side.
    pts = []
    for a in range(3):
        for sb in (-1.0, 1.0):
            for sc in (-1.0, 1.0):
                for along in (-0.7, 0.1, 0.55):
                    p = [0.0, 0.0, 0.0]
                    p[a], p[(a + 1) % 3], p[(a + 2) % 3] = along, sb, sc
                    pts.append(p)
    pts += [[x, y, z] for x in (-1.0, 1.0) for y in (-1.0, 1.0) for z in (-1.0, 1.0)]
    p = torch.tensor(pts, dtype=torch.float64)
    eps = 1e-5
    sides = []
    for axis in range(3):
        q = p.clone()
        q[:, axis] *= 1 + eps  # this axis becomes the major one
        sides.append(q)
    uv = torch.stack(sides).view(1, 3, -1, 3).float()
    b = None if bias is None else torch.full(uv.shape[:3], bias)
    out = tex_sample(tex, uv, None, b, "linear" if bias is None else "linear-mipmap-linear", "cube")
    assert torch.allclose(out[0, 0], out[0, 1], atol=1e-4) and torch.allclose(out[0, 0], out[0, 2], atol=1e-4)


def test_cube_level_of_detail_uses_face_projection():
    # Looking down +z at (0, 0, 1), a direction footprint of (dx/dX, dy/dY) = 2 a maps to
    # ds/dX = a, dt/dY = -a on the face; a face of 16 texels and a = 4/16 give level 2.
    g = torch.Generator().manual_seed(11)
    tex = torch.rand(1, 6, 16, 16, 1, generator=g)
    uv = torch.tensor([0.0, 0.0, 1.0]).view(1, 1, 1, 3)
    uv_da = torch.tensor([2 * 4 / 16, 0.0, 0.0, 2 * 4 / 16, 0.0, 0.0]).view(1, 1, 1, 6)
    out = tex_sample(tex, uv, uv_da, None, "linear-mipmap-linear", "cube")
    ref = tex_sample(tex, uv, None, torch.full((1, 1, 1), 2.0), "linear-mipmap-linear", "cube")
    assert torch.allclose(out, ref, atol=1e-6)
    level2 = F.avg_pool2d(tex[0, 4].permute(2, 0, 1), 4)  # the centre of +z at level 2
    assert out.item() == pytest.approx(level2[0, 1:3, 1:3].mean().item(), rel=1e-5)


# ---------------------------------------------------------------------- gradients


@pytest.mark.parametrize("boundary", ["wrap", "clamp", "zero"])
def test_gradcheck_linear_tex_and_uv(boundary):
    g = torch.Generator().manual_seed(12)
    tex = torch.rand(1, 3, 4, 2, generator=g, dtype=torch.float64, requires_grad=True)
    uv = (torch.rand(2, 2, 3, 2, generator=g, dtype=torch.float64) * 1.6 - 0.3).requires_grad_()
    assert torch.autograd.gradcheck(lambda t, c: tex_sample(t, c, None, None, "linear", boundary), (tex, uv))


def test_gradcheck_cube_linear_tex_and_directions():
    g = torch.Generator().manual_seed(13)
    tex = torch.rand(1, 6, 4, 4, 1, generator=g, dtype=torch.float64, requires_grad=True)
    # Inside a face, across an edge (+x towards -z) and at a corner (three-texel mean).
    dirs = torch.tensor([[0.3, -0.6, 1.0], [1.0, 0.2, -0.95], [1.0, 0.95, 0.97], [-0.4, -1.0, 0.1]],
                        dtype=torch.float64).view(1, 2, 2, 3).requires_grad_()
    assert torch.autograd.gradcheck(lambda t, d: tex_sample(t, d, None, None, "linear", "cube"), (tex, dirs))


def test_gradcheck_trilinear_uv_da_and_bias():
    g = torch.Generator().manual_seed(14)
    tex = torch.rand(1, 8, 8, 2, generator=g, dtype=torch.float64, requires_grad=True)
    uv = torch.rand(1, 2, 2, 2, generator=g, dtype=torch.float64, requires_grad=True)
    uv_da = torch.tensor([[0.30, 0.05, -0.02, 0.12], [0.10, 0.20, 0.15, -0.04],
                          [0.02, 0.40, 0.30, 0.01], [-0.25, 0.10, 0.05, 0.09]], dtype=torch.float64)
    uv_da = uv_da.view(1, 2, 2, 4).requires_grad_()
    bias = torch.tensor([0.1, -0.3, 0.2, 0.4], dtype=torch.float64).view(1, 2, 2).requires_grad_()

    def fn(t, c, da, b):
        return tex_sample(t, c, da, b, "linear-mipmap-linear", "wrap")

    assert torch.autograd.gradcheck(fn, (tex, uv, uv_da, bias))


def test_gradcheck_cube_trilinear():
    g = torch.Generator().manual_seed(15)
    tex = torch.rand(1, 6, 4, 4, 1, generator=g, dtype=torch.float64, requires_grad=True)
    dirs = torch.tensor([[0.3, -0.45, 1.0], [1.0, 0.2, -0.6]], dtype=torch.float64).view(1, 1, 2, 3).requires_grad_()
    uv_da = torch.tensor([[0.9, 0.1, -0.2, 0.7, 0.1, 0.05], [0.1, 0.5, 0.8, -0.1, 0.2, 0.3]], dtype=torch.float64)
    uv_da = uv_da.view(1, 1, 2, 6).requires_grad_()
    bias = torch.tensor([0.15, -0.2], dtype=torch.float64).view(1, 1, 2).requires_grad_()

    def fn(t, d, da, b):
        return tex_sample(t, d, da, b, "linear-mipmap-linear", "cube")

    assert torch.autograd.gradcheck(fn, (tex, dirs, uv_da, bias))


def test_isotropic_footprint_has_finite_scale_gradient():
    # (a, 0, 0, a) is exactly isotropic: sqrt(0) must not turn the gradient into NaN, and scaling
    # the footprint must still move the level (lod = log2(8 a)).
    g = torch.Generator().manual_seed(16)
    tex = torch.rand(1, 8, 8, 1, generator=g, dtype=torch.float64)
    uv = torch.rand(1, 2, 2, 2, generator=g, dtype=torch.float64)
    unit = torch.tensor([1.0, 0.0, 0.0, 1.0], dtype=torch.float64).expand(1, 2, 2, 4)
    scale = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: tex_sample(tex, uv, unit * a, None, "linear-mipmap-linear"), (scale,))


def test_zero_footprint_level_zero_without_nan_gradient():
    tex = torch.rand(1, 4, 4, 1, dtype=torch.float64)
    uv = torch.rand(1, 1, 2, 2, dtype=torch.float64)
    uv_da = torch.zeros(1, 1, 2, 4, dtype=torch.float64, requires_grad=True)
    out = tex_sample(tex, uv, uv_da, None, "linear-mipmap-linear")
    assert torch.allclose(out, tex_sample(tex, uv, filter_mode="linear"))
    (grad,) = torch.autograd.grad(out.sum(), uv_da)
    assert torch.equal(grad, torch.zeros_like(grad))


def test_backend_texture_delegates():
    g = torch.Generator().manual_seed(17)
    tex = torch.rand(1, 4, 4, 3, generator=g)
    uv = torch.rand(1, 3, 3, 2, generator=g)
    out = TorchBackend("cpu").texture(tex, uv, filter_mode="linear", boundary_mode="clamp")
    assert torch.equal(out, tex_sample(tex, uv, filter_mode="linear", boundary_mode="clamp"))


# ---------------------------------------------------------------------- bad input


def _bad_cases():
    tex = torch.rand(1, 4, 4, 3)
    uv = torch.rand(1, 2, 2, 2)
    cube = torch.rand(1, 6, 4, 4, 3)
    dirs = torch.randn(1, 2, 2, 3)
    nan_uv = uv.clone()
    nan_uv[0, 0, 0, 0] = float("nan")
    bias = torch.zeros(1, 2, 2)
    return [
        ("tex-type", dict(tex=tex.numpy()), "tex"),
        ("tex-dtype", dict(tex=tex.to(torch.float16)), "tex"),
        ("tex-int", dict(tex=(tex * 255).to(torch.uint8)), "tex"),
        ("tex-rank", dict(tex=tex[0]), "tex"),
        ("tex-empty", dict(tex=torch.rand(1, 0, 4, 3)), "tex"),
        ("tex-batch", dict(tex=torch.rand(3, 4, 4, 3), uv=torch.rand(2, 2, 2, 2)), "tex"),
        ("uv-last", dict(uv=torch.rand(1, 2, 2, 3)), "uv"),
        ("uv-rank", dict(uv=torch.rand(2, 2, 2)), "uv"),
        ("uv-dtype", dict(uv=uv.double()), "uv"),
        ("uv-nan", dict(uv=nan_uv), "uv"),
        ("tex-device", dict(device=torch.device("meta")), "tex"),
        ("uv-device", dict(tex=torch.rand(1, 4, 4, 3, device="meta"), device=torch.device("meta")), "uv"),
        ("filter-mode", dict(filter_mode="bilinear"), "filter_mode"),
        ("boundary-mode", dict(boundary_mode="mirror"), "boundary_mode"),
        ("cube-2d-tex", dict(boundary_mode="cube", uv=dirs), "tex"),
        ("cube-tex-not-cube-mode", dict(tex=cube), "boundary_mode"),
        ("cube-not-square", dict(tex=torch.rand(1, 6, 4, 2, 3), uv=dirs, boundary_mode="cube"), "tex"),
        ("cube-five-faces", dict(tex=torch.rand(1, 5, 4, 4, 3), uv=dirs, boundary_mode="cube"), "tex"),
        ("cube-uv-2d", dict(tex=cube, boundary_mode="cube"), "uv"),
        ("mip-without-footprint", dict(filter_mode="linear-mipmap-linear"), "uv_da or mip_level_bias"),
        ("uv-da-shape", dict(uv_da=torch.rand(1, 2, 3, 4)), "uv_da"),
        ("uv-da-last", dict(uv_da=torch.rand(1, 2, 2, 6)), "uv_da"),
        ("uv-da-nan", dict(uv_da=torch.full((1, 2, 2, 4), float("nan"))), "uv_da"),
        ("cube-uv-da-last", dict(tex=cube, uv=dirs, boundary_mode="cube", uv_da=torch.rand(1, 2, 2, 4)), "uv_da"),
        ("bias-shape", dict(mip_level_bias=torch.zeros(1, 2, 2, 1)), "mip_level_bias"),
        ("bias-inf", dict(mip_level_bias=torch.full((1, 2, 2), float("inf"))), "mip_level_bias"),
        ("max-mip-negative", dict(mip_level_bias=bias, max_mip_level=-1), "max_mip_level"),
        ("max-mip-float", dict(mip_level_bias=bias, max_mip_level=1.5), "max_mip_level"),
        ("odd-mip", dict(tex=torch.rand(1, 4, 6, 3), mip_level_bias=bias), "tex"),
    ]


@pytest.mark.parametrize("case, changes, name", _bad_cases(), ids=[c[0] for c in _bad_cases()])
def test_bad_input_raises_render_input_error(case, changes, name):
    args = dict(tex=torch.rand(1, 4, 4, 3), uv=torch.rand(1, 2, 2, 2), uv_da=None, mip_level_bias=None,
                filter_mode="auto", boundary_mode="wrap", max_mip_level=None, device=CPU)
    args.update(changes)
    device = args.pop("device")
    with pytest.raises(RenderInputError, match=name) as info:
        sample_texture(*args.values(), device=device)
    message = str(info.value)
    assert message.endswith(".") and message.count(". ") == 0, message  # one sentence
    assert isinstance(info.value, ValueError)
