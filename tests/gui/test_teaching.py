"""The Teaching tab in the real window: live switches, the gradient views, step-through and Compare.

Scenes are loaded at low resolution and runs are short, so the lessons' claims are checked on
their first steps (the full-budget claims are tested headless in tests/optim/test_teaching.py).
"""

from __future__ import annotations

from dataclasses import replace

import dearpygui.dearpygui as dpg
import numpy as np
import pytest

from studio.gui.testing import Xdo, crop, grab, pump, wait_for
from studio.render.modes import DERIVATIVE, SHADED, VERTEX_ARROWS

pytestmark = pytest.mark.gui

RES = 48


def use_scene(app, scene: str, res: int = RES):
    """The shared window with ``scene`` loaded, paused at step 0 in shaded mode, Teaching tab shown."""
    opts = app.ws.opts
    if (opts.scene, opts.resolution, opts.mesh, opts.target) != (scene, res, None, None):
        app.load(replace(opts, scene=scene, resolution=res, mesh=None, target=None, mask=None))
        assert wait_for(app, lambda s: app.ws.opts.scene == scene and not app._loading, 120), app.messages[-3:]
    if app.images.mode.value != SHADED:
        app.show_mode(SHADED)
    if app.teaching.step_through.on:
        app.teaching.step_through.enabled.edit(False)
    app.ws.engine.reset()
    assert wait_for(app, lambda s: s.step == 0 and not s.running and s.display_mode == SHADED, 30)
    dpg.set_value(app.side_tabs, app.teaching_tab)
    pump(app, frames=3)
    return app


def shown(item) -> bool:
    return bool(dpg.is_item_shown(item))


def render_picture(app) -> np.ndarray:
    Xdo(app).park()
    return crop(grab(app), app.images.render.rect())


def run_steps(app, n: int):
    """Start a fresh run to step ``n`` and return the snapshot that finished it."""
    app.ws.engine.reset()
    assert wait_for(app, lambda s: s.step == 0, 30)
    app.ws.engine.start(until=n)
    snap = wait_for(app, lambda s: s.step == n and not s.running, 60)
    assert snap is not None, "the run did not reach its end"
    return snap


@pytest.fixture
def camera(session_app):
    return use_scene(session_app, "camera")


def test_only_the_switches_of_the_scene_show(camera):
    sw = camera.teaching.switches
    assert shown(sw.visibility_row) and not shown(sw.soft_row), "sigma shows only for soft rasterization"
    assert not any(shown(r) for r in (sw.mip_row, sw.restarts_row, sw.sdf_row)), "camera has no texture, rotation, SDF"
    sw.visibility.edit("soft")
    pump(camera, frames=2)
    assert shown(sw.soft_row) and shown(sw.sigma.item)
    assert wait_for(camera, lambda s: s.options.get("soft_sigma") == pytest.approx(sw.sigma.value), 30)
    sw.visibility.edit("edge")
    assert wait_for(camera, lambda s: s.options.get("visibility") == "edge" and not s.options.get("soft_sigma"), 30)
    pump(camera, frames=2)
    assert not shown(sw.soft_row)
    sw.visibility.edit("antialias")
    assert wait_for(camera, lambda s: s.options.get("visibility") == "antialias", 30)


def test_visibility_none_stalls_the_camera_and_edge_lets_it_fall(camera):
    combo = camera.teaching.switches.visibility
    combo.edit("none")
    assert wait_for(camera, lambda s: s.options.get("visibility") == "none", 30), "the edit did not reach the engine"
    h = run_steps(camera, 30).history["camera"]
    h = h[~np.isnan(h)]  # steps whose error was not measured (the engine throttles metrics) are NaN
    assert len(h) > 1 and np.all(h == h[0]), f"without a visibility gradient the camera must not move: {h[0]:.4g} -> {h[-1]:.4g}"
    combo.edit("edge")
    assert wait_for(camera, lambda s: s.options.get("visibility") == "edge", 30)
    h = run_steps(camera, 30).history["camera"]
    h = h[~np.isnan(h)]
    assert h[-1] < 0.9 * h[0], f"with edge gradients the camera error must fall: {h[0]:.4g} -> {h[-1]:.4g}"
    combo.edit("antialias")
    assert wait_for(camera, lambda s: s.options.get("visibility") == "antialias", 30)


def test_step_through_shows_four_stages_and_moves_the_parameters_at_the_fourth(camera):
    stepper = camera.teaching.step_through
    xdo = Xdo(camera)
    xdo.click_item(stepper.enabled.rect(), fx=0.05)
    assert stepper.on and stepper.title.value == "press Step"
    slider = camera.params_panel.slider("camera.azimuth")
    xdo.key("s")
    assert pump(camera, lambda: stepper.stage == 1, timeout=30), "Step did not take a recorded step"
    rec = stepper.record
    assert rec.step == 1 and camera.ws.engine.latest().step == 1, "the engine took the whole step at once"
    expected = {1: "parameter", 2: "loss", 3: "|d loss / d theta|", 4: "parameter"}
    for stage, name in enumerate(("render", "loss image", "gradient", "update"), start=1):
        if stage > 1:
            xdo.key("s")
            assert pump(camera, lambda k=stage: stepper.stage == k, timeout=10), f"Step did not show stage {stage}"
        assert stepper.title.value.startswith(f"{stage}/4 {name}")
        assert shown(stepper.picture.group) and stepper.rows[0][0] == expected[stage]
        numbers = [cell for row in stepper.rows[1:] for cell in row[1:]]
        assert numbers and all(any(c.isdigit() for c in cell) for cell in numbers), stepper.rows
        if stage == 2:
            assert dict(stepper.rows[1:])["total (weighted)"] == f"{rec.loss:.5g}"
        if stage < 4:
            assert camera._snap.step == 0, f"stage {stage}: the window must still show step 0"
            np.testing.assert_array_equal(camera._snap.params["camera.azimuth"], rec.before["camera.azimuth"])
    assert pump(camera, lambda: camera._snap.step == 1, timeout=10), "stage 4 must show the new parameters"
    after = float(rec.after["camera.azimuth"][0])
    assert after != float(rec.before["camera.azimuth"][0])
    np.testing.assert_array_equal(camera._snap.params["camera.azimuth"], rec.after["camera.azimuth"])
    assert pump(camera, lambda: abs(slider.value - after) < 1e-4, timeout=5), "the slider follows at stage 4"
    row = next(r for r in stepper.rows if r[0] == "camera.azimuth")
    assert row[1] == f"{float(rec.before['camera.azimuth'][0]):.4g}" and row[2] == f"{after:.4g}"
    xdo.key("s")
    assert pump(camera, lambda: stepper.stage == 1 and stepper.record.step == 2, timeout=30), "the next Step"


def test_compare_runs_in_the_background_and_overlays_two_curves_per_group(camera):
    xdo = Xdo(camera)
    xdo.click_item(camera.teaching.compare.rect())
    window = camera.compare_window
    assert pump(camera, lambda: window.visible, timeout=5)
    assert window.switch.value == "visibility" and (window.first.value, window.second.value) == ("none", "antialias")
    window.steps.value, window.resolution.value = 40, 32
    frames = camera.clock.frames
    xdo.click_item(window.run.rect())
    seen = []
    assert pump(camera, lambda: seen.append(window.bar.fraction) or not window.busy, timeout=60), "compare hung"
    assert camera.clock.frames - frames > 10, "the window must keep drawing while the runs go on"
    assert window.bar.fraction == 1.0 and window.bar.text == "done"
    assert window.series_per_group() == {"camera": 2}
    off, on = window.runs
    assert off.final_errors["camera"] > on.final_errors["camera"]
    assert camera._snap.step == 0, "the interactive run is not touched"
    plot = crop(grab(camera), window.plot.rect())
    purple = (np.abs(plot.astype(int) - (142, 68, 173)).sum(-1) < 60).sum()
    assert purple > 100, "the camera curves are drawn in the camera colour"
    # A long comparison stops at Cancel, with what it has so far.
    window.steps.value = 100_000
    window.start()
    assert pump(camera, lambda: window.bar.fraction > 0, timeout=30)
    xdo.click_item(window.cancel.rect())
    assert pump(camera, lambda: not window.busy, timeout=30), "Cancel did not stop the comparison"
    assert window.bar.text == "cancelled" and len(window.runs) == 1
    dpg.hide_item(window.window)


def test_the_derivative_view_is_red_and_blue_and_follows_the_parameter(session_app):
    app = use_scene(session_app, "cube", 64)
    Xdo(app).click_item(app.teaching.view_buttons[DERIVATIVE].rect())
    snap = wait_for(app, lambda s: s.display_mode == DERIVATIVE and s.display is not None, 30)
    assert snap is not None and app.images.mode.value == DERIVATIVE
    assert shown(app.images.derivative.group) and app.images.derivative.param.value == snap.derivative[0]
    first = render_picture(app)
    r, b = first[..., 0].astype(int), first[..., 2].astype(int)
    assert ((r > b + 60) & (r > 60)).mean() > 0.005 and ((b > r + 60) & (b > 60)).mean() > 0.005, \
        "the derivative image must show red (brighter) and blue (darker) pixels"
    picker = app.images.derivative
    picker.param.edit("cube.albedo")
    snap = wait_for(app, lambda s: s.derivative == ("cube.albedo", 0), 30)
    assert snap is not None and picker.scale.value.endswith("per unit of colour")
    assert np.abs(render_picture(app).astype(float) - first).mean() > 2, "another parameter, another picture"


def test_vertex_arrows_appear_over_the_deform_render(session_app):
    app = use_scene(session_app, "deform", 64)
    shaded = render_picture(app)
    assert shown(app.teaching.view_rows[VERTEX_ARROWS])
    app.teaching.view_buttons[VERTEX_ARROWS].on_click()
    snap = wait_for(app, lambda s: s.display_mode == VERTEX_ARROWS and s.arrows is not None, 30)
    assert snap is not None and len(snap.arrows) > 50
    pump(app, lambda: app.images.arrows.count > 50, timeout=5)
    picture = render_picture(app)
    yellow = (picture[..., 0] > 200) & (picture[..., 1] > 170) & (picture[..., 2] < 120)
    was = (shaded[..., 0] > 200) & (shaded[..., 1] > 170) & (shaded[..., 2] < 120)
    assert yellow.mean() > 0.01 and not was.any(), "yellow arrows must be drawn over the render"
    app.show_mode(SHADED)
    assert wait_for(app, lambda s: s.display_mode == SHADED, 30)
    pump(app, lambda: app.images.arrows.count == 0, timeout=5)
    assert app.images.arrows.count == 0, "the arrows go with their mode"


def test_shadow_scenes_switch_between_hard_and_soft_shadows(session_app):
    app = use_scene(session_app, "mesh-shadow")
    sw = app.teaching.switches
    assert shown(sw.shadows_row) and sw.shadows.value == "soft"
    assert not any(shown(r) for r in (sw.mip_row, sw.restarts_row, sw.sdf_row))
    soft = render_picture(app).astype(float)
    sw.shadows.edit("hard")
    assert wait_for(app, lambda s: s.options.get("shadows") == "hard", 30)
    pump(app, frames=3)
    assert np.abs(render_picture(app).astype(float) - soft).max() > 10  # the penumbra became a hard edge
    sw.shadows.edit("soft")
    assert wait_for(app, lambda s: s.options.get("shadows") == "soft", 30)
