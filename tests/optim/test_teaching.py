"""Teaching mode: visibility gradients matter, gradient images are right, every scenario has a lesson."""

from __future__ import annotations

import torch

from studio.optim.compare import compare_runs
from studio.optim.gradient_views import derivative_image, loss_pixel_gradient, vertex_gradient_field
from studio.scenarios import list_scenarios, load_spec
from studio.workspace import build_scene


def test_camera_error_is_at_least_5x_worse_with_antialias_off_than_on():
    off, on = compare_runs("camera", "antialias", ("off", "on"))
    assert off.final_errors["camera"] >= 5 * on.final_errors["camera"], (off.final_errors, on.final_errors)
    start = off.history["camera"][0]
    assert abs(off.final_errors["camera"] - start) < 1e-6 * max(1.0, start), "without antialias the camera must not move"
    assert len(off.history["step"]) == len(on.history["step"]) == load_spec("camera").steps


def central_difference(scene, name: str, index: int, h: float) -> torch.Tensor:
    """(I(theta + h) - I(theta - h)) / 2h of view 0 for one component of a parameter."""
    base = scene.params.values()
    step = torch.zeros_like(base[name])
    step.view(-1)[index] = h
    plus, minus = dict(base), dict(base)
    plus[name], minus[name] = base[name] + step, base[name] - step
    with torch.no_grad():
        return (scene.render([0], values=plus).rgb[0] - scene.render([0], values=minus).rgb[0]) / (2 * h)


def test_forward_mode_derivative_image_matches_central_finite_difference():
    scene = build_scene(load_spec("lighting"), "torch", "cpu")
    jvp = derivative_image(scene, "light.sun.direction", index=0, view=0)
    fd = central_difference(scene, "light.sun.direction", 0, 1e-3)
    assert fd.abs().max() > 1e-2, "the light must visibly change the image"
    assert (jvp - fd).norm() <= 0.05 * fd.norm()


def test_derivative_image_without_forward_mode_uses_double_vjp():
    scene = build_scene(load_spec("sdf-shadow"), "torch", "cpu")
    assert scene.forward_ad is False
    jvp = derivative_image(scene, "light.sun.direction", index=2, view=0)
    fd = central_difference(scene, "light.sun.direction", 2, 1e-3)
    assert (jvp - fd).norm() <= 0.05 * fd.norm()


def test_loss_gradient_image_and_vertex_arrows_point_where_the_loss_pulls():
    spec = load_spec("deform")
    spec.objects[0].target_mesh = "procedural:icosphere:3"  # the target: the unit sphere itself
    scene = build_scene(spec, "torch", "cpu")
    gt = scene.render_targets()
    target = torch.cat([gt.rgb[:1], gt.alpha[:1]], -1)
    verts = scene.params["blob.vertices"]
    verts.set(verts.value.detach() * 0.7)  # start shrunken: the loss must pull every vertex outwards

    def l2(out, t):
        return (out.rgb - t[..., :3]).square().mean() + (out.alpha - t[..., 3:]).square().mean()

    grad = loss_pixel_gradient(scene, l2, target, 0)
    with torch.no_grad():
        render = scene.render([0]).rgb[0]
    assert torch.allclose(grad, 2 * (render - target[0, ..., :3]) / render.numel(), atol=1e-9), \
        "dL/dI of an L2 loss is 2(I - T)/N"
    points, vectors = vertex_gradient_field(scene, l2, target, 0)
    h, w = scene.resolution
    assert points.shape[0] > 50 and points.shape == vectors.shape
    assert (points[:, 0] >= 0).all() and (points[:, 0] <= w).all() and (points[:, 1] >= 0).all() and (points[:, 1] <= h).all()
    centre = torch.tensor([w / 2, h / 2])
    outward = ((points - centre) * vectors).sum(-1)
    strong = vectors.norm(dim=-1) > 0.2 * vectors.norm(dim=-1).max()
    assert strong.sum() >= 10 and (outward[strong] > 0).float().mean() > 0.9


def test_every_scenario_has_a_lesson_saying_what_to_watch_and_try():
    for info in list_scenarios():
        lesson = load_spec(info.path).lesson
        assert "What is optimised" in lesson and "What to watch" in lesson and "What to try" in lesson, info.name


def test_derivative_image_with_soft_rasterization_falls_back_to_central_differences():
    scene = build_scene(load_spec("camera"), "torch", "cpu")
    scene.options["soft_sigma"] = 1.0  # its autograd step has no forward-mode rule for moving geometry
    d = derivative_image(scene, "camera.azimuth", index=0, view=0)
    fd = central_difference(scene, "camera.azimuth", 0, scene.params["camera.azimuth"].slider.step)
    assert d.abs().max() > 1e-3 and torch.allclose(d, fd, atol=1e-5)
