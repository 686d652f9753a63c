"""Shading on a G-buffer: unlit, Lambert, Blinn-Phong, physically based (GGX), spherical-harmonics
and cube-map environment light.

Works the same for every renderer because it only reads a :class:`GBuffer`.  All colours are
linear-RGB radiance; directions are world space.  Units: a directional light of intensity 1 gives
a white Lambertian surface facing it radiance 1 (its irradiance is π; the Lambert BRDF is 1/π), in
every model.  Shadows and ambient occlusion are applied when the renderer provided them
(``gb.shadow``, ``gb.occlusion``).  The "pbr" model is :mod:`studio.render.pbr`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .backend import Backend
from .envmap import reflect, sh_irradiance
from .gbuffer import GBuffer
from .pbr import shade_pbr

SHADING_MODELS = ("unlit", "lambert", "phong", "pbr")

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


def shade(
    gb: GBuffer,
    albedo: torch.Tensor,
    lights: Lights,
    model: str = "lambert",
    specular: torch.Tensor | float = 0.0,
    shininess: torch.Tensor | float = 32.0,
    backend: Backend | None = None,
    roughness: torch.Tensor | None = None,
    metallic: torch.Tensor | None = None,
) -> torch.Tensor:
    """Shade a G-buffer.

    Args:
        gb: the renderer's G-buffer.
        albedo: [B,H,W,3] diffuse colour (linear RGB).
        lights: the lighting.
        model: "unlit" (albedo only), "lambert" (diffuse), "phong" (diffuse + Blinn-Phong
            specular, plus mirror reflections of ``lights.envmap``) or "pbr" (GGX metallic-roughness
            with ``albedo`` as base colour; ``lights.envmap`` lights it prefiltered by roughness).
        specular: specular strength ks, a scalar or [B,H,W,1].
        shininess: Blinn-Phong exponent, a scalar or [B,H,W,1].
        backend: needed to sample ``lights.envmap`` (cube-map texture lookups).
        roughness, metallic: [B,H,W,1] in [0, 1], for "pbr" (default 0.5 and 0).

    Returns:
        [B,H,W,3] linear RGB radiance (not composited over a background).
    """
    if model not in SHADING_MODELS:
        raise ValueError(f"shading model must be one of {', '.join(SHADING_MODELS)}, got {model!r}.")
    if model == "unlit":
        return albedo
    n = gb.normal
    open_sky = 1.0 if gb.occlusion is None else gb.occlusion
    if model == "pbr":
        extra = lights.ambient * open_sky
        if lights.sh is not None:
            extra = extra + sh_irradiance(n, lights.sh) * open_sky
        rough = roughness if roughness is not None else torch.full_like(gb.mask, 0.5)
        metal = metallic if metallic is not None else torch.zeros_like(gb.mask)
        return shade_pbr(gb, albedo, rough, metal, lights, backend, extra)
    dirs = torch.nn.functional.normalize(lights.directions, dim=-1)  # [L,3]
    ndotl = torch.einsum("bhwc,lc->bhwl", n, dirs)  # [B,H,W,L]
    lit = ndotl.clamp(min=0.0)
    if gb.shadow is not None:
        lit = lit * gb.shadow
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
