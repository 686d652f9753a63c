"""The GGX lobe against numerically integrated references (normalisation, reciprocity, white
furnace), the split-sum table and prefiltering, and the project's units."""

from __future__ import annotations

import math

import pytest
import torch

from studio.render import get_backend
from studio.render.envmap import cube_sh, ggx_d, prefilter_level, sh_irradiance
from studio.render.gbuffer import GBuffer
from studio.render.pbr import brdf, dfg_table, env_dfg, integrate_dfg
from studio.render.shading import Lights, shade

DT = torch.float64


def _hemisphere(n: int = 160):
    """Midpoint quadrature of the upper hemisphere (z up): directions [N,3] and solid angles [N]."""
    th = (torch.arange(n, dtype=DT) + 0.5) / n * math.pi / 2
    ph = (torch.arange(2 * n, dtype=DT) + 0.5) / (2 * n) * 2 * math.pi
    t, p = torch.meshgrid(th, ph, indexing="ij")
    d = torch.stack([t.sin() * p.cos(), t.sin() * p.sin(), t.cos()], -1).reshape(-1, 3)
    return d, (t.sin() * (math.pi / 2 / n) * (math.pi / n)).reshape(-1)


def _albedo(ndotv: float, roughness: float, base: float, metallic: float) -> torch.Tensor:
    """Directional albedo ∫ f(l, v) (n·l) dω_l [3] by quadrature."""
    l, dw = _hemisphere()
    v = torch.tensor([math.sqrt(1 - ndotv * ndotv), 0.0, ndotv], dtype=DT).expand_as(l)
    n = torch.tensor([0.0, 0.0, 1.0], dtype=DT).expand_as(l)
    one = torch.ones(l.shape[0], 1, dtype=DT)
    f = brdf(n, v, l, one.expand(-1, 3) * base, one * roughness, one * metallic)
    return (f * (l[:, 2] * dw)[:, None]).sum(0)


@pytest.mark.parametrize("alpha", [0.05, 0.3, 1.0])
def test_ggx_distribution_is_normalised(alpha):
    h, dw = _hemisphere(600)
    assert float((ggx_d(h[:, 2], alpha) * h[:, 2] * dw).sum()) == pytest.approx(1.0, abs=2e-3)


def test_brdf_is_reciprocal():
    g = torch.Generator().manual_seed(0)
    n = torch.tensor([0.0, 0.0, 1.0], dtype=DT).expand(64, 3)
    a, b = (torch.nn.functional.normalize(torch.randn(64, 3, generator=g, dtype=DT).abs() + 0.05, dim=-1) for _ in range(2))
    base = torch.rand(64, 3, generator=g, dtype=DT)
    rough, metal = torch.rand(64, 1, generator=g, dtype=DT), torch.rand(64, 1, generator=g, dtype=DT)
    assert torch.allclose(brdf(n, a, b, base, rough, metal), brdf(n, b, a, base, rough, metal), rtol=1e-10)


@pytest.mark.parametrize("ndotv", [0.2, 0.6, 1.0])
def test_white_furnace_of_a_rough_metal_matches_the_closed_form(ndotv):
    """α = 1: D = 1/π and V = 1/(2(n·l + n·v)), so the albedo of a white metal is
    ∫₀¹ μ/(μ + μv) dμ = 1 - μv ln((1 + μv)/μv)."""
    exact = 1 - ndotv * math.log((1 + ndotv) / ndotv)
    assert float(_albedo(ndotv, 1.0, 1.0, 1.0)[0]) == pytest.approx(exact, abs=2e-3)


@pytest.mark.parametrize("roughness", [0.3, 0.6, 1.0])
@pytest.mark.parametrize("ndotv", [0.15, 0.5, 0.95])
def test_white_furnace_no_energy_is_created_and_a_white_dielectric_keeps_all(ndotv, roughness):
    """Albedo E(v) + (1 - metallic) base (1 - E(v)): at most 1, exactly 1 for a white dielectric."""
    metal = _albedo(ndotv, roughness, 1.0, 1.0)
    dielectric = _albedo(ndotv, roughness, 1.0, 0.0)
    assert float(metal[0]) <= 1.0 + 2e-3
    assert float(dielectric[0]) == pytest.approx(1.0, abs=0.01)
    if roughness <= 0.3 and ndotv > 0.4:
        assert float(metal[0]) > 0.95


@pytest.mark.parametrize("ndotv, roughness", [(0.3, 0.8), (0.8, 0.5), (0.95, 0.2)])
def test_split_sum_table_matches_quadrature(ndotv, roughness):
    """A + B (F0 = 1) and B (F0 = 0) of the importance-sampled table against the hemisphere quadrature."""
    ab = env_dfg(torch.tensor([ndotv]), torch.tensor([roughness]))[0]
    white = _albedo(ndotv, roughness, 1.0, 1.0)[0]
    assert float(ab.sum()) == pytest.approx(float(white), abs=0.01)
    exact = integrate_dfg(torch.tensor(ndotv, dtype=DT), torch.tensor(roughness, dtype=DT), 4096)
    assert torch.allclose(ab.double(), exact, atol=0.01)
    assert dfg_table().shape == (32, 32, 2)


def test_prefiltering_and_sh_keep_a_constant_environment():
    cube = torch.full((6, 16, 16, 3), 0.7)
    for r in (0.25, 0.5, 1.0):
        assert torch.allclose(prefilter_level(cube, r), torch.tensor(0.7), atol=1e-5)
    n = torch.nn.functional.normalize(torch.randn(10, 3), dim=-1)
    assert torch.allclose(sh_irradiance(n, cube_sh(cube)), torch.tensor(0.7), atol=2e-3)  # irradiance / π


def _gbuffer(normal: torch.Tensor, view: torch.Tensor) -> GBuffer:
    b = normal.shape[0]
    ones = torch.ones(b, 1, 1, 1)
    return GBuffer(mask=ones, depth=ones, position=torch.zeros(b, 1, 1, 3), normal=normal.view(b, 1, 1, 3),
                   view_dir=view.view(b, 1, 1, 3), tri_id=torch.zeros(b, 1, 1, dtype=torch.long),
                   object_id=torch.zeros(b, 1, 1, dtype=torch.long))


def test_units_white_lambert_under_a_unit_sun_is_one_and_pbr_agrees():
    up = torch.tensor([[0.0, 0.0, 1.0]])
    gb = _gbuffer(up, up)
    sun = Lights(torch.zeros(3), up, torch.ones(1, 3))
    white = torch.ones(1, 1, 1, 3)
    assert torch.allclose(shade(gb, white, sun, "lambert"), torch.tensor(1.0))
    rough = torch.ones(1, 1, 1, 1)
    pbr = shade(gb, white, sun, "pbr", roughness=rough, metallic=torch.zeros_like(rough))
    # A rough white dielectric: its diffuse layer plus its GGX coat, π f (n·l).
    ref = math.pi * brdf(up, up, up, torch.ones(1, 3), torch.ones(1, 1), torch.zeros(1, 1))
    assert torch.allclose(pbr.view(1, 3), ref.float(), atol=1e-5) and 0.9 < float(pbr[0, 0, 0, 0]) < 1.2


def test_white_furnace_through_the_environment_path():
    """Under a uniform white sky a white metal reflects A + B of it (the split sum) and a white
    dielectric all of it."""
    be = get_backend("torch", "cpu")
    n = torch.nn.functional.normalize(torch.tensor([[0.0, 0.0, 1.0], [0.3, 0.2, 0.9]]), dim=-1)
    v = torch.nn.functional.normalize(torch.tensor([[0.0, 0.5, 1.0], [0.6, -0.2, 0.5]]), dim=-1)
    sky = Lights(torch.zeros(3), torch.zeros(0, 3), torch.zeros(0, 3), envmap=torch.ones(6, 16, 16, 3))
    for r in (0.1, 0.5, 0.9):
        rough = torch.full((2, 1, 1, 1), r)
        out = shade(_gbuffer(n, v), torch.ones(2, 1, 1, 3), sky, "pbr", backend=be, roughness=rough,
                    metallic=torch.ones_like(rough))
        ab = env_dfg((n * v).sum(-1), torch.full((2,), r))
        assert torch.allclose(out.view(2, 3), ab.sum(-1, keepdim=True).expand(2, 3), atol=2e-3)
        assert float(out.max()) <= 1.0 + 1e-3
        plastic = shade(_gbuffer(n, v), torch.ones(2, 1, 1, 3), sky, "pbr", backend=be, roughness=rough,
                        metallic=torch.zeros_like(rough))
        assert torch.allclose(plastic, torch.tensor(1.0), atol=5e-3)  # a white dielectric: all of it


def test_pbr_gradients_reach_roughness_and_metallic():
    dt = torch.float64
    n = torch.tensor([0.0, 0.0, 1.0], dtype=dt).expand(4, 3)
    v = torch.nn.functional.normalize(torch.tensor([[0.2, 0.1, 1.0], [0.5, 0.0, 0.8], [0.0, 0.7, 0.7], [0.9, 0.1, 0.4]],
                                                   dtype=dt), dim=-1)
    l = torch.nn.functional.normalize(torch.tensor([0.3, -0.2, 1.0], dtype=dt), dim=0).expand(4, 3)
    base = torch.tensor([0.8, 0.5, 0.2], dtype=dt).expand(4, 3)
    args = (torch.full((4, 1), 0.4, dtype=dt, requires_grad=True), torch.full((4, 1), 0.3, dtype=dt, requires_grad=True))
    assert torch.autograd.gradcheck(lambda r, m: brdf(n, v, l, base, r, m), args)
