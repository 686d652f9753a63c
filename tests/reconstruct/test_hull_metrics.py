"""The visual hull, the bad-capture checks and the reconstruction metrics."""

from dataclasses import replace

import numpy as np
import pytest
import torch
import trimesh

from studio.reconstruct.hull import ReconstructionError, carve, check_masks, visual_hull
from studio.reconstruct.metrics import bounding_radius, mask_iou, psnr, surface_distance


def test_visual_hull_encloses_the_object(tiny_capture):
    capture, tv, tf = tiny_capture
    v, f, note = visual_hull(capture, 48)
    assert "visual hull" in note
    hull = trimesh.Trimesh(v, f, process=False)
    truth = trimesh.Trimesh(tv.numpy(), tf.numpy(), process=False)
    assert hull.is_watertight and hull.volume > 0
    assert hull.volume > 0.97 * truth.volume  # carving only removes what some view sees as empty
    # The object is inside, up to less than a pixel's footprint (0.04 units at 48 px): the hull's
    # surface is the 0.5 level of antialiased masks.
    t = truth.vertices[::10]
    outside = t[~hull.contains(t)]
    assert np.abs(trimesh.proximity.ProximityQuery(hull).signed_distance(outside)).max() < 0.04
    assert surface_distance(v, f, tv.numpy(), tf.numpy(), 5000) < 0.04 * bounding_radius(tv.numpy())


def test_carve_is_zero_where_a_view_sees_background(tiny_capture):
    capture, _, _ = tiny_capture
    occ = carve(capture, 16)
    assert occ[0, 0, 0] == 0 and occ[8, 8, 8] > 0.5


def test_no_masks_start_from_a_sphere(tiny_capture):
    capture, _, _ = tiny_capture
    bare = capture.with_views(tuple(replace(v, mask=None) for v in capture.views), ())
    v, f, note = visual_hull(bare)
    assert "sphere" in note
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 0.9, rtol=1e-6)


def test_bad_captures_get_one_sentence(tiny_capture):
    capture, _, _ = tiny_capture
    with pytest.raises(ReconstructionError, match="no training views"):
        check_masks(capture.with_views((), ()))
    empty = capture.with_views((replace(capture.views[0], mask=torch.zeros_like(capture.views[0].mask)),)
                               + capture.views[1:], ())
    with pytest.raises(ReconstructionError, match=f"mask of view '{capture.views[0].name}'.* is empty"):
        visual_hull(empty)
    # Every camera turned to look away: the silhouettes share no volume.
    away = tuple(replace(v, cam_to_world=v.cam_to_world @ torch.diag(torch.tensor([-1.0, 1.0, -1.0, 1.0])))
                 for v in capture.views)
    with pytest.raises(ReconstructionError, match="share no volume"):
        visual_hull(capture.with_views(away, ()))


def test_surface_distance_of_concentric_spheres():
    a = trimesh.creation.icosphere(4, radius=1.0)
    b = trimesh.creation.icosphere(4, radius=1.1)
    assert surface_distance(a.vertices, a.faces, a.vertices, a.faces, 2000) < 1e-9
    d = surface_distance(a.vertices, a.faces, b.vertices, b.faces, 5000)
    assert abs(d - 0.1) < 0.003  # the tessellation is within ~0.2% of the radius


def test_psnr_and_iou():
    x = torch.zeros(4, 4, 3)
    assert abs(psnr(x + 0.1, x) - 20.0) < 1e-5
    a = torch.zeros(4, 4)
    a[:2] = 1
    m = torch.zeros(4, 4)
    m[1:3] = 1
    assert mask_iou(a, m) == pytest.approx(1 / 3)
