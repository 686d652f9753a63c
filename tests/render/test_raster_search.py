"""The visibility search: exact row runs against a brute-force per-pixel test, back-face rejection
only where it cannot change the image, and the closed-mesh check that allows it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from studio.render.raster_search import is_closed
from studio.render.topology import build_topology
from studio.render.torch_raster import TorchBackend

from .helpers import clip_mesh, mvp_matrix


def _brute_force_ids(pos: torch.Tensor, tri: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """Triangle id + 1 per pixel from every (triangle, pixel) pair in float64: pixel centres
    strictly inside (or on an edge whose normal points to +x, or +y if horizontal), z/w within
    [-1, 1], closest wins, lower index on ties.  Triangles here have w > 0."""
    p = pos[0].double()
    cols = (2 * torch.arange(W, dtype=torch.float64) + 1) / W - 1
    rows = (2 * torch.arange(H, dtype=torch.float64) + 1) / H - 1
    py, px = torch.meshgrid(rows, cols, indexing="ij")
    best = torch.full((H, W), float("inf"), dtype=torch.float64)
    ids = torch.zeros(H, W)
    for t, (i0, i1, i2) in enumerate(tri.long().tolist()):
        v = p[[i0, i1, i2]]
        sx, sy = v[:, 0] / v[:, 3], v[:, 1] / v[:, 3]
        area = (sx[1] - sx[0]) * (sy[2] - sy[0]) - (sx[2] - sx[0]) * (sy[1] - sy[0])
        if area == 0:
            continue
        inside = torch.ones(H, W, dtype=torch.bool)
        for j, k in ((1, 2), (2, 0), (0, 1)):
            a, b = -(sy[k] - sy[j]), sx[k] - sx[j]
            if area < 0:
                a, b = -a, -b
            e = a * (px - sx[j]) + b * (py - sy[j])
            tie = bool(a > 0) or (bool(a == 0) and bool(b > 0))
            inside &= (e >= 0) if tie else (e > 0)
        # Screen-space barycentrics -> z/w (linear in screen space).
        l1 = ((px - sx[0]) * (sy[2] - sy[0]) - (sx[2] - sx[0]) * (py - sy[0])) / area
        l2 = ((sx[1] - sx[0]) * (py - sy[0]) - (px - sx[0]) * (sy[1] - sy[0])) / area
        zw = v[:, 2] / v[:, 3]
        depth = zw[0] + l1 * (zw[1] - zw[0]) + l2 * (zw[2] - zw[0])
        win = inside & (depth >= -1) & (depth <= 1) & (depth < best - 1e-12)
        best = torch.where(win, depth, best)
        ids = torch.where(win, float(t + 1), ids)
    return ids


def test_row_runs_match_a_brute_force_pixel_test():
    g = torch.Generator().manual_seed(3)
    n = 40
    xy = torch.rand(n, 3, 2, generator=g) * 2.4 - 1.2
    z = torch.rand(n, 1, 1, generator=g).expand(n, 3, 1) * 1.8 - 0.9  # flat in depth: no near ties
    w = torch.rand(n, 3, 1, generator=g) * 0.5 + 0.75
    pos = torch.cat([xy * w, z * w, w], -1).reshape(1, 3 * n, 4).float()
    tri = torch.arange(3 * n, dtype=torch.int32).view(n, 3)
    H, W = 29, 37
    rast, _ = TorchBackend("cpu").rasterize(pos, tri, (H, W), grad_db=False)
    ref = _brute_force_ids(pos, tri, H, W)
    # Fixed-point depth keys may order two faces within ~1e-7 of each other differently.
    assert (rast[0, ..., 3] != ref).float().mean() < 0.002


def test_axis_aligned_edges_through_pixel_centres_cover_each_pixel_once():
    # A grid of quads whose horizontal and vertical edges pass exactly through pixel centres.
    H = W = 8
    xs = (2 * torch.arange(0, W + 1, 2, dtype=torch.float32) + 1) / W - 1
    verts = torch.stack(torch.meshgrid(xs, xs, indexing="xy"), -1).reshape(-1, 2)
    m = len(xs)
    quads = [(i * m + j, i * m + j + 1, (i + 1) * m + j + 1, (i + 1) * m + j) for i in range(m - 1) for j in range(m - 1)]
    tri = torch.tensor([t for a, b, c, d in quads for t in ((a, b, c), (a, c, d))], dtype=torch.int32)
    pos = torch.cat([verts, torch.zeros(len(verts), 1), torch.ones(len(verts), 1)], 1)[None]
    rast, _ = TorchBackend("cpu").rasterize(pos, tri, (H, W), grad_db=False)
    ref = _brute_force_ids(pos, tri, H, W)
    assert torch.equal(rast[0, ..., 3], ref)


def test_a_closed_consistently_wound_mesh_is_recognised():
    sphere = trimesh.creation.icosphere(subdivisions=1)
    tri = torch.tensor(np.asarray(sphere.faces), dtype=torch.int32)
    assert is_closed(build_topology(tri))
    assert not is_closed(build_topology(tri[1:]))  # a hole
    flipped = tri.clone()
    flipped[0] = flipped[0].flip(0)  # one face wound the other way
    assert not is_closed(build_topology(flipped))


@pytest.fixture
def sphere():
    return trimesh.creation.icosphere(subdivisions=2, radius=0.8)


def test_culling_a_closed_mesh_seen_from_outside_changes_nothing(sphere):
    pos, tri = clip_mesh(sphere, mvp_matrix(az=20, el=10, dist=2.5))
    full, full_db = TorchBackend("cpu").rasterize(pos, tri, (48, 40))
    culled, culled_db = TorchBackend("cpu", cull_back_faces=True).rasterize(pos, tri, (48, 40))
    assert torch.equal(full, culled) and torch.equal(full_db, culled_db)


def test_back_faces_are_kept_by_default_and_wherever_they_can_show(sphere):
    # Half a sphere, open towards the camera: its inside (clockwise on screen) is visible.
    keep = sphere.triangles_center[:, 2] < 0.0
    bowl = trimesh.Trimesh(sphere.vertices, sphere.faces[keep], process=False)
    pos, tri = clip_mesh(bowl, mvp_matrix(az=0, el=0, dist=2.5))
    plain, _ = TorchBackend("cpu").rasterize(pos, tri, (32, 32), grad_db=False)
    opted, _ = TorchBackend("cpu", cull_back_faces=True).rasterize(pos, tri, (32, 32), grad_db=False)
    assert (plain[..., 3] > 0).sum() > 100
    assert torch.equal(plain, opted)  # not closed: nothing is culled
    # A closed mesh cut open by the near plane shows its inside too: no culling either.
    pos, tri = clip_mesh(sphere, mvp_matrix(az=0, el=0, dist=0.85))
    plain, _ = TorchBackend("cpu").rasterize(pos, tri, (32, 32), grad_db=False)
    opted, _ = TorchBackend("cpu", cull_back_faces=True).rasterize(pos, tri, (32, 32), grad_db=False)
    assert (plain[..., 3] > 0).any() and torch.equal(plain, opted)
