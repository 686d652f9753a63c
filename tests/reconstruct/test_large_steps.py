"""The large-steps parametrisation against dense linear algebra, and the uniform Adam step."""

import numpy as np
import torch
import trimesh

from studio.reconstruct.large_steps import SmoothSolver, UniformAdam, combinatorial_laplacian


def _mesh():
    m = trimesh.creation.icosphere(1)
    return np.asarray(m.vertices), np.asarray(m.faces)


def test_laplacian_is_degree_minus_adjacency():
    v, f = _mesh()
    lap = combinatorial_laplacian(f, len(v)).toarray()
    edges = trimesh.Trimesh(v, f, process=False).edges_unique
    dense = np.zeros((len(v), len(v)))
    dense[edges[:, 0], edges[:, 1]] = dense[edges[:, 1], edges[:, 0]] = -1
    dense[np.arange(len(v)), np.arange(len(v))] = -dense.sum(1)
    np.testing.assert_array_equal(lap, dense)


def test_solve_matches_dense_reference_and_latent_round_trips():
    v, f = _mesh()
    lam = 15.0
    solver = SmoothSolver(f, len(v), lam)
    u = torch.randn(len(v), 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    dense = np.eye(len(v)) + lam * combinatorial_laplacian(f, len(v)).toarray()
    np.testing.assert_allclose(solver(u).numpy(), np.linalg.solve(dense, u.numpy()), atol=1e-10)
    x = torch.from_numpy(v)
    np.testing.assert_allclose(solver(solver.to_latent(x)).numpy(), v, atol=1e-10)


def test_solve_gradient_matches_finite_differences():
    v, f = _mesh()
    solver = SmoothSolver(f, len(v), 3.0)
    u = torch.randn(len(v), 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: solver(t), (u,), eps=1e-6, atol=1e-6)


def test_uniform_adam_steps_every_entry_with_one_scale():
    g = torch.tensor([[1.0, -4.0], [0.5, 2.0]])
    p = torch.zeros(2, 2, requires_grad=True)
    q = torch.zeros(2, 2, requires_grad=True)
    opt = UniformAdam([{"params": [p], "lr": 0.1}, {"params": [q], "lr": 0.1, "uniform": False}])
    p.grad, q.grad = g.clone(), g.clone()
    opt.step()
    # After one step m_hat = g and v_hat = g^2: uniform divides by max |g|, per-entry Adam by |g|.
    torch.testing.assert_close(p.detach(), -0.1 * g / 4.0)
    torch.testing.assert_close(q.detach(), -0.1 * torch.sign(g), atol=1e-6, rtol=1e-6)
