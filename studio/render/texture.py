"""Texture sampling with nvdiffrast's semantics in plain PyTorch (the torch backend's ``texture``).

The conventions are those of ``nvdiffrast.torch.texture``, so the two backends can be checked
against each other:

- A 2D texture is [B,Ht,Wt,C]; texel (i, j) (row i, column j) is centred at
  uv = ((j + 0.5) / Wt, (i + 0.5) / Ht).  u runs along the width, v along the height, row 0 is at
  v = 0, and nothing is flipped.
- A cube map is [B,6,S,S,C] with faces in the order +x, -x, +y, -y, +z, -z, looked up with
  (not necessarily unit) direction vectors.  The face is the direction's major axis (ties go to x,
  then y) and the face coordinates follow the OpenGL cube-map table, s along the width and t
  along the height::

      +x: s = 1/2 - z/(2|x|), t = 1/2 - y/(2|x|)    -x: s = 1/2 + z/(2|x|), t = 1/2 - y/(2|x|)
      +y: s = 1/2 + x/(2|y|), t = 1/2 + z/(2|y|)    -y: s = 1/2 + x/(2|y|), t = 1/2 - z/(2|y|)
      +z: s = 1/2 + x/(2|z|), t = 1/2 - y/(2|z|)    -z: s = 1/2 - x/(2|z|), t = 1/2 - y/(2|z|)

  Bilinear taps that fall off a face read the adjacent face's texels, so filtering is seamless; at
  a cube corner the texel that does not exist takes the mean of the other three.  A zero
  direction samples zeros.
- Boundary modes: "wrap" keeps the fractional part of uv, "clamp" clamps texel-space coordinates
  to the centres of the edge texels, "zero" reads zeros outside the texture.
- Mip level k + 1 is the 2x2 box filter of level k; a side that has reached one texel stays at
  one while the other side is averaged in pairs.  A side with an odd number of texels (other than
  one) cannot be halved: that is an error unless ``max_mip_level`` ends the pyramid before it.
- Level of detail.  With the footprint scaled to level-0 texels, ds/dX = Wt du/dX,
  ds/dY = Wt du/dY, dt/dX = Ht dv/dX, dt/dY = Ht dv/dY, and

      A = (ds/dX)^2 + (dt/dX)^2,  B = (ds/dY)^2 + (dt/dY)^2,  C = ds/dX ds/dY + dt/dX dt/dY,
      lod = 1/2 log2((A + B)/2 + sqrt((A - B)^2/4 + C^2)) + mip_level_bias,

  i.e. log2 of the long axis of the pixel's footprint ellipse in texels, clamped to
  [0, number of mip levels].  "linear-mipmap-nearest" samples level floor(lod);
  "linear-mipmap-linear" blends level floor(lod) with the next by lod - floor(lod).  For cube
  maps the footprint of the direction (d{x,y,z}/dX, d{x,y,z}/dY) is first carried to (s, t)
  through the face projection above, and the face width plays the part of Wt and Ht.
"""

from __future__ import annotations

from numbers import Integral

import torch

from .backend import RenderInputError
from .checks import FLOAT32_64, check_finite, check_tensor

FILTER_MODES = ("auto", "nearest", "linear", "linear-mipmap-nearest", "linear-mipmap-linear")
BOUNDARY_MODES = ("wrap", "clamp", "zero", "cube")
_MIP_MODES = ("linear-mipmap-nearest", "linear-mipmap-linear")

# Per cube face (+x, -x, +y, -y, +z, -z): the outward axis M and the directions S and T in which
# the face coordinates s (width) and t (height) grow.  Texel (i, j) of a face w texels wide is
# centred on the direction w*M + (2j + 1 - w)*S + (2i + 1 - w)*T, which keeps the seam
# arithmetic exact in integers.
_CUBE_BASIS = (
    ((1, 0, 0), (0, 0, -1), (0, -1, 0)),
    ((-1, 0, 0), (0, 0, 1), (0, -1, 0)),
    ((0, 1, 0), (1, 0, 0), (0, 0, 1)),
    ((0, -1, 0), (1, 0, 0), (0, 0, -1)),
    ((0, 0, 1), (1, 0, 0), (0, -1, 0)),
    ((0, 0, -1), (-1, 0, 0), (0, -1, 0)),
)


def sample_texture(
    tex: torch.Tensor,
    uv: torch.Tensor,
    uv_da: torch.Tensor | None = None,
    mip_level_bias: torch.Tensor | None = None,
    filter_mode: str = "auto",
    boundary_mode: str = "wrap",
    max_mip_level: int | None = None,
    *,
    device: torch.device,
) -> torch.Tensor:
    """Sample a texture or cube map as ``nvdiffrast.torch.texture`` does (see the module docstring).

    Args:
        tex: [B,Ht,Wt,C] texture, or [B,6,S,S,C] cube map when ``boundary_mode == "cube"``;
            float32 (float64 is accepted for gradient checks).  B is 1 (shared by every image)
            or the batch size of ``uv``.
        uv: [B,H,W,2] texture coordinates (u along the width, v along the height, texel (i, j)
            centred at ((j + .5)/Wt, (i + .5)/Ht)), or [B,H,W,3] lookup directions for a cube
            map; same dtype as ``tex``.
        uv_da: [B,H,W,4] pixel footprint (du/dX, du/dY, dv/dX, dv/dY) in uv units per pixel, or
            [B,H,W,6] (dx/dX, dx/dY, dy/dX, dy/dY, dz/dX, dz/dY) for a cube map.  Only read by the
            mipmapped filter modes.
        mip_level_bias: [B,H,W] added to the level of detail (in levels); without ``uv_da`` it is
            the level of detail.  Only read by the mipmapped filter modes.
        filter_mode: "nearest", "linear", "linear-mipmap-nearest", "linear-mipmap-linear", or
            "auto" (linear-mipmap-linear when ``uv_da`` or ``mip_level_bias`` is given, else
            linear).  "nearest" and "linear" read level 0 only.
        boundary_mode: "wrap", "clamp", "zero" or "cube".
        max_mip_level: the most mip levels to build below level 0 (None: down to 1x1; 0 turns the
            mipmapped modes into "linear").
        device: the device every tensor must be on.

    Returns:
        [B,H,W,C] samples in ``tex``'s dtype.  Gradients reach ``tex`` (through the mip pyramid
        too) and ``uv`` (not in "nearest"), and in "linear-mipmap-linear" also ``uv_da`` and
        ``mip_level_bias`` through the blend between the two levels.  As in nvdiffrast the level
        gets no gradient where it is clamped or lands exactly on a level, and clamp mode gives
        uv no gradient at or beyond the edge-texel centres.  Where the footprint is exactly
        isotropic the level's gradient is the mean over the footprint's two equal axes (finite
        and nonzero), where nvdiffrast returns zero.

    Raises:
        RenderInputError: an argument with the wrong type, dtype, shape, device or value, NaN/Inf
            in ``uv``, ``uv_da`` or ``mip_level_bias``, or a texture whose mip pyramid would have
            to halve an odd side.
    """
    if filter_mode not in FILTER_MODES:
        raise RenderInputError(f"filter_mode must be one of {', '.join(FILTER_MODES)}, got {filter_mode!r}.")
    if boundary_mode not in BOUNDARY_MODES:
        raise RenderInputError(f"boundary_mode must be one of {', '.join(BOUNDARY_MODES)}, got {boundary_mode!r}.")
    if max_mip_level is not None and (
        isinstance(max_mip_level, bool) or not isinstance(max_mip_level, Integral) or max_mip_level < 0
    ):
        raise RenderInputError(f"max_mip_level must be None or an integer >= 0, got {max_mip_level!r}.")
    if filter_mode == "auto":
        use_mip = uv_da is not None or mip_level_bias is not None
        filter_mode = "linear-mipmap-linear" if use_mip else "linear"
    if filter_mode in _MIP_MODES and uv_da is None and mip_level_bias is None:
        raise RenderInputError(
            f"filter_mode {filter_mode!r} needs uv_da or mip_level_bias to choose a mip level; pass one "
            "of them or use filter_mode 'linear'."
        )
    if max_mip_level == 0 and filter_mode in _MIP_MODES:
        filter_mode = "linear"
    cube = boundary_mode == "cube"
    tex, uv = _check_tex_uv(tex, uv, cube, device)
    mip = filter_mode in _MIP_MODES
    if mip:
        uv_da, mip_level_bias = _check_footprint(uv_da, mip_level_bias, uv, cube, device)

    B, H, W = uv.shape[:3]
    n = B * H * W
    C = tex.shape[-1]
    tex_h, tex_w = tex.shape[-3], tex.shape[-2]
    coords = uv.reshape(n, uv.shape[-1])
    if tex.shape[0] == 1:
        plane = torch.zeros(1, 1, dtype=torch.long, device=uv.device)
    else:
        plane = (torch.arange(n, device=uv.device) // (H * W)).unsqueeze(1)

    face = basis = valid = None
    if cube:
        face, basis, s, t, valid = _cube_lookup(coords)
        plane = plane * 6
    else:
        s, t = coords[:, :1], coords[:, 1:]
        if boundary_mode == "wrap":
            s = s - torch.floor(s)
            t = t - torch.floor(t)

    if filter_mode == "nearest":
        out = _nearest(tex.reshape(-1, C), s, t, tex_w, tex_h, plane, face, boundary_mode)
    elif not mip:
        size_w = torch.full((1, 1), tex_w, dtype=torch.long, device=uv.device)
        size_h = torch.full((1, 1), tex_h, dtype=torch.long, device=uv.device)
        out = _bilinear(tex.reshape(-1, C), s, t, size_w, size_h, 0, plane, face, boundary_mode)
    else:
        flat, widths, heights, starts = _stack_levels(_mip_pyramid(tex, max_mip_level))
        max_level = widths.numel() - 1

        lod = torch.zeros(n, 1, dtype=tex.dtype, device=uv.device)
        if uv_da is not None:
            da = uv_da.reshape(n, uv_da.shape[-1])
            if cube:
                ds_dx, ds_dy, dt_dx, dt_dy = _cube_footprint(coords, basis, da)
            else:
                ds_dx, ds_dy, dt_dx, dt_dy = da.split(1, dim=1)
            lod = _footprint_lod(ds_dx * tex_w, ds_dy * tex_w, dt_dx * tex_h, dt_dy * tex_h)
        if mip_level_bias is not None:
            lod = lod + mip_level_bias.reshape(n, 1)
        # nvdiffrast's fmaxf sends a NaN level (an overflowing footprint) to level 0.
        lod = torch.nan_to_num(lod.clamp(0, max_level), nan=0.0)

        level0 = torch.floor(lod).long()
        out = _bilinear(flat, s, t, widths[level0], heights[level0], starts[level0], plane, face, boundary_mode)
        if filter_mode == "linear-mipmap-linear":
            level1 = (level0 + 1).clamp(max=max_level)
            frac = lod - level0.to(lod.dtype)
            # Exactly on a level nvdiffrast skips the second level, so the level gets no gradient there.
            frac = torch.where(frac > 0, frac, 0.0)
            out1 = _bilinear(flat, s, t, widths[level1], heights[level1], starts[level1], plane, face, boundary_mode)
            out = out + frac * (out1 - out)

    if valid is not None:
        out = torch.where(valid, out, 0.0)
    return out.view(B, H, W, C)


# ---------------------------------------------------------------------- argument checks


def _check_tex_uv(tex: object, uv: object, cube: bool, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(tex, torch.Tensor):
        if cube and tex.dim() == 4:
            raise RenderInputError(
                f"boundary_mode 'cube' needs tex as a [B,6,S,S,C] cube map, got shape {_shape(tex)}; "
                "use another boundary_mode for a 2D texture."
            )
        if not cube and tex.dim() == 5:
            raise RenderInputError(
                f"tex of shape {_shape(tex)} is a cube map and must be sampled with boundary_mode 'cube'."
            )
    if cube:
        tex = check_tensor("tex", tex, dtype=FLOAT32_64, ndims=(5,), device=device,
                           expected="[B,6,S,S,C] float32 cube map")
        if tex.shape[1] != 6 or tex.shape[2] != tex.shape[3]:
            raise RenderInputError(
                f"tex must be a [B,6,S,S,C] cube map (six square faces), got shape {_shape(tex)}."
            )
        uv = check_tensor("uv", uv, dtype=FLOAT32_64, ndims=(4,), last=3, device=device,
                          expected="[B,H,W,3] float32 lookup directions for a cube map")
    else:
        tex = check_tensor("tex", tex, dtype=FLOAT32_64, ndims=(4,), device=device,
                           expected="[B,Ht,Wt,C] float32 texture")
        uv = check_tensor("uv", uv, dtype=FLOAT32_64, ndims=(4,), last=2, device=device,
                          expected="[B,H,W,2] float32 texture coordinates")
    if min(tex.shape) == 0:
        raise RenderInputError(f"tex must have at least one texel and one channel, got shape {_shape(tex)}.")
    if uv.dtype != tex.dtype:
        raise RenderInputError(f"uv must have the dtype of tex ({tex.dtype}), got {uv.dtype}.")
    if tex.shape[0] not in (1, uv.shape[0]):
        raise RenderInputError(
            f"tex has batch size {tex.shape[0]} but uv has {uv.shape[0]}; give one texture per image or a single one."
        )
    check_finite("uv", uv)
    return tex, uv


def _check_footprint(
    uv_da: object, mip_level_bias: object, uv: torch.Tensor, cube: bool, device: torch.device
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    bhw = ",".join(str(s) for s in uv.shape[:3])
    dtype = str(uv.dtype).removeprefix("torch.")
    if uv_da is not None:
        k = 6 if cube else 4
        expected = f"[{bhw},{k}] {dtype} pixel derivatives matching uv"
        uv_da = check_tensor("uv_da", uv_da, dtype=uv.dtype, ndims=(4,), last=k, device=device, expected=expected)
        if uv_da.shape[:3] != uv.shape[:3]:
            raise RenderInputError(f"uv_da must be {expected}, got shape {_shape(uv_da)}.")
        check_finite("uv_da", uv_da)
    if mip_level_bias is not None:
        expected = f"[{bhw}] {dtype} per-pixel level offsets matching uv"
        mip_level_bias = check_tensor("mip_level_bias", mip_level_bias, dtype=uv.dtype, ndims=(3,), device=device,
                                      expected=expected)
        if mip_level_bias.shape != uv.shape[:3]:
            raise RenderInputError(f"mip_level_bias must be {expected}, got shape {_shape(mip_level_bias)}.")
        check_finite("mip_level_bias", mip_level_bias)
    return uv_da, mip_level_bias


def _shape(t: torch.Tensor) -> str:
    return "[" + ",".join(str(s) for s in t.shape) + "]"


# ---------------------------------------------------------------------- mip pyramid and level of detail


def _mip_pyramid(tex: torch.Tensor, max_mip_level: int | None) -> list[torch.Tensor]:
    """Level 0 (``tex`` as [P,Ht,Wt,C] planes, P = B or 6B) and the box-filtered levels below it."""
    h, w, C = tex.shape[-3:]
    base_h, base_w = h, w
    levels = [tex.reshape(-1, h, w, C)]
    while (h > 1 or w > 1) and (max_mip_level is None or len(levels) <= max_mip_level):
        if (h > 1 and h % 2) or (w > 1 and w % 2):
            raise RenderInputError(
                f"tex is {base_h}x{base_w} (height x width) texels and mip level {len(levels)} would have to "
                f"halve an odd side of {h}x{w}; use power-of-two sizes or max_mip_level={len(levels) - 1}."
            )
        level = levels[-1]
        if h > 1:
            h //= 2
            level = level.reshape(-1, h, 2, w, C).mean(2)
        if w > 1:
            w //= 2
            level = level.reshape(-1, h, w, 2, C).mean(3)
        levels.append(level)
    return levels


def _stack_levels(levels: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """All levels as one [T,C] table, and each level's width, height and first row as int64 [L].

    One table lets every pixel read its own level with a single gather.
    """
    C = levels[0].shape[-1]
    device = levels[0].device
    flat = torch.cat([level.reshape(-1, C) for level in levels])
    widths = torch.tensor([level.shape[-2] for level in levels], device=device)
    heights = torch.tensor([level.shape[-3] for level in levels], device=device)
    starts = torch.tensor([0] + [level.numel() // C for level in levels[:-1]], device=device).cumsum(0)
    return flat, widths, heights, starts


def _footprint_lod(
    ds_dx: torch.Tensor, ds_dy: torch.Tensor, dt_dx: torch.Tensor, dt_dy: torch.Tensor
) -> torch.Tensor:
    """log2 of the long axis of the footprint ellipse, from its derivatives in level-0 texels.

    Returns -inf for an empty footprint, which the caller's clamp turns into level 0 with no
    gradient, as in nvdiffrast.
    """
    a = ds_dx * ds_dx + dt_dx * dt_dx
    b = ds_dy * ds_dy + dt_dy * dt_dy
    c = ds_dx * ds_dy + dt_dx * dt_dy
    disc = 0.25 * (a - b) ** 2 + c * c
    # sqrt'(0) is infinite; for an isotropic footprint (disc == 0) only the mean axis length moves.
    root = torch.where(disc > 0, torch.sqrt(torch.where(disc > 0, disc, 1.0)), 0.0)
    major = 0.5 * (a + b) + root
    return torch.where(major > 0, 0.5 * torch.log2(torch.where(major > 0, major, 1.0)), float("-inf"))


# ---------------------------------------------------------------------- cube maps


def _cube_lookup(d: torch.Tensor):
    """Face, face basis and (s, t) of [n,3] directions.

    Returns face [n,1] int64, basis [n,3,3] (rows M, S, T of ``_CUBE_BASIS``), s and t [n,1] in
    [0,1], and valid [n,1] (False for a zero direction).
    """
    a = d.abs()
    ax, ay, az = a.unbind(1)
    axis = torch.where(az > torch.maximum(ax, ay), 2, torch.where(ay > ax, 1, 0))
    major = d.gather(1, axis.unsqueeze(1))
    face = 2 * axis.unsqueeze(1) + (major < 0).long()
    basis = torch.tensor(_CUBE_BASIS, dtype=d.dtype, device=d.device)[face.squeeze(1)]
    m = (basis[:, 0] * d).sum(1, keepdim=True)
    valid = m > 0
    m = torch.where(valid, m, 1.0)
    s = 0.5 + (basis[:, 1] * d).sum(1, keepdim=True) / (2 * m)
    t = 0.5 + (basis[:, 2] * d).sum(1, keepdim=True) / (2 * m)
    # Rounding can push a coordinate a hair outside [0,1]; the clamp must not cut the gradient,
    # which nvdiffrast takes from the unclamped projection.
    s = s + (s.clamp(0, 1) - s).detach()
    t = t + (t.clamp(0, 1) - t).detach()
    return face, basis, s, t, valid


def _cube_footprint(d: torch.Tensor, basis: torch.Tensor, da: torch.Tensor):
    """(ds/dX, ds/dY, dt/dX, dt/dY), each [n,1], from the direction footprint [n,6] = d{x,y,z}/d{X,Y}."""
    d_dx, d_dy = da[:, 0::2], da[:, 1::2]
    mv, sv, tv = basis.unbind(1)
    m = (mv * d).sum(1, keepdim=True)
    m = torch.where(m > 0, m, 1.0)
    sd = (sv * d).sum(1, keepdim=True)
    td = (tv * d).sum(1, keepdim=True)
    m_dx = (mv * d_dx).sum(1, keepdim=True)
    m_dy = (mv * d_dy).sum(1, keepdim=True)
    scale = 0.5 / (m * m)
    # Quotient rule on s = 1/2 + (S.d)/(2 M.d), likewise t.
    ds_dx = ((sv * d_dx).sum(1, keepdim=True) * m - sd * m_dx) * scale
    ds_dy = ((sv * d_dy).sum(1, keepdim=True) * m - sd * m_dy) * scale
    dt_dx = ((tv * d_dx).sum(1, keepdim=True) * m - td * m_dx) * scale
    dt_dy = ((tv * d_dy).sum(1, keepdim=True) * m - td * m_dy) * scale
    return ds_dx, ds_dy, dt_dx, dt_dy


def _cube_seams(face: torch.Tensor, ix: torch.Tensor, iy: torch.Tensor, w: torch.Tensor, weights: torch.Tensor):
    """Move bilinear taps that fall off their face onto the adjacent face.

    A tap one texel beyond an edge is the first texel row of the neighbouring face: fold its
    centre direction over the edge (the overflowing coordinate becomes the new major axis, the old
    major axis steps one texel in) and read the face it now points at.  At a corner, the tap off
    both edges does not exist and its weight is shared by the other three, which gives it their
    mean value, as in nvdiffrast.

    Args:
        face: [n,1] face of the lookup; ix, iy: [n,4] taps, possibly -1 or w; w: [n,1] or [1,1]
            face width; weights: [n,4] bilinear weights.

    Returns:
        (face, ix, iy, weights), the first three [n,4] int64 and all in range.
    """
    off_x = (ix < 0) | (ix >= w)
    off_y = (iy < 0) | (iy >= w)
    face = face.expand_as(ix)
    # Only pixels within half a texel of an edge have such taps; fold just those.
    rows = (off_x | off_y).any(1).nonzero().squeeze(1)
    if rows.numel() == 0:
        return face, ix, iy, weights
    off_x, off_y = off_x[rows], off_y[rows]
    ixr, iyr, wr = ix[rows], iy[rows], w.expand(ix.shape[0], 1)[rows]
    table = torch.tensor(_CUBE_BASIS, dtype=torch.long, device=ix.device)
    mv, sv, tv = table[face[rows, 0]].unsqueeze(1).unbind(2)  # [r,1,3] each
    ns = 2 * ixr + 1 - wr
    nt = 2 * iyr + 1 - wr
    p = wr.unsqueeze(2) * mv + ns.unsqueeze(2) * sv + nt.unsqueeze(2) * tv  # [r,4,3]
    p = p - off_x.unsqueeze(2) * (ns.sign().unsqueeze(2) * sv + mv)
    p = p - off_y.unsqueeze(2) * (nt.sign().unsqueeze(2) * tv + mv)
    axis = p.abs().argmax(2, keepdim=True)
    new_face = 2 * axis.squeeze(2) + (p.gather(2, axis).squeeze(2) < 0).long()
    _, new_s, new_t = table[new_face].unbind(2)
    w1 = wr - 1
    new_ix = torch.minimum((((p * new_s).sum(2) + w1) // 2).clamp(min=0), w1)
    new_iy = torch.minimum((((p * new_t).sum(2) + w1) // 2).clamp(min=0), w1)
    missing = off_x & off_y
    wrows = weights[rows]
    shared = (wrows * missing).sum(1, keepdim=True) / 3
    wrows = torch.where(missing, 0.0, wrows + shared)
    return (
        face.index_put((rows,), new_face),
        ix.index_put((rows,), new_ix),
        iy.index_put((rows,), new_iy),
        weights.index_put((rows,), wrows),
    )


# ---------------------------------------------------------------------- filtering


def _nearest(
    flat: torch.Tensor,
    s: torch.Tensor,
    t: torch.Tensor,
    w: int,
    h: int,
    plane: torch.Tensor,
    face: torch.Tensor | None,
    boundary_mode: str,
) -> torch.Tensor:
    """The texel of level 0 that contains (s, t); [n,C].  ``flat`` is [P*h*w, C]."""
    x = s * w
    y = t * h
    # Clamping before the integer conversion keeps far-away coordinates from overflowing it.
    ix = torch.floor(x.clamp(0, w - 1)).long()
    iy = torch.floor(y.clamp(0, h - 1)).long()
    if face is not None:
        plane = plane + face
    out = flat[((plane * h + iy) * w + ix).squeeze(1)]
    if boundary_mode == "zero":
        inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
        out = torch.where(inside, out, 0.0)
    return out


def _bilinear(
    flat: torch.Tensor,
    s: torch.Tensor,
    t: torch.Tensor,
    w: torch.Tensor,
    h: torch.Tensor,
    start: torch.Tensor | int,
    plane: torch.Tensor,
    face: torch.Tensor | None,
    boundary_mode: str,
) -> torch.Tensor:
    """Bilinear filtering of one mip level per pixel; [n,C].

    Args:
        flat: [T,C] texels of all levels, each level laid out as [P,h,w].
        s, t: [n,1] coordinates in [0,1] units of the texture (already wrapped in wrap mode).
        w, h: [n,1] or [1,1] int64 size of the level each pixel reads.
        start: first row of that level in ``flat`` ([n,1] or 0).
        plane: [n,1] or [1,1] plane of the texture batch (already times 6 for cube maps).
        face: [n,1] cube face, or None.
    """
    wf = w.to(s.dtype)
    hf = h.to(s.dtype)
    x = s * wf - 0.5
    y = t * hf - 0.5
    if boundary_mode == "clamp":
        x = torch.clamp(x, torch.zeros_like(wf), wf - 1)
        y = torch.clamp(y, torch.zeros_like(hf), hf - 1)
    elif boundary_mode == "zero":
        # Two texels out every tap reads zero; bounding the coordinate keeps the int conversion exact.
        x = torch.clamp(x, -2 * torch.ones_like(wf), wf + 1)
        y = torch.clamp(y, -2 * torch.ones_like(hf), hf + 1)
    x0f = torch.floor(x)
    y0f = torch.floor(y)
    fx = x - x0f
    fy = y - y0f
    x0 = x0f.long()
    y0 = y0f.long()
    x1 = x0 + 1
    y1 = y0 + 1
    if boundary_mode == "clamp":
        # On an edge-texel centre both taps are that texel, so uv gets no gradient (as in nvdiffrast).
        x1 = torch.where((x == 0) | (x == wf - 1), x0, x1)
        y1 = torch.where((y == 0) | (y == hf - 1), y0, y1)
    ix = torch.cat([x0, x1, x0, x1], 1)
    iy = torch.cat([y0, y0, y1, y1], 1)
    gx = 1 - fx
    gy = 1 - fy
    weights = torch.cat([gx * gy, fx * gy, gx * fy, fx * fy], 1)
    if boundary_mode == "wrap":
        ix = torch.remainder(ix, w)
        iy = torch.remainder(iy, h)
    elif boundary_mode == "zero":
        inside = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
        weights = weights * inside
        ix = torch.minimum(ix.clamp(min=0), w - 1)
        iy = torch.minimum(iy.clamp(min=0), h - 1)
    elif boundary_mode == "cube":
        face, ix, iy, weights = _cube_seams(face, ix, iy, w, weights)
    if face is not None:
        plane = plane + face
    idx = start + (plane * h + iy) * w + ix
    texels = flat[idx.reshape(-1)].view(idx.shape[0], 4, flat.shape[1])
    return (weights.unsqueeze(2) * texels).sum(1)
