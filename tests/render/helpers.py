"""Small scene builders for render tests (camera matrices and meshes in clip space)."""

from __future__ import annotations

import numpy as np
import torch
import trimesh

from studio.scene.camera import look_at, orbit_eye, perspective, to_clip


def mvp_matrix(az: float = 30.0, el: float = 20.0, dist: float = 3.0, fov: float = 45.0,
               aspect: float = 1.0) -> torch.Tensor:
    """[4,4] projection @ view for an orbit camera looking at the origin."""
    return perspective(fov, aspect, 0.1, 20.0) @ look_at(orbit_eye(az, el, dist))


def clip_mesh(mesh: trimesh.Trimesh, mvp: torch.Tensor, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """(pos [1,V,4], tri [T,3] int32) of a trimesh mesh under ``mvp``."""
    v = torch.tensor(np.asarray(mesh.vertices), dtype=torch.float32)
    pos = to_clip(v, mvp).to(dtype).contiguous()
    return pos, torch.tensor(np.asarray(mesh.faces), dtype=torch.int32)


def pixel_rays(mvp: torch.Tensor, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """World-space origins and directions [H*W,3] of rays through pixel centres (row 0 = NDC y -1)."""
    inv = torch.linalg.inv(mvp.double()).numpy()
    xs = (2 * np.arange(w) + 1) / w - 1
    ys = (2 * np.arange(h) + 1) / h - 1
    X, Y = np.meshgrid(xs, ys)
    near = np.stack([X, Y, -np.ones_like(X), np.ones_like(X)], -1).reshape(-1, 4) @ inv.T
    far = np.stack([X, Y, np.ones_like(X), np.ones_like(X)], -1).reshape(-1, 4) @ inv.T
    near = near[:, :3] / near[:, 3:]
    far = far[:, :3] / far[:, 3:]
    d = far - near
    return near, d / np.linalg.norm(d, axis=1, keepdims=True)
