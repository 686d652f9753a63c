"""Loading and switching scenes: building a workspace in the background and attaching it.

A mixin of :class:`studio.gui.app.App` (kept apart, like :mod:`studio.gui.file_actions`, so the
window's set-up and loop stay readable): it uses the app's jobs, panels, toolbar, status messages
(``report``/``fail``) and screenshot settings.  Building runs on a job thread under the watchdog;
the current scene keeps running until the new one is ready, and a failed build leaves it as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import dearpygui.dearpygui as dpg

from ..optim.engine import WATCHDOG_S, Engine
from ..optim.watchdog import run_guarded
from ..reconstruct.run import build_capture_workspace, looks_like_capture
from ..render.modes import SHADED
from ..workspace import Options, build_engine
from .loss_panel import LossPanel
from .params_panel import ParamsPanel
from .startup import LoadingProgress
from .status import INFO, WARNING
from .toolbar import DEFAULT_DEVICE


@dataclass
class Workspace:
    """What is loaded: the options it was built from, the scene and its engine."""

    opts: Options
    scene: Any
    engine: Engine



class SceneLoading:
    """Loading, reloading and switching what the window shows (see the module docstring)."""

    ws: Any

    def load(self, opts: Options, then: Callable[[], None] | None = None,
             prepare: Callable[[Engine], None] | None = None, what: str | None = None) -> None:
        """Build ``opts`` in the background; the current scene keeps running until it is ready.
        ``prepare(engine)`` runs on the new engine before it replaces the current one (e.g. restoring
        a session): when it fails, the current scene and run stay.  ``what`` names a file loaded into
        the scene (a mesh, a target image) for the status bar."""
        if self._loading:
            self.report("a scene is still loading; try again in a moment.", INFO)
            return
        self._loading = True
        scene_name = Path(opts.scene).stem
        if what:
            self.report(f"loading {what} into {scene_name}...", INFO)
        else:
            self.status.say(f"loading {scene_name}...", INFO)
        self._sync_pickers(opts)  # the toolbar shows what is being loaded, not the old scene

        def done(result: tuple) -> None:
            self._loading = False
            scene, engine, notes = result
            self._attach(Workspace(opts, scene, engine), notes, what)
            if then is not None:
                then()

        def failed(exc: BaseException) -> None:
            self._loading = False
            self.fail(f"loading {Path(opts.scene).stem}", exc)
            if self.ws is None:
                self.loading_text.value = "No scene is loaded: pick one in the toolbar."
                if self.screenshot_path is not None:
                    self.quit(2)
            else:
                self._sync_pickers(self.ws.opts)

        self.loading = LoadingProgress()
        make = build_capture_workspace if looks_like_capture(opts.scene) else build_engine

        def build() -> tuple:
            # Plugin files are imported here: one stuck in a loop is reported, not waited for.
            result = run_guarded(lambda: make(opts, self.loading.report), WATCHDOG_S,
                                 "importing plugins and building the scene")
            if prepare is not None:
                prepare(result[1])  # the worker is not started yet: this runs right here
            return result

        self.jobs.run(build, done, failed)

    def _attach(self, ws: Workspace, notes: list[str], what: str | None = None) -> None:
        old = self.ws
        if old is not None:
            self.jobs.run(old.engine.stop, lambda _: None, lambda exc: self.fail("stopping the old run", exc))
            for panel in (self.params_panel, self.loss_panel):
                if panel is not None:
                    panel.destroy()
        self.stop_recording()  # a video shows one run
        self.ws, self.opts, self._snap, self._engine_message = ws, ws.opts, None, None
        self._seen_running = False
        self.loading_text.value = ""
        self.params_panel = ParamsPanel(self.params_tab, ws.scene.params, ws.engine)
        self.loss_panel = LossPanel(self.loss_tab, ws.engine, self.report)
        self.images.attach(tuple(ws.scene.resolution), ws.scene.num_views, ws.scene.params)
        self._relayout()  # the pictures' whole-number scale depends on the resolution
        self.plots.clear()
        self.recorder.clear()
        self.log_panel.forget_events()
        self.teaching.attach(ws.scene, ws.engine)
        self.capture_panel.attach(ws.scene)
        if getattr(ws.scene, "capture", None) is not None:
            dpg.set_value(self.side_tabs, self.capture_tab)
        spec = ws.scene.spec
        self._sync_pickers(ws.opts)
        be = ws.scene.backend
        self.report(f"loaded {what + ' into ' if what else ''}{spec.name} ({be.name}"
                    f"{' compiled' if getattr(be, 'compiled', False) else ''} on {be.device}).", INFO)
        for note in notes:
            self.report(str(note), WARNING, getattr(note, "details", ""))
        ws.engine.start_thread()
        if self.images.mode.value != SHADED:
            ws.engine.set_display_mode(self.images.mode.value)
        if self.screenshot_path is not None and self.after_steps > 0:
            ws.engine.start(until=self.after_steps)
        elif self.autorun:
            self._start(ws.engine)
        self.toolbar.update(self.autorun, True)

    def _sync_pickers(self, opts: Options) -> None:
        name = Path(opts.scene).stem if opts.scene.endswith(".toml") else opts.scene
        if name not in self.toolbar.scenario.items:
            self.toolbar.scenario.items = self.toolbar.scenario.items + [name]
        self.toolbar.scenario.value = name
        self.toolbar.backend.value = opts.backend
        self.toolbar.device.value = opts.device or DEFAULT_DEVICE

    def _reload_with(self, what: str | None = None, **changes: Any) -> None:
        self.load(replace(self.ws.opts if self.ws is not None else self.opts, **changes), what=what)

    def choose_scenario(self, name: str) -> None:
        if self.ws is not None and name != self.ws.opts.scene:
            self._reload_with(scene=name, mesh=None, target=None, mask=None)

    def choose_backend(self, backend: str) -> None:
        self._reload_with(backend=backend)

    def choose_device(self, device: str) -> None:
        self._reload_with(device=None if device == DEFAULT_DEVICE else device)

    def open_capture(self, path: Path) -> None:
        """Reconstruct the capture in this folder (NeRF transforms*.json or a COLMAP model)."""
        self.report(f"opening the capture {path.name}...", INFO)
        self._reload_with(scene=str(path), mesh=None, target=None, mask=None)

    def restart_engine(self, disable: str | None) -> None:
        """Abandon the stuck worker and go on from the last good state in a new engine, with the
        loss ``disable`` switched off."""
        if self.ws is None:
            return
        engine = self.ws.engine.restarted([disable] if disable else [])
        self._attach(Workspace(self.ws.opts, self.ws.scene, engine), [])
        self.report(f"restarted from the last good state (step {engine.step_count})"
                    + (f" with loss {disable!r} disabled." if disable else "."), INFO)
