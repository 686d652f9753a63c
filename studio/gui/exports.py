"""What the Export menu writes: the render as PNG, the fitted mesh as OBJ, the curves as CSV and a
progress video (GIF) recorded from the snapshots the GUI has shown.

No dearpygui here: every function takes snapshots or the engine and a path, so tests call them
directly.  Writers run on the GUI's job threads; anything that needs the scene runs on the
engine's worker through :meth:`Engine.submit`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np

from .. import outputs
from ..outputs import FrameRecorder  # noqa: F401 - the Export menu's recorder
from ..images import to_uint8
from ..optim.engine import Snapshot
from ..paths import user_path
from ..render.modes import SHADED

class ExportError(ValueError):
    """Something that cannot be exported; the message says what and why."""


def _parent_ok(path: Path) -> Path:
    path = user_path(path)
    if not path.parent.is_dir():
        raise ExportError(f"cannot write {path}: the folder {path.parent} does not exist.")
    return path


def render_image(snap: Snapshot) -> np.ndarray:
    """The render as shown: [H,W,3] uint8 sRGB (the selected render mode when it is not shaded)."""
    if snap.display is not None and snap.display_mode != SHADED:
        return (np.clip(snap.display, 0, 1) * 255 + 0.5).astype(np.uint8)
    return to_uint8(snap.render)


def write_render_png(path: str | Path, snap: Snapshot) -> Path:
    path = _parent_ok(Path(path).with_suffix(".png"))
    iio.imwrite(path, render_image(snap))
    return path


def write_curves_csv(path: str | Path, history: dict[str, np.ndarray]) -> Path:
    """step, loss and group errors per step, the same columns as ``studio optimize``'s curves.csv."""
    path = _parent_ok(Path(path).with_suffix(".csv"))
    if not len(history.get("step", ())):
        raise ExportError("there are no curves yet; take a few steps first.")
    outputs.write_curves_csv(path, history)
    return path


def fitted_mesh(engine: Any):
    """The scene's meshes with the current parameters, in world space, as one Mesh (CPU).
    Call it on the engine's worker (``engine.submit(fitted_mesh)``)."""
    mesh = outputs.world_mesh(engine.scene)
    if mesh is None:
        raise ExportError(f"scene {engine.scene.spec.name!r} has no triangle mesh to export "
                          "(SDF scenes are implicit surfaces).")
    return mesh


def write_mesh_obj(path: str | Path, mesh: Any) -> Path:
    from ..scene.mesh import save_obj

    path = _parent_ok(Path(path).with_suffix(".obj"))
    save_obj(mesh, path)
    return path


def write_video(path: str | Path, frames: list[np.ndarray], frame_ms: int = 50) -> Path:
    """An animated GIF (loops) of uint8 frames."""
    if not frames:
        raise ExportError("there is no progress to record yet; start the optimiser first.")
    path = _parent_ok(Path(path).with_suffix(".gif"))
    outputs.write_gif(path, frames, frame_ms)
    return path
