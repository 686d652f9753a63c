"""The studio window: Dear PyGui set-up, our own render loop, layout, and the action behind each control.

Threads (DESIGN.md): Dear PyGui and every callback run on the main thread.  Callbacks are queued
by Dear PyGui (``configure_app(manual_callback_management=True)``) and drained by :meth:`App.frame`,
which then reads the engine's latest snapshot once (``Engine.latest``, never blocking), updates
textures, curves and controls only when the snapshot is new, renders one frame and sleeps to the
frame budget.  The engine's worker thread never calls Dear PyGui; edits reach it as commands.
Slow work (building a scene, file I/O) runs on :class:`~studio.gui.jobs.Jobs` threads and comes
back through the same loop.
"""

from __future__ import annotations

import argparse
import inspect
import logging
import sys
import time
import traceback
from collections import deque
from pathlib import Path
from typing import Any, Callable

import dearpygui.dearpygui as dpg
import torch

from ..optim.engine import Engine, Snapshot
from ..paths import user_path
from ..scenarios import DEFAULT_SCENARIO, list_scenarios, scenario_path
from ..reconstruct.run import looks_like_capture
from ..workspace import Options, parse_resolution
from . import exports, theme
from .capture_panel import CapturePanel, export_reconstruction
from .compare_window import CompareWindow
from .controls import Control, Text
from .dialogs import FileDialog
from .display import HEADLESS_HINT, display_problem
from .errors import one_sentence, user_errors
from .export_dialog import ExportDialog
from .images import ImageRow
from .jobs import Jobs
from .loss_panel import LossPanel
from .params_panel import ParamsPanel
from .plots import Plots
from .file_actions import RECORD, FileActions
from .recording import Recording
from .scene_loading import SceneLoading, Workspace
from .startup import LoadingProgress, prewarm_imports
from .status import ERROR, INFO, WARNING, LogPanel, StatusBar
from .teaching_panel import TeachingActions, TeachingPanel
from .toolbar import Toolbar, ToolbarActions
from .watchdog_prompt import StallPrompt

log = logging.getLogger("studio.gui")

TITLE = "Differentiable Rendering Studio"
#: Frames per second.  While the user moves the mouse or drags: smooth.  While the optimiser runs,
#: snapshots come at most 30 times a second, and a few more frames than that keep the window smooth
#: while leaving the CPU to the optimiser.  Otherwise the window only has to notice input.
INTERACTIVE_FPS = 60.0
RUNNING_FPS = 32.0
IDLE_FPS = 20.0
_INTERACTION_S = 0.5  # how long after the last mouse movement the window counts as in use
MESH_TYPES = [(".obj", "OBJ"), (".ply", "PLY"), (".stl", "STL"), (".off", "OFF"), (".glb", "glTF binary"),
              (".gltf", "glTF")]
IMAGE_TYPES = [(".png", "PNG"), (".jpg", "JPEG"), (".jpeg", "JPEG")]
SESSION_TYPES = [(".studio", "studio session")]

# Layout constants (pixels at Dear ImGui's default font).
_TOP = 58  # menu bar + toolbar
_STATUS = 26
_PAD = 8
_LEGEND_W = 74
_IMAGE_EXTRA = 56  # caption + render-mode row under the pictures
_PLOT_BAR = 28


class FrameClock:
    """Paces the render loop to a frame budget and measures frames per second."""

    def __init__(self) -> None:
        self._stamps: deque[float] = deque(maxlen=600)
        self._next = time.perf_counter()
        self.frames = 0

    def tick(self, max_fps: float) -> None:
        now = time.perf_counter()
        self._stamps.append(now)
        self.frames += 1
        self._next = max(self._next + 1.0 / max_fps, now - 0.5 / max_fps)
        wait = self._next - now
        if wait > 0:
            time.sleep(wait)

    @property
    def fps(self) -> float:
        """Frames in the last second."""
        if len(self._stamps) < 2:
            return 0.0
        last = self._stamps[-1]
        recent = [t for t in self._stamps if last - t <= 1.0]
        return (len(recent) - 1) / max(recent[-1] - recent[0], 1e-6)


class App(FileActions, SceneLoading):
    """The studio window over one :class:`Workspace` at a time.

    Args:
        opts: what to load first.
        run: start optimising as soon as the scene is loaded.
        screenshot: save a screenshot of the window to this PNG and quit, after ``after_steps``
            optimisation steps (which then run even without ``run``).
        width, height: initial window size.
    """

    def __init__(self, opts: Options, *, run: bool = False, screenshot: str | Path | None = None, after_steps: int = 0,
                 width: int = 1280, height: int = 800):
        self.opts = opts
        self.autorun = run
        self.screenshot_path = user_path(screenshot) if screenshot else None
        self.after_steps = max(0, int(after_steps))
        self.size = (width, height)
        self.ws: Workspace | None = None
        self.jobs = Jobs()
        self.clock = FrameClock()
        self.recorder = exports.FrameRecorder()
        self.recording: Recording | None = None  # File > Export > Record video, while it records
        self.params_panel: ParamsPanel | None = None
        self.loss_panel: LossPanel | None = None
        self.messages: list[str] = []  # every sentence shown in the status bar, oldest first
        self.exit_code = 0
        self.opened_at = time.perf_counter()
        self.visible_after: float | None = None  # seconds from App() to the first frame on screen
        self.ready_after: float | None = None  # seconds from App() to the first snapshot shown
        self.picture_after: float | None = None  # seconds from App() to the first picture (a target view)
        self.loading = LoadingProgress()
        self._loading = False
        self._quit = False
        self._snap: Snapshot | None = None
        self._engine_message: str | None = None
        self._laid_out: tuple[int, int] | None = None
        self._status_at = 0.0
        self._seed = 0
        self._shot: dict[str, Any] = {}
        self._seen_running = False
        self._mouse: tuple = ()
        self._interacted_at = 0.0
        self.idle_fps = IDLE_FPS  # scripts that drive the window (tests) may want it faster
        self._show_error = ""
        self._dead: Engine | None = None  # the engine whose dead worker was reported

    # ------------------------------------------------------------------ set-up

    def open(self) -> "App":
        """Create the window and start loading ``opts`` in the background."""
        dpg.create_context()
        dpg.configure_app(manual_callback_management=True)
        dpg.bind_theme(theme.studio_theme())
        self._build()
        w, h = self.size
        dpg.create_viewport(title=TITLE, width=w, height=h, min_width=900, min_height=600, vsync=True, resizable=True,
                            clear_color=theme.BACKGROUND)
        dpg.setup_dearpygui()
        dpg.show_viewport()
        self.load(self.opts)
        return self

    def _build(self) -> None:
        actions = ToolbarActions(self.toggle_run, self.step, self.reset, self.randomize, self.choose_scenario,
                                 self.choose_backend, self.choose_device)
        scenarios = [i.name for i in list_scenarios()]
        # Not a "primary window": that one always paints its background, and with software OpenGL
        # (Xvfb, VMs) filling every pixel twice per frame costs the optimiser more than all widgets
        # together.  This window is transparent over the viewport's clear colour and sized by _layout.
        with dpg.window(pos=(0, 0), no_title_bar=True, no_move=True, no_resize=True, no_collapse=True,
                        no_background=True, no_scrollbar=True, no_scroll_with_mouse=True,
                        no_bring_to_front_on_focus=True) as self.window:
            self._build_menu()
            self.toolbar = Toolbar(self.window, actions, scenarios)
            self.toolbar.update(running=False, ready=False)  # until a scene is loaded
            body = dpg.add_group(horizontal=True, parent=self.window)
            # Scrolls only when the user asks for a display factor larger than the window.
            self.left = dpg.add_child_window(parent=body, border=False, horizontal_scrollbar=True, width=800,
                                             height=600)
            self.images = ImageRow(self.left, on_mode=self.choose_mode, on_view=self.choose_view,
                                   on_derivative=self.choose_derivative, on_display=self._relayout)
            dpg.add_spacer(height=2, parent=self.left)
            self.plots = Plots(self.left)
            self.side = dpg.add_child_window(parent=body, border=True, width=400, height=600)
            with dpg.tab_bar(parent=self.side) as self.side_tabs:
                self.params_tab = dpg.add_tab(label="Parameters")
                self.loss_tab = dpg.add_tab(label="Losses")
                self.teaching_tab = dpg.add_tab(label="Teaching")
                self.capture_tab = dpg.add_tab(label="Capture")
                self.log_tab = dpg.add_tab(label="Log")
            self.loading_text = Text("loading the scene...", parent=self.params_tab, color=(150, 150, 150))
            self.teaching = TeachingPanel(self.teaching_tab, TeachingActions(self.set_option, self.show_mode,
                                                                             self.open_compare))
            self.log_panel = LogPanel(self.log_tab)
            self.capture_panel = CapturePanel(self.capture_tab, self.choose_view, self.export_reconstruction)
            self.status = StatusBar(self.window)
        self.compare_window = CompareWindow(self.jobs, self.report, self.fail)
        self.export_dialog = ExportDialog(self.jobs, self.report, self.fail)
        self.stall_prompt = StallPrompt(self.restart_engine)
        self.dialogs = {
            "mesh": FileDialog("Load mesh", MESH_TYPES, self.load_mesh),
            "target": FileDialog("Load target image", IMAGE_TYPES, self.load_target),
            "save": FileDialog("Save session", SESSION_TYPES, self.save_session, save=True, default_name="session"),
            "open": FileDialog("Load session", SESSION_TYPES, self.load_session),
            "capture": FileDialog("Open capture (NeRF or COLMAP folder)", [], self.open_capture, directory=True),
            "png": FileDialog("Export render", [(".png", "PNG")], self.export_png, save=True, default_name="render"),
            "obj": FileDialog("Export mesh", [(".obj", "OBJ")], self.export_obj, save=True, default_name="mesh"),
            "csv": FileDialog("Export curves", [(".csv", "CSV")], self.export_csv, save=True, default_name="curves"),
            "gif": FileDialog("Export progress video", [(".gif", "GIF")], self.export_video, save=True,
                              default_name="progress"),
            "video": FileDialog("Record video", [(".mp4", "MP4"), (".gif", "GIF")], self.start_recording, save=True,
                                default_name="run"),
        }
        with dpg.handler_registry():
            dpg.add_key_press_handler(dpg.mvKey_Spacebar, callback=lambda *a: self._key(self.toggle_run))
            dpg.add_key_press_handler(dpg.mvKey_S, callback=lambda *a: self._key(self.step))
            dpg.add_key_press_handler(dpg.mvKey_R, callback=lambda *a: self._key(self.reset))

    def _build_menu(self) -> None:
        self.menu: dict[str, int] = {}  # label -> menu or menu item (for tests that click them)

        def item(label: str, action: Callable[[], None], shortcut: str = "") -> None:
            self.menu[label] = dpg.add_menu_item(label=label, shortcut=shortcut, callback=lambda *a: action())

        with dpg.menu_bar():
            with dpg.menu(label="File") as self.menu["File"]:
                item("Load mesh...", lambda: self.dialogs["mesh"].open())
                item("Load target image...", lambda: self.dialogs["target"].open())
                item("Open capture...", lambda: self.dialogs["capture"].open())
                dpg.add_separator()
                item("Save session...", lambda: self.dialogs["save"].open())
                item("Load session...", lambda: self.dialogs["open"].open())
                dpg.add_separator()
                with dpg.menu(label="Export"):
                    item("Render (PNG)...", lambda: self.dialogs["png"].open())
                    item("Mesh (OBJ)...", lambda: self.dialogs["obj"].open())
                    item("Curves (CSV)...", lambda: self.dialogs["csv"].open())
                    item("Progress video (GIF)...", lambda: self.dialogs["gif"].open())
                    item(RECORD, self.toggle_recording)
                item("Export dataset...", self.open_dataset_export)
                dpg.add_separator()
                item("Quit", self.quit)
            with dpg.menu(label="Run"):
                item("Start / Pause", self.toggle_run, "Space")
                item("Step", self.step, "S")
                item("Reset", self.reset, "R")
                item("Randomise initial guess", self.randomize)

    # ------------------------------------------------------------------ the loop

    def frame(self) -> bool:
        """Drain callbacks, show the newest snapshot, render one frame.  False once the window closed."""
        if self._quit or not dpg.is_dearpygui_running():
            return False
        self._dispatch(dpg.get_callback_queue())
        self.jobs.poll()
        self.compare_window.poll()
        self.export_dialog.poll()
        self._layout()
        if self._loading:
            self._safely("showing the loading scene", self._show_loading)
        snap = self.ws.engine.latest() if self.ws is not None else None
        now = time.perf_counter()
        # Step-through holds back the snapshot of a recorded step until its update stage is shown.
        if snap is not None and snap is not self._snap and not self.teaching.step_through.holds(snap):
            self._safely("showing the latest step", self._show, snap)
            self._status_at = -1.0
        if now - self._status_at > 0.25:
            self._status_at = now
            self._safely("updating the status bar", self._show_figures)
            self._safely("updating the controls", self._sync_controls)
            self._safely("checking the optimiser", self._check_worker)
        dpg.render_dearpygui_frame()
        if self.visible_after is None:
            self.visible_after = time.perf_counter() - self.opened_at
            log.debug("window visible after %.2f s", self.visible_after)
        if self.screenshot_path is not None:
            self._screenshot_step()
        self.clock.tick(self._frame_budget())
        return not self._quit

    def _frame_budget(self) -> float:
        if self._snap is not None and self._snap.running:
            return RUNNING_FPS
        mouse = (tuple(dpg.get_mouse_pos(local=False)), dpg.is_mouse_button_down(dpg.mvMouseButton_Left))
        now = time.perf_counter()
        if mouse != self._mouse:
            self._mouse, self._interacted_at = mouse, now
        return INTERACTIVE_FPS if now - self._interacted_at < _INTERACTION_S or mouse[1] else self.idle_fps

    def run(self) -> int:
        """Frames until the window is closed (or the screenshot is saved); returns the exit code."""
        while self.frame():
            pass
        return self.exit_code

    def close(self) -> None:
        self.finish_recording()
        for job in (self.compare_window.job.progress, self.export_dialog.job.progress):
            if job is not None:
                job.cancel.set()  # a comparison or an export must not outlive the window
        if self.ws is not None:
            self.ws.engine.stop()
            self.ws = None
        self.jobs.shutdown()
        dpg.destroy_context()
        theme.forget()

    def quit(self, code: int = 0) -> None:
        self.exit_code = code
        self._quit = True

    def _safely(self, what: str, fn: Callable[..., None], *args: Any) -> None:
        """Run a per-frame update; a bug in it is reported once (not every frame) and the window,
        and the run, go on."""
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - a display bug must not close the window or lose the run
            if str(exc) != self._show_error:
                self._show_error = str(exc)
                self.fail(what, exc)

    def _dispatch(self, queue: list | None) -> None:
        for job in queue or ():
            callback = job[0]
            if callback is None:
                continue
            try:
                n = len(inspect.signature(callback).parameters)
                callback(*job[1:1 + n])
            except Exception as exc:  # noqa: BLE001 - one sentence in the status bar, the session goes on
                self.fail("that action", exc)

    def _show(self, snap: Snapshot) -> None:
        """Bring every widget up to date with a new snapshot."""
        first = self._snap is None
        self._snap = snap  # first: a failing widget update must not make the loop retry this snapshot
        self.images.update(snap)
        self.plots.update(snap)
        self.capture_panel.update(snap)
        self._sync_controls()
        self.log_panel.add_events(snap.events)
        if snap.message != self._engine_message:
            self._engine_message = snap.message
            if snap.message:
                self.status.say(snap.message, WARNING)
                self.messages.append(snap.message)
        if self.recording is not None:
            self.recording.add(snap)
        if snap.running:
            self._seen_running = True
            self.recorder.add(snap)
        elif snap.finished and self.ws is not None and snap.step == self.ws.engine.config.steps:
            self.status.say(f"reached the scene's budget of {snap.step} steps; Start runs on until Pause.", INFO)
        if first and self.ready_after is None:
            self.ready_after = time.perf_counter() - self.opened_at
            log.debug("first render shown after %.2f s", self.ready_after)
            # Not sooner: the import holds the interpreter, which the scene's first render needs.
            prewarm_imports()

    def _show_loading(self) -> None:
        """The loading scene's progress: its sentence in the status bar, its newest target view in
        the target pane (until the first snapshot of the new scene replaces it)."""
        news = self.loading.take()
        if news is None:
            return
        sentence, image = news
        self.status.say(sentence + "...", INFO)
        if image is not None and self.ws is None:
            self.images.preview(image, f"target ({sentence})")
            self._relayout()
            if self.picture_after is None:
                self.picture_after = time.perf_counter() - self.opened_at
                log.debug("first picture shown after %.2f s", self.picture_after)

    def _sync_controls(self) -> None:
        """Controls follow the snapshot on screen (again a few times a second, for a control that
        was being edited when its new value arrived)."""
        snap = self._snap
        if snap is None:
            return
        if self.params_panel is not None:
            self.params_panel.update(snap)
        if self.loss_panel is not None:
            self.loss_panel.update(snap)
        self.teaching.update(snap)
        self.toolbar.update(snap.running, True)

    def _show_figures(self) -> None:
        if self.ws is None:
            self.status.show(f"{self.clock.fps:.0f} fps")
            return
        s, scene = self._snap, self.ws.scene
        h, w = scene.resolution
        dev = scene.backend.device
        compiled = " compiled" if getattr(scene.backend, "compiled", False) else ""  # STUDIO_COMPILE=1
        parts = [scene.backend.name + compiled, str(dev), f"{w}x{h}"]
        if s is not None:
            parts += [f"step {s.step}/{self.ws.engine.config.steps}", f"{s.ms_per_step:.1f} ms/step",
                      f"{s.it_per_s:.1f} it/s"]
            if s.threads is not None:
                parts.append(f"{s.threads} thread{'s' if s.threads > 1 else ''}"
                             + (" (measuring)" if s.threads_measuring else ""))
        parts.append(f"{self.clock.fps:.0f} fps")
        if torch.device(dev).type == "cuda" and torch.cuda.is_initialized():
            parts.append(f"GPU {torch.cuda.memory_allocated(dev) / 2**20:.0f} MiB")
        self.status.show(" | ".join(parts))

    def _layout(self) -> None:
        w, h = dpg.get_viewport_client_width(), dpg.get_viewport_client_height()
        if (w, h) == self._laid_out or w <= 0 or h <= 0:
            return
        self._laid_out = (w, h)
        dpg.configure_item(self.window, width=w, height=h)
        body_h = max(200, h - _TOP - _STATUS - 2 * _PAD)
        side_w = int(min(max(0.3 * w, 360), 540))
        left_w = max(300, w - side_w - 3 * _PAD)
        img = int(min((left_w - _LEGEND_W - 4 * _PAD) / 3, 0.58 * body_h - _IMAGE_EXTRA))
        dpg.configure_item(self.left, width=left_w, height=body_h)
        dpg.configure_item(self.side, width=side_w, height=body_h)
        shown = self.images.set_size(max(64, img))
        plots_h = body_h - shown - _IMAGE_EXTRA - _PLOT_BAR - 3 * _PAD
        self.plots.set_size(left_w - _PAD, plots_h)

    def _relayout(self) -> None:
        """Lay the window out again on the next frame (the display factor changed)."""
        self._laid_out = None

    def _key(self, action: Callable[[], None]) -> None:
        """A keyboard shortcut, unless the user is typing into a field or a dialog is open or in use."""
        if any(d.visible for d in self.dialogs.values()) or self.export_dialog.folder_dialog.visible:
            return
        if any(dpg.is_item_focused(w) for w in (self.compare_window.window, self.export_dialog.window)):
            return
        controls: list[Control] = self.teaching.controls()
        for panel in (self.params_panel, self.loss_panel):
            if panel is not None:
                controls += panel.controls()
        if any(dpg.is_item_active(c.item) for c in controls):
            return
        action()

    # ------------------------------------------------------------------ messages

    def report(self, sentence: str, level: str = WARNING, details: str = "") -> None:
        """One sentence in the status bar; it and any details go to the Log tab."""
        self.messages.append(sentence)
        self.status.say(sentence, level)
        self.log_panel.add(sentence + (("\n" + details.rstrip()) if details else ""), level)
        (log.error if level == ERROR else log.info)(sentence)

    def fail(self, what: str, exc: BaseException) -> None:
        details = "" if isinstance(exc, user_errors()) else "".join(traceback.format_exception(exc))
        self.report(one_sentence(what, exc), ERROR, details)

    # ------------------------------------------------------------------ actions (GUI thread)

    def _engine_do(self, fn: Callable[[Engine], None]) -> None:
        if self.ws is None:
            self.report("no scene is loaded yet.", INFO)
            return
        fn(self.ws.engine)

    def toggle_run(self) -> None:
        """Start runs to the scenario's step budget (where its lesson's claims hold) and stops there;
        Start at or past the budget runs on until Pause.  Pause stops at once."""
        def toggle(e: Engine) -> None:
            running = self._snap.running if self._snap is not None else e.running
            if running:
                e.pause()
            else:
                self._start(e)
            self.toolbar.update(not running, True)
        self._engine_do(toggle)

    def _start(self, e: Engine) -> None:
        step = self._snap.step if self._snap is not None else 0
        e.start(until=e.config.steps if step < e.config.steps else None)

    def step(self) -> None:
        """One step; in step-through mode, the next stage of the step shown (see step_through)."""
        stepper = self.teaching.step_through
        self._engine_do(lambda e: stepper.step() if stepper.on else e.step(1))

    def reset(self) -> None:
        self.recorder.clear()
        self.plots.clear()
        self._engine_do(lambda e: e.reset())

    def randomize(self) -> None:
        """A new random initial guess (seeds differ from the scene's own, and from each other)."""
        self._seed += 1
        self.recorder.clear()
        self.plots.clear()
        self._engine_do(lambda e: e.randomize(e.config.seed + 1000 + self._seed))

    def choose_mode(self, mode: str) -> None:
        self._engine_do(lambda e: e.set_display_mode(mode))

    def show_mode(self, mode: str) -> None:
        """Put the render picture in ``mode`` as if the user had picked it under the pictures."""
        self.images.mode.value = mode
        self.choose_mode(mode)

    def choose_derivative(self, name: str, index: int) -> None:
        self._engine_do(lambda e: e.set_derivative(name, index))

    def set_option(self, key: str, value: Any) -> None:
        """A teaching switch: a render option (or ``restarts``) of the interactive run."""
        self._engine_do(lambda e: e.set_option(key, value))

    def open_compare(self) -> None:
        """The Compare window for the loaded scenario."""
        if self.ws is None:
            self.report("no scene is loaded yet.", INFO)
            return
        options = self._snap.options if self._snap is not None else dict(self.ws.scene.options)
        self.compare_window.open(self.ws.opts, self.ws.scene, self.ws.engine.config.steps, options)

    def choose_view(self, view: int) -> None:
        self._engine_do(lambda e: e.set_view(view))

    def export_reconstruction(self, folder: Path) -> None:
        """The files of ``studio reconstruct`` (mesh.glb, mesh.obj, summary.json, test/, curves.csv,
        turntable) for the reconstruction as it is now, written on the engine's thread."""
        if self.ws is None or self._snap is None or getattr(self.ws.scene, "capture", None) is None:
            self.report("no capture is open, so there is no reconstruction to export.", INFO)
            return
        fut = export_reconstruction(self.ws.engine, self._snap, folder)
        self.report(f"exporting the reconstruction to {folder}...", INFO)
        self.jobs.watch(fut, lambda s: self.report(f"exported the reconstruction to {folder} ({len(s['files'])} files).", INFO),
                        lambda exc: self.fail("exporting the reconstruction", exc))

    # ------------------------------------------------------------------ a stuck or dead worker

    def _check_worker(self) -> None:
        """Offer a way out of a stuck step, and say so when the worker is gone."""
        engine = self.ws.engine if self.ws is not None else None
        self.stall_prompt.update(engine.stalled if engine is not None else None)
        if engine is not None and engine.dead and engine is not self._dead:
            self._dead = engine
            last = engine.events()[-1].split("\n")[0] if engine.events() else "no message"
            self.report(f"the optimiser has stopped ({last.rstrip('.')}); reload the scene or load a saved session.",
                        ERROR)

    # ------------------------------------------------------------------ screenshot mode

    def _screenshot_step(self) -> None:
        """--screenshot: once the run reached --after-steps and its snapshot is on screen, save the
        frame buffer, then quit when the file is written."""
        shot = self._shot
        if "requested" in shot:
            shot["frames"] += 1
            path = self.screenshot_path
            if path.exists() and path.stat().st_size > 0:
                print(f"studio: saved a screenshot to {path}")
                self.quit(self.exit_code)
            elif shot["frames"] > 120:
                self.report(f"the screenshot {path} could not be written.", ERROR)
                self.quit(1)
            return
        snap = self._snap
        if snap is None:
            return
        done = snap.step >= self.after_steps and not snap.running
        stopped_early = self._seen_running and not snap.running and snap.step < self.after_steps
        if not (done or stopped_early):
            shot.pop("settle", None)
            return
        shot["settle"] = shot.get("settle", 0) + 1
        if shot["settle"] < 3:  # let textures and curves from this snapshot reach the screen
            return
        if stopped_early:
            self.exit_code = 1
        self.screenshot_path.parent.mkdir(parents=True, exist_ok=True)
        self.screenshot_path.unlink(missing_ok=True)
        dpg.output_frame_buffer(file=str(self.screenshot_path))
        shot.update(requested=True, frames=0)


def options_from_args(args: argparse.Namespace) -> Options:
    """The GUI's Options from ``studio gui`` arguments (or the bare ``studio`` command's defaults)."""
    return Options(scene=getattr(args, "scene", None) or DEFAULT_SCENARIO, backend=getattr(args, "backend", "auto"),
                   device=getattr(args, "device", None),
                   resolution=parse_resolution(args.res) if getattr(args, "res", None) else None,
                   seed=getattr(args, "seed", None), plugin_dirs=list(getattr(args, "plugins", None) or []),
                   render_options={"visibility": args.visibility} if getattr(args, "visibility", None) else {})


def run_gui(args: argparse.Namespace) -> int:
    """``studio`` / ``studio gui``: open the window (exit code 2 with one sentence when there is no display)."""
    t0 = time.perf_counter()
    problem = display_problem()
    if problem:
        print(f"studio: {problem}; {HEADLESS_HINT}.", file=sys.stderr)
        return 2
    opts = options_from_args(args)
    if not looks_like_capture(opts.scene):
        scenario_path(opts.scene)  # a misspelt scene name is a one-line error in the terminal, before any window
    app = App(opts, run=bool(getattr(args, "run", False)),
              screenshot=getattr(args, "screenshot", None), after_steps=getattr(args, "after_steps", 0) or 0)
    app.opened_at = t0
    app.open()
    try:
        return app.run()
    finally:
        app.close()
