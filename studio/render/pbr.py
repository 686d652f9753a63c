"""Physically based shading: a GGX / Cook-Torrance lobe with base colour, roughness and metallic.

Units and energy (the project's convention, shared with the Lambert and Phong models of
:mod:`studio.render.shading`): colours are linear-RGB radiance.  A directional light of colour ×
intensity I delivers irradiance π·I on a surface facing it, so a white Lambertian surface facing a
sun of intensity 1 has radiance exactly 1 (not 1/π); SH and cube-map environments are radiance.

The BRDF (metallic-roughness parameters as in glTF): α = roughness², F0 = lerp(0.04, base, metallic),

    f(l, v) = D(h) V(l, v) F(v·h)  +  (1 - metallic) base (1 - E(n·v)) (1 - E(n·l)) / (π (1 - E_avg))

with GGX D, the height-correlated Smith visibility V = G / (4 (n·l)(n·v)), Schlick's F, and the
diffuse layer coupled to the specular one as Kelemen and Szirmay-Kalos (2001) do: E(μ) = F0·A(μ) +
B(μ) is the specular lobe's directional albedo and E_avg its cosine-weighted mean.  It is
reciprocal, and it conserves energy: the albedo is E(n·v) + (1 - metallic) base (1 - E(n·v)) ≤ 1,
exactly 1 for a white dielectric (a white furnace).  Outgoing radiance from a directional light:
π f I (n·l)⁺ times its shadow visibility.

Environment light, the split-sum approximation (Karis 2013, "Real Shading in Unreal Engine 4"):
specular ≈ prefiltered(r, roughness) · (F0·A + B) with r the mirror direction, the cube map
prefiltered by quadrature at a few roughness levels (:mod:`studio.render.envmap`, n = v = r) and
blended linearly in roughness, and (A, B) the GGX lobe's directional albedo split by F0, integrated
numerically (importance-sampled, Hammersley points) into a table over (n·v, roughness).  Diffuse
environment light is the cube map's order-2 SH irradiance (Ramamoorthi and Hanrahan 2001) times
(1 - metallic) base; the scene's ambient and SH light add to it.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING

import torch

from .backend import Backend
from .envmap import ROUGHNESS_LEVELS, PrefilteredEnvironment, ggx_d, reflect, sh_irradiance
from .gbuffer import GBuffer

if TYPE_CHECKING:  # shading imports this module
    from .shading import Lights

#: Normal-incidence reflectance of dielectrics.
DIELECTRIC_F0 = 0.04
#: Lowest roughness the lobe uses (a perfect mirror has no finite D).
MIN_ROUGHNESS = 0.02
_DFG_SIZE = 32
_DFG_SAMPLES = 512


def smith_visibility(ndotl: torch.Tensor, ndotv: torch.Tensor, alpha: torch.Tensor | float) -> torch.Tensor:
    """Height-correlated Smith visibility V = G2 / (4 (n·l)(n·v)) for GGX with α = roughness²."""
    a2 = alpha * alpha
    gl = ndotv * (ndotl * ndotl * (1 - a2) + a2).sqrt()
    gv = ndotl * (ndotv * ndotv * (1 - a2) + a2).sqrt()
    return 0.5 / (gl + gv).clamp(min=1e-9)


def fresnel_schlick(f0: torch.Tensor, vdoth: torch.Tensor) -> torch.Tensor:
    """Schlick's Fresnel F0 + (1 - F0)(1 - v·h)⁵."""
    return f0 + (1 - f0) * (1 - vdoth.clamp(0.0, 1.0)) ** 5


def base_f0(base: torch.Tensor, metallic: torch.Tensor) -> torch.Tensor:
    """Normal-incidence reflectance [...,3]: 4% for dielectrics, the base colour for metals."""
    return DIELECTRIC_F0 * (1 - metallic) + base * metallic


def brdf(n: torch.Tensor, v: torch.Tensor, l: torch.Tensor, base: torch.Tensor, roughness: torch.Tensor,
         metallic: torch.Tensor) -> torch.Tensor:
    """The BRDF f(l, v) [...,3] in 1/sr (see the module docstring) for unit vectors n, v, l [...,3],
    base colour [...,3], roughness and metallic [...,1]; zero below the horizon."""
    h = torch.nn.functional.normalize(v + l, dim=-1)
    ndotl = (n * l).sum(-1, keepdim=True)
    ndotv = (n * v).sum(-1, keepdim=True)
    ndoth = (n * h).sum(-1, keepdim=True)
    vdoth = (v * h).sum(-1, keepdim=True)
    alpha = roughness.clamp(min=MIN_ROUGHNESS) ** 2
    f0 = base_f0(base, metallic)
    nl, nv = ndotl.clamp(min=1e-6), ndotv.clamp(min=1e-6)
    spec = ggx_d(ndoth, alpha) * smith_visibility(nl, nv, alpha) * fresnel_schlick(f0, vdoth)
    e_avg = specular_albedo_mean(roughness, f0)
    diffuse = ((1 - metallic) * base / math.pi * (1 - specular_albedo(nv, roughness, f0))
               * (1 - specular_albedo(nl, roughness, f0)) / (1 - e_avg).clamp(min=1e-4))
    return (diffuse + spec) * ((ndotl > 0) & (ndotv > 0))


def specular_albedo(ndot: torch.Tensor, roughness: torch.Tensor, f0: torch.Tensor) -> torch.Tensor:
    """E(μ) = F0·A(μ) + B(μ) [...,3]: the fraction of light the specular lobe reflects, for
    cosines [...,1], roughness [...,1] and F0 [...,3]."""
    ab = env_dfg(ndot[..., 0], roughness.expand_as(ndot)[..., 0])
    return f0 * ab[..., :1] + ab[..., 1:]


def specular_albedo_mean(roughness: torch.Tensor, f0: torch.Tensor) -> torch.Tensor:
    """E_avg = 2 ∫₀¹ E(μ) μ dμ [...,3] for roughness [...,1] and F0 [...,3] (linear in the table's rows)."""
    table = dfg_mean_table(roughness.dtype, str(roughness.device))  # [S,2]
    s = table.shape[0]
    x = (roughness.clamp(0.0, 1.0) * s - 0.5).clamp(0, s - 1)
    i0 = x.detach().floor().long().clamp(max=s - 2)
    t = x - i0
    ab = table[i0[..., 0]] * (1 - t) + table[i0[..., 0] + 1] * t
    return f0 * ab[..., :1] + ab[..., 1:]


def _hammersley(n: int, dtype: torch.dtype) -> torch.Tensor:
    """[n,2] low-discrepancy points in [0,1)²."""
    i = torch.arange(n, dtype=torch.int64)
    bits = torch.zeros(n, dtype=torch.float64)
    scale, x = 0.5, i.clone()
    for _ in range(32):
        bits += (x & 1).double() * scale
        x = x >> 1
        scale /= 2
    return torch.stack([(i.double() + 0.5) / n, bits], -1).to(dtype)


def integrate_dfg(ndotv: torch.Tensor, roughness: torch.Tensor, samples: int = _DFG_SAMPLES) -> torch.Tensor:
    """(A, B) [...,2] with ∫ f_spec (n·l) dω = F0·A + B for Schlick's F, by importance sampling
    GGX half vectors (Hammersley points).  ``ndotv``, ``roughness``: matching shapes, float64."""
    dt = ndotv.dtype
    u = _hammersley(samples, dt)
    alpha = (roughness.clamp(min=MIN_ROUGHNESS) ** 2).unsqueeze(-1)
    cos_h = ((1 - u[:, 0]) / (1 + (alpha * alpha - 1) * u[:, 0])).sqrt()  # [..., S]
    sin_h = (1 - cos_h * cos_h).clamp(min=0).sqrt()
    phi = 2 * math.pi * u[:, 1]
    nv = ndotv.unsqueeze(-1)
    v = torch.stack([(1 - nv * nv).clamp(min=0).sqrt().expand_as(cos_h), torch.zeros_like(cos_h), nv.expand_as(cos_h)], -1)
    h = torch.stack([sin_h * phi.cos(), sin_h * phi.sin(), cos_h], -1)
    vdoth = (v * h).sum(-1)
    l_z = 2 * vdoth * cos_h - nv  # n·l of l = reflect(-v, h)
    ok = (l_z > 0) & (vdoth > 0)
    vis = smith_visibility(l_z.clamp(min=1e-9), nv.expand_as(l_z), alpha)
    # Estimator of ∫ D V (n·l) dω with pdf(l) = D (n·h) / (4 v·h).
    g = torch.where(ok, vis * l_z * 4 * vdoth / cos_h.clamp(min=1e-9), torch.zeros_like(l_z))
    fc = (1 - vdoth.clamp(0, 1)) ** 5
    return torch.stack([(g * (1 - fc)).mean(-1), (g * fc).mean(-1)], -1)


@lru_cache(maxsize=4)
def dfg_table(dtype: torch.dtype = torch.float32, device: str = "cpu") -> torch.Tensor:
    """[S,S,2] table of (A, B): rows over roughness, columns over n·v, both at cell centres in [0, 1]."""
    c = (torch.arange(_DFG_SIZE, dtype=torch.float64) + 0.5) / _DFG_SIZE
    rough, nv = torch.meshgrid(c, c, indexing="ij")
    return integrate_dfg(nv, rough).to(dtype=dtype, device=device)


@lru_cache(maxsize=4)
def dfg_mean_table(dtype: torch.dtype = torch.float32, device: str = "cpu") -> torch.Tensor:
    """[S,2] cosine-weighted means 2 ∫ (A, B)(μ) μ dμ of :func:`dfg_table`'s rows (per roughness)."""
    t = dfg_table(torch.float64, "cpu")
    mu = (torch.arange(_DFG_SIZE, dtype=torch.float64) + 0.5) / _DFG_SIZE
    return (2 * (t * mu[None, :, None]).mean(1)).to(dtype=dtype, device=device)


def env_dfg(ndotv: torch.Tensor, roughness: torch.Tensor) -> torch.Tensor:
    """(A, B) [...,2] looked up bilinearly in :func:`dfg_table` (differentiable in both inputs)."""
    table = dfg_table(ndotv.dtype, str(ndotv.device)).permute(2, 0, 1).unsqueeze(0)  # [1,2,S,S]
    grid = torch.stack([ndotv * 2 - 1, roughness.expand_as(ndotv) * 2 - 1], -1)
    flat = grid.reshape(1, 1, -1, 2)
    out = torch.nn.functional.grid_sample(table, flat, mode="bilinear", padding_mode="border", align_corners=False)
    return out[0, :, 0].T.reshape(*ndotv.shape, 2)


_ENV = PrefilteredEnvironment()


def prefiltered_radiance(backend: Backend, envmap: torch.Tensor, direction: torch.Tensor, roughness: torch.Tensor,
                         shown: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(specular radiance [B,H,W,3] of ``envmap`` [6,R,R,3] around ``direction`` [B,H,W,3] for the
    per-pixel roughness [B,H,W,1], blended linearly between the two nearest of
    :data:`ROUGHNESS_LEVELS`, zero where ``shown`` [B,H,W] is False; the cube map's [9,3] SH
    coefficients).  Each level is read only at the pixels that use it."""
    levels, sh = _ENV.get(envmap)
    t = (roughness.clamp(0.0, 1.0) * (len(ROUGHNESS_LEVELS) - 1)).reshape(-1)
    d = direction.reshape(-1, 3)
    keep = shown.reshape(-1)
    out = torch.zeros_like(d)
    for k, cube in enumerate(levels):
        w = (1 - (t - k).abs()).clamp(min=0.0)
        sel = ((w > 0) & keep).nonzero().squeeze(-1)
        if sel.numel() == 0:
            continue
        looked = backend.texture(cube.unsqueeze(0).contiguous(), d.index_select(0, sel).view(1, -1, 1, 3).contiguous(),
                                 filter_mode="linear", boundary_mode="cube").view(-1, 3)
        out = out.index_add(0, sel, w.index_select(0, sel).unsqueeze(-1) * looked)
    return out.view(direction.shape), sh


def shade_pbr(gb: GBuffer, base: torch.Tensor, roughness: torch.Tensor, metallic: torch.Tensor, lights: "Lights",
              backend: Backend | None, diffuse_extra: torch.Tensor) -> torch.Tensor:
    """PBR radiance [B,H,W,3] of a G-buffer.

    Args:
        gb: the G-buffer (normals, view directions, ``shadow`` per light, ``occlusion``).
        base: [B,H,W,3] base colour (linear RGB).
        roughness, metallic: [B,H,W,1] in [0, 1].
        lights: :class:`studio.render.shading.Lights`; its ``envmap`` lights diffuse and specular.
        backend: needed for cube-map lookups when there is an environment map.
        diffuse_extra: [B,H,W,3] or broadcastable irradiance / π from ambient and SH light, which
            lights the diffuse part only.
    """
    n, v = gb.normal, gb.view_dir
    dirs = torch.nn.functional.normalize(lights.directions, dim=-1)
    f0 = base_f0(base, metallic)
    ndotv = (n * v).sum(-1, keepdim=True).clamp(min=1e-4)
    e_view = specular_albedo(ndotv, roughness, f0)
    diffuse_color = (1 - metallic) * base * (1 - e_view)  # what the specular layer lets through
    color = diffuse_color * diffuse_extra
    for i in range(dirs.shape[0]):
        lit = (n * dirs[i]).sum(-1, keepdim=True).clamp(min=0.0)
        if gb.shadow is not None:
            lit = lit * gb.shadow[..., i:i + 1]
        color = color + math.pi * brdf(n, v, dirs[i].expand_as(n), base, roughness, metallic) * lit * lights.colors[i]
    if lights.envmap is not None:
        if backend is None:
            raise ValueError("an environment map needs the render backend for cube-map lookups.")
        shown = n.abs().sum(-1) > 0
        spec_env, sh = prefiltered_radiance(backend, lights.envmap, reflect(v, n), roughness, shown)
        open_sky = 1.0 if gb.occlusion is None else gb.occlusion
        color = color + (spec_env * e_view + diffuse_color * sh_irradiance(n, sh)) * open_sky
    return color
