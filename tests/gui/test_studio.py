"""The studio window, driven like a user drives it, checked by its pixels.

Commands go through the Engine API (as the GUI's own controls send them) or as real X events
(xdotool clicks, drags and keys); every check looks at the window's frame buffer.
"""

from __future__ import annotations

import numpy as np
import pytest

from studio.gui.testing import Xdo, crop, grab, pump, wait_for
from studio.scene.params import GROUP_COLORS

pytestmark = pytest.mark.gui

# Where the File menu's entries are drawn (Dear PyGui gives menu items no rectangle): rows of the
# default font, under the menu bar.
MENU_FIRST_ROW, MENU_ROW = 32, 19


def shows_something(img: np.ndarray) -> bool:
    """Not a blank picture: at least 3% of pixels lit, with real contrast."""
    lit = (img.max(-1) > 30).mean()
    return lit > 0.03 and img.std() > 10


def differs(a: np.ndarray, b: np.ndarray, level: float = 2.0) -> bool:
    return a.shape == b.shape and float(np.abs(a.astype(float) - b.astype(float)).mean()) > level


def last_message(app) -> str:
    return app.messages[-1] if app.messages else ""


def pictures(app) -> dict[str, np.ndarray]:
    """The three pictures as on screen, with the pointer parked where it shows no tooltip."""
    Xdo(app).park()
    shot = grab(app)
    return {k: crop(shot, getattr(app.images, k).rect()) for k in ("target", "render", "diff")} | {"shot": shot}


def test_the_window_shows_target_render_and_difference(app):
    p = pictures(app)
    h, w = p["shot"].shape[:2]
    assert (w, h) == (1280, 800)
    for name in ("target", "render", "diff"):
        assert p[name].shape[0] > 150 and p[name].shape[1] > 150, f"{name} picture is too small"
        assert shows_something(p[name]), f"the {name} picture is blank"
    assert differs(p["target"], p["render"], 5.0), "the initial guess should not look like the target"
    assert "torch | cpu | 64x64 | step 0/400" in app.status.info.value


def test_steps_change_the_render_and_the_curves_fall(app):
    before = pictures(app)
    app.ws.engine.step(40)
    snap = wait_for(app, lambda s: s.step == 40 and not s.running, 120)
    assert snap is not None
    after = pictures(app)
    assert differs(before["render"], after["render"]), "40 steps did not change the render"
    assert not differs(before["target"], after["target"], 0.5), "the target must not change"
    # The status bar says how many CPU threads the optimiser measured to be fastest.
    assert snap.threads is not None and not snap.threads_measuring
    figures = f"| {snap.threads} thread{'s' if snap.threads > 1 else ''} |"
    assert pump(app, lambda: figures in app.status.info.value, timeout=5), app.status.info.value
    errors = app.plots.errors
    assert errors.points("geometry") >= 30 and errors.points("material") >= 30
    assert app.plots.losses.points("loss") == 40 and app.plots.losses.points("loss:l2") == 40
    h = snap.history
    for g in ("geometry", "material"):
        y = h[g][np.isfinite(h[g])]
        assert y[-1] < 0.9 * y[0], f"the {g} error did not fall: {y[0]:.4g} -> {y[-1]:.4g}"
    assert h["loss"][-5:].mean() < 0.8 * h["loss"][:5].mean()
    # The curves are drawn in their group colours.
    plot = crop(after["shot"], errors.rect())
    for g in ("geometry", "material"):
        near = (np.abs(plot.astype(int) - np.array(GROUP_COLORS[g])).sum(-1) < 60).sum()
        assert near > 40, f"no {g}-coloured curve in the error plot ({near} pixels)"


def test_start_button_space_and_s_keys_are_real_input_events(app):
    xdo = Xdo(app)
    xdo.click_item(app.toolbar.start.rect())
    assert wait_for(app, lambda s: s.running and s.step >= 3, 60), "clicking Start did not start the run"
    assert app.toolbar.start.label == "Pause"
    xdo.key("space")
    snap = wait_for(app, lambda s: not s.running, 30)
    assert snap is not None, "Space did not pause the run"
    assert app.toolbar.start.label == "Start"
    step = snap.step
    xdo.key("s")
    assert wait_for(app, lambda s: s.step == step + 1 and not s.running, 30), "S did not take exactly one step"
    xdo.key("r")
    assert wait_for(app, lambda s: s.step == 0, 30), "R did not reset"


def test_dragging_a_slider_changes_the_render_and_reset_restores_it(app):
    start = pictures(app)["render"]
    slider = app.params_panel.slider("cube.scale")
    x, y, w, h = slider.rect()
    xdo = Xdo(app)
    xdo.drag(x + 10, y + h // 2, x + w // 3, y + h // 2)
    snap = wait_for(app, lambda s: abs(float(s.params["cube.scale"][0]) - 1.0) > 0.05, 30)
    assert snap is not None, "dragging the scale slider did not reach the engine"
    assert abs(slider.value - float(snap.params["cube.scale"][0])) < 1e-3
    dragged = pictures(app)["render"]
    assert differs(start, dragged), "the render did not follow the slider"
    xdo.key("r")
    snap = wait_for(app, lambda s: abs(float(s.params["cube.scale"][0]) - 1.0) < 1e-6, 30)
    assert snap is not None, "Reset did not restore the parameter"
    pump(app, lambda: abs(slider.value - 1.0) < 1e-6, timeout=5)
    assert abs(slider.value - 1.0) < 1e-6, "the slider did not follow Reset"
    assert not differs(start, pictures(app)["render"], 0.5), "Reset did not restore the render"


def test_sliders_move_with_the_optimiser(app):
    slider = app.params_panel.slider("cube.position")
    app.ws.engine.set_param("cube.position", [0.3, -0.2, 0.1])
    snap = wait_for(app, lambda s: abs(float(s.params["cube.position"][0]) - 0.3) < 1e-6, 30)
    assert snap is not None
    pump(app, lambda: abs(slider.value[0] - 0.3) < 1e-4, timeout=5)
    assert slider.value == pytest.approx((0.3, -0.2, 0.1), abs=1e-4)


@pytest.mark.parametrize("mode", ["normals", "depth", "mask", "triangle id", "loss gradient"])
def test_render_modes_show_the_gbuffer(app, mode):
    shaded = pictures(app)["render"]
    app.images.mode.value = mode
    app.choose_mode(mode)
    assert wait_for(app, lambda s: s.display_mode == mode and s.display is not None, 30)
    shown = pictures(app)["render"]
    assert shows_something(shown), f"{mode} is blank"
    assert differs(shaded, shown), f"{mode} looks like the shaded render"
    assert app.images.render.caption.value == f"render ({mode})"


@pytest.mark.parametrize("kind, name, payload", [
    ("mesh", "broken.obj", bytes(range(256)) * 8),
    ("target", "broken.png", b"\x89PNG\r\n\x1a\n this is not really a png"),
])
def test_a_corrupt_file_gives_one_sentence_and_the_studio_keeps_running(app, tmp_path, kind, name, payload):
    path = tmp_path / name
    path.write_bytes(payload)
    seen = len(app.messages)
    xdo = Xdo(app)  # File > Load ... with real clicks opens the file dialog
    xdo.click(20, 10)
    xdo.click(40, MENU_FIRST_ROW + MENU_ROW * ["mesh", "target"].index(kind))
    assert pump(app, lambda: app.dialogs[kind].visible, timeout=5), "the menu did not open the file dialog"
    app.dialogs[kind].choose(path)  # what the dialog's OK button calls with the chosen file
    import dearpygui.dearpygui as dpg

    dpg.hide_item(app.dialogs[kind].item)
    assert pump(app, lambda: not app._loading and len(app.messages) > seen + 1, timeout=60)
    sentence = app.messages[-1]
    assert str(path) in sentence or name in sentence, sentence
    assert "\n" not in sentence and "Traceback" not in sentence, sentence
    assert app.status.message.value.endswith(sentence)
    assert app.ws.opts.scene == "cube" and app.ws.opts.mesh is None and app.ws.opts.target is None
    app.ws.engine.step(3)
    assert wait_for(app, lambda s: s.step == 3, 60), "the run did not go on after the error"
    assert shows_something(pictures(app)["render"])


def test_loss_panel_switches_and_weights_reach_the_engine(app):
    row = app.loss_panel.rows["l2"]
    row.weight.edit(2.5)  # what a drag ends with: the new value and the slider's callback
    assert wait_for(app, lambda s: s.losses[0][1] == pytest.approx(2.5), 30)
    app.ws.engine.set_loss_weight("l2", 1.0)
    assert wait_for(app, lambda s: s.losses[0][1] == pytest.approx(1.0), 30)
    pump(app, lambda: abs(row.weight.value - 1.0) < 1e-6, timeout=5)
    assert row.weight.value == pytest.approx(1.0)
    # Add a loss with a declared parameter: its row gets a slider for it, with the description as tooltip.
    import dearpygui.dearpygui as dpg

    dpg.set_value(app.side_tabs, app.loss_tab)
    try:
        app.loss_panel.choice.edit("huber")
        pump(app, frames=3)
        Xdo(app).click_item(app.loss_panel.add.rect())
        assert wait_for(app, lambda s: [n for n, *_ in s.losses] == ["l2", "huber"], 30), "Add loss did not add it"
    finally:
        dpg.set_value(app.side_tabs, app.params_tab)
    pump(app, lambda: "huber" in app.loss_panel.rows, timeout=5)
    delta = app.loss_panel.rows["huber"].params["delta"]
    delta.edit(0.5)
    assert wait_for(app, lambda s: dict(s.losses[1][3])["delta"] == pytest.approx(0.5), 30)
    app.loss_panel.rows["huber"].enabled.edit(False)
    snap = wait_for(app, lambda s: s.losses[1][2] is False, 30)
    assert snap is not None
    app.ws.engine.set_losses([("l2", 1.0, {})])
    assert wait_for(app, lambda s: len(s.losses) == 1, 30)


def test_session_save_and_load_through_the_gui(app, tmp_path):
    app.ws.engine.step(6)
    saved = wait_for(app, lambda s: s.step == 6 and not s.running, 60)
    path = tmp_path / "run.studio"
    app.save_session(path)
    assert pump(app, lambda: path.exists() and "saved the session" in last_message(app), timeout=30), app.messages
    app.ws.engine.step(4)
    assert wait_for(app, lambda s: s.step == 10, 60)
    app.choose_scenario("pose")  # the session reopens its own scene before restoring the run
    assert pump(app, lambda: app.ws.opts.scene == "pose" and app._snap is not None, timeout=120)
    app.load_session(path)
    back = wait_for(app, lambda s: app.ws.opts.scene == "cube" and s.step == 6, 120)
    assert back is not None, app.messages
    assert list(app.ws.scene.resolution) == [64, 64]
    for name, value in saved.params.items():
        np.testing.assert_allclose(back.params[name], value, atol=1e-6, err_msg=name)
    assert len(back.history["loss"]) == 6


def test_exports_write_png_csv_obj_and_video(app, tmp_path):
    app.ws.engine.start(until=8)
    assert wait_for(app, lambda s: s.step == 8 and not s.running, 60)
    targets = {"png": tmp_path / "render.png", "csv": tmp_path / "curves.csv", "obj": tmp_path / "mesh.obj",
               "gif": tmp_path / "progress.gif"}
    for kind, path in targets.items():
        app.dialogs[kind].choose(path)
    assert pump(app, lambda: all(p.exists() for p in targets.values()) and not app.jobs.busy, timeout=60), app.messages
    assert targets["csv"].read_text().count("\n") == 9
    assert targets["obj"].read_text().count("\nf ") == 12


def test_the_layout_fills_1920x1080(app):
    import dearpygui.dearpygui as dpg

    try:
        dpg.set_viewport_width(1920)
        dpg.set_viewport_height(1080)
        pump(app, lambda: app._laid_out == (dpg.get_viewport_client_width(), dpg.get_viewport_client_height())
             and dpg.get_viewport_client_width() == 1920, timeout=10, frames=3)
        shot = grab(app)
        assert shot.shape[:2] == (1080, 1920)
        x, y, w, h = app.images.render.rect()
        assert w > 300, "the pictures should grow with the window"
        px, py, pw, ph = app.plots.errors.rect()
        assert py > y + h and py + ph < 1080 - 20, "the plots must sit between the pictures and the status bar"
        assert shows_something(crop(shot, app.images.render.rect()))
    finally:
        dpg.set_viewport_width(1280)
        dpg.set_viewport_height(800)
        pump(app, lambda: dpg.get_viewport_client_width() == 1280, timeout=10, frames=3)


def test_the_scenario_picker_rebuilds_the_panels_and_a_bad_backend_keeps_the_scene(app):
    app.toolbar.scenario.edit("pose")
    assert pump(app, lambda: app.ws.opts.scene == "pose" and app._snap is not None, timeout=120), app.messages[-3:]
    assert "pose" in app.teaching.lesson.value
    names = {r.name for s in app.params_panel.sections for r in s.rows}
    assert "cube.rotation" in names or any(n.endswith(".rotation") for n in names)
    assert shows_something(pictures(app)["target"])
    seen = len(app.messages)
    app.toolbar.backend.edit("nvdiffrast")  # no CUDA here: one sentence, and the pose scene stays
    import torch

    if torch.cuda.is_available():
        pytest.skip("nvdiffrast may work on this machine")
    assert pump(app, lambda: not app._loading and len(app.messages) > seen, timeout=60)
    assert "nvdiffrast" in app.messages[-1] and "\n" not in app.messages[-1]
    assert app.ws.opts.scene == "pose" and app.ws.opts.backend == "torch"
    assert app.toolbar.backend.value == "torch", "the picker must show the backend in use"


def test_a_target_photograph_replaces_the_synthetic_target(app, tmp_path):
    import imageio.v3 as iio

    photo = np.zeros((80, 80, 3), np.uint8)
    photo[20:60, 30:50] = (250, 200, 40)  # a yellow bar, unlike the cube
    path = tmp_path / "photo.png"
    iio.imwrite(path, photo)
    app.dialogs["target"].choose(path)
    assert pump(app, lambda: app.ws.opts.target == str(path) and app._snap is not None, timeout=120), app.messages[-3:]
    assert "resized" in " ".join(app.messages[-3:]), "the 80x80 photo is resized to 64x64 and the user is told"
    target = pictures(app)["target"]
    yellow = ((target[..., 0] > 200) & (target[..., 1] > 150) & (target[..., 2] < 120)).mean()
    assert yellow > 0.1, "the target picture should show the photograph"


def test_load_mesh_puts_the_file_in_the_scene(app, tmp_path):
    import trimesh

    path = tmp_path / "ball.obj"
    trimesh.creation.icosphere(subdivisions=2, radius=1.0).export(path)
    before = pictures(app)["target"]
    app.dialogs["mesh"].choose(path)
    assert pump(app, lambda: app.ws.opts.mesh == str(path) and app._snap is not None, timeout=120), app.messages[-3:]
    assert app.ws.scene.params["cube.vertices"].value.shape == (162, 3)
    assert any(m.startswith("loaded ball.obj into cube") for m in app.messages), app.messages[-3:]
    after = pictures(app)["target"]
    assert shows_something(after) and differs(before, after), "the target should now show the loaded mesh"
