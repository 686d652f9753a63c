"""The initial shape: the visual hull of a capture's silhouettes, or a sphere.

The visual hull is the largest shape whose silhouettes fit inside every mask.  It is carved on a
voxel grid over the normalised unit sphere (the capture readers put the object there): a voxel
centre keeps min over views of the (bilinearly sampled) mask at its projection, which is a
continuous field, so marching cubes at 0.5 places the surface between voxels instead of on their
faces.  scikit-image provides marching cubes (an optional extra, ``pip install -e '.[reconstruct]'``);
without it, or for a capture without masks, the start is a sphere.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import trimesh

from ..capture.model import Capture, View

log = logging.getLogger("studio.reconstruct")

#: Radius of the sphere start (the object is normalised into the unit sphere).
SPHERE_RADIUS = 0.9


class ReconstructionError(ValueError):
    """A capture that cannot be reconstructed; the message is one sentence naming it and what to do."""


def view_pixels(view: View, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Grid-sample coordinates [P,2] in [-1, 1] (x right, y down, pixel-edge aligned) of world points
    [P,3] in ``view``, and [P] bool: in front of the camera."""
    clip = torch.cat([points, torch.ones_like(points[:, :1])], 1) @ view.world_to_clip().T
    w = clip[:, 3]
    ndc = clip[:, :2] / w.clamp(min=1e-8).unsqueeze(1)
    return torch.stack([ndc[:, 0], -ndc[:, 1]], 1), w > 1e-6


def check_masks(capture: Capture) -> None:
    """Raise :class:`ReconstructionError` if the capture has no training views or an empty mask."""
    if not capture.views:
        raise ReconstructionError(f"capture {capture.source} has no training views; add images (or lower --holdout).")
    for v in capture.views:
        if v.mask is not None and float(v.mask.max()) < 0.5:
            raise ReconstructionError(f"the mask of view {v.name!r} in {capture.source} is empty; give masks that "
                                      "cover the object (RGBA alpha or --masks DIR).")


def carve(capture: Capture, resolution: int = 64) -> np.ndarray:
    """Occupancy [R,R,R] float32 in [0, 1] at voxel centres over [-1, 1]^3 (index order x, y, z):
    the minimum over training views of the mask at each centre's projection (0 outside a view)."""
    ax = (np.arange(resolution) + 0.5) / resolution * 2 - 1
    grid = torch.from_numpy(np.stack(np.meshgrid(ax, ax, ax, indexing="ij"), -1).reshape(-1, 3)).float()
    occ = torch.ones(grid.shape[0])
    for view in capture.views:
        xy, front = view_pixels(view, grid)
        m = torch.nn.functional.grid_sample(view.mask[None, None].float(), xy[None, None], mode="bilinear",
                                            padding_mode="zeros", align_corners=False)[0, 0, 0]
        occ = torch.minimum(occ, torch.where(front, m, torch.zeros_like(m)))
    return occ.reshape(resolution, resolution, resolution).numpy()


def sphere(subdivisions: int = 3, radius: float = SPHERE_RADIUS) -> tuple[np.ndarray, np.ndarray]:
    """An icosphere: vertices [V,3] float64, faces [T,3] int64 (counter-clockwise)."""
    m = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    return np.asarray(m.vertices, np.float64), np.asarray(m.faces, np.int64)


def visual_hull(capture: Capture, resolution: int = 64) -> tuple[np.ndarray, np.ndarray, str]:
    """The starting mesh of a reconstruction.

    Returns:
        (vertices [V,3] float64, faces [T,3] int64 counter-clockwise, a sentence saying what it is).

    Raises:
        ReconstructionError: no views, an empty mask, or silhouettes that share no volume (the
            cameras do not look at one object).
    """
    check_masks(capture)
    if any(v.mask is None for v in capture.views):
        return (*sphere(), "the capture has no masks, so the reconstruction starts from a sphere.")
    try:
        from skimage.measure import marching_cubes
    except ImportError:
        return (*sphere(), "scikit-image is not installed (pip install -e '.[reconstruct]'), so the reconstruction "
                           "starts from a sphere instead of the visual hull.")
    occ = carve(capture, resolution)
    if occ.max() < 0.5:
        raise ReconstructionError(f"the silhouettes of {capture.source} share no volume inside the unit sphere, so "
                                  "the cameras do not look at one object; check the poses (camera-to-world, "
                                  "OpenGL axes) and the masks.")
    padded = np.pad(occ, 1)
    verts, faces, _, _ = marching_cubes(padded, level=0.5)
    verts = (verts - 0.5) / resolution * 2 - 1  # padded index -> voxel-centre coordinates in [-1, 1]
    mesh = trimesh.Trimesh(verts, faces, process=True)
    parts = mesh.split(only_watertight=False)
    if len(parts) > 1:
        mesh = max(parts, key=lambda m: len(m.faces))
    if mesh.volume < 0:
        mesh.invert()
    return (np.asarray(mesh.vertices, np.float64), np.asarray(mesh.faces, np.int64),
            f"visual hull of {len(capture.views)} silhouettes on a {resolution}^3 grid: {len(mesh.faces)} triangles.")
