"""Where the object is: the similarity that moves a capture's object into the unit sphere.

Method, with masks (every view that has one takes part):

1. **Centre guess**: the point nearest, in the least-squares sense, to the rays from each camera
   through the centroid of its mask (solve ``sum_i (I - d_i d_i^T) c = sum_i (I - d_i d_i^T) o_i``).
   It must lie in front of most cameras, else the cameras point away from the object (typically
   poses in the wrong axis convention).
2. **Visual hull**: a grid of points around the guess is carved by the masks (a point that
   projects into a view's image outside that view's mask is empty, and so is a point that fewer
   than half of the views see at all: an object capture shows the object in its photos); the grid grows until the hull
   no longer touches its border, then a finer grid is fitted to the hull's bounding box.
3. The object's bounding sphere is the hull's: centre = the middle of the hull's bounding box,
   radius = the farthest hull point plus half a voxel diagonal.  The visual hull contains the
   object, so the object lies inside this sphere, and the sphere is tight when views surround it.

Without masks the centre is where the optical axes meet (same least squares) and the radius is
that of the largest sphere around it that every view sees whole: a rough frame, said in the log.

The result maps ``x_unit = (x_world - centre) * scale`` with ``scale = 1 / radius``.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .errors import CaptureError
from .model import Intrinsics, Normalisation

log = logging.getLogger("studio.capture")

#: Grid points per axis of the coarse and the fine visual hull.
COARSE_GRID, FINE_GRID = 32, 64
#: Times the coarse grid may double in size while the hull touches its border.
_MAX_GROWTH = 4


def _rays(c2w: np.ndarray, k: Intrinsics, pixel: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """(origin [3], unit direction [3]) in world space of the ray through pixel (u, v)."""
    u, v = pixel
    d_cam = np.array([(u - k.cx) / k.fx, -(v - k.cy) / k.fy, -1.0])  # OpenGL camera axes
    d = c2w[:3, :3] @ d_cam
    return c2w[:3, 3].copy(), d / np.linalg.norm(d)


def nearest_point(origins: np.ndarray, dirs: np.ndarray) -> np.ndarray | None:
    """The point [3] nearest to the rays (origins [N,3], unit dirs [N,3]) in the least-squares
    sense, or None when the rays are (nearly) parallel and do not pin a point down."""
    proj = np.eye(3)[None] - dirs[:, :, None] * dirs[:, None, :]
    a, b = proj.sum(0), (proj @ origins[:, :, None]).sum(0)[:, 0]
    if np.linalg.eigvalsh(a)[0] < 1e-4 * len(dirs):
        return None
    return np.linalg.solve(a, b)


def _project(points: torch.Tensor, c2w: np.ndarray, k: Intrinsics) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(column [P], row [P] pixel indices, in front [P] bool) of world points [P,3] in a view."""
    rot = torch.from_numpy(c2w[:3, :3]).to(points.dtype)
    cam = (points - torch.from_numpy(c2w[:3, 3]).to(points.dtype)) @ rot  # rows: points in camera axes (R^T p)
    depth = -cam[:, 2]
    z = depth.clamp(min=1e-9)
    u = k.fx * cam[:, 0] / z + k.cx
    v = k.cy - k.fy * cam[:, 1] / z
    return torch.floor(u).long(), torch.floor(v).long(), depth > 0


def _carve(centre: np.ndarray, half: float, n: int, cams: Sequence[tuple[np.ndarray, Intrinsics]],
           masks: Sequence[torch.Tensor]) -> tuple[torch.Tensor, float]:
    """(hull points [M,3] float64, voxel size) of an n^3 grid over the cube centre +- half."""
    # float32 offsets from the centre: exact enough for pixels, and half the memory traffic.
    axis = torch.linspace(-half, half, n, dtype=torch.float32)
    pts = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    local = [(np.concatenate([c2w[:3, :3], (c2w[:3, 3] - centre)[:, None]], 1), k) for c2w, k in cams]
    seen_by = torch.zeros(pts.shape[0], dtype=torch.long)
    for i, ((c2w, k), m) in enumerate(zip(local, masks)):
        # A one-pixel dilation keeps parts thinner than a pixel step of the grid from being carved.
        solid = torch.nn.functional.max_pool2d(m[None, None].float(), 3, 1, 1)[0, 0] >= 0.5
        col, row, front = _project(pts, c2w, k)
        seen = front & (col >= 0) & (col < k.width) & (row >= 0) & (row < k.height)
        keep = ~seen | solid[row.clamp(0, k.height - 1), col.clamp(0, k.width - 1)]
        # The object is in (nearly) every photo of an object capture; space that most views do not
        # see is not object, which bounds the hull where the views' frusta end.
        seen_by = seen_by + seen
        keep &= (seen_by + (len(cams) - 1 - i)) * 2 >= len(cams)
        pts, seen_by = pts[keep], seen_by[keep]
    return pts.double() + torch.from_numpy(centre), 2 * half / (n - 1)


def estimate_normalisation(cams: Sequence[tuple[np.ndarray, Intrinsics]], masks: Sequence[torch.Tensor | None],
                           source: Path) -> tuple[Normalisation, str]:
    """The normalisation of a capture (see the module docstring) and how it was found.

    Args:
        cams: (cam_to_world [4,4] float64 OpenGL axes, intrinsics) of the training views.
        masks: [H,W] float32 masks at the intrinsics' size, or None, per view.
        source: the capture file, for messages.

    Raises:
        CaptureError: the views' rays do not meet, the cameras point away from the object, or
            no point is inside every mask.
    """
    with_mask = [(c, m) for c, m in zip(cams, masks) if m is not None]
    if with_mask:
        pix = []
        for (_, k), m in with_mask:
            w = m.double()
            total = float(w.sum())
            rows, cols = torch.arange(k.height, dtype=torch.float64) + 0.5, torch.arange(k.width, dtype=torch.float64) + 0.5
            pix.append((float((w.sum(0) * cols).sum()) / total, float((w.sum(1) * rows).sum()) / total))
        rays = [_rays(c2w, k, p) for ((c2w, k), _), p in zip(with_mask, pix)]
        what = "the rays through the mask centres"
    else:
        rays = [_rays(c2w, k, (k.cx, k.cy)) for c2w, k in cams]
        what = "the cameras' optical axes"
    origins, dirs = np.stack([r[0] for r in rays]), np.stack([r[1] for r in rays])
    guess = nearest_point(origins, dirs)
    if guess is None:
        raise CaptureError(f"{source}: {what} are nearly parallel, so the views do not surround an object; "
                           "a capture needs views of the object from several directions.")
    depth = ((guess - origins) * dirs).sum(1)
    if (depth > 0).sum() < max(1, len(depth) / 2):
        raise CaptureError(f"{source}: the cameras point away from the point their views share (it is behind "
                           f"{int((depth <= 0).sum())} of {len(depth)} cameras); the poses are probably in "
                           "OpenCV axes or world-to-camera, so convert them to OpenGL camera-to-world.")
    if not with_mask:
        radius = min(_whole_sphere_radius(c2w, k, guess) for c2w, k in cams)
        return Normalisation(tuple(float(x) for x in guess), 1.0 / radius), \
            "no masks: centre where the optical axes meet, radius of the sphere every view sees whole (rough)"

    hull_cams = [c for c, _ in with_mask]
    hull_masks = [m for _, m in with_mask]
    half = 1.5 * max(_cone_radius(c2w, k, m, guess) for (c2w, k), m in with_mask)
    for _ in range(_MAX_GROWTH):
        pts, voxel = _carve(guess, half, COARSE_GRID, hull_cams, hull_masks)
        if len(pts) == 0 or (pts - torch.from_numpy(guess)).abs().max() < half - 1.5 * voxel:
            break
        half *= 2.0  # the hull reaches the border of the grid
    if len(pts) == 0:
        raise CaptureError(f"{source}: no point of space is inside every mask, so the masks and the cameras "
                           "disagree; check that each mask belongs to its image and the poses are camera-to-world.")
    lo, hi = pts.amin(0) - voxel, pts.amax(0) + voxel
    box_centre = ((lo + hi) / 2).numpy()
    fine, fine_voxel = _carve(box_centre, float((hi - lo).max()) / 2, FINE_GRID, hull_cams, hull_masks)
    if len(fine):  # else the hull is thinner than the fine grid's spacing: keep the coarse one
        pts, voxel = fine, fine_voxel
    centre = ((pts.amin(0) + pts.amax(0)) / 2).numpy()
    radius = float((pts - torch.from_numpy(centre)).norm(dim=1).max()) + voxel * math.sqrt(3) / 2
    return Normalisation(tuple(float(x) for x in centre), 1.0 / radius), \
        f"bounding sphere of the masks' visual hull ({len(hull_masks)} views, {FINE_GRID}^3 grid)"


def _cone_radius(c2w: np.ndarray, k: Intrinsics, mask: torch.Tensor, centre: np.ndarray) -> float:
    """dist * sin(theta), theta the largest angle between the ray to ``centre`` and a ray through a
    mask pixel: the radius of the sphere around ``centre`` whose outline just holds the mask.  The
    object's bounding sphere around ``centre`` is at least this large."""
    rows, cols = torch.nonzero(mask >= 0.5, as_tuple=True)
    d = torch.stack([(cols.double() + 0.5 - k.cx) / k.fx, -(rows.double() + 0.5 - k.cy) / k.fy,
                     -torch.ones(len(rows), dtype=torch.float64)], 1) @ torch.from_numpy(c2w[:3, :3]).T
    to_centre = torch.from_numpy(centre - c2w[:3, 3])
    cos = (torch.nn.functional.normalize(d, dim=1) @ (to_centre / to_centre.norm())).clamp(-1.0, 1.0)
    return float(to_centre.norm()) * math.sin(min(float(torch.acos(cos.min())), math.pi / 2))


def _whole_sphere_radius(c2w: np.ndarray, k: Intrinsics, centre: np.ndarray) -> float:
    """Radius of the largest sphere around ``centre`` that the view sees entirely."""
    cam = c2w[:3, :3].T @ (centre - c2w[:3, 3])
    u, v = k.fx * cam[0] / -cam[2] + k.cx, k.cy - k.fy * cam[1] / -cam[2]
    # Angular distance from the centre's ray to the nearest image border, along each image axis.
    angles = []
    for p, c, f, size in ((u, k.cx, k.fx, k.width), (v, k.cy, k.fy, k.height)):
        a = math.atan((p - c) / f)
        angles += [abs(math.atan((0 - c) / f) - a), abs(math.atan((size - c) / f) - a)]
    return float(np.linalg.norm(cam)) * math.sin(max(min(angles), 1e-3))
