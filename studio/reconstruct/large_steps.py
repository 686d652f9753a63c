"""Smoothness-preconditioned shape updates (Nicolet, Jacobson & Jakob 2021, "Large Steps in Inverse
Rendering of Geometry").

Instead of stepping vertex positions x directly, the optimiser steps a latent u with
``x = (I + λL)^-1 u`` where L is the mesh's combinatorial Laplacian (degree minus adjacency).  A
gradient on x reaches u filtered by the same operator, so one step moves whole smooth patches
instead of single vertices: fewer steps, no self-tangling, and no smoothness loss that would fight
the image loss.  ``I + λL`` is symmetric positive definite, so one sparse factorisation (scipy's
SuperLU) serves both the forward solve and the backward solve of every step until the topology
changes (remeshing builds a new one).

:class:`UniformAdam` is the paper's Adam variant: the second-moment estimate is replaced by its
maximum over all entries, so every vertex of the latent moves with one step size and the update
stays smooth (per-entry scaling would reintroduce exactly the high frequencies the
parametrisation removes).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch


def combinatorial_laplacian(faces: np.ndarray, num_vertices: int) -> sp.csc_matrix:
    """L = D - A [V,V] (float64) of the edge graph of ``faces`` [T,3] (each edge counted once)."""
    f = np.asarray(faces, dtype=np.int64)
    i = np.concatenate([f[:, 0], f[:, 1], f[:, 2]])
    j = np.concatenate([f[:, 1], f[:, 2], f[:, 0]])
    a = sp.coo_matrix((np.ones(len(i)), (i, j)), shape=(num_vertices, num_vertices)).tocsr()
    a = ((a + a.T) > 0).astype(np.float64)
    return (sp.diags(np.asarray(a.sum(1)).ravel()) - a).tocsc()


class SmoothSolver:
    """x = (I + λL)^-1 u for one mesh topology, factorised once.

    Args:
        faces: [T,3] triangle indices.
        num_vertices: V.
        lam: λ ≥ 0, the smoothing strength (0: x = u; the paper uses about 10-100 depending on
            the mesh resolution).
    """

    def __init__(self, faces: np.ndarray, num_vertices: int, lam: float):
        self.lam = float(lam)
        self.matrix = (sp.identity(num_vertices, format="csc") + self.lam * combinatorial_laplacian(faces, num_vertices)).tocsc()
        self._lu = spla.splu(self.matrix)

    def solve(self, b: np.ndarray) -> np.ndarray:
        """(I + λL)^-1 b for b [V,C] float64."""
        return self._lu.solve(np.ascontiguousarray(b, dtype=np.float64))

    def to_latent(self, x: torch.Tensor) -> torch.Tensor:
        """u = (I + λL) x, [V,3] in x's dtype and device (the latent of given positions)."""
        u = self.matrix @ x.detach().cpu().double().numpy()
        return torch.from_numpy(u).to(x)

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        """Differentiable x = (I + λL)^-1 u, [V,C] -> [V,C]."""
        return _Solve.apply(u, self)


class _Solve(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u: torch.Tensor, solver: SmoothSolver) -> torch.Tensor:
        ctx.solver = solver
        return torch.from_numpy(solver.solve(u.detach().cpu().double().numpy())).to(u)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        # The matrix is symmetric, so the adjoint solve uses the same factorisation.
        return torch.from_numpy(ctx.solver.solve(grad.detach().cpu().double().numpy())).to(grad), None


class UniformAdam(torch.optim.Optimizer):
    """Adam whose second moment is the maximum over all entries of each parameter (Nicolet et al.).

    A parameter group with ``uniform=False`` gets plain per-entry Adam instead, so one optimiser
    serves a scene whose shape latent wants the uniform step and whose colours and lights do not.

    Args:
        params: parameters or parameter groups (each group may carry its own ``lr`` and ``uniform``).
        lr: step size in parameter units.
        betas: decay rates of the first and second moment estimates.
        eps: added to the denominator.
    """

    def __init__(self, params, lr: float = 1e-2, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, uniform=True))

    @torch.no_grad()
    def step(self, closure=None):  # noqa: D102 - torch.optim.Optimizer's contract
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["m"] = torch.zeros_like(p)
                    state["v"] = torch.zeros_like(p)
                state["step"] += 1
                t = state["step"]
                state["m"].mul_(b1).add_(p.grad, alpha=1 - b1)
                state["v"].mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                m_hat = state["m"] / (1 - b1 ** t)
                v_hat = state["v"] / (1 - b2 ** t)
                if group["uniform"]:
                    p.sub_(m_hat, alpha=group["lr"] / (float(v_hat.max()) ** 0.5 + group["eps"]))
                else:
                    p.sub_(group["lr"] * m_hat / (v_hat.sqrt() + group["eps"]))
        return loss
