"""NeRF-synthetic / Blender / instant-ngp / nerfstudio captures: ``transforms*.json``.

Layout read:

- a folder with ``transforms_train.json`` (and optionally ``transforms_test.json``, held out, or
  failing that ``transforms_val.json``), or a single ``transforms.json`` (or any json file given);
- camera: ``camera_angle_x`` (horizontal field of view, radians; ``camera_angle_y`` optional) or
  ``fl_x``/``fl_y``/``cx``/``cy``/``w``/``h`` in pixels, at the top level or per frame (a frame's
  keys win); nerfstudio's ``k1``, ``k2``, (``k3``), ``p1``, ``p2`` distortion is removed;
- each frame's ``transform_matrix`` is camera-to-world in OpenGL axes (x right, y up, looking
  down -z); ``file_path`` is relative to the json, with or without its extension;
- images are sRGB-encoded (8 or 16 bit); an alpha channel is the object mask, unless a frame has
  nerfstudio's ``mask_path`` (a mask image, relative to the json).

:func:`write_nerf` writes the same layout: ``transforms_train.json`` (+ ``transforms_test.json``)
with both ``camera_angle_x`` and exact ``fl_x``... keys, and straight-alpha RGBA PNGs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from .conventions import focal_from_fov, fov_from_focal
from .distortion import Distortion
from .errors import CaptureError
from .frames import Frame, FrameSet
from .image_files import IMAGE_EXTENSIONS, image_size, unique_names, write_view_png
from .model import Intrinsics, View

SPLIT_FILES = ("transforms_train.json", "transforms_test.json", "transforms_val.json")
SINGLE_FILE = "transforms.json"


def nerf_json_files(folder: Path) -> tuple[Path, Path | None] | None:
    """(training json, held-out json or None) of a NeRF folder, or None if it is not one."""
    train, test, val = (folder / n for n in SPLIT_FILES)
    if train.is_file():
        return train, test if test.is_file() else val if val.is_file() else None
    if (folder / SINGLE_FILE).is_file():
        return folder / SINGLE_FILE, None
    return None


def read_nerf(train_json: Path, test_json: Path | None = None) -> FrameSet:
    """The frames of a NeRF capture (see the module docstring).

    Raises:
        CaptureError: unreadable json, no frames, a frame without a usable pose or camera.
    """
    train = _read_json_frames(train_json)
    test = _read_json_frames(test_json) if test_json is not None else None
    return FrameSet(source=train_json, layout="nerf", train=train, test=test)


def _read_json_frames(path: Path) -> tuple[Frame, ...]:
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CaptureError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg}); repair or re-export it.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CaptureError(f"{path} cannot be read ({exc.__class__.__name__}); check the file and its permissions.") from None
    frames = meta.get("frames") if isinstance(meta, dict) else None
    if not isinstance(frames, list) or not frames:
        raise CaptureError(f"{path} has no frames (it needs a non-empty \"frames\" list of "
                           "{\"file_path\", \"transform_matrix\"}); export the cameras again.")
    if meta.get("camera_model", "OPENCV") not in ("OPENCV", "PINHOLE", "SIMPLE_PINHOLE"):
        raise CaptureError(f"{path} uses the camera model {meta['camera_model']}, which the studio does not "
                           "undistort; undistort the images first (e.g. colmap image_undistorter) and use PINHOLE.")
    out = []
    for i, fr in enumerate(frames):
        if not isinstance(fr, dict) or "file_path" not in fr or "transform_matrix" not in fr:
            raise CaptureError(f"{path}: frame {i} needs \"file_path\" and \"transform_matrix\"; fix the frame.")
        image = _image_path(path, str(fr["file_path"]), i)
        mask = _image_path(path, str(fr["mask_path"]), i, "mask") if "mask_path" in fr else None
        out.append(Frame(name=image.stem, image=image, intrinsics=_intrinsics(path, meta, fr, image, i),
                         cam_to_world=_pose(path, fr["transform_matrix"], i), described_by=path, mask=mask,
                         distortion=_distortion(meta, fr)))
    return unique_names(out)


def _image_path(json_path: Path, file_path: str, i: int, what: str = "image") -> Path:
    p = json_path.parent / file_path
    if p.is_file():
        return p
    for ext in IMAGE_EXTENSIONS:
        if (q := p.with_name(p.name + ext)).is_file():
            return q
    key = "file_path" if what == "image" else "mask_path"
    raise CaptureError(f"{json_path}: the {what} of frame {i} ({file_path}) does not exist next to the json; "
                       f"put the files where {key} says (relative to the json) or fix the paths.")


def _pose(path: Path, m: object, i: int) -> np.ndarray:
    try:
        c2w = np.asarray(m, dtype=np.float64)
    except (TypeError, ValueError):
        c2w = np.zeros(0)
    if c2w.shape == (3, 4):
        c2w = np.concatenate([c2w, [[0.0, 0.0, 0.0, 1.0]]])
    if c2w.shape != (4, 4) or not np.isfinite(c2w).all():
        raise CaptureError(f"{path}: frame {i} transform_matrix is not a finite 4x4 matrix; fix the frame.")
    rot = c2w[:3, :3]
    scale = np.linalg.norm(rot, axis=0)
    if not np.allclose(scale, scale.mean(), rtol=1e-3) or abs(np.linalg.det(rot / scale.mean()) - 1) > 1e-3:
        raise CaptureError(f"{path}: frame {i} transform_matrix is not a rotation plus translation; "
                           "give camera-to-world poses without shear or mirroring.")
    c2w[:3, :3] = rot / scale  # some exporters bake a uniform scale into the rotation
    return c2w


def _intrinsics(path: Path, meta: dict, fr: dict, image: Path, i: int) -> Intrinsics:
    def key(name: str) -> float | None:
        v = fr.get(name, meta.get(name))
        return None if v is None else float(v)

    w, h = key("w"), key("h")
    if w is None or h is None:
        w, h = image_size(image, path)
    fx, fy = key("fl_x"), key("fl_y")
    if fx is None:
        angle_x = key("camera_angle_x")
        if angle_x is None:
            if fy is None:
                raise CaptureError(f"{path}: frame {i} has no camera (camera_angle_x or fl_x/fl_y); add the "
                                   "field of view or the focal length in pixels.")
            fx = fy
        else:
            fx = focal_from_fov(angle_x, w)
    if fy is None:
        angle_y = key("camera_angle_y")
        fy = focal_from_fov(angle_y, h) if angle_y is not None else fx
    cx, cy = key("cx"), key("cy")
    intr = Intrinsics(fx, fy, w / 2 if cx is None else cx, h / 2 if cy is None else cy, int(round(w)), int(round(h)))
    if not all(math.isfinite(v) for v in (intr.fx, intr.fy, intr.cx, intr.cy)) or intr.fx <= 0 or intr.fy <= 0:
        raise CaptureError(f"{path}: frame {i} has a non-positive or non-finite focal length; fix the camera keys.")
    return intr


def _distortion(meta: dict, fr: dict) -> Distortion | None:
    coeffs = {k: float(fr.get(k, meta.get(k, 0.0))) for k in ("k1", "k2", "k3", "p1", "p2")}
    d = Distortion(**coeffs)
    return None if d.is_zero else d


# ------------------------------------------------------------------------------------ writing


def write_nerf(folder: str | Path, views: Sequence[View], test_views: Sequence[View] = ()) -> list[Path]:
    """Write views as a NeRF capture: ``train/NAME.png`` (+ ``test/``) and their json files.

    The images are straight-alpha sRGB RGBA PNGs (colour = image / mask where the mask is
    positive); ``file_path`` is written without extension, as Blender's exporter does.  Views
    must share one camera size.

    Returns:
        The json files written.
    """
    folder = Path(folder)
    written = []
    for split, group in (("train", views), ("test", test_views)):
        if not group:
            continue
        frames = []
        for v in group:
            write_view_png(folder / split / f"{v.name}.png", v)
            k = v.intrinsics
            frames.append({"file_path": f"./{split}/{v.name}", "fl_x": k.fx, "fl_y": k.fy, "cx": k.cx, "cy": k.cy,
                           "w": k.width, "h": k.height,
                           "transform_matrix": np.asarray(v.cam_to_world, dtype=np.float64).tolist()})
        k0 = group[0].intrinsics
        meta = {"camera_angle_x": fov_from_focal(k0.fx, k0.width), "frames": frames}
        path = folder / f"transforms_{split}.json"
        path.write_text(json.dumps(meta, indent=2) + "\n")
        written.append(path)
    return written
