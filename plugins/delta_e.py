"""Perceptual colour difference: mean CIE94 Delta E between render and target in CIELAB.

What it measures: the colour difference a person sees.  Linear RGB is far from perceptually
uniform: the same step in RGB is a large visible change in dark colours and a small one in
bright, saturated ones.  CIELAB is built so that Euclidean distance roughly matches perception
(Delta E of about 1 is a just-noticeable difference); CIE94 further discounts differences in
chroma and hue of saturated colours, where CIELAB's plain distance (Delta E 76) overstates them.

When to use it: fitting albedos, textures or light colours where the look matters more than the
numbers, e.g. dark materials that ``l2`` barely notices.  It is in Delta E units (typically
1-50), hence the small default weight next to ``l1``/``l2``.  ``lightness`` is CIE94's k_L: 2 (the
textile industry's value) halves the weight of lightness errors, handy when the target's
brightness is less trustworthy than its colours.

How it is written: helpers are plain functions in the same file; everything stays differentiable
(square roots get a tiny epsilon so that identical colours do not give an infinite gradient).
"""

import torch

from studio.plugins import Param, loss

# Linear sRGB (D65) -> CIE XYZ, and the D65 white point (IEC 61966-2-1).
_RGB_TO_XYZ = ((0.4124564, 0.3575761, 0.1804375),
               (0.2126729, 0.7151522, 0.0721750),
               (0.0193339, 0.1191920, 0.9503041))
_WHITE = (0.95047, 1.0, 1.08883)
_EPS = 1e-8


def linear_rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """[...,3] linear sRGB in [0,1] -> [...,3] CIELAB (L* in 0..100, a*, b* about -128..127), D65."""
    m = torch.tensor(_RGB_TO_XYZ, dtype=rgb.dtype, device=rgb.device)
    white = torch.tensor(_WHITE, dtype=rgb.dtype, device=rgb.device)
    t = rgb.clamp(min=0) @ m.T / white
    e, kappa = 216 / 24389, 24389 / 27  # CIE's exact constants for the linear toe
    # The cube root is taken of clamped values so that the branch not used has no NaN gradient.
    f = torch.where(t > e, t.clamp(min=e) ** (1 / 3), (kappa * t + 16) / 116)
    fx, fy, fz = f.unbind(-1)
    return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], -1)


def delta_e94(lab_ref: torch.Tensor, lab: torch.Tensor, k_l: float = 1.0) -> torch.Tensor:
    """CIE94 colour difference [...] of lab [...,3] from the reference lab_ref [...,3] (graphic-arts constants)."""
    dl = lab_ref[..., 0] - lab[..., 0]
    c_ref = (lab_ref[..., 1:].pow(2).sum(-1) + _EPS).sqrt()
    c = (lab[..., 1:].pow(2).sum(-1) + _EPS).sqrt()
    dc = c_ref - c
    dh2 = ((lab_ref[..., 1:] - lab[..., 1:]).pow(2).sum(-1) - dc * dc).clamp(min=0)  # hue part of the distance
    s_c, s_h = 1 + 0.045 * c_ref, 1 + 0.015 * c_ref
    return ((dl / k_l).pow(2) + (dc / s_c).pow(2) + dh2 / s_h.pow(2) + _EPS).sqrt()


@loss("delta_e", weight=0.01, description="Mean CIE94 Delta E (perceptual colour difference in CIELAB; 1 = just noticeable)",
      params={"lightness": Param(1.0, min=0.5, max=4.0, description="k_L: larger values forgive lightness errors")})
def delta_e(render: torch.Tensor, target: torch.Tensor, ctx) -> torch.Tensor:
    """render, target: [B,H,W,4] linear RGB + alpha; returns the mean Delta E over pixels (Delta E units)."""
    return delta_e94(linear_rgb_to_lab(target[..., :3]), linear_rgb_to_lab(render[..., :3]), ctx.params["lightness"]).mean()
