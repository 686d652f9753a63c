"""Capture images and masks on disk: finding, reading (sRGB -> linear, alpha -> mask), writing.

Inside a :class:`~.model.View` a masked image is the object's colour over black (premultiplied by
the mask); files hold straight (not premultiplied) colour, as PNG's alpha and photo masks do.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Sequence

import imageio.v3 as iio
import numpy as np
import torch

from ..images import ImageError, read_image, srgb_to_linear, to_uint8
from .errors import CaptureError
from .frames import Frame
from .model import View

#: Extensions tried for a ``file_path`` without one, and for mask files.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".PNG", ".JPG", ".JPEG")


def image_size(path: Path, described_by: Path) -> tuple[int, int]:
    """(width, height) of an image file from its header."""
    try:
        shape = iio.improps(path).shape
    except Exception as exc:  # noqa: BLE001 - imageio raises many types for bad files
        raise CaptureError(f"image file {path} (named by {described_by}) cannot be read as an image "
                           f"({exc.__class__.__name__}); replace it with a PNG or JPEG.") from None
    return int(shape[1]), int(shape[0])


def unique_names(frames: Sequence[Frame]) -> tuple[Frame, ...]:
    """The frames with names made unique: a repeated file stem gets its folder's name in front,
    then a running number."""
    seen: set[str] = set()
    out = []
    for f in frames:
        name = f.name
        if name in seen:
            name = f"{f.image.parent.name}_{f.name}"
        base, k = name, 1
        while name in seen:
            name, k = f"{base}_{k}", k + 1
        seen.add(name)
        out.append(f if name == f.name else replace(f, name=name))
    return tuple(out)


def find_mask(masks_dir: Path, image_name: str) -> Path:
    """The mask of image ``image_name`` in ``masks_dir``: the same name, the name plus ``.png``
    (COLMAP's convention), or the same stem with any image extension."""
    candidates = [masks_dir / image_name, masks_dir / f"{image_name}.png"]
    candidates += [(masks_dir / image_name).with_suffix(ext) for ext in IMAGE_EXTENSIONS]
    for c in candidates:
        if c.is_file():
            return c
    raise CaptureError(f"mask folder {masks_dir} has no mask for image {image_name} (tried {candidates[0].name}, "
                       f"{candidates[1].name} and other extensions); add it or leave out --masks.")


def read_frame_image(frame: Frame) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(image [H,W,3] float32 linear RGB, mask [H,W] float32 in [0,1] or None) at the file's size.

    The mask is the explicit mask file if the frame has one, else the alpha channel when it is not
    uniformly opaque.  The image is not yet premultiplied.
    """
    try:
        pixels = read_image(frame.image)
    except ImageError as exc:
        raise CaptureError(f"{frame.described_by}: {exc}") from None
    rgb = torch.from_numpy(srgb_to_linear(pixels[..., :3] if pixels.shape[-1] >= 3 else pixels[..., :1].repeat(3, -1)))
    mask = None
    if frame.mask is not None:
        try:
            m = read_image(frame.mask)
        except ImageError as exc:
            raise CaptureError(f"{frame.described_by}: the mask of {frame.image.name}: {exc}") from None
        if m.shape[:2] != pixels.shape[:2]:
            raise CaptureError(f"mask {frame.mask} is {m.shape[1]}x{m.shape[0]} but its image {frame.image} is "
                               f"{pixels.shape[1]}x{pixels.shape[0]}; give masks the size of their images.")
        # A mask file's values are coverage, not sRGB-encoded colour.
        channel = m[..., 3] if m.shape[-1] == 4 and m[..., 3].min() < 1.0 else m[..., :3].mean(-1)
        mask = torch.from_numpy(np.ascontiguousarray(channel))
    elif pixels.shape[-1] == 4 and pixels[..., 3].min() < 1.0:
        mask = torch.from_numpy(np.ascontiguousarray(pixels[..., 3]))
    return rgb.float().contiguous(), mask


def straight_colour(view: View) -> np.ndarray:
    """[H,W,3] float32 linear colour of a view without the mask multiplied in (0 where it is 0)."""
    rgb = view.image.detach().cpu().numpy().astype(np.float32)
    if view.mask is None:
        return rgb
    a = view.mask.detach().cpu().numpy().astype(np.float32)[..., None]
    return np.where(a > 1e-6, rgb / np.maximum(a, 1e-6), 0.0).astype(np.float32)


def write_view_png(path: Path, view: View, alpha: bool = True) -> None:
    """A view's image as an sRGB PNG: RGBA with straight colour when it has a mask (RGB straight
    colour with ``alpha=False``, for a separate mask file), else RGB."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = straight_colour(view)
    if view.mask is None or not alpha:
        iio.imwrite(path, to_uint8(rgb))
        return
    a = view.mask.detach().cpu().numpy().astype(np.float32)[..., None]
    coverage = (np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    iio.imwrite(path, np.concatenate([to_uint8(rgb), coverage], -1))
