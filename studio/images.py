"""Image files and display conversions (imageio for I/O; torch/numpy arrays in between).

Inside the studio images are linear RGB float32, top row first.  Files are sRGB 8-bit; the
conversions here are the only place that knows.
"""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

from .paths import user_path


class ImageError(ValueError):
    """An image file the studio cannot use; the message names the file and what to do."""


def srgb_to_linear(x: np.ndarray | torch.Tensor):
    """sRGB-encoded values in [0,1] -> linear (IEC 61966-2-1)."""
    lib = torch if isinstance(x, torch.Tensor) else np
    return lib.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: np.ndarray | torch.Tensor):
    """Linear values -> sRGB-encoded values in [0,1] (input clipped to [0,1])."""
    if isinstance(x, torch.Tensor):
        x = x.clamp(0.0, 1.0)
        return torch.where(x <= 0.0031308, x * 12.92, 1.055 * x.clamp(min=1e-12) ** (1 / 2.4) - 0.055)
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.maximum(x, 1e-12) ** (1 / 2.4) - 0.055)


def to_uint8(linear_rgb: np.ndarray) -> np.ndarray:
    """[H,W,C] linear float -> sRGB uint8 for files and screens."""
    return (linear_to_srgb(np.asarray(linear_rgb, dtype=np.float32)) * 255.0 + 0.5).astype(np.uint8)


def save_png(path: str | Path, linear_rgb: np.ndarray) -> None:
    """Write a [H,W,3] linear RGB float image as an sRGB PNG (parent folders are created)."""
    path = user_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, to_uint8(linear_rgb))


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as float32 [H,W,C] in [0,1] (still sRGB-encoded), C in {1,3,4}.

    Raises:
        ImageError: missing, unreadable or not an image.
    """
    path = user_path(path)
    if not path.exists():
        raise ImageError(f"image file {path} does not exist.")
    try:
        img = np.asarray(iio.imread(path))
    except Exception as exc:  # noqa: BLE001 - imageio raises many types for bad files
        raise ImageError(f"image file {path} cannot be read as an image ({exc.__class__.__name__}); use a PNG or JPEG.") from None
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[-1] not in (1, 2, 3, 4) or img.shape[0] < 1 or img.shape[1] < 1:
        raise ImageError(f"image file {path} has shape {img.shape}; expected a single 2D image with 1-4 channels.")
    if img.shape[-1] == 2:  # grey + alpha
        img = np.concatenate([img[..., :1].repeat(3, -1), img[..., 1:]], -1)
    scale = 65535.0 if img.dtype == np.uint16 else 255.0 if img.dtype == np.uint8 else 1.0
    return (img.astype(np.float32) / scale).clip(0.0, 1.0)


def resize(img: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[H,W,C] -> [h,w,C] with area-correct (antialiased) bilinear filtering."""
    x = img.permute(2, 0, 1).unsqueeze(0)
    y = torch.nn.functional.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    return y[0].permute(1, 2, 0).contiguous()


def heatmap(values: np.ndarray, vmax: float | None = None) -> np.ndarray:
    """[H,W] non-negative values -> [H,W,3] float colours (black-red-yellow-white ramp), and the
    scale used is ``vmax`` (default: the 99th percentile)."""
    v = np.asarray(values, dtype=np.float32)
    top = float(np.percentile(v, 99)) if vmax is None else float(vmax)
    t = np.clip(v / max(top, 1e-8), 0.0, 1.0)
    return np.stack([np.clip(3 * t, 0, 1), np.clip(3 * t - 1, 0, 1), np.clip(3 * t - 2, 0, 1)], -1)
