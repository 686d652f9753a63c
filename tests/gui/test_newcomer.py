"""What a newcomer meets in the window: start-up pictures, crisp pictures at whole multiples of the
render, plots that reset and stay labelled, gradient scales, and a recorded video."""

from __future__ import annotations

import math

import numpy as np
import pytest

from studio.gui.testing import crop, grab, pump, wait_for

pytestmark = pytest.mark.gui


def test_the_targets_show_while_the_scene_loads(app):
    assert app.picture_after is not None, "no target view was shown while the scene was being built"
    assert app.picture_after <= app.ready_after, "the first picture should come before the first render"


def test_pictures_are_whole_multiples_of_the_render_and_the_display_control_sets_it(app):
    h, w = app.ws.scene.resolution
    view = app.images.target
    assert view.shown_size[0] % w == 0 and view.factor >= 2, "fit: the largest whole multiple of 64 px"
    try:
        app.images.display.edit("1x")
        assert pump(app, lambda: app.images.target.shown_size == (w, h), timeout=10, frames=3)
        shot = grab(app)
        picture = crop(shot, app.images.target.rect(), inset=0)
        assert picture.shape[:2] == (h, w), "1x: one screen pixel per render pixel"
        app.images.display.edit("3x")
        assert pump(app, lambda: app.images.target.shown_size == (3 * w, 3 * h), timeout=10, frames=3)
        big = crop(grab(app), app.images.target.rect(), inset=0)
        # Nearest-neighbour: every 3x3 block is one colour, and it is the 1x pixel's colour.
        blocks = big[: 3 * h, : 3 * w].reshape(h, 3, w, 3, 3).astype(int)
        assert np.abs(blocks - blocks[:, :1, :, :1]).max() <= 2, "3x pictures must not be smoothed"
        assert np.abs(blocks[:, 0, :, 0] - picture.astype(int)).mean() < 2
    finally:
        app.images.display.edit("fit")
        pump(app, frames=3)


def _y_limits(plot) -> tuple[float, float]:
    return plot.limits[1]


def test_after_reset_the_axes_fit_the_new_curves_with_labelled_log_ticks(app):
    import dearpygui.dearpygui as dpg

    app.ws.engine.step(40)
    assert wait_for(app, lambda s: s.step == 40 and not s.running, 120)
    pump(app, frames=3)
    long_x = app.plots.errors.limits[0]
    assert long_x[1] >= 40
    app.reset()
    snap = wait_for(app, lambda s: s.step == 0 and not s.running, 30)
    app.ws.engine.step(3)
    snap = wait_for(app, lambda s: s.step == 3 and not s.running, 60)
    pump(app, frames=3)
    for plot in (app.plots.errors, app.plots.losses):
        (x0, x1), (y0, y1) = plot.limits
        assert x1 < 10, f"after Reset the step axis should span the new run, not [0, 40]: {(x0, x1)}"
        assert dpg.get_item_configuration(plot.y_axis)["scale"] == dpg.mvPlotScale_Log10, "log y stays log"
        ticks = [t for t in plot.ticks if y0 <= t <= y1]
        assert len(ticks) >= 2, f"a log axis needs two labelled ticks, got {plot.ticks} in {(y0, y1)}"
    h = snap.history
    shown = np.concatenate([h[g][np.isfinite(h[g])] for g in ("geometry", "material")])
    y0, y1 = _y_limits(app.plots.errors)
    lo, hi = math.log10(shown.min()), math.log10(shown.max())
    assert y0 < shown.min() and shown.max() < y1, "no curve on the frame"
    assert math.log10(y1) - hi > 0.05 * (hi - lo) and lo - math.log10(y0) > 0.05 * (hi - lo), "padded limits"


def test_the_loss_gradient_view_has_a_colour_scale(app):
    import dearpygui.dearpygui as dpg

    try:
        app.show_mode("loss gradient")
        snap = wait_for(app, lambda s: s.display_mode == "loss gradient" and s.display_scale > 0, 60)
        assert snap is not None
        pump(app, frames=3)
        assert dpg.is_item_shown(app.images.gradient_legend)
        cfg = dpg.get_item_configuration(app.images.gradient_scale)
        assert cfg["max_scale"] == pytest.approx(snap.display_scale, rel=1e-4)
        assert "|d loss / d pixel|" in app.images.gradient_tip.value
    finally:
        app.show_mode("shaded")
        wait_for(app, lambda s: s.display_mode == "shaded", 30)


def test_record_video_writes_frames_of_the_run(app, tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    import imageio_ffmpeg

    path = tmp_path / "run.mp4"
    import dearpygui.dearpygui as dpg

    app.toggle_recording()
    assert pump(app, lambda: app.dialogs["video"].visible, timeout=5), "Record video... opens a save dialog"
    app.dialogs["video"].choose(path)  # what the dialog's OK button calls (and then it closes)
    dpg.hide_item(app.dialogs["video"].item)
    assert app.recording is not None and "recording run.mp4" in app.messages[-1]
    app.ws.engine.start(until=12)
    assert wait_for(app, lambda s: s.step == 12 and not s.running, 60)
    app.toggle_recording()
    assert pump(app, lambda: path.exists() and not app.jobs.busy, timeout=60), app.messages[-2:]
    assert f"wrote the video {path}" in app.messages[-1]
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    assert sum(1 for _ in reader) >= 2 and meta["size"][0] >= 3 * 64
