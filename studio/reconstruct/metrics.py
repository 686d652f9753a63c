"""How good a reconstruction is: surface distance to a reference mesh, PSNR and silhouette IoU.

The surface distance samples both surfaces uniformly by area (30,000 points each by default) and
measures every sample's distance to the other surface (exact point-to-triangle distance over the
nearest triangles by centroid), so it does not depend on how either mesh is triangulated.
"""

from __future__ import annotations

import numpy as np
import torch
import trimesh
from scipy.spatial import cKDTree

from ..scene.surface_distance import point_triangle_distance

SAMPLES = 30_000
_CANDIDATES = 24  # nearest triangle centroids searched per sample


def _to_surface(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    tri = vertices[faces]
    k = min(_CANDIDATES, len(faces))
    _, cand = cKDTree(tri.mean(1)).query(points, k=k)
    cand = cand.reshape(len(points), k)
    t = torch.from_numpy(tri[cand])  # [P,k,3,3]
    p = torch.from_numpy(points)[:, None].expand(-1, k, -1)
    return point_triangle_distance(p, t[..., 0, :], t[..., 1, :], t[..., 2, :]).amin(1).numpy()


def bounding_radius(vertices: np.ndarray) -> float:
    """Half the diagonal of the axis-aligned bounding box (scene units)."""
    v = np.asarray(vertices, np.float64)
    return float(np.linalg.norm(v.max(0) - v.min(0)) / 2)


def surface_distance(va: np.ndarray, fa: np.ndarray, vb: np.ndarray, fb: np.ndarray, samples: int = SAMPLES,
                     seed: int = 0) -> float:
    """Symmetric mean surface distance (scene units): the mean over ``samples`` area-uniform points on
    each surface of their distance to the other surface, averaged over both directions."""
    ma = trimesh.Trimesh(np.asarray(va, np.float64), np.asarray(fa, np.int64), process=False)
    mb = trimesh.Trimesh(np.asarray(vb, np.float64), np.asarray(fb, np.int64), process=False)
    pa, _ = trimesh.sample.sample_surface(ma, samples, seed=seed)
    pb, _ = trimesh.sample.sample_surface(mb, samples, seed=seed + 1)
    d_ab = _to_surface(np.asarray(pa), mb.vertices, mb.faces)
    d_ba = _to_surface(np.asarray(pb), ma.vertices, ma.faces)
    return float((d_ab.mean() + d_ba.mean()) / 2)


def psnr(render: torch.Tensor, target: torch.Tensor) -> float:
    """PSNR in dB of [...,3] linear RGB in [0, 1] (both composited over the same background)."""
    mse = float((render.clamp(0, 1) - target.clamp(0, 1)).square().mean())
    return float("inf") if mse == 0 else -10.0 * float(np.log10(mse))


def mask_iou(alpha: torch.Tensor, mask: torch.Tensor) -> float:
    """Intersection over union of two coverages [...] thresholded at 0.5."""
    a, m = alpha > 0.5, mask > 0.5
    union = int((a | m).sum())
    return 1.0 if union == 0 else int((a & m).sum()) / union
