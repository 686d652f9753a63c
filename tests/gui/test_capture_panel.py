"""A capture in the studio: File > Open capture..., the view thumbnails, held-out curve, export, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from studio.gui.testing import pump, wait_for

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def capture_dir(tmp_path_factory):
    from studio.capture.synth import make_capture

    return make_capture("textured_critter", tmp_path_factory.mktemp("capture"), views=6, res=32, test_views=2)


def test_open_capture_pick_a_view_step_and_export(app, capture_dir, tmp_path):
    import dearpygui.dearpygui as dpg

    app.dialogs["capture"].choose(capture_dir)
    assert pump(app, lambda: app.ws.opts.scene == str(capture_dir) and app._snap is not None and not app._loading,
                timeout=180), app.messages[-3:]
    panel = app.capture_panel
    assert panel.active and len(panel.buttons) == 6
    assert dpg.get_value(app.side_tabs) == app.capture_tab
    first = wait_for(app, lambda s: s.view == 0)
    dpg.get_item_callback(panel.buttons[3])()  # what a click on the fourth thumbnail runs
    snap = wait_for(app, lambda s: s.view == 3, 30)
    assert snap is not None and not np.array_equal(first.target, snap.target)
    assert np.allclose(snap.target, app.ws.engine.targets.rgb[3].clamp(0, 1).numpy())

    app.ws.engine.step(3)
    snap = wait_for(app, lambda s: s.step >= 3 and not s.running, 120)
    assert np.isfinite(snap.history["metric:heldout_psnr"]).any()
    assert panel.psnr.series, "the held-out PSNR curve is drawn"

    out = tmp_path / "export"
    app.export_reconstruction(out)
    assert pump(app, lambda: (out / "summary.json").exists() and "exported the reconstruction" in app.messages[-1],
                timeout=180), app.messages[-3:]
    names = set(json.loads((out / "summary.json").read_text())["files"])
    assert {"mesh.glb", "mesh.obj", "curves.csv", "summary.json"} <= names and (out / "test").is_dir()


def test_a_bad_capture_gives_one_sentence_and_keeps_the_session(app, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "transforms.json").write_text(json.dumps({"camera_angle_x": 0.7, "frames": []}))
    before = app.ws
    app.open_capture(bad)
    assert pump(app, lambda: not app._loading and "no frames" in app.messages[-1], timeout=60), app.messages[-3:]
    assert app.ws is before and "\n" not in app.messages[-1]
