"""Outer contours, Douglas-Peucker and ring merging (studio.data.contours), checked by filling the
polygons back into pixels."""

from __future__ import annotations

import numpy as np
import pytest

from studio.data.contours import mask_polygon, merge_rings, outer_contours, polygon_area, simplify_ring


def fill(polygon: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Even-odd fill of a polygon at pixel centres (x + 0.5, y + 0.5) -> [H,W] bool."""
    h, w = shape
    py, px = np.mgrid[0:h, 0:w] + 0.5
    inside = np.zeros(shape, dtype=bool)
    a, b = polygon, np.roll(polygon, -1, 0)
    for (x0, y0), (x1, y1) in zip(a, b):
        crosses = (y0 > py) != (y1 > py)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = x0 + (py - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (px < x_at)
    return inside


def blob(shape: tuple[int, int], seed: int) -> np.ndarray:
    """A star-shaped (hole-free, one-piece) random blob."""
    rng = np.random.default_rng(seed)
    h, w = shape
    y, x = np.mgrid[0:h, 0:w] + 0.5
    cy, cx = h / 2, w / 2
    ang = np.arctan2(y - cy, x - cx)
    radius = min(h, w) * (0.25 + 0.05 * sum(rng.normal() * np.cos(k * ang + rng.uniform(0, 6)) for k in (2, 3, 5)))
    return np.hypot(y - cy, x - cx) < radius


def test_single_pixel_is_its_square():
    m = np.zeros((4, 5), bool)
    m[2, 3] = True
    (ring,) = outer_contours(m)
    assert ring.tolist() == [[3, 2], [4, 2], [4, 3], [3, 3]]
    assert polygon_area(ring) == 1.0


def test_diagonal_pixels_form_one_8_connected_component():
    m = np.zeros((4, 4), bool)
    m[1, 1] = m[2, 2] = True
    rings = outer_contours(m)
    assert len(rings) == 1 and polygon_area(rings[0]) == 2.0
    np.testing.assert_array_equal(fill(rings[0], m.shape), m)


def test_holes_are_dropped_and_outer_outline_kept():
    m = np.zeros((8, 8), bool)
    m[1:7, 1:7] = True
    m[3:5, 3:5] = False
    (ring,) = outer_contours(m)
    assert ring.tolist() == [[1, 1], [7, 1], [7, 7], [1, 7]]


@pytest.mark.parametrize("seed", range(4))
def test_outline_fills_back_to_the_mask_exactly(seed):
    m = blob((48, 40), seed)
    (ring,) = outer_contours(m)
    np.testing.assert_array_equal(fill(ring, m.shape), m)
    ys, xs = np.nonzero(m)
    assert ring[:, 0].min() == xs.min() and ring[:, 0].max() == xs.max() + 1
    assert ring[:, 1].min() == ys.min() and ring[:, 1].max() == ys.max() + 1


@pytest.mark.parametrize("seed", range(3))
def test_simplified_outline_stays_within_epsilon_and_inside_the_box(seed):
    m = blob((64, 64), seed)
    (ring,) = outer_contours(m)
    simple = simplify_ring(ring, 1.0)
    assert 3 <= len(simple) < len(ring)
    assert {tuple(p) for p in simple} <= {tuple(p) for p in ring}  # a subset of the corners
    # Every original corner lies within epsilon of the simplified outline.
    a, b = simple, np.roll(simple, -1, 0)
    for p in ring:
        t = np.clip(((p - a) * (b - a)).sum(1) / np.maximum(((b - a) ** 2).sum(1), 1e-12), 0, 1)
        assert np.min(np.hypot(*(a + t[:, None] * (b - a) - p).T)) <= 1.0 + 1e-9
    disagree = fill(simple, m.shape) != m
    assert disagree.sum() < 0.05 * m.sum()


def test_separate_parts_merge_into_one_polygon_covering_both():
    m = np.zeros((20, 30), bool)
    m[2:8, 3:9] = True
    m[12:18, 20:27] = True
    m[15, 2] = True
    poly = mask_polygon(m, epsilon=0.0)
    assert poly.shape[1] == 2 and len(poly) >= 3
    np.testing.assert_array_equal(fill(poly, m.shape), m)


def test_merge_keeps_each_ring_complete():
    a = np.array([[0, 0], [4, 0], [4, 4], [0, 4]], float)
    b = np.array([[10, 0], [12, 0], [12, 2], [10, 2]], float)
    merged = merge_rings([b, a])
    assert {tuple(p) for p in merged} == {tuple(p) for p in np.concatenate([a, b])}
    assert polygon_area(merged) == pytest.approx(polygon_area(a) + polygon_area(b))


def test_empty_mask_has_no_polygon():
    assert mask_polygon(np.zeros((5, 5), bool)) is None
