"""Engine support for the studio's teaching views: a step taken apart (StepRecord), the derivative
and vertex-arrow render modes, and the render options published in snapshots."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from studio.optim.gradient_views import derivative_image
from studio.render.modes import DERIVATIVE, VERTEX_ARROWS
from tests.optim.test_engine import make_engine


@pytest.fixture
def engine():
    e = make_engine(steps=1000)
    e.start_thread()
    yield e
    e.stop()


def test_a_recorded_step_is_taken_apart_consistently(engine):
    start = engine.wait_snapshot(timeout=30)
    engine.step(2)
    plain = engine.wait_snapshot(start.stamp, timeout=60, predicate=lambda s: s.step == 2)
    assert plain.step_record is None, "plain steps record nothing"
    engine.step_recorded()
    snap = engine.wait_snapshot(plain.stamp, timeout=60, predicate=lambda s: s.step == 3)
    rec = snap.step_record
    assert rec is not None and rec.step == 3 and not rec.skipped
    assert set(rec.before) == set(rec.after) == {"cube.vertices", "cube.albedo"}
    for name in rec.before:
        np.testing.assert_array_equal(rec.before[name], plain.params[name], err_msg=f"{name} before the step")
        np.testing.assert_array_equal(rec.after[name], snap.params[name], err_msg=f"{name} after the step")
        assert not np.array_equal(rec.before[name], rec.after[name]), f"{name} did not move"
        assert rec.grad_norm[name] > 0
        assert rec.lr[name] == pytest.approx(engine.params[name].lr)  # no decay configured
    assert rec.group_grad_norm["geometry"] == pytest.approx(rec.grad_norm["cube.vertices"])
    assert rec.loss == pytest.approx(snap.history["loss"][-1])
    assert len(rec.views) == 2 and rec.render.shape == (32, 32, 3) and rec.pixel_gradient.shape == (32, 32, 4)
    # The loss image is the squared error the L2 loss averages, and its gradient is 2(I - T)/N.
    np.testing.assert_allclose(rec.loss_image, np.square(rec.render - rec.target).sum(-1), rtol=1e-6)
    l2_grad = rec.pixel_gradient[..., :3]
    n = 2 * 32 * 32 * 3  # l2 averages over both views, every pixel and R, G, B
    np.testing.assert_allclose(l2_grad, 2 * (rec.render - rec.target) / n, atol=1e-7)
    assert not rec.render.flags.writeable and not rec.before["cube.vertices"].flags.writeable
    engine.step(1)
    later = engine.wait_snapshot(snap.stamp, timeout=60, predicate=lambda s: s.step == 4)
    assert later.step_record is rec, "the latest record stays until the next recorded step"
    engine.reset()
    assert engine.wait_snapshot(later.stamp, timeout=30, predicate=lambda s: s.step == 0).step_record is None


def test_the_derivative_mode_shows_signed_colours_of_the_chosen_component(engine):
    engine.set_display_mode(DERIVATIVE)
    snap = engine.wait_snapshot(timeout=60, predicate=lambda s: s.display_mode == DERIVATIVE and s.display is not None)
    # Until one is chosen: the component with the largest loss gradient (one the view shows).
    values = {p.name: p.value.detach().clone().requires_grad_(True) for p in engine.params.trainable()}
    out = engine.scene.render([0], values={**engine.params.values(), **values})
    loss = (out.rgb - engine.targets.rgb[:1]).square().mean()
    grads = dict(zip(values, torch.autograd.grad(loss, list(values.values()))))
    name = max(grads, key=lambda k: float(grads[k].abs().max()))
    order = grads[name].abs().flatten().argsort(descending=True).tolist()
    assert snap.derivative == (name, order[0])
    d = derivative_image(engine.scene, name, order[0], 0).mean(-1).numpy()
    assert snap.display_scale == pytest.approx(np.quantile(np.abs(d[d != 0]), 0.95), rel=1e-4)
    red, blue = snap.display[..., 0], snap.display[..., 2]
    assert (red[d > 0] > blue[d > 0]).all() and (blue[d < 0] > red[d < 0]).all()
    assert (snap.display[d == 0] == 0).all(), "zero derivative is black"
    engine.set_derivative(name, order[1])
    other = engine.wait_snapshot(snap.stamp, timeout=60, predicate=lambda s: s.derivative == (name, order[1]))
    assert np.abs(other.display - snap.display).mean() > 1e-3, "another component, another picture"
    engine.set_derivative("cube.vertices", 99)
    snap = engine.wait_snapshot(other.stamp, timeout=30, predicate=lambda s: s.message and "component 99" in s.message)
    assert snap is not None and snap.derivative == (name, order[1])


def test_the_vertex_arrow_mode_publishes_arrows_in_pixels(engine):
    engine.set_display_mode(VERTEX_ARROWS)
    snap = engine.wait_snapshot(timeout=60, predicate=lambda s: s.display_mode == VERTEX_ARROWS and s.arrows is not None)
    assert snap.arrows.ndim == 2 and snap.arrows.shape[1] == 4 and len(snap.arrows) > 0
    assert ((snap.arrows[:, :2] >= 0) & (snap.arrows[:, :2] <= 32)).all(), "arrow tails lie on the picture"
    assert snap.display is not None and snap.display.shape == snap.render.shape


def test_a_failing_gradient_view_falls_back_to_the_shaded_render(engine, monkeypatch):
    from studio.optim import gradient_views

    def broken(*args, **kwargs):
        raise RuntimeError("no forward mode here")

    monkeypatch.setattr(gradient_views, "derivative_image", broken)
    engine.set_display_mode(DERIVATIVE)
    snap = engine.wait_snapshot(timeout=30, predicate=lambda s: s.message and "no forward mode" in s.message)
    assert snap is not None and snap.display_mode == "shaded" and snap.display is None
    engine.step(1)
    assert engine.wait_snapshot(snap.stamp, timeout=30, predicate=lambda s: s.step == 1), "the worker must live on"


def test_snapshots_carry_the_render_options(engine):
    engine.set_option("antialias", False)
    engine.set_option("restarts", 7)
    snap = engine.wait_snapshot(timeout=30, predicate=lambda s: s.options.get("restarts") == 7)
    assert snap.options["antialias"] is False and "filter_mode" not in snap.options


def test_the_derivative_view_works_with_soft_rasterization_by_central_differences(engine):
    engine.set_option("soft_sigma", 1.0)
    engine.set_display_mode(DERIVATIVE)
    snap = engine.wait_snapshot(timeout=60, predicate=lambda s: s.display_mode == DERIVATIVE and s.display is not None)
    assert snap is not None and snap.derivative is not None and snap.display.max() > 0