"""Environment light: cube-map texel directions and solid angles, SH projection and irradiance,
mirror directions, GGX prefiltering.

Cube maps are [6,R,R,3] radiance in linear RGB, faces +x, -x, +y, -y, +z, -z in the OpenGL layout
that ``Backend.texture(..., boundary_mode="cube")`` reads.  Everything here is plain torch and
differentiable in the cube map (the prefiltered maps and the SH coefficients are linear in it).
"""

from __future__ import annotations

import math

import torch

# Ramamoorthi & Hanrahan (2001), "An efficient representation for irradiance environment maps".
_C1, _C2, _C3, _C4, _C5 = 0.429043, 0.511664, 0.743125, 0.886227, 0.247708
#: Roughness of each prefiltered level (level 0 is the cube map itself: a mirror).
ROUGHNESS_LEVELS = (0.0, 0.25, 0.5, 0.75, 1.0)
# Output texels handled at once while prefiltering (bounds memory: chunk x input texels floats).
_CHUNK = 512


def cube_directions(size: int, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> torch.Tensor:
    """Unit directions [6,R,R,3] of cube-map texel centres (faces +x,-x,+y,-y,+z,-z, OpenGL layout)."""
    c = (torch.arange(size, dtype=dtype, device=device) + 0.5) / size * 2 - 1
    t, s = torch.meshgrid(c, c, indexing="ij")  # t down the rows, s along the columns
    one = torch.ones_like(s)
    faces = [
        torch.stack([one, -t, -s], -1), torch.stack([-one, -t, s], -1),
        torch.stack([s, one, t], -1), torch.stack([s, -one, -t], -1),
        torch.stack([s, -t, one], -1), torch.stack([-s, -t, -one], -1),
    ]
    return torch.nn.functional.normalize(torch.stack(faces), dim=-1)


def cube_solid_angles(size: int, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> torch.Tensor:
    """Solid angle [6,R,R] of every texel in steradians (they sum to 4π): proportional to 1/|p|³
    for the texel centre p on the unit cube."""
    c = (torch.arange(size, dtype=dtype, device=device) + 0.5) / size * 2 - 1
    t, s = torch.meshgrid(c, c, indexing="ij")
    w = (1 + s * s + t * t) ** -1.5
    w = w.expand(6, size, size)
    return w * (4 * math.pi / w.sum())


def sh_basis(d: torch.Tensor) -> torch.Tensor:
    """Real order-2 SH basis [...,9] at unit directions [...,3], ordered (L00, L1-1, L10, L11, L2-2,
    L2-1, L20, L21, L22) as :func:`sh_irradiance` expects."""
    x, y, z = d.unbind(-1)
    return torch.stack([
        torch.full_like(x, 0.282095), 0.488603 * y, 0.488603 * z, 0.488603 * x,
        1.092548 * x * y, 1.092548 * y * z, 0.315392 * (3 * z * z - 1), 1.092548 * x * z, 0.546274 * (x * x - y * y),
    ], -1)


def cube_sh(cube: torch.Tensor) -> torch.Tensor:
    """[9,3] order-2 SH projection of a [6,R,R,3] radiance cube map (solid-angle weighted)."""
    r = cube.shape[1]
    d = cube_directions(r, cube.dtype, cube.device).reshape(-1, 3)
    w = cube_solid_angles(r, cube.dtype, cube.device).reshape(-1, 1)
    return (sh_basis(d) * w).T @ cube.reshape(-1, 3)


def sh_irradiance(normal: torch.Tensor, sh: torch.Tensor) -> torch.Tensor:
    """Irradiance / pi for unit normals [...,3] from SH radiance coefficients [9,3] -> [...,3]."""
    x, y, z = normal.unbind(-1)
    c = sh
    e = (
        _C1 * c[8] * (x * x - y * y)[..., None]
        + _C3 * c[6] * (z * z)[..., None]
        + _C4 * c[0]
        - _C5 * c[6]
        + 2 * _C1 * (c[4] * (x * y)[..., None] + c[7] * (x * z)[..., None] + c[5] * (y * z)[..., None])
        + 2 * _C2 * (c[3] * x[..., None] + c[1] * y[..., None] + c[2] * z[..., None])
    )
    return e / torch.pi


def reflect(view_dir: torch.Tensor, normal: torch.Tensor) -> torch.Tensor:
    """Mirror direction of ``view_dir`` (surface -> eye) about ``normal``, both [...,3]."""
    return 2 * (view_dir * normal).sum(-1, keepdim=True) * normal - view_dir


def _downsample(cube: torch.Tensor, size: int) -> torch.Tensor:
    """Box-filter each face of [6,R,R,C] down to [6,size,size,C] (R a multiple of size)."""
    r = cube.shape[1]
    if r <= size:
        return cube
    k = r // size
    x = cube.permute(0, 3, 1, 2)
    return torch.nn.functional.avg_pool2d(x, k).permute(0, 2, 3, 1)


def ggx_d(ndoth: torch.Tensor, alpha: torch.Tensor | float) -> torch.Tensor:
    """GGX / Trowbridge-Reitz normal distribution D(h) for cos(n, h) and α = roughness² (1/sr);
    normalised so that ∫ D(h) (n·h) dω_h = 1 over the hemisphere."""
    a2 = alpha * alpha
    c = ndoth.clamp(min=0.0)
    return a2 / (math.pi * (c * c * (a2 - 1) + 1).square())


def _level_sizes(roughness: float, size: int) -> tuple[int, int]:
    """(input, output) resolution of one prefiltered level: fine enough for the lobe's width."""
    if roughness <= 0.3:
        return min(size, 32), min(size, 16)
    return min(size, 16), min(size, 8)


def prefilter_level(cube: torch.Tensor, roughness: float) -> torch.Tensor:
    """The split-sum prefiltered cube map of one roughness (Karis 2013, with n = v = r):
    L(r) = Σ_l L(l) D(h)/4 (r·l)⁺ dω_l / Σ_l D(h)/4 (r·l)⁺ dω_l, a quadrature over every texel of the
    (box-downsampled) input.  [6,R,R,3] -> [6,r,r,3]; roughness 0 returns the cube map itself."""
    if roughness <= 0.0:
        return cube
    size_in, size_out = _level_sizes(roughness, cube.shape[1])
    src = _downsample(cube, size_in).reshape(-1, 3)
    dev, dt = cube.device, cube.dtype
    l_dir = cube_directions(size_in, dt, dev).reshape(-1, 3)
    d_omega = cube_solid_angles(size_in, dt, dev).reshape(-1)
    r_dir = cube_directions(size_out, dt, dev).reshape(-1, 3)
    alpha = roughness * roughness
    out = []
    for r in r_dir.split(_CHUNK):
        rl = r @ l_dir.T  # [n, in]
        h = torch.nn.functional.normalize(r.unsqueeze(1) + l_dir.unsqueeze(0), dim=-1)
        rh = (h * r.unsqueeze(1)).sum(-1)
        w = ggx_d(rh, alpha) / 4 * rl.clamp(min=0.0) * d_omega
        out.append((w @ src) / w.sum(-1, keepdim=True).clamp(min=1e-12))
    return torch.cat(out).reshape(6, size_out, size_out, 3)


class PrefilteredEnvironment:
    """Cache of cube maps' prefiltered levels (:data:`ROUGHNESS_LEVELS`) and SH projections,
    rebuilt only when a cube map changes (or every time it carries a gradient, so the fit can
    reach it).  Keeps the last few cube maps (the fit's and the target's)."""

    _KEEP = 4

    def __init__(self) -> None:
        self._cache: dict[tuple, tuple[list[torch.Tensor], torch.Tensor]] = {}

    def get(self, cube: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """(one [6,r,r,3] cube map per roughness level, [9,3] SH coefficients) of ``cube`` [6,R,R,3]."""
        if cube.requires_grad:
            return [prefilter_level(cube, r) for r in ROUGHNESS_LEVELS], cube_sh(cube)
        key = (cube.data_ptr(), cube._version, tuple(cube.shape), cube.dtype, str(cube.device))
        if key not in self._cache:
            if len(self._cache) >= self._KEEP:
                self._cache.pop(next(iter(self._cache)))
            with torch.no_grad():
                self._cache[key] = ([prefilter_level(cube, r) for r in ROUGHNESS_LEVELS], cube_sh(cube))
        return self._cache[key]
