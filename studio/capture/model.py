"""The in-memory form of a multi-view capture: views with images, masks and calibrated cameras.

Every reader (NeRF/Blender ``transforms*.json``, COLMAP text or binary models) converts its
conventions once, at the edge, into these types, so nothing downstream knows where a capture
came from:

- images are ``[H,W,3]`` float32 **linear** RGB, top row first (sRGB files are decoded); a view
  with a mask holds the object over black (colour multiplied by the mask, as alpha-composited
  renders over a black background are);
- masks are ``[H,W]`` float32 in [0, 1] (1 = object), or None when the capture has none;
- intrinsics are pinhole, in pixels, with OpenCV/COLMAP's pixel convention: the centre of the
  top-left pixel is at (0.5, 0.5), u grows to the right and v downwards;
- ``cam_to_world`` is a [4,4] float32 rigid transform in **OpenGL axes** (camera x right, y up,
  looking down -z), as in ``studio.scene.camera`` and NeRF's ``transform_matrix``; COLMAP's
  world-to-camera OpenCV poses are flipped (y, z negated) and inverted by the reader.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import torch


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels for an image of ``width`` x ``height`` pixels."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def scaled(self, width: int, height: int) -> "Intrinsics":
        """The same camera for the image resized to ``width`` x ``height`` (pixel-centre exact)."""
        sx, sy = width / self.width, height / self.height
        return Intrinsics(self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, width, height)

    def projection(self, near: float = 0.05, far: float = 20.0) -> torch.Tensor:
        """OpenGL projection [4,4] float32: camera space (OpenGL axes) -> clip space.

        Matches the rasterizer's pixel convention after the scene layer's flip to top-row-first:
        a camera-space point projecting to pixel (u, v) lands at NDC x = 2u/W - 1 and
        NDC y = 1 - 2v/H.  Depth maps [near, far] to [-1, 1] as :func:`studio.scene.camera.perspective`.
        """
        w, h = float(self.width), float(self.height)
        a = -(far + near) / (far - near)
        b = -2.0 * far * near / (far - near)
        return torch.tensor(
            [
                [2.0 * self.fx / w, 0.0, 1.0 - 2.0 * self.cx / w, 0.0],
                [0.0, 2.0 * self.fy / h, 2.0 * self.cy / h - 1.0, 0.0],
                [0.0, 0.0, a, b],
                [0.0, 0.0, -1.0, 0.0],
            ],
            dtype=torch.float32,
        )


@dataclass(frozen=True)
class View:
    """One calibrated photograph of the capture."""

    name: str  # file stem, unique within its split (views or test_views); used for ``test/<name>.png``
    image: torch.Tensor  # [H,W,3] float32 linear RGB, top row first
    mask: torch.Tensor | None  # [H,W] float32 in [0, 1], or None
    intrinsics: Intrinsics
    cam_to_world: torch.Tensor  # [4,4] float32, OpenGL camera axes

    @property
    def world_to_camera(self) -> torch.Tensor:
        """[4,4] float32 view matrix (the inverse of ``cam_to_world``)."""
        return torch.linalg.inv(self.cam_to_world)

    def world_to_clip(self, near: float = 0.05, far: float = 20.0) -> torch.Tensor:
        """[4,4] float32 matrix taking world points to this view's clip space."""
        return self.intrinsics.projection(near, far) @ self.world_to_camera

    @property
    def eye(self) -> torch.Tensor:
        """[3] camera centre in world units."""
        return self.cam_to_world[:3, 3]


@dataclass(frozen=True)
class Normalisation:
    """The similarity applied to the capture's world: ``x_unit = (x_world - centre) * scale``."""

    centre: tuple[float, float, float] = (0.0, 0.0, 0.0)
    scale: float = 1.0

    def to_unit(self, points: torch.Tensor) -> torch.Tensor:
        """World points [...,3] -> normalised (unit-sphere) points [...,3]."""
        return (points - torch.tensor(self.centre, dtype=points.dtype, device=points.device)) * self.scale

    def to_world(self, points: torch.Tensor) -> torch.Tensor:
        """Normalised points [...,3] -> the capture's world units [...,3]."""
        return points / self.scale + torch.tensor(self.centre, dtype=points.dtype, device=points.device)


@dataclass(frozen=True)
class Capture:
    """A multi-view capture: training views, held-out views and where it came from."""

    source: Path  # the json file or COLMAP model folder that was read
    layout: str  # "nerf" or "colmap"
    views: tuple[View, ...]  # training views
    test_views: tuple[View, ...] = ()  # held-out views (transforms_test.json, or every K-th)
    normalisation: Normalisation = field(default_factory=Normalisation)
    points: torch.Tensor | None = None  # [P,3] float32 sparse points (COLMAP points3D), normalised units

    @property
    def resolution(self) -> tuple[int, int]:
        """(height, width) of the training images (all views share one size)."""
        return int(self.views[0].image.shape[0]), int(self.views[0].image.shape[1])

    def with_views(self, views: tuple[View, ...], test_views: tuple[View, ...]) -> "Capture":
        return replace(self, views=views, test_views=test_views)
