"""Issue #5 in the window: a plugin loss from a folder appears in the loss panel with its declared
parameters as sliders, and dragging one reaches the engine."""

from __future__ import annotations

from dataclasses import replace

import dearpygui.dearpygui as dpg
import numpy as np
import pytest

from studio.gui.testing import Xdo, pump, wait_for

pytestmark = pytest.mark.gui

PLUGIN = '''
from studio.plugins import Param, loss


@loss(name="red_only", description="Error of the red channel only, to a power",
      params={"power": Param(2.0, min=1.0, max=4.0, description="exponent of the red difference")})
def red_only(render, target, ctx):
    return ((render[..., 0] - target[..., 0]).abs() ** ctx.params["power"]).mean()
'''


def losses_of(snap) -> dict[str, dict[str, float]]:
    return {name: dict(params) for name, _, _, params in snap.losses}


def test_a_plugin_losses_params_become_sliders_that_reach_the_engine(session_app, tmp_path):
    from studio.optim.plugins import MANAGER

    (tmp_path / "red_only.py").write_text(PLUGIN)
    app = session_app
    before = app.ws.opts
    try:
        app.load(replace(before, scene="cube", resolution=48, mesh=None, target=None, mask=None,
                         plugin_dirs=[str(tmp_path)]))  # what `studio --plugins DIR` does
        assert wait_for(app, lambda s: app.ws.opts.plugin_dirs == [str(tmp_path)] and not app._loading, 120)
        dpg.set_value(app.side_tabs, app.loss_tab)
        assert pump(app, lambda: "red_only" in app.loss_panel.choice.items, timeout=5)
        app.loss_panel.choice.edit("red_only")
        xdo = Xdo(app)
        xdo.click_item(app.loss_panel.add.rect())
        assert wait_for(app, lambda s: "red_only" in losses_of(s), 30), "Add loss did not put the plugin in use"
        assert pump(app, lambda: "red_only" in app.loss_panel.rows, timeout=5)
        slider = app.loss_panel.rows["red_only"].params["power"]
        cfg = dpg.get_item_configuration(slider.item)
        assert (cfg["min_value"], cfg["max_value"], slider.value) == (1.0, 4.0, 2.0), "the declared Param"
        x, y, w, h = slider.rect()
        xdo.drag(x + w // 2, y + h // 2, x + w - 4, y + h // 2)
        snap = wait_for(app, lambda s: losses_of(s)["red_only"]["power"] > 3.5, 30)
        assert snap is not None, "dragging the power slider did not reach the engine"
        assert slider.value == pytest.approx(losses_of(snap)["red_only"]["power"], abs=1e-4)
        app.ws.engine.step(1)
        snap = wait_for(app, lambda s: s.step == 1, 30)
        assert np.isfinite(snap.loss_terms["red_only"]), "the plugin term takes part in the step"
    finally:
        dpg.set_value(app.side_tabs, app.params_tab)
        MANAGER.unload()  # forget the temporary folder (the project's plugins come back at the next load)
        app.load(replace(before, plugin_dirs=[]))
        assert wait_for(app, lambda s: not app._loading and app.ws.opts.plugin_dirs == [], 120)
