"""The File menu's actions: loading meshes, targets and sessions, exports, and recording a video.

A mixin of :class:`studio.gui.app.App` (kept apart so the window's set-up and loop stay readable):
it uses the app's workspace (``ws``), jobs, dialogs, menu, status messages (``report``/``fail``)
and the snapshot on screen.  Slow work runs on job threads; anything that needs the scene runs on
the engine's worker through ``Engine.submit``.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import dearpygui.dearpygui as dpg

from . import exports
from .errors import user_errors
from .recording import Recording
from .status import INFO

log = logging.getLogger("studio.gui")

RECORD, STOP_RECORDING = "Record video...", "Stop recording video"


class FileActions:
    """What File > ... does (see the module docstring for what it expects of the app)."""

    ws: Any
    recording: Recording | None

    def load_mesh(self, path: Path) -> None:
        """Use this mesh file as the shape the targets show (see Options.mesh)."""
        self._reload_with(what=path.name, mesh=str(path))

    def load_target(self, path: Path) -> None:
        """Fit this photograph (view 0) instead of the synthetic target."""
        self._reload_with(what=path.name, target=str(path), mask=None)

    def save_session(self, path: Path) -> None:
        from .. import session

        if self.ws is None:
            self.report("no scene is loaded yet, so there is no session to save.", INFO)
            return
        ws = self.ws

        def save() -> Path:
            state = session.capture(ws.engine)
            meta = {**session.scene_meta(ws.engine, ws.opts.scene), "mesh": ws.opts.mesh, "target": ws.opts.target}
            return session.write_session(path, state, meta)

        self.jobs.run(save, lambda p: self.report(f"saved the session to {p}.", INFO),
                      lambda exc: self.fail("saving the session", exc))

    def load_session(self, path: Path) -> None:
        """Read the file off the GUI thread, reopen its scene if it differs, then restore the run."""
        from .. import session

        def restored(_: Any) -> None:
            self.recorder.clear()
            self.report(f"loaded the session {path.name}.", INFO)

        def restore(state: dict) -> None:
            fut = self.ws.engine.submit(lambda e: e.load_state_dict(state))
            self.jobs.watch(fut, restored, lambda exc: self.fail("loading the session", exc))

        def opened(result: tuple[dict, dict]) -> None:
            meta, state = result
            cur = self.ws.opts if self.ws is not None else self.opts
            res = meta.get("resolution")
            want = replace(cur, scene=meta.get("scene", cur.scene), mesh=meta.get("mesh"), target=meta.get("target"),
                           resolution=tuple(res) if res else cur.resolution)
            same = self.ws is not None and (want.scene, want.mesh, want.target) == (cur.scene, cur.mesh, cur.target) \
                and list(self.ws.scene.resolution) == list(res or self.ws.scene.resolution)
            if same:
                restore(state)  # all or nothing: a state that does not fit leaves the run as it was
            else:  # restored into the new engine before it replaces the current run
                self.load(want, then=lambda: restored(None), prepare=lambda e: e.load_state_dict(state))

        self.jobs.run(lambda: session.read_session(path), opened, lambda exc: self.fail("loading the session", exc))

    def _export(self, what: str, write: Callable[[], Path]) -> None:
        self.jobs.run(write, lambda p: self.report(f"exported the {what} to {p}.", INFO),
                      lambda exc: self.fail(f"exporting the {what}", exc))

    def export_png(self, path: Path) -> None:
        snap = self._snap
        if snap is None:
            self.report("there is no render yet.", INFO)
            return
        self._export("render", lambda: exports.write_render_png(path, snap))

    def export_csv(self, path: Path) -> None:
        snap = self._snap
        if snap is None:
            self.report("there are no curves yet.", INFO)
            return
        self._export("curves", lambda: exports.write_curves_csv(path, snap.history))

    def export_video(self, path: Path) -> None:
        frames = list(self.recorder.frames)
        self._export("progress video", lambda: exports.write_video(path, frames))

    def toggle_recording(self) -> None:
        """Record video... asks for a file and starts; while recording the same item stops."""
        if self.recording is None:
            self.dialogs["video"].open()
        else:
            self.stop_recording()

    def start_recording(self, path: Path) -> None:
        """Record target | render | difference over the curves, one frame every K steps, to ``path``."""
        if self.ws is None:
            self.report("no scene is loaded yet.", INFO)
            return
        self.recording = Recording(path, self.ws.engine.config.steps)
        dpg.configure_item(self.menu[RECORD], label=STOP_RECORDING)
        self.recording.add(self._snap)
        note = f"; {self.recording.video.writer.note}" if self.recording.video.writer.note else ""
        self.report(f"recording {self.recording.path.name}: one frame every {self.recording.video.every} steps; "
                    f"File > Export > {STOP_RECORDING} finishes it{note}", INFO)

    def finish_recording(self) -> None:
        """Finish a recording now (the window closes); a recording without frames leaves no file."""
        rec, self.recording = self.recording, None
        if rec is not None:
            try:
                rec.stop(self._snap)
            except user_errors() as exc:
                log.info("%s", exc)

    def stop_recording(self) -> None:
        rec, self.recording = self.recording, None
        if rec is None:
            return
        dpg.configure_item(self.menu[RECORD], label=RECORD)
        self.jobs.run(lambda: rec.stop(self._snap),
                      lambda p: self.report(f"wrote the video {p} ({rec.video.writer.frames_written} frames).", INFO),
                      lambda exc: self.fail("recording the video", exc))

    def export_obj(self, path: Path) -> None:
        if self.ws is None:
            self.report("no scene is loaded yet.", INFO)
            return
        fut = self.ws.engine.submit(exports.fitted_mesh)
        self.jobs.watch(fut, lambda mesh: self._export("mesh", lambda: exports.write_mesh_obj(path, mesh)),
                        lambda exc: self.fail("exporting the mesh", exc))

    def open_dataset_export(self) -> None:
        """File > Export dataset...: the dialog, set to the loaded scene when it can be exported."""
        opts = self.ws.opts if self.ws is not None else self.opts
        self.export_dialog.open(self.ws.scene.spec if self.ws is not None else None, opts.backend, opts.device)
