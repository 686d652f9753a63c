"""Files a run produces, written the same way by ``studio optimize`` and the GUI's Export menu."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Sequence

import imageio.v3 as iio
import numpy as np
import torch

from .images import to_uint8
from .scene.mesh import Mesh
from .scene.params import GROUPS

#: Frames a progress video keeps at most (older ones are thinned out evenly).
MAX_FRAMES = 240


def write_curves_csv(path: str | Path, history: dict[str, np.ndarray]) -> None:
    """curves.csv: step, loss and each group's error per step (empty where not measured)."""
    with Path(path).open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "loss", *GROUPS])
        for i in range(len(history["step"])):
            row = [int(history["step"][i]), f"{history['loss'][i]:.6g}"]
            for g in GROUPS:
                v = history[g][i]
                row.append("" if np.isnan(v) else f"{v:.6g}")
            w.writerow(row)


def write_gif(path: str | Path, frames: Sequence[np.ndarray], frame_ms: int = 50) -> None:
    """An endlessly looping GIF of [H,W,3] uint8 frames."""
    iio.imwrite(path, list(frames), duration=frame_ms, loop=0)


def world_mesh(scene: Any) -> Mesh | None:
    """All of a mesh scene's objects with the current parameters, in world space, as one CPU
    Mesh; None for scenes without triangle meshes (SDF scenes)."""
    if not getattr(scene, "objects", None) or not hasattr(scene, "world_geometry"):
        return None
    with torch.no_grad():
        verts, _, faces = scene.world_geometry(scene.params.values())
    return Mesh(vertices=verts.detach().float().cpu(), faces=faces.cpu().int(), name=scene.spec.name)


class FrameRecorder:
    """target | render frames for the progress video, at most ``MAX_FRAMES``: when full, every
    other frame is dropped and only every second new frame is kept from then on."""

    def __init__(self, max_frames: int = MAX_FRAMES):
        self.max_frames = max_frames
        self.frames: list[np.ndarray] = []
        self._stride = 1
        self._seen = 0
        self._last_step = -1

    def add(self, snap: Any) -> None:
        """Record ``snap`` (a Snapshot: ``step``, ``target``, ``render``) unless its step was recorded."""
        if snap.step == self._last_step:
            return
        self._last_step = snap.step
        self._seen += 1
        if (self._seen - 1) % self._stride:
            return
        self.frames.append(to_uint8(np.concatenate([snap.target, snap.render], 1)))
        if len(self.frames) >= self.max_frames:
            self.frames = self.frames[::2]
            self._stride *= 2

    def clear(self) -> None:
        self.__init__(self.max_frames)


class ParamsFileError(ValueError):
    """A params.json that does not fit the scene; the message names the file and the parameter."""


def load_params_json(scene: Any, path: str | Path) -> int:
    """Set the scene's parameters from a ``params.json`` written by ``studio optimize`` (name ->
    nested lists); returns how many were set.

    Raises:
        ParamsFileError: missing or unreadable file, an unknown parameter, or a value of another shape.
    """
    import json

    from .paths import user_path

    path = user_path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ParamsFileError(f"parameter file {path} does not exist; `studio optimize` writes params.json.") from None
    except (OSError, ValueError) as exc:
        raise ParamsFileError(f"parameter file {path} is not readable JSON ({exc.__class__.__name__}).") from None
    if not isinstance(data, dict):
        raise ParamsFileError(f"parameter file {path} must map parameter names to values.")
    for name, value in data.items():
        if name not in scene.params:
            raise ParamsFileError(f"parameter file {path} sets {name!r}, which scene {scene.spec.name!r} does not have; "
                                  "use the scene it was fitted on.")
        p = scene.params[name]
        t = torch.tensor(value, dtype=p.value.dtype)
        if t.shape != p.value.shape:
            raise ParamsFileError(f"parameter file {path}: {name} has shape {list(t.shape)} but the scene's is "
                                  f"{list(p.value.shape)}; use the scene (and mesh) it was fitted on.")
        p.set(t.to(p.value.device))
    return len(data)
