"""The files a reconstruction writes, the same from ``studio reconstruct`` and the studio's Export.

- ``mesh.glb``: the textured mesh (sRGB base-colour texture, or sRGB vertex colours before the
  texture stage), in the capture's normalised unit-sphere frame;
- ``mesh.obj`` with ``mesh.mtl`` and its texture PNG;
- ``test/<name>.png``: RGBA renders of every held-out view, same size and camera;
- ``curves.csv``: step, total loss, each loss term, held-out PSNR / IoU where measured, and the
  event (stage change, remeshing) that happened at that step;
- ``turntable.mp4`` (``turntable.gif`` when ffmpeg cannot be used): the object turning once;
- ``summary.json``: views, resolution, steps, seconds, faces, train / held-out PSNR and IoU, lighting.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import imageio.v2 as iio2
import imageio.v3 as iio
import numpy as np
import torch
import trimesh
from PIL import Image

from ..images import linear_to_srgb, to_uint8
from ..outputs import write_gif
from ..scene.camera import look_at, orbit_eye, perspective
from .metrics import mask_iou, psnr
from .scene import ReconstructionScene, _target

log = logging.getLogger("studio.reconstruct")

TURNTABLE_FRAMES = 48
TURNTABLE_FPS = 24


def to_trimesh(scene: ReconstructionScene) -> trimesh.Trimesh:
    """The current surface with its texture (or vertex colours) as a trimesh (UVs in its v-up convention)."""
    mesh = scene.mesh()
    v = mesh.vertices.double().numpy()
    faces = mesh.faces.long().numpy()
    if mesh.uv is None:
        colors = np.round(linear_to_srgb(mesh.vertex_colors.double().numpy().clip(0, 1)) * 255).astype(np.uint8)
        return trimesh.Trimesh(v, faces, vertex_colors=colors, process=False)
    # One output vertex per distinct (position, UV) corner: glTF and OBJ readers expect that.
    corners = np.stack([faces.reshape(-1), mesh.uv_faces.long().numpy().reshape(-1)], 1)
    pairs, inverse = np.unique(corners, axis=0, return_inverse=True)
    uv = mesh.uv.double().numpy()[pairs[:, 1]]
    uv[:, 1] = 1.0 - uv[:, 1]  # texel row 0 at v = 0 here; trimesh's v points up the image
    texture = Image.fromarray(to_uint8(scene.params["shape.texture"].value.detach().clamp(0, 1).cpu().numpy()))
    material = trimesh.visual.material.PBRMaterial(baseColorTexture=texture, metallicFactor=0.0, roughnessFactor=1.0)
    return trimesh.Trimesh(v[pairs[:, 0]], inverse.reshape(-1, 3), process=False,
                           visual=trimesh.visual.TextureVisuals(uv=uv, material=material))


def write_meshes(scene: ReconstructionScene, out_dir: Path) -> list[str]:
    """mesh.glb and mesh.obj (+ its material and texture); returns the file names written."""
    tm = to_trimesh(scene)
    (out_dir / "mesh.glb").write_bytes(tm.export(file_type="glb"))
    text, extra = trimesh.exchange.obj.export_obj(tm, include_normals=False, return_texture=True, mtl_name="mesh.mtl")
    (out_dir / "mesh.obj").write_text(text)
    for name, data in extra.items():
        (out_dir / name).write_bytes(data)
    return ["mesh.glb", "mesh.obj", *sorted(extra)]


def write_test_renders(scene: ReconstructionScene, out_dir: Path) -> list[str]:
    """test/<name>.png: RGBA renders (sRGB colour, linear coverage) of the held-out views."""
    views = scene.capture.test_views
    if not views:
        return []
    folder = out_dir / "test"
    folder.mkdir(parents=True, exist_ok=True)
    out = scene.render_views(views)
    for i, v in enumerate(views):
        rgb = to_uint8(out.rgb[i].clamp(0, 1).cpu().numpy())
        alpha = (out.alpha[i].clamp(0, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8)
        iio.imwrite(folder / f"{v.name}.png", np.concatenate([rgb, alpha], -1))
    return [f"test/{v.name}.png" for v in views]


def write_curves(path: Path, history: Mapping[str, np.ndarray], marks: Sequence[tuple[int, str]]) -> None:
    """curves.csv: step, loss, loss terms, scene metrics (held-out PSNR / IoU) and events."""
    terms = sorted(k for k in history if k.startswith("loss:"))
    metrics = sorted(k for k in history if k.startswith("metric:"))
    events: dict[int, list[str]] = {}
    for step, text in marks:
        events.setdefault(int(step), []).append(text)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "loss", *(k[5:] for k in terms), *(k[7:] for k in metrics), "event"])
        for i in range(len(history["step"])):
            step = int(history["step"][i])
            cells = [f"{history[k][i]:.6g}" if np.isfinite(history[k][i]) else "" for k in ("loss", *terms, *metrics)]
            # An event between steps s and s + 1 is listed on the row of step s + 1.
            w.writerow([step, *cells, " ".join(events.get(step - 1, []))])


def turntable_cameras(scene: ReconstructionScene, frames: int, size: int):
    """(world-to-clip [F,4,4], eyes [F,3], directions [F,3]) of a camera circling the object at the
    capture's median camera distance and field of view, 20 degrees above the horizon."""
    views = scene.capture.views
    dist = float(np.median([float(v.eye.norm()) for v in views]))
    intr = views[0].intrinsics
    fov = math.degrees(2 * math.atan(intr.height / 2 / intr.fy))
    proj = perspective(fov, 1.0, 0.05, 20.0)
    mvp, eyes, fwd = [], [], []
    for k in range(frames):
        eye = orbit_eye(360.0 * k / frames, 20.0, dist)
        view = look_at(eye)
        mvp.append(proj @ view)
        eyes.append(eye)
        fwd.append(-view[2, :3])
    dev = scene.device
    return torch.stack(mvp).to(dev), torch.stack(eyes).to(dev), torch.stack(fwd).to(dev)


def write_turntable(scene: ReconstructionScene, out_dir: Path, frames: int = TURNTABLE_FRAMES, size: int = 256) -> str:
    """turntable.mp4 (or turntable.gif without a working ffmpeg); returns the file name."""
    mvp, eye, fwd = turntable_cameras(scene, frames, size)
    images = []
    with torch.no_grad():
        for i in range(0, frames, 8):
            out = scene.render_cameras(mvp[i:i + 8], eye[i:i + 8], fwd[i:i + 8], (size, size))
            images.extend(to_uint8(im) for im in out.rgb.clamp(0, 1).cpu().numpy())
    try:
        iio2.mimwrite(out_dir / "turntable.mp4", images, fps=TURNTABLE_FPS, macro_block_size=16)
        return "turntable.mp4"
    except Exception as exc:  # noqa: BLE001 - any ffmpeg trouble: the GIF needs nothing outside Python
        log.info("turntable.mp4 could not be written (%s); writing turntable.gif", exc)
        (out_dir / "turntable.mp4").unlink(missing_ok=True)
        write_gif(out_dir / "turntable.gif", images, frame_ms=1000 // TURNTABLE_FPS)
        return "turntable.gif"


def train_metrics(scene: ReconstructionScene) -> dict[str, float]:
    """Mean PSNR (dB) and silhouette IoU over the training views."""
    out = scene.render_views(scene.capture.views)
    p, iou = [], []
    for i, v in enumerate(scene.capture.views):
        target, mask = _target(v)
        p.append(psnr(out.rgb[i].cpu(), target))
        iou.append(mask_iou(out.alpha[i, ..., 0].cpu(), mask))
    return {"train_psnr": float(np.mean(p)), "train_iou": float(np.mean(iou))}


def write_outputs(scene: ReconstructionScene, out_dir: str | Path, history: Mapping[str, np.ndarray],
                  marks: Sequence[tuple[int, str]], seconds: float, steps: int, video: bool = True) -> dict[str, Any]:
    """Every output file of a reconstruction in ``out_dir``; returns the summary (also summary.json)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = write_meshes(scene, out_dir) + write_test_renders(scene, out_dir)
    write_curves(out_dir / "curves.csv", history, marks)
    files.append("curves.csv")
    if video:
        files.append(write_turntable(scene, out_dir))
    h, w = scene.resolution
    held = scene.heldout_metrics()
    summary = {
        "source": str(scene.capture.source),
        "layout": scene.capture.layout,
        "views": len(scene.capture.views),
        "test_views": len(scene.capture.test_views),
        "resolution": [w, h],
        "steps": int(steps),
        "seconds": round(seconds, 2),
        "steps_per_s": round(steps / seconds, 3) if seconds > 0 else 0.0,
        "faces": int(scene.faces.shape[0]),
        "vertices": int(scene.params["shape.u"].value.shape[0]),
        "textured": scene.uv is not None,
        **{k: round(v, 4) for k, v in train_metrics(scene).items()},
        "heldout_psnr": round(held["heldout_psnr"], 4) if held else None,
        "heldout_iou": round(held["heldout_iou"], 4) if held else None,
        "lighting": scene.lighting(),
        "events": [{"step": int(s), "event": t} for s, t in marks],
        "files": files + ["summary.json"],
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
