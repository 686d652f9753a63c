"""Lens distortion of COLMAP's (and nerfstudio's) camera models, and undistortion of images.

A distorted camera maps a point with normalised OpenCV coordinates (x, y) = (X/Z, Y/Z) to the
pixel (fx * x_d + cx, fy * y_d + cy), where (x_d, y_d) = distort(x, y).  Undistorting an image
for the *same* fx, fy, cx, cy without distortion needs only the forward map: each output pixel
centre is taken back to normalised coordinates, distorted, and the source image sampled there
(bilinear).  Output pixels whose source lies outside the photo are black with mask 0.

Models (COLMAP's names and parameter order):
    SIMPLE_RADIAL  f, cx, cy, k
    RADIAL         f, cx, cy, k1, k2
    OPENCV         fx, fy, cx, cy, k1, k2, p1, p2
    FULL_OPENCV    fx, fy, cx, cy, k1, k2, p1, p2, k3, k4, k5, k6
Fisheye and other models are refused by the readers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

#: Distortion models this module can remove.
UNDISTORTABLE = ("SIMPLE_RADIAL", "RADIAL", "OPENCV", "FULL_OPENCV")


@dataclass(frozen=True)
class Distortion:
    """Radial-tangential distortion coefficients (zero where a model lacks them)."""

    k1: float = 0.0
    k2: float = 0.0
    p1: float = 0.0
    p2: float = 0.0
    k3: float = 0.0
    k4: float = 0.0
    k5: float = 0.0
    k6: float = 0.0

    @property
    def is_zero(self) -> bool:
        return not any((self.k1, self.k2, self.p1, self.p2, self.k3, self.k4, self.k5, self.k6))

    def distort(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised undistorted coordinates [...] -> distorted ones (OpenCV's model)."""
        r2 = x * x + y * y
        radial = (1 + r2 * (self.k1 + r2 * (self.k2 + r2 * self.k3))) / (1 + r2 * (self.k4 + r2 * (self.k5 + r2 * self.k6)))
        xy = x * y
        xd = x * radial + 2 * self.p1 * xy + self.p2 * (r2 + 2 * x * x)
        yd = y * radial + 2 * self.p2 * xy + self.p1 * (r2 + 2 * y * y)
        return xd, yd


def distortion_from_colmap(model: str, params: list[float]) -> tuple[tuple[float, float, float, float], Distortion]:
    """((fx, fy, cx, cy), Distortion) of an undistortable COLMAP model with its parameter list."""
    if model == "SIMPLE_RADIAL":
        f, cx, cy, k = params
        return (f, f, cx, cy), Distortion(k1=k)
    if model == "RADIAL":
        f, cx, cy, k1, k2 = params
        return (f, f, cx, cy), Distortion(k1=k1, k2=k2)
    if model == "OPENCV":
        fx, fy, cx, cy, k1, k2, p1, p2 = params
        return (fx, fy, cx, cy), Distortion(k1, k2, p1, p2)
    if model == "FULL_OPENCV":
        fx, fy, cx, cy, k1, k2, p1, p2, k3, k4, k5, k6 = params
        return (fx, fy, cx, cy), Distortion(k1, k2, p1, p2, k3, k4, k5, k6)
    raise ValueError(f"{model} is not one of {', '.join(UNDISTORTABLE)}")


def undistort(image: torch.Tensor, fx: float, fy: float, cx: float, cy: float, distortion: Distortion) -> torch.Tensor:
    """The pinhole image [H,W,C] (same fx, fy, cx, cy, no distortion) of a distorted photo [H,W,C].

    Pixel centres are at (j + 0.5, i + 0.5); samples outside the photo are 0.
    """
    h, w = image.shape[:2]
    v, u = torch.meshgrid(torch.arange(h, dtype=torch.float64) + 0.5, torch.arange(w, dtype=torch.float64) + 0.5,
                          indexing="ij")
    xd, yd = distortion.distort((u - cx) / fx, (v - cy) / fy)
    # grid_sample with align_corners=False puts -1 and 1 at the outer edges of the border pixels.
    grid = torch.stack([2 * (fx * xd + cx) / w - 1, 2 * (fy * yd + cy) / h - 1], -1).to(image.dtype)
    src = image.permute(2, 0, 1).unsqueeze(0)
    out = torch.nn.functional.grid_sample(src, grid.unsqueeze(0), mode="bilinear", padding_mode="zeros",
                                          align_corners=False)
    return out[0].permute(1, 2, 0).contiguous()
