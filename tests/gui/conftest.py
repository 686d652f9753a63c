"""GUI tests: the real studio window on a virtual screen (Xvfb), driven by engine commands and by
real X input events (xdotool), checked by looking at pixels.

Every test module here is marked ``gui`` and skips cleanly when no window can be opened (no Xvfb and no
display, no OpenGL, no xdotool).  One window is shared by the whole session (opening it costs a
second or two); each test starts from a paused, reset run.
"""

from __future__ import annotations

import shutil

import pytest

from studio.gui.testing import gui_unavailable, virtual_display, wait_for

SCENE = "cube"
RES = 64


@pytest.fixture(scope="session")
def display():
    problem = gui_unavailable()
    if problem:
        pytest.skip(f"GUI tests need a display: {problem}")
    if shutil.which("xdotool") is None:
        pytest.skip("GUI tests need xdotool for real input events (apt-get install xdotool)")
    with virtual_display(1920, 1200) as name:
        from studio.gui.display import display_problem

        problem = display_problem()
        if problem:
            pytest.skip(f"GUI tests need OpenGL: {problem}")
        yield name


@pytest.fixture(scope="session")
def session_app(display):
    from studio.gui.app import App
    from studio.workspace import Options

    app = App(Options(scene=SCENE, resolution=RES, backend="torch", device="cpu")).open()
    app.idle_fps = 60.0  # the tests wait on the window often: no need to idle between checks
    try:
        assert wait_for(app, lambda s: True, timeout=120) is not None, "the studio did not load the scene"
        yield app
    finally:
        app.close()


@pytest.fixture
def app(session_app):
    """The shared window, paused at step 0 of a fresh run in shaded mode."""
    app = session_app
    if app.ws.opts.scene != SCENE or app.ws.opts.mesh or app.ws.opts.target:
        from dataclasses import replace

        app.load(replace(app.ws.opts, scene=SCENE, mesh=None, target=None, mask=None, resolution=RES))
        assert wait_for(app, lambda s: app.ws.opts.scene == SCENE and not app._loading, 60)
    if app.images.mode.value != "shaded":
        app.images.mode.value = "shaded"
        app.choose_mode("shaded")
    app.ws.engine.reset()
    snap = wait_for(app, lambda s: s.step == 0 and not s.running and s.display_mode == "shaded", 30)
    assert snap is not None
    return app
