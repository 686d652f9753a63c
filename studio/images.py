"""Image files and display conversions (imageio for I/O; torch/numpy arrays in between).

Inside the studio images are linear RGB float32, top row first.  Files written are sRGB 8-bit;
files read are decoded by what they hold (8/16-bit integers are sRGB, floats are linear, see
:func:`read_linear`).  The conversions here are the only place that knows.
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


#: Colour encodings a target file can be declared in (``--target-colorspace``).
COLORSPACES = ("srgb", "linear")
_FLOAT_SUFFIXES = (".exr", ".npy", ".tif", ".tiff")
_EXR_HINT = "pip install 'differentiable-rendering-studio[exr]' (or pip install OpenEXR)"


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as float32 [H,W,C], C in {1,3,4}, values as stored: integer files are
    scaled to [0,1] (still sRGB-encoded), float files (TIFF, EXR, NPY) are returned as they are
    (clipped below at 0; alpha clipped to [0,1]).  Use :func:`read_linear` for linear RGB.

    Raises:
        ImageError: missing, unreadable or not an image.
    """
    img, _ = _decode(user_path(path))
    return img


def image_size(path: str | Path) -> tuple[int, int]:
    """(height, width) of an image file in pixels.

    Raises:
        ImageError: as :func:`read_image`.
    """
    h, w = read_image(path).shape[:2]
    return h, w


def file_colorspace(path: str | Path, img_dtype: np.dtype) -> str:
    """How a file's values are encoded when nothing says otherwise: 8/16-bit integer images
    (PNG, JPEG, integer TIFF) are sRGB, floating-point ones (TIFF, EXR, NPY) are linear."""
    return "linear" if np.issubdtype(img_dtype, np.floating) else "srgb"


def read_linear(path: str | Path, colorspace: str | None = None) -> np.ndarray:
    """Read an image file as linear RGB(A) float32 [H,W,C], C in {1,3,4}, top row first.

    Args:
        path: PNG, JPEG, BMP, TIFF (8/16-bit or float), OpenEXR (needs the ``exr`` extra) or NPY.
        colorspace: "srgb" or "linear" to override :func:`file_colorspace` (e.g. a PNG written
            without gamma is "linear").  Alpha is never re-encoded.

    Raises:
        ImageError: missing, unreadable or not an image, or an unknown colour space.
    """
    if colorspace is not None and colorspace not in COLORSPACES:
        raise ImageError(f"colour space {colorspace!r} is unknown; use srgb or linear.")
    img, dtype = _decode(user_path(path))
    if (colorspace or file_colorspace(path, dtype)) == "srgb":
        colour = min(img.shape[-1], 3)
        img = np.concatenate([srgb_to_linear(np.clip(img[..., :colour], 0.0, 1.0)), img[..., colour:]], -1)
    return img.astype(np.float32)


def _decode(path: Path) -> tuple[np.ndarray, np.dtype]:
    """(float32 [H,W,C] image with C in {1,3,4} and values as in :func:`read_image`, the file's dtype)."""
    if not path.exists():
        raise ImageError(f"image file {path} does not exist.")
    check_pixel_limit(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".exr":
            img = _read_exr(path)
        elif suffix == ".npy":
            img = np.load(path, allow_pickle=False)
        else:
            img = np.asarray(iio.imread(path))
    except ImageError:
        raise
    except Exception as exc:  # noqa: BLE001 - image readers raise many types for bad files
        raise ImageError(f"image file {path} cannot be read as an image ({exc.__class__.__name__}); use a PNG, "
                         "JPEG, TIFF, EXR or NPY file.") from None
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[-1] not in (1, 2, 3, 4) or img.shape[0] < 1 or img.shape[1] < 1:
        raise ImageError(f"image file {path} has shape {img.shape}; expected a single 2D image with 1-4 channels.")
    if img.shape[-1] == 2:  # grey + alpha
        img = np.concatenate([img[..., :1].repeat(3, -1), img[..., 1:]], -1)
    dtype = img.dtype
    if np.issubdtype(dtype, np.floating):
        out = np.nan_to_num(img.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0).clip(min=0.0)
        if out.shape[-1] == 4:
            out[..., 3] = out[..., 3].clip(max=1.0)
        return out, dtype
    scale = float(np.iinfo(dtype).max) if np.issubdtype(dtype, np.integer) else 1.0
    return (img.astype(np.float32) / scale).clip(0.0, 1.0), dtype


def _read_exr(path: Path) -> np.ndarray:
    """[H,W,C] float array of an OpenEXR file's first part (R, G, B[, A] or Y[, A] channels)."""
    try:
        import OpenEXR
    except ImportError:
        raise ImageError(f"reading the EXR image {path} needs the OpenEXR package: {_EXR_HINT}.") from None
    with OpenEXR.File(str(path), separate_channels=True) as f:
        channels = {name: np.asarray(c.pixels, dtype=np.float32) for name, c in f.channels().items()}
    for names in (("R", "G", "B", "A"), ("R", "G", "B"), ("Y", "A"), ("Y",)):
        if all(n in channels for n in names):
            return np.stack([channels[n] for n in names], -1)
    raise ImageError(f"EXR image {path} has channels {', '.join(sorted(channels))}; expected R, G, B (and A) or Y.")


#: Largest image the studio decodes, in pixels (4096², the largest render resolution): decoded as
#: float32 RGBA a bigger one costs gigabytes of memory, whatever its file size.
MAX_PIXELS = 4096 * 4096
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _header_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the file's header without decoding its pixels; None when the header
    says the image is too big to even open (Pillow's decompression-bomb guard)."""
    with path.open("rb") as f:
        head = f.read(24)
        if head[:6] == b"\x93NUMPY":
            f.seek(0)
            try:
                version = np.lib.format.read_magic(f)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape = read(f)[0]
            except ValueError:  # a damaged header: np.load says so in its turn
                return 0, 0
            return (int(shape[1]), int(shape[0])) if len(shape) >= 2 else (0, 0)
    if head[:8] == _PNG_SIGNATURE and head[12:16] == b"IHDR":
        return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # we say it ourselves
            with Image.open(path) as im:  # lazy: reads the header only
                return im.size
    except Image.DecompressionBombError:
        return None
    except Exception:  # noqa: BLE001 - not an image Pillow knows: imageio gets its turn and says so
        return 0, 0


def check_pixel_limit(path: str | Path, max_pixels: int = MAX_PIXELS) -> None:
    """Refuse an image with more than ``max_pixels`` pixels, judged from its header *before* any
    pixel is decoded (so a small file of a huge image cannot exhaust the memory).

    Raises:
        ImageError: names the file, its size, the limit, and to downscale it.
    """
    path = Path(path)
    size = _header_size(path)
    if size is not None and size[0] * size[1] <= max_pixels:
        return
    what = f"{size[0]}x{size[1]} pixels" if size is not None else "too large to open"
    side = int(max_pixels ** 0.5)
    raise ImageError(f"image file {path} is {what}, more than the {max_pixels / 1e6:.1f} megapixels "
                     f"({side}x{side}) the studio reads; downscale it first (it was not loaded).")


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
