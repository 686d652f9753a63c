"""Images that show gradients, for teaching: where the loss pulls, and how one parameter moves pixels.

- :func:`loss_pixel_gradient`: dLoss/dI, the gradient of the loss with respect to each rendered
  pixel: the signal that backpropagation carries from the image into the scene.
- :func:`derivative_image`: dI/dθ for one scalar parameter component, by forward-mode automatic
  differentiation: how every pixel changes when θ grows.  Scenes whose renderer cannot run in
  forward mode (``scene.forward_ad`` is False: the SDF tracer differentiates its own normals with
  autograd.grad and detaches parts of its implicit-differentiation formula) get the same
  derivative from the double-vjp identity J·v = d/du (Jᵀu · v), with reverse mode only; a
  renderer step with neither (soft rasterization's custom backward) gets a central difference.
- :func:`vertex_gradient_field`: the descent direction of every optimised vertex, projected to the
  screen, as arrows.

All take a scene (``render(views, values) -> RenderOutput``) and work on one view.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Callable, Mapping

import torch
import torch.autograd.forward_ad as fwAD

from ..render.modes import pixel_loss_gradients

LossFn = Callable[[Any, torch.Tensor], torch.Tensor]  # (RenderOutput, target [1,H,W,4]) -> scalar


def loss_pixel_gradient(scene: Any, loss_fn: LossFn, target: torch.Tensor, view: int) -> torch.Tensor:
    """dLoss/d(rendered linear RGB) [H,W,3] for one view at the current parameters (signed)."""
    with torch.no_grad():
        out = scene.render([view])
    g_rgb, _ = pixel_loss_gradients(lambda rgb, alpha: loss_fn(dataclasses.replace(out, rgb=rgb, alpha=alpha), target),
                                    out.rgb, out.alpha)
    return torch.zeros_like(out.rgb[0]) if g_rgb is None else g_rgb[0].detach()


def derivative_image(scene: Any, name: str, index: int = 0, view: int = 0,
                     values: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
    """dI/dθ [H,W,3]: the derivative of the rendered image with respect to component ``index``
    of parameter ``name`` (in the parameter's units: per degree, per scene unit, ...).

    Raises:
        studio.scene.params.ParameterError: unknown parameter; IndexError: component out of range.
    """
    p = scene.params[name]
    if not 0 <= index < p.value.numel():
        raise IndexError(f"{name} has {p.value.numel()} components; component {index} does not exist.")
    base = dict(scene.params.values() if values is None else values)
    theta = base[name].detach()
    tangent = torch.zeros_like(theta)
    tangent.view(-1)[index] = 1.0
    try:
        if not getattr(scene, "forward_ad", True):
            return _double_vjp(scene, dict(base), name, theta, tangent, view)
        with warnings.catch_warnings(), fwAD.dual_level():
            # torch's forward-mode decompositions still use torch.jit.script internally.
            warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=DeprecationWarning)
            duals = dict(base)
            duals[name] = fwAD.make_dual(theta, tangent)
            out = scene.render([view], values=duals)
            jvp = fwAD.unpack_dual(out.rgb).tangent
        return torch.zeros_like(out.rgb[0]).detach() if jvp is None else jvp[0].detach()
    except (NotImplementedError, RuntimeError):
        # A custom autograd step with neither a forward-mode rule nor a differentiable backward
        # (soft rasterization's): a central difference of two renders is the honest fallback.
        h = p.slider.step if p.slider is not None else 1e-3 * max(1.0, float(theta.abs().max()))
        plus, minus = dict(base), dict(base)
        plus[name], minus[name] = theta + h * tangent, theta - h * tangent
        with torch.no_grad():
            return (scene.render([view], values=plus).rgb[0] - scene.render([view], values=minus).rgb[0]) / (2 * h)


def _double_vjp(scene: Any, base: dict, name: str, theta: torch.Tensor, tangent: torch.Tensor, view: int) -> torch.Tensor:
    """J·v with reverse mode only: g(u) = Jᵀu is linear in u, and d(g(u)·v)/du = J·v."""
    x = theta.clone().requires_grad_(True)
    base[name] = x
    rgb = scene.render([view], values=base).rgb
    u = torch.zeros_like(rgb, requires_grad=True)
    (g,) = torch.autograd.grad(rgb, [x], grad_outputs=u, create_graph=True, allow_unused=True)
    if g is None:
        return torch.zeros_like(rgb[0]).detach()
    (jv,) = torch.autograd.grad((g * tangent).sum(), [u], allow_unused=True)
    return torch.zeros_like(rgb[0]).detach() if jv is None else jv[0].detach()


def vertex_gradient_field(scene: Any, loss_fn: LossFn, target: torch.Tensor, view: int,
                          max_arrows: int = 400) -> tuple[torch.Tensor, torch.Tensor]:
    """Screen-space descent arrows of the optimised mesh vertices that face the camera.

    Returns:
        points [N,2] (x right, y down, in pixels of the view, top row first) and vectors [N,2]:
        the projection of the vertex's negative loss gradient, in pixels per unit of gradient
        step (scale them for display).  Empty when no vertices are optimised.
    """
    meshes = [(o, scene.params[f"{o.name}.vertices"]) for o in getattr(scene, "objects", [])
              if f"{o.name}.vertices" in scene.params and scene.params[f"{o.name}.vertices"].trainable]
    if not meshes:
        return torch.zeros(0, 2), torch.zeros(0, 2)
    values = dict(scene.params.values())
    leaves = {p.name: p.value.detach().clone().requires_grad_(True) for _, p in meshes}
    values.update(leaves)
    loss = loss_fn(scene.render([view], values=values), target)
    grads = torch.autograd.grad(loss, list(leaves.values()), allow_unused=True)
    h, w = scene.resolution
    mvp, eye, fwd = scene.cameras([view], values)
    points, vectors = [], []
    for (o, p), g in zip(meshes, grads):
        if g is None:
            continue
        with torch.no_grad():
            verts, _, _ = scene.world_geometry({**values, p.name: leaves[p.name].detach()})
            start = o.vertex_offset
            v = verts[start:start + p.value.shape[0]]
            facing = ((eye[0] - v) * _normals(v, o)).sum(-1) > 0
            step = -g / g.norm(dim=-1).max().clamp(min=1e-12)
            a, b = _to_pixels(v, mvp[0], h, w), _to_pixels(v + step * 0.1, mvp[0], h, w)
            keep = facing & (g.norm(dim=-1) > 0)
            points.append(a[keep])
            vectors.append((b - a)[keep])
    pts, vec = torch.cat(points), torch.cat(vectors)
    if pts.shape[0] > max_arrows:
        idx = vec.norm(dim=-1).topk(max_arrows).indices
        pts, vec = pts[idx], vec[idx]
    return pts, vec


def _normals(v: torch.Tensor, o: Any) -> torch.Tensor:
    from ..scene.mesh import vertex_normals

    return vertex_normals(v, o.mesh.faces)


def _to_pixels(points: torch.Tensor, mvp: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """World points [N,3] -> pixel coordinates [N,2] (x right, y down, top row first)."""
    clip = torch.cat([points, torch.ones_like(points[:, :1])], 1) @ mvp.T
    ndc = clip[:, :2] / clip[:, 3:4]
    return torch.stack([(ndc[:, 0] + 1) * w / 2, (1 - ndc[:, 1]) * h / 2], 1)
