"""Shading on a G-buffer: unlit, Lambert, Blinn-Phong, spherical-harmonics and cube-map environment light.

Works the same for every renderer because it only reads a :class:`GBuffer`.  All colours are
linear RGB; directions are world space.  Shadows and ambient occlusion are applied when the
renderer provided them (``gb.shadow``, ``gb.occlusion``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .backend import Backend
from .gbuffer import GBuffer

SHADING_MODELS = ("unlit", "lambert", "phong")

# Ramamoorthi & Hanrahan (2001), "An efficient representation for irradiance environment maps".
_C1, _C2, _C3, _C4, _C5 = 0.429043, 0.511664, 0.743125, 0.886227, 0.247708


@dataclass(frozen=True)
class Lights:
    """World-space lighting.

    Attributes:
        ambient: [3] constant radiance added to the diffuse term.
        directions: [L,3] directions *towards* each directional light (normalised here).
        colors: [L,3] radiance of each light (colour times intensity).
        sh: optional [9,3] order-2 spherical-harmonics coefficients of the environment radiance,
            ordered (L00, L1-1, L10, L11, L2-2, L2-1, L20, L21, L22).
        envmap: optional [6,R,R,3] cube map (+x, -x, +y, -y, +z, -z) of environment radiance,
            seen in mirror reflections by the specular term.
    """

    ambient: torch.Tensor
    directions: torch.Tensor
    colors: torch.Tensor
    sh: torch.Tensor | None = None
    envmap: torch.Tensor | None = None


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


def shade(
    gb: GBuffer,
    albedo: torch.Tensor,
    lights: Lights,
    model: str = "lambert",
    specular: torch.Tensor | float = 0.0,
    shininess: torch.Tensor | float = 32.0,
    backend: Backend | None = None,
) -> torch.Tensor:
    """Shade a G-buffer.

    Args:
        gb: the renderer's G-buffer.
        albedo: [B,H,W,3] diffuse colour (linear RGB).
        lights: the lighting.
        model: "unlit" (albedo only), "lambert" (diffuse) or "phong" (diffuse + Blinn-Phong
            specular, plus mirror reflections of ``lights.envmap``).
        specular: specular strength ks, a scalar or [B,H,W,1].
        shininess: Blinn-Phong exponent, a scalar or [B,H,W,1].
        backend: needed to sample ``lights.envmap`` (cube-map texture lookups).

    Returns:
        [B,H,W,3] linear RGB radiance (not composited over a background).
    """
    if model not in SHADING_MODELS:
        raise ValueError(f"shading model must be one of {', '.join(SHADING_MODELS)}, got {model!r}.")
    if model == "unlit":
        return albedo
    n = gb.normal
    dirs = torch.nn.functional.normalize(lights.directions, dim=-1)  # [L,3]
    ndotl = torch.einsum("bhwc,lc->bhwl", n, dirs)  # [B,H,W,L]
    lit = ndotl.clamp(min=0.0)
    if gb.shadow is not None:
        lit = lit * gb.shadow
    open_sky = 1.0 if gb.occlusion is None else gb.occlusion
    diffuse = lights.ambient * open_sky + torch.einsum("bhwl,lc->bhwc", lit, lights.colors)
    if lights.sh is not None:
        diffuse = diffuse + sh_irradiance(n, lights.sh) * open_sky
    color = albedo * diffuse
    if model == "lambert":
        return color

    v = gb.view_dir
    half = torch.nn.functional.normalize(v.unsqueeze(-2) + dirs, dim=-1)  # [B,H,W,L,3]
    ndoth = (n.unsqueeze(-2) * half).sum(-1).clamp(min=1e-6)  # pow(0, s) has no gradient in s
    s = shininess if isinstance(shininess, torch.Tensor) else torch.tensor(float(shininess), device=n.device)
    highlight = ndoth.pow(s) * (ndotl > 0)
    if gb.shadow is not None:
        highlight = highlight * gb.shadow
    spec = torch.einsum("bhwl,lc->bhwc", highlight, lights.colors)
    if lights.envmap is not None:
        if backend is None:
            raise ValueError("an environment map needs the render backend for cube-map lookups.")
        r = reflect(v, n).contiguous()
        spec = spec + backend.texture(lights.envmap.unsqueeze(0).contiguous(), r, filter_mode="linear",
                                      boundary_mode="cube")
    return color + specular * spec
