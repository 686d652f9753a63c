"""The studio window when things go wrong (issue 17): a bad session file leaves the current run as
it was, and a stuck loss gets a prompt that disables it and restarts from the last good state."""

from __future__ import annotations

import json
import threading
import zipfile

import pytest

from studio.gui.testing import grab, pump, wait_for
from studio.optim.engine import WATCHDOG_S
from studio.optim.losses import REGISTRY, loss

pytestmark = pytest.mark.gui


def _tampered(src, dst, meta=None, state=None):
    with zipfile.ZipFile(src) as z:
        content = {n: z.read(n) for n in z.namelist()}
    doc = json.loads(content["session.json"])
    doc.update(meta or {})
    doc["state"].update(state or {})
    content["session.json"] = json.dumps(doc).encode()
    with zipfile.ZipFile(dst, "w") as z:
        for n, data in content.items():
            z.writestr(n, data)
    return dst


@pytest.mark.parametrize("meta", [{}, {"scene": "pose"}], ids=["same scene", "another scene"])
def test_a_bad_session_file_leaves_the_current_run_as_it_was(app, tmp_path, meta):
    app.ws.engine.step(4)
    assert wait_for(app, lambda s: s.step == 4 and not s.running, 60)
    good = tmp_path / "good.studio"
    app.save_session(good)
    assert pump(app, lambda: good.exists() and not app.jobs.busy, timeout=30), app.messages
    engine = app.ws.engine
    bad = _tampered(good, tmp_path / "bad.studio", meta, {"step": "x"})
    app.load_session(bad)
    assert pump(app, lambda: "must be a whole number" in (app.messages[-1] if app.messages else ""), timeout=120), \
        app.messages
    assert app.ws.engine is engine and app.ws.opts.scene == "cube", "the current run was replaced"
    snap = wait_for(app, lambda s: True, 10)
    assert snap.step == 4 and len(snap.history["step"]) == 4


def test_a_stuck_loss_gets_a_prompt_that_disables_it_and_restarts(app, tmp_path):
    release = threading.Event()

    @loss("test_gui_stuck")
    def stuck(render, target, ctx):
        if ctx.iteration >= 2:
            release.wait(120)  # stands for a plugin's `while True:` (released at the end)
        return (render[..., :3] - target[..., :3]).abs().mean()

    old = app.ws.engine
    try:
        old.set_losses([("l2", 1.0, {}), ("test_gui_stuck", 1.0, {})])
        old.config.watchdog_s = 3.0  # above a slow first step on a busy machine
        old.start()
        # A busy machine may make a render slow enough to be reported first: wait for the loss.
        assert pump(app, lambda: app.stall_prompt.visible and app.stall_prompt.stall.stage.loss == "test_gui_stuck",
                    timeout=60), app.messages
        assert app.stall_prompt.text.value.startswith("loss 'test_gui_stuck' from ")
        assert app.stall_prompt.restart_button.label == "Disable 'test_gui_stuck' and restart from step 2"
        grab(app, tmp_path / "stall_prompt.png")
        app.stall_prompt.restart()
        assert app.ws.engine is not old and not app.stall_prompt.visible
        snap = wait_for(app, lambda s: s.step == 2 and dict((n, on) for n, _, on, _ in s.losses)
                        == {"l2": True, "test_gui_stuck": False}, 60)
        assert snap is not None, app.messages
        assert "restarted from the last good state (step 2) with loss 'test_gui_stuck' disabled." in app.messages
        app.ws.engine.step(3)
        assert wait_for(app, lambda s: s.step == 5 and not s.running, 60), "the new engine does not step"
    finally:
        release.set()
        if not app.ws.engine.alive:  # failed halfway: leave the shared window a working engine
            app.restart_engine(None)
        app.ws.engine.config.watchdog_s = WATCHDOG_S
        app.ws.engine.set_losses([("l2", 1.0, {})])
        wait_for(app, lambda s: len(s.losses) == 1, 30)
        REGISTRY.unregister("test_gui_stuck")
