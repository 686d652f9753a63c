"""COLMAP captures: a model folder (``sparse/0``) with its images, read into frames and written.

- Cameras PINHOLE and SIMPLE_PINHOLE are used as they are; SIMPLE_RADIAL, RADIAL, OPENCV and
  FULL_OPENCV are undistorted to a pinhole camera with the same focal length and principal point
  (:mod:`.distortion`); fisheye and other models are refused.
- Images are found in ``--images DIR``, else in ``../../images`` relative to the model (COLMAP's
  project layout ``images/`` + ``sparse/0/``), ``../images`` or ``images/`` beside it.
- Masks come from the images' alpha channel or from ``--masks DIR`` (same name, the name plus
  ``.png`` as COLMAP writes them, or the same stem).
- Poses are COLMAP's world-to-camera quaternion + translation in OpenCV axes, converted once by
  :mod:`.conventions`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import imageio.v3 as iio
import numpy as np

from .colmap_files import ColmapCamera, ColmapImage, ColmapModel, model_format, read_model, write_model
from .conventions import c2w_to_colmap_pose, colmap_pose_to_c2w
from .distortion import UNDISTORTABLE, distortion_from_colmap
from .errors import CaptureError
from .frames import Frame, FrameSet
from .image_files import find_mask, unique_names, write_view_png
from .model import Intrinsics, View


def find_model(folder: Path) -> Path | None:
    """The COLMAP model folder at or under ``folder`` (itself, ``sparse/0`` or ``sparse``), or None."""
    for cand in (folder, folder / "sparse" / "0", folder / "sparse"):
        if model_format(cand) is not None:
            return cand
    return None


def _images_dir(model_dir: Path, images: Path | None) -> Path:
    if images is not None:
        if not images.is_dir():
            raise CaptureError(f"image folder {images} does not exist; pass the folder that holds the photos.")
        return images
    for cand in (model_dir.parent.parent / "images", model_dir.parent / "images", model_dir / "images"):
        if cand.is_dir():
            return cand
    raise CaptureError(f"no image folder found for the COLMAP model {model_dir} (looked for ../../images, ../images "
                       "and images/); pass it with --images DIR.")


def _intrinsics(path: Path, cam: ColmapCamera):
    p = list(cam.params)
    if cam.model == "SIMPLE_PINHOLE":
        return Intrinsics(p[0], p[0], p[1], p[2], cam.width, cam.height), None
    if cam.model == "PINHOLE":
        return Intrinsics(p[0], p[1], p[2], p[3], cam.width, cam.height), None
    if cam.model in UNDISTORTABLE:
        (fx, fy, cx, cy), dist = distortion_from_colmap(cam.model, p)
        return Intrinsics(fx, fy, cx, cy, cam.width, cam.height), (None if dist.is_zero else dist)
    raise CaptureError(f"COLMAP file {path}: camera {cam.id} uses the {cam.model} model, which the studio cannot "
                       "undistort; run colmap image_undistorter and use its PINHOLE model.")


def read_colmap(model_dir: Path, images: Path | None = None, masks: Path | None = None) -> FrameSet:
    """The frames of a COLMAP model (see the module docstring), in image-id order.

    Raises:
        CaptureError: a model that cannot be read, an unusable camera, a missing image or mask.
    """
    model = read_model(model_dir)
    ext = model_format(model_dir)
    images_path = model_dir / f"images.{ext}"
    if not model.images:
        raise CaptureError(f"COLMAP file {images_path} lists no images; run the reconstruction (mapper) again.")
    image_dir = _images_dir(model_dir, images)
    mask_dir = None if masks is None else Path(masks)
    if mask_dir is not None and not mask_dir.is_dir():
        raise CaptureError(f"mask folder {mask_dir} does not exist; pass the folder that holds the masks.")
    frames = []
    for im in sorted(model.images, key=lambda im: im.id):
        if im.camera_id not in model.cameras:
            raise CaptureError(f"COLMAP file {images_path}: image {im.name} names camera {im.camera_id}, which "
                               f"cameras.{ext} does not have; export the model again.")
        intr, dist = _intrinsics(model_dir / f"cameras.{ext}", model.cameras[im.camera_id])
        path = image_dir / im.name
        if not path.is_file():
            raise CaptureError(f"image {im.name} of the COLMAP model {model_dir} is not in {image_dir}; "
                               "pass the photo folder with --images DIR.")
        if not np.isfinite(im.qvec).all() or not np.isfinite(im.tvec).all() or np.linalg.norm(im.qvec) < 1e-8:
            raise CaptureError(f"COLMAP file {images_path}: image {im.name} has no valid pose; export the model again.")
        frames.append(Frame(name=Path(im.name).stem, image=path, intrinsics=intr,
                            cam_to_world=colmap_pose_to_c2w(im.qvec, im.tvec), described_by=images_path,
                            mask=None if mask_dir is None else find_mask(mask_dir, im.name), distortion=dist))
    return FrameSet(source=model_dir, layout="colmap", train=unique_names(frames), points=model.points)


def write_colmap(folder: str | Path, views: Sequence[View], binary: bool = False,
                 points: np.ndarray | None = None, masks_folder: bool = False) -> Path:
    """Write views as a COLMAP project: ``images/NAME.png`` and the model in ``sparse/0``.

    Each distinct pinhole camera becomes one PINHOLE camera.  Images are RGBA PNGs (alpha = mask)
    or, with ``masks_folder``, RGB PNGs (straight colour, black background) plus ``masks/NAME.png.png`` greyscale
    masks in COLMAP's naming.  ``points`` [P,3] (world units) are written as points3D without tracks.

    Returns:
        The model folder (``folder/sparse/0``).
    """
    folder = Path(folder)
    cameras: dict[tuple, ColmapCamera] = {}
    images = []
    for i, v in enumerate(views):
        k = v.intrinsics
        key = (k.fx, k.fy, k.cx, k.cy, k.width, k.height)
        if key not in cameras:
            cameras[key] = ColmapCamera(len(cameras) + 1, "PINHOLE", k.width, k.height, (k.fx, k.fy, k.cx, k.cy))
        q, t = c2w_to_colmap_pose(np.asarray(v.cam_to_world, dtype=np.float64))
        name = f"{v.name}.png"
        images.append(ColmapImage(i + 1, q, t, cameras[key].id, name))
        if masks_folder and v.mask is not None:
            write_view_png(folder / "images" / name, v, alpha=False)
            _write_mask(folder / "masks" / f"{name}.png", v)
        else:
            write_view_png(folder / "images" / name, v)
    model_dir = folder / "sparse" / "0"
    write_model(model_dir, ColmapModel({c.id: c for c in cameras.values()}, images, points, None), binary)
    return model_dir


def _write_mask(path: Path, v: View) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, (v.mask.detach().cpu().numpy().clip(0, 1) * 255 + 0.5).astype(np.uint8))
