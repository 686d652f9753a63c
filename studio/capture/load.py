"""``load_capture``: any supported capture on disk -> one normalised :class:`~.model.Capture`.

Steps: find the layout (NeRF json or COLMAP model), read every image (sRGB -> linear, alpha or
mask file -> mask), check sizes, remove lens distortion, resize to the working resolution
(intrinsics scaled with the image), pick the held-out views, and move the object into the unit
sphere (:mod:`.normalise`), which is said in one log line.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from ..images import resize
from .colmap import find_model, read_colmap
from .distortion import undistort
from .errors import CaptureError
from .frames import Frame, FrameSet
from .image_files import read_frame_image
from .model import Capture, Normalisation, View
from .nerf import nerf_json_files, read_nerf
from .normalise import estimate_normalisation

log = logging.getLogger("studio.capture")

#: A mask whose largest value is below this shows no object.
EMPTY_MASK = 0.5


def read_frames(path: str | Path, images: str | Path | None = None, masks: str | Path | None = None) -> FrameSet:
    """The frames of the capture at ``path``: a NeRF folder or json file, a COLMAP project folder
    (with ``sparse/0``) or a COLMAP model folder.

    Raises:
        CaptureError: nothing there, or not a capture layout the studio knows.
    """
    path = Path(path)
    if not path.exists():
        raise CaptureError(f"capture {path} does not exist; give a folder with transforms*.json or a COLMAP model.")
    if path.is_file():
        if path.suffix.lower() != ".json":
            raise CaptureError(f"capture {path} is not a json file or a folder; give a transforms*.json file, a "
                               "folder with one, or a COLMAP model folder.")
        if path.name == "transforms_train.json":
            found = nerf_json_files(path.parent)
            return read_nerf(*found)
        return read_nerf(path)
    found = nerf_json_files(path)
    if found is not None:
        if masks is not None or images is not None:
            log.warning("%s: --images and --masks apply to COLMAP models; NeRF captures name their images.", path)
        return read_nerf(*found)
    model = find_model(path)
    if model is not None:
        return read_colmap(model, None if images is None else Path(images), None if masks is None else Path(masks))
    raise CaptureError(f"{path} holds neither transforms_train.json / transforms.json nor a COLMAP model "
                       "(cameras and images .txt or .bin, here or in sparse/0); point at a capture folder.")


def working_size(width: int, height: int, res: int | None) -> tuple[int, int]:
    """(width, height) with the longer side ``res`` pixels and the aspect kept (the file's size
    when ``res`` is None)."""
    if res is None:
        return width, height
    if res < 8:
        raise CaptureError(f"--res must be at least 8 pixels, got {res}.")
    s = res / max(width, height)
    return max(1, round(width * s)), max(1, round(height * s))


def _load_view(frame: Frame, expected: tuple[int, int] | None, res: int | None) -> tuple[View, tuple[int, int]]:
    """The view at its working size, and the (width, height) of its file."""
    rgb, mask = read_frame_image(frame)
    h, w = rgb.shape[:2]
    size = working_size(w, h, res)
    if expected is not None and (w, h) != expected:
        raise CaptureError(f"image {frame.image} is {w}x{h} but the capture's first image is "
                           f"{expected[0]}x{expected[1]}; give every view the same size (resize or crop them).")
    k = frame.intrinsics
    if (k.width, k.height) != (w, h):
        if abs(k.width / k.height - w / h) > 0.01 * w / h:
            raise CaptureError(f"image {frame.image} is {w}x{h} but {frame.described_by} says its camera is "
                               f"{k.width}x{k.height}; use the images the cameras were calibrated for.")
        k = k.scaled(w, h)  # a downsampled copy of the calibrated images (e.g. images_2/)
    if frame.distortion is not None:
        stack = torch.cat([rgb, mask[..., None]], -1) if mask is not None else rgb
        stack = undistort(stack, k.fx, k.fy, k.cx, k.cy, frame.distortion)
        rgb, mask = stack[..., :3], (stack[..., 3] if mask is not None else None)
    if mask is not None:
        if float(mask.max()) < EMPTY_MASK:
            where = frame.mask if frame.mask is not None else f"the alpha channel of {frame.image}"
            raise CaptureError(f"the mask of view {frame.name} ({where}) is empty; give a mask that covers the "
                               "object, or remove the view.")
        rgb = rgb * mask[..., None]  # the object over black: colour and mask resize consistently
    if size != (w, h):
        rgb = resize(rgb, (size[1], size[0])).clamp(min=0.0)
        mask = None if mask is None else resize(mask[..., None], (size[1], size[0]))[..., 0].clamp(0.0, 1.0)
        k = k.scaled(*size)
    view = View(frame.name, rgb.float().contiguous(), None if mask is None else mask.float().contiguous(), k,
                torch.from_numpy(frame.cam_to_world))
    return view, (w, h)


def _normalised(v: View, n: Normalisation) -> View:
    c2w = v.cam_to_world.double().clone()
    c2w[:3, 3] = (c2w[:3, 3] - torch.tensor(n.centre, dtype=torch.float64)) * n.scale
    return View(v.name, v.image, v.mask, v.intrinsics, c2w.float())


def load_capture(path: str | Path, res: int | None = None, images: str | Path | None = None,
                 masks: str | Path | None = None, holdout: int | None = None) -> Capture:
    """Read a multi-view capture into a normalised :class:`Capture`.

    Args:
        path: a NeRF capture (folder with ``transforms_train.json`` or ``transforms.json``, or a
            json file) or a COLMAP capture (project folder with ``sparse/0``, or the model folder).
        res: working resolution, the longer image side in pixels (aspect kept); None keeps the
            files' size.
        images: COLMAP only: the folder of the photos (default ``../../images`` from the model).
        masks: COLMAP only: a folder of masks named like the photos (default: alpha channels).
        holdout: hold out every K-th view (index % K == 0) when the capture names no test views
            (``transforms_test.json``, else ``transforms_val.json``).

    Returns:
        The capture; its poses are normalised so the object lies in the unit sphere
        (``capture.normalisation`` says how), images are [H,W,3] linear RGB over black where masked.

    Raises:
        CaptureError: for every problem with the files, as one sentence naming the file.
    """
    frames = read_frames(path, images, masks)
    train, test = list(frames.train), list(frames.test or ())
    if frames.test is not None:
        if holdout:
            log.info("%s names its held-out views (%d), so --holdout %d is not used.", frames.source, len(test), holdout)
    elif holdout:
        if holdout < 2:
            raise CaptureError(f"--holdout must be at least 2 (every K-th view is held out), got {holdout}.")
        test, train = train[::holdout], [f for i, f in enumerate(train) if i % holdout]
    if not train:
        raise CaptureError(f"{frames.source}: no training views are left; hold out fewer views.")

    loaded: list[View] = []
    first = None
    for f in train + test:
        v, file_size = _load_view(f, first, res)
        first = first or file_size
        loaded.append(v)
    train_views, test_views = loaded[:len(train)], loaded[len(train):]
    norm, how = estimate_normalisation([(v.cam_to_world.numpy(), v.intrinsics) for v in train_views],
                                       [v.mask for v in train_views], frames.source)
    c = ", ".join(f"{x:.4g}" for x in norm.centre)
    log.info("normalised: centre (%s), scale %.4g (object radius %.4g world units -> 1; %s)", c, norm.scale,
             1.0 / norm.scale, how)
    h, w = train_views[0].image.shape[:2]
    log.info("read %s capture %s: %d training + %d held-out views at %dx%d", frames.layout, frames.source,
             len(train_views), len(test_views), w, h)
    points = None
    if frames.points is not None and len(frames.points):
        points = norm.to_unit(torch.from_numpy(frames.points)).float()
    return Capture(source=frames.source, layout=frames.layout,
                   views=tuple(_normalised(v, norm) for v in train_views),
                   test_views=tuple(_normalised(v, norm) for v in test_views), normalisation=norm, points=points)
