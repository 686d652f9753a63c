"""Differentiable perspective-correct barycentrics and depth of the winning fragments.

Per triangle, five planes over NDC p = (px, py, 1), built from ``pos`` with ordinary autograd
(cheap: one row per triangle): with homogeneous 2D vertices h_i = (x_i, y_i, w_i) and
n_i = h_{i+1} x h_{i+2}, e_i = n_i . p is proportional to barycentric i, so

    u = (n_0 . p) / (S . p),  v = (n_1 . p) / (S . p),  z/w = (Z . p) / (Wp . p)

with S = n_0 + n_1 + n_2, Z = sum_i z_i n_i and Wp = sum_i w_i n_i.  Per pixel this is a gather of
15 numbers and a few multiply-adds; :class:`_PlaneRatios` does that pass and its backward by hand
(one gather forward, 1-D ``index_add`` backward, no per-operation autograd records).
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

def triangle_planes(pos_flat: torch.Tensor, verts: torch.Tensor) -> torch.Tensor:
    """[D,5,3] planes (n_0, n_1, Z, S, Wp) of each triangle (see the module docstring).

    Args:
        pos_flat: [P,4] clip-space positions (differentiable).
        verts: [D,3] int64 rows of ``pos_flat``.
    """
    # Coordinates as [3 (vertex), D] rows: every operation below is a plain elementwise one.
    x, y, z, w = pos_flat.t().gather(1, verts.t().reshape(1, -1).expand(4, -1)).view(4, 3, -1).unbind(0)
    xj, yj, wj = x.roll(-1, 0), y.roll(-1, 0), w.roll(-1, 0)
    xk, yk, wk = x.roll(-2, 0), y.roll(-2, 0), w.roll(-2, 0)
    n = torch.stack([yj * wk - wj * yk, wj * xk - xj * wk, xj * yk - yj * xk])  # [3 (comp), 3 (edge), D]
    planes = torch.stack([n[:, 0], n[:, 1], (z * n).sum(1), n.sum(1), (w * n).sum(1)])  # [5,3,D]
    return planes.permute(2, 0, 1).contiguous()


class _PlaneRatios(torch.autograd.Function):
    """(u, v, z/w) [N,3] at NDC points (px, py) from the planes of triangle ``tri`` [N]."""

    @staticmethod
    def forward(ctx, planes: torch.Tensor, tri: torch.Tensor, px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
        g = planes.index_select(0, tri)  # [N,5,3]
        e = torch.addcmul(g[..., 2], g[..., 0], px.unsqueeze(1)).addcmul_(g[..., 1], py.unsqueeze(1))  # [N,5]
        out = torch.cat([e[:, 0:2] / e[:, 3:4], e[:, 2:3] / e[:, 4:5]], 1)
        ctx.save_for_backward(tri, px, py, out, e[:, 3:5].contiguous())
        ctx.num_planes = planes.shape[0]
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        tri, px, py, out, den = ctx.saved_tensors
        gu, gv, gz = (grad[:, k] / den[:, 0 if k < 2 else 1] for k in range(3))
        ge = [gu, gv, gz, -(gu * out[:, 0] + gv * out[:, 1]), -gz * out[:, 2]]  # d loss / d plane value
        # Depth gradients are often all zero (nothing downstream differentiates z/w): skip them.
        planes = (0, 1, 3) if not bool(grad[:, 2].any()) else range(5)
        # One 1-D index_add per plane coefficient: several times faster on CPUs than a 2-D one.
        gplanes = grad.new_zeros(5, 3, ctx.num_planes)
        for k in planes:
            gplanes[k, 0].index_add_(0, tri, ge[k] * px)
            gplanes[k, 1].index_add_(0, tri, ge[k] * py)
            gplanes[k, 2].index_add_(0, tri, ge[k])
        return gplanes.permute(2, 0, 1), None, None, None


def plane_ratios(planes: torch.Tensor, tri: torch.Tensor, px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
    """(u, v, z/w) [N,3] of triangle ``tri`` [N] (int64 rows of ``planes`` [D,5,3]) at the NDC
    points ``px``, ``py`` [N]; differentiable in ``planes``."""
    return _PlaneRatios.apply(planes, tri, px, py)


def barycentric_derivatives(planes: torch.Tensor, tri: torch.Tensor, px: torch.Tensor, py: torch.Tensor,
                            uv: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """[N,4] (du/dX, du/dY, dv/dX, dv/dY) in pixels, by the quotient rule on the same planes:
    du/dpx = (n_0x - u * S_x) / (S . p).  Differentiable in ``planes`` and ``uv`` [N,2]."""
    g = planes.index_select(0, tri)
    s = torch.addcmul(g[:, 3, 2], g[:, 3, 0], px).addcmul(g[:, 3, 1], py)
    u, v = uv[:, 0], uv[:, 1]
    kx, ky = 2.0 / W, 2.0 / H
    return torch.stack([
        (g[:, 0, 0] - u * g[:, 3, 0]) / s * kx, (g[:, 0, 1] - u * g[:, 3, 1]) / s * ky,
        (g[:, 1, 0] - v * g[:, 3, 0]) / s * kx, (g[:, 1, 1] - v * g[:, 3, 1]) / s * ky,
    ], 1)
