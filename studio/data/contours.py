"""Outer contours of binary masks as polygons, in numpy: crack following, then Douglas-Peucker.

Coordinates are image pixels with x to the right and y down; pixel (row r, column c) is the unit
square [c, c+1] x [r, r+1], so pixel corners sit at integers.  A contour walks along pixel edges
(the "cracks" between an inside and an outside pixel), which makes the traced polygon enclose
exactly the mask's pixels: its bounding box is the bounding box of the pixels, to the pixel.

Components are 8-connected (pixels that touch only at a corner belong together; the contour passes
through that corner twice).  Only outer boundaries are kept: a YOLO-seg polygon cannot hold holes.
"""

from __future__ import annotations

import numpy as np

# Directions of a step along a pixel edge: east, south, west, north (y down).
_DX = np.array([1, 0, -1, 0])
_DY = np.array([0, 1, 0, -1])


def outer_contours(mask: np.ndarray) -> list[np.ndarray]:
    """Outer boundaries of the 8-connected components of ``mask``.

    Args:
        mask: [H,W] boolean (or 0/1) image.

    Returns:
        One [N,2] float64 array of (x, y) pixel-corner coordinates per component, N >= 4,
        clockwise on screen (inside on the right when walking, positive shoelace area with y
        down), corners only (no collinear points).
    """
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return []
    r0, c0 = int(ys.min()), int(xs.min())
    # Crop to the mask's box with a one-pixel empty border, so neighbours always exist.
    m = np.zeros((int(ys.max()) - r0 + 3, int(xs.max()) - c0 + 3), dtype=bool)
    m[ys - r0 + 1, xs - c0 + 1] = True
    h, w = m.shape
    outside_n = np.ones_like(m)
    outside_n[1:] = ~m[:-1]
    outside_s = np.ones_like(m)
    outside_s[:-1] = ~m[1:]
    outside_w = np.ones_like(m)
    outside_w[:, 1:] = ~m[:, :-1]
    outside_e = np.ones_like(m)
    outside_e[:, :-1] = ~m[:, 1:]
    # Each boundary side of an inside pixel is one directed edge, clockwise around the pixel:
    # top side eastwards from its top-left corner, right side southwards, bottom westwards, left
    # northwards.  (row, col) below are the edge's start corner.
    starts_r, starts_c, dirs = [], [], []
    for side, dr, dc, d in ((m & outside_n, 0, 0, 0), (m & outside_e, 0, 1, 1),
                            (m & outside_s, 1, 1, 2), (m & outside_w, 1, 0, 3)):
        r, c = np.nonzero(side)
        starts_r.append(r + dr)
        starts_c.append(c + dc)
        dirs.append(np.full(r.size, d))
    sr, sc, d = np.concatenate(starts_r), np.concatenate(starts_c), np.concatenate(dirs)
    n_edges = d.size
    stride = w + 1
    out = np.full(((h + 1) * stride, 4), -1, dtype=np.int64)
    out[sr * stride + sc, d] = np.arange(n_edges)
    end = (sr + _DY[d]) * stride + sc + _DX[d]
    # Every corner has as many edges leaving as arriving; only where two diagonal pixels touch
    # are there two of each, and turning left there walks on into the diagonal neighbour
    # (8-connectivity) instead of around the same pixel.
    nxt = out[end, (d + 3) % 4]
    for turn in (0, 1):
        missing = nxt < 0
        nxt[missing] = out[end[missing], (d[missing] + turn) % 4]

    nxt_list = nxt.tolist()
    seen = bytearray(n_edges)
    x = (sc + c0 - 1).astype(np.float64)
    y = (sr + r0 - 1).astype(np.float64)
    rings = []
    for first in range(n_edges):
        if seen[first]:
            continue
        cycle = []
        e = first
        while not seen[e]:
            seen[e] = 1
            cycle.append(e)
            e = nxt_list[e]
        idx = np.asarray(cycle)
        corner = d[idx] != np.roll(d[idx], 1)
        pts = np.stack([x[idx[corner]], y[idx[corner]]], 1)
        if polygon_area(pts) > 0:  # holes run anticlockwise
            rings.append(pts)
    return rings


def polygon_area(points: np.ndarray) -> float:
    """Signed shoelace area of a closed polygon [N,2]; positive when clockwise on screen (y down)."""
    x, y = points[:, 0], points[:, 1]
    return float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)) / 2.0


def _douglas_peucker(points: np.ndarray, epsilon: float) -> np.ndarray:
    """Open polyline [N,2] -> the subset of its points (endpoints kept) within ``epsilon``."""
    keep = np.zeros(len(points), dtype=bool)
    keep[[0, -1]] = True
    stack = [(0, len(points) - 1)]
    while stack:
        i, j = stack.pop()
        if j <= i + 1:
            continue
        a, b = points[i], points[j]
        seg = b - a
        rel = points[i + 1:j] - a
        length = float(np.hypot(*seg))
        if length > 0:
            dist = np.abs(seg[0] * rel[:, 1] - seg[1] * rel[:, 0]) / length
        else:
            dist = np.hypot(rel[:, 0], rel[:, 1])
        k = int(np.argmax(dist))
        if dist[k] > epsilon:
            keep[i + 1 + k] = True
            stack += [(i, i + 1 + k), (i + 1 + k, j)]
    return points[keep]


def simplify_ring(points: np.ndarray, epsilon: float) -> np.ndarray:
    """Douglas-Peucker simplification of a closed ring [N,2] (a subset of its points).

    The ring is cut at its first point and the point farthest from it, and both halves are
    simplified; the result keeps at least 3 points (else the input is returned).
    """
    if epsilon <= 0 or len(points) <= 4:
        return points
    far = int(np.argmax(np.hypot(*(points - points[0]).T)))
    first = _douglas_peucker(points[:far + 1], epsilon)
    second = _douglas_peucker(np.concatenate([points[far:], points[:1]]), epsilon)
    ring = np.concatenate([first[:-1], second[:-1]])
    return ring if len(ring) >= 3 else points


def merge_rings(rings: list[np.ndarray]) -> np.ndarray:
    """Join rings [N_i,2] into one polygon by zero-width bridges between their closest corners.

    The polygon walks the largest ring, crosses a bridge into the next ring, goes once round it,
    and comes back the same way (as Ultralytics does when it turns multi-part COCO masks into one
    YOLO polygon), so filling it with either fill rule covers every ring.
    """
    rings = sorted(rings, key=lambda r: -abs(polygon_area(r)))
    poly = rings[0]
    for ring in rings[1:]:
        d2 = ((poly[:, None, :] - ring[None, :, :]) ** 2).sum(-1)
        i, j = np.unravel_index(int(np.argmin(d2)), d2.shape)
        poly = np.concatenate([poly[:i + 1], ring[j:], ring[:j + 1], poly[i:]])
    return poly


def mask_polygon(mask: np.ndarray, epsilon: float = 1.0) -> np.ndarray | None:
    """One polygon [N,2] (pixel corners, N >= 3) covering every component of ``mask``, each
    outer boundary simplified within ``epsilon`` pixels; None for an empty mask."""
    rings = [simplify_ring(r, epsilon) for r in outer_contours(mask)]
    return merge_rings(rings) if rings else None
