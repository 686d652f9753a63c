"""A small MLP signed distance function, usable as a primitive of an :class:`SDFModel`.

``NeuralSDF`` maps points [N,3] to distances [N]: the distance to a sphere plus an MLP residual
with softplus activations (smooth, so normals and their derivatives exist) whose last layer starts
at zero, so the untrained network is exactly a sphere (a sturdier start than the statistical
geometric initialisation of Atzmon & Lipman 2020 at small widths).  Once trained it is only
approximately a distance: sphere tracing stays safe while |∇f| <= 1, which the eikonal
regulariser ``eikonal_loss`` (mean of (|∇f| - 1)^2, Gropp et al. 2020) encourages; add it to the
fitting loss.

``NeuralShape`` wraps a network as a primitive (with a colour, a bounding sphere for the tracer,
and an offset ``centre``), so it can be combined with analytic shapes by smooth CSG.
"""

from __future__ import annotations

import math

import torch

from .backend import RenderInputError
from .sdf_primitives import Primitive, SDFModel, _as_param, _consts, _vec

Tensor = torch.Tensor


class NeuralSDF(torch.nn.Module):
    """f(x) = |x| - radius + MLP(x): [N,3] -> [N] in scene units.

    Args:
        hidden: width of the hidden layers.
        layers: number of hidden layers.
        radius: initial radius of the sphere (a trainable parameter).
        beta: softplus sharpness (larger = closer to ReLU, sharper features).
    """

    def __init__(self, hidden: int = 64, layers: int = 3, radius: float = 0.5, beta: float = 100.0):
        super().__init__()
        dims = [3] + [hidden] * layers
        self.hidden = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.out = torch.nn.Linear(hidden, 1)
        self.act = torch.nn.Softplus(beta=beta)
        self.radius = torch.nn.Parameter(torch.tensor(float(radius)))
        with torch.no_grad():
            for lin in self.hidden:
                torch.nn.init.normal_(lin.weight, 0.0, math.sqrt(2.0) / math.sqrt(lin.out_features))
                torch.nn.init.zeros_(lin.bias)
            torch.nn.init.zeros_(self.out.weight)
            torch.nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor) -> Tensor:
        h = x
        for lin in self.hidden:
            h = self.act(lin(h))
        sphere = ((x * x).sum(-1) + 1e-30).sqrt() - self.radius
        return sphere + self.out(h).squeeze(-1)


def eikonal_loss(sdf: "NeuralSDF | SDFModel", points: Tensor) -> Tensor:
    """Mean of (|∇f(x)| - 1)^2 over points [N,3] (differentiable w.r.t. the parameters)."""
    x = points.detach().requires_grad_(True)
    with torch.enable_grad():
        f = sdf.distance(x) if isinstance(sdf, SDFModel) else sdf(x)
        (g,) = torch.autograd.grad(f.sum(), x, create_graph=True)
    return ((g.norm(dim=-1) - 1) ** 2).mean()


class NeuralShape(Primitive):
    """A :class:`NeuralSDF` as a primitive: f(x) = net(x - centre).

    Args:
        net: the network (its parameters are listed by ``SDFModel.parameters()``).
        bound_radius: radius around ``centre`` that contains the zero level set (the tracer only
            marches inside it).
        centre: [3] translation of the shape.
    """

    kind = "neural"
    rotatable = False

    def __init__(self, net: NeuralSDF, bound_radius: float, centre: object = (0.0, 0.0, 0.0), **kw):
        super().__init__(**kw)
        if not isinstance(net, torch.nn.Module):
            raise RenderInputError(f"{self.label} net must be a torch.nn.Module, got {type(net).__name__}.")
        if not bound_radius > 0:
            raise RenderInputError(f"{self.label} bound_radius must be positive, got {bound_radius!r}.")
        self.net = net
        self.bound_radius = float(bound_radius)
        self.centre = _as_param(self.label, "centre", centre, (3,))

    def _shape_tensors(self):
        out = {"centre": self.centre}
        out.update({f"net.{k}": v for k, v in self.net.named_parameters()})
        return out

    def _freeze(self, dtype, device):
        return {"centre": _consts(self.centre, dtype, device),
                "colour": self.colour.detach().to(device=device, dtype=dtype)}

    def _sdf(self, q, prm):
        x = torch.stack(q, -1)
        w = next(self.net.parameters())
        return self.net(x.to(w.dtype)).to(x.dtype)

    def _local(self, p, prm):
        c = _vec(prm["centre"])
        return (p[0] - c[0], p[1] - c[1], p[2] - c[2])

    def _bound(self):
        return self.centre.detach().tolist(), self.bound_radius
