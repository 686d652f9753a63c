"""Videos of a run and of a fitted scene: MP4 through imageio-ffmpeg, GIF when it is missing.

A run video shows, every K steps, target | render | difference over the error curves (per group,
log scale) and the loss curves, like the GUI's window.  Frames are streamed to the encoder as they
come (an MP4 never holds more than one frame in memory); the GIF fallback keeps at most
``MAX_GIF_FRAMES`` and thins them evenly, because Pillow writes a GIF in one go.

No dearpygui here: ``studio optimize --video``, ``studio render --turntable`` and the GUI's
*Export > Record video* all use these classes.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .images import heatmap, to_uint8
from .paths import user_path
from .scene.params import GROUPS

log = logging.getLogger("studio")

#: |render - target| (linear, mean over RGB) shown as white in a video's difference panel.
DIFF_VMAX = 0.25
#: Frames a GIF keeps at most (older ones are thinned out evenly).
MAX_GIF_FRAMES = 240
#: Smallest height of the picture row: small renders are enlarged by a whole factor (crisp pixels).
MIN_PANEL_PX = 240
PLOT_HEIGHT = 250
_LOSS_COLORS = [(255, 140, 0), (0, 160, 190), (200, 170, 0), (220, 60, 150), (110, 110, 230), (120, 170, 60)]
_VIDEO_HINT = "pip install imageio-ffmpeg, a dependency of the studio that ships its own ffmpeg"


class VideoError(ValueError):
    """A video that cannot be written; the message says which file and what to do."""


class VideoWriter:
    """Writes [H,W,3] uint8 frames to ``path``: MP4 (H.264) when the suffix is .mp4 and
    imageio-ffmpeg is installed, else an animated GIF beside it (``path`` with .gif; the
    :attr:`note` says why).  All frames must have the size of the first.

    Args:
        path: .mp4 or .gif (``~`` and relative paths as in :func:`studio.paths.user_path`).
        fps: frames per second.
    """

    def __init__(self, path: str | Path, fps: float = 15.0):
        self.path = user_path(path)
        self.fps = float(fps)
        self.note: str | None = None
        self.frames_written = 0
        self._encoder: Any = None
        self._gif: list[np.ndarray] = []
        self._gif_stride, self._gif_seen = 1, 0
        self._size: tuple[int, int] | None = None
        if self.path.suffix.lower() not in (".mp4", ".gif"):
            raise VideoError(f"video file {self.path} must end in .mp4 or .gif.")
        if not self.path.parent.is_dir():
            raise VideoError(f"cannot write {self.path}: the folder {self.path.parent} does not exist.")
        if self.path.suffix.lower() == ".mp4":
            try:
                import imageio_ffmpeg  # noqa: F401 - checked here so the fallback is decided up front
            except ImportError:
                self.path = self.path.with_suffix(".gif")
                self.note = f"MP4 needs imageio-ffmpeg ({_VIDEO_HINT}); wrote a GIF instead: {self.path}."

    @property
    def mp4(self) -> bool:
        return self.path.suffix.lower() == ".mp4"

    def write(self, frame: np.ndarray) -> None:
        """Append one [H,W,3] uint8 frame."""
        frame = np.ascontiguousarray(frame[..., :3], dtype=np.uint8)
        if self._size is None:
            self._size = frame.shape[:2]
        elif frame.shape[:2] != self._size:
            raise VideoError(f"video frames must all be {self._size[1]}x{self._size[0]}, got "
                             f"{frame.shape[1]}x{frame.shape[0]}.")
        self.frames_written += 1
        if self.mp4:
            self._write_mp4(frame)
            return
        self._gif_seen += 1
        if (self._gif_seen - 1) % self._gif_stride:
            return
        self._gif.append(frame)
        if len(self._gif) >= MAX_GIF_FRAMES:
            self._gif, self._gif_stride = self._gif[::2], self._gif_stride * 2

    def _write_mp4(self, frame: np.ndarray) -> None:
        # H.264 in yuv420p needs even sides: pad with the edge rows/columns.
        h, w = frame.shape[:2]
        frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        if self._encoder is None:
            import imageio_ffmpeg

            self._encoder = imageio_ffmpeg.write_frames(str(self.path), (frame.shape[1], frame.shape[0]),
                                                        fps=self.fps, codec="libx264", quality=8,
                                                        macro_block_size=1, ffmpeg_log_level="error")
            self._encoder.send(None)
        self._encoder.send(frame.tobytes())

    def close(self) -> Path:
        """Finish the file and return its path.

        Raises:
            VideoError: no frame was written.
        """
        if self._encoder is not None:
            self._encoder.close()
            self._encoder = None
        elif self._gif:
            from .outputs import write_gif

            write_gif(self.path, self._gif, int(round(1000 * self._gif_stride / self.fps)))
            self._gif = []
        elif not self.frames_written:
            raise VideoError(f"no frames for {self.path}; run some steps first.")
        return self.path

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        elif self._encoder is not None:
            self._encoder.close()


def _enlarge(img: np.ndarray, k: int) -> np.ndarray:
    """Nearest-neighbour enlargement by a whole factor (pixels stay crisp)."""
    return img if k == 1 else img.repeat(k, 0).repeat(k, 1)


def run_frame(target: np.ndarray, render: np.ndarray, diff: np.ndarray, history: Mapping[str, np.ndarray],
              steps: int, units: Mapping[str, str] | None = None, step: int | None = None) -> np.ndarray:
    """One frame of a run video, [H,W,3] uint8.

    Args:
        target, render: [h,w,3] linear RGB, top row first.
        diff: [h,w] mean |render - target| (linear), shown as a heatmap up to ``DIFF_VMAX``.
        history: the engine's curves (``step``, ``loss``, ``loss:NAME``, and one per group).
        steps: the run's step budget (the x axis of the curves spans it).
        units: group -> unit, for the legend.
        step: the step shown in the caption (default: the last one in ``history``).
    """
    from PIL import Image, ImageDraw, ImageFont

    from .plot_png import plot_image

    h, w = target.shape[:2]
    k = max(1, math.ceil(MIN_PANEL_PX / h))
    pictures = np.concatenate([to_uint8(np.clip(target, 0, 1)), to_uint8(np.clip(render, 0, 1)),
                               (heatmap(diff, vmax=DIFF_VMAX) * 255 + 0.5).astype(np.uint8)], 1)
    top = _enlarge(pictures, k)
    width = top.shape[1]
    caption = Image.new("RGB", (width, 22), (255, 255, 255))
    draw = ImageDraw.Draw(caption)
    font = ImageFont.load_default(size=13)
    shown = int(step if step is not None else (history["step"][-1] if len(history.get("step", ())) else 0))
    for i, text in enumerate(("target", f"render, step {shown}", f"|difference| (white = {DIFF_VMAX})")):
        draw.text((i * w * k + 6, 4), text, fill=(0, 0, 0), font=font)
    x = np.asarray(history.get("step", np.zeros(0)), dtype=float)
    units = units or {}
    groups = [(f"{g} ({units[g]})" if units.get(g) else g, x, np.asarray(history[g], float), g)
              for g in GROUPS if g in history and np.isfinite(history[g]).any()]
    terms = sorted(k_ for k_ in history if k_.startswith("loss:"))
    losses = [(t[5:], x, np.asarray(history[t], float), _LOSS_COLORS[i % len(_LOSS_COLORS)])
              for i, t in enumerate(terms)]
    if "loss" in history:
        losses.append(("total", x, np.asarray(history["loss"], float), (40, 40, 40)))
    span = (0.0, float(max(steps, 1, int(x.max()) if len(x) else 1)))
    half = width // 2
    plots = [plot_image(series, title=title, xlabel="step", log_y=True, size=(size, PLOT_HEIGHT), x_range=span,
                        legend="right", font_size=12, line_width=3)
             for series, title, size in ((groups, "error per group", half), (losses, "loss", width - half))]
    bottom = np.concatenate([np.asarray(p) for p in plots], 1)
    return np.concatenate([np.asarray(caption), top, bottom], 0)


class RunVideo:
    """Records a run from its snapshots: one :func:`run_frame` every ``every`` steps.

    Args:
        path: .mp4 (or .gif).
        steps: the run's step budget (x axis of the curves).
        every: K, steps between frames (default: about 150 frames over the budget).
        fps: frames per second of the video.
    """

    def __init__(self, path: str | Path, steps: int, every: int | None = None, fps: float = 15.0):
        self.writer = VideoWriter(path, fps)
        self.steps = int(steps)
        self.every = max(1, int(every) if every else math.ceil(max(self.steps, 1) / 150))
        self._last = None

    @property
    def path(self) -> Path:
        return self.writer.path

    def due(self, snap: Any, force: bool = False) -> bool:
        """Whether :meth:`add` would write a frame for ``snap``."""
        if snap is None or snap.step == self._last:
            return False
        return force or self._last is None or snap.step >= self._last + self.every

    def add(self, snap: Any, force: bool = False) -> bool:
        """Add a frame for ``snap`` (an engine Snapshot) when ``every`` steps have passed since the
        last frame (or ``force``, e.g. for the final step); True when a frame was written."""
        if not self.due(snap, force):
            return False
        units = {g: e.unit for g, e in snap.group_errors.items()}
        self.writer.write(run_frame(snap.target, snap.render, snap.diff, snap.history, self.steps, units, snap.step))
        self._last = snap.step
        return True

    def close(self) -> Path:
        return self.writer.close()


def write_turntable(scene: Any, path: str | Path, frames: int = 72, target: bool = False, view: int = 0,
                    fps: float = 24.0) -> VideoWriter:
    """A video of one camera orbit around ``scene``: view ``view``'s azimuth advances by
    360/``frames`` degrees per frame.  ``target`` renders the ground truth, else the current
    parameters (e.g. a fit loaded with :func:`studio.outputs.load_params_json`).  Returns the
    closed writer (its ``path`` and ``note``).

    Raises:
        VideoError: fewer than 2 frames, or a file that cannot be written.
    """
    import torch

    if frames < 2:
        raise VideoError(f"--frames must be at least 2 for a turntable, got {frames}.")
    values = scene.params.ground_truth_values() if target else scene.params.values()
    writer = VideoWriter(path, fps)
    az = values["camera.azimuth"]
    with torch.no_grad(), writer:
        for i in range(frames):
            out = scene.render([view], values={**values, "camera.azimuth": az + 360.0 * i / frames}, target=target)
            rgb = out.rgb[0].cpu().numpy()
            writer.write(_enlarge(to_uint8(rgb), max(1, math.ceil(MIN_PANEL_PX / rgb.shape[0]))))
    return writer

