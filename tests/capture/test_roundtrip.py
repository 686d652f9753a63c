"""Round trips NeRF <-> COLMAP <-> the studio's cameras, checked against where the renderer draws."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from studio.capture import load_capture
from studio.capture.conventions import (GL_FROM_CV, c2w_to_colmap_pose, colmap_pose_to_c2w, qvec_to_rotation,
                                        rotation_to_qvec)
from studio.scene.camera import look_at, orbit_eye, perspective

from .conftest import MARKER_CENTRE, RES, TEST_VIEWS, VIEWS, WORLD_SCALE, world


def _random_rotations(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    out = []
    for _ in range(n):
        q, r = np.linalg.qr(rng.normal(size=(3, 3)))
        q = q * np.sign(np.diag(r))
        out.append(q if np.linalg.det(q) > 0 else -q)
    return out


def test_quaternions_round_trip_including_near_half_turns():
    rots = _random_rotations(50) + [np.diag([1.0, -1.0, -1.0]), np.diag([-1.0, -1.0, 1.0]), np.eye(3)]
    for r in rots:
        q = rotation_to_qvec(r)
        assert q[0] >= 0 and abs(np.linalg.norm(q) - 1) < 1e-12
        np.testing.assert_allclose(qvec_to_rotation(q), r, atol=1e-12)


def test_colmap_pose_is_world_to_camera_in_opencv_axes():
    # A camera at (0, 0, 5) looking at the origin (OpenGL: down -z).  In OpenCV axes the origin is
    # straight ahead at +z = 5 and the world's +y (up) is the camera's -y (image rows grow downwards).
    c2w = torch.linalg.inv(look_at(torch.tensor([0.0, 0.0, 5.0]))).double().numpy()
    q, t = c2w_to_colmap_pose(c2w)
    r = qvec_to_rotation(q)
    np.testing.assert_allclose(r @ np.zeros(3) + t, [0, 0, 5], atol=1e-12)
    np.testing.assert_allclose(r @ np.array([0.0, 1.0, 0.0]), [0, -1, 0], atol=1e-12)
    np.testing.assert_allclose(colmap_pose_to_c2w(q, t), c2w, atol=1e-12)
    np.testing.assert_allclose(GL_FROM_CV @ GL_FROM_CV, np.eye(4))


def test_intrinsics_projection_equals_the_studio_perspective_for_a_centred_camera(captures):
    cap = load_capture(captures["nerf"])
    k = cap.views[0].intrinsics
    fov_y = math.degrees(2 * math.atan(k.height / 2 / k.fy))
    torch.testing.assert_close(k.projection(0.05, 20.0), perspective(fov_y, k.width / k.height, 0.05, 20.0),
                               atol=1e-5, rtol=1e-5)


def _load(captures, name: str):
    masks = captures[name] / "masks" if name == "colmap_bin" else None
    return load_capture(captures[name], masks=masks)


@pytest.mark.parametrize("other", ["colmap_txt", "colmap_bin"])
def test_nerf_and_colmap_copies_read_back_the_same(captures, synth_views, other):
    nerf = load_capture(captures["nerf"])
    colmap = _load(captures, other)
    assert nerf.layout == "nerf" and colmap.layout == "colmap"
    assert len(nerf.views) == len(colmap.views) == VIEWS and len(nerf.test_views) == TEST_VIEWS
    assert len(colmap.test_views) == 0
    np.testing.assert_allclose(nerf.normalisation.centre, colmap.normalisation.centre, atol=1e-6)
    assert nerf.normalisation.scale == pytest.approx(colmap.normalisation.scale, rel=1e-6)
    train, _, _ = synth_views
    for a, b, truth in zip(nerf.views, colmap.views, train):
        assert a.name == b.name == truth.name
        assert a.intrinsics == b.intrinsics
        torch.testing.assert_close(a.cam_to_world, b.cam_to_world, atol=1e-5, rtol=0)
        # Images and masks survive 8-bit sRGB files: one quantisation step.
        assert (a.image - b.image).abs().max() < 2e-2 and (a.mask - b.mask).abs().max() < 3e-3
        assert (a.mask - truth.mask).abs().max() < 3e-3
        # The written world pose comes back once the normalisation is undone.
        world_pose = a.cam_to_world.double().clone()
        n = nerf.normalisation
        world_pose[:3, 3] = n.to_world(world_pose[:3, 3])
        torch.testing.assert_close(world_pose, truth.cam_to_world.double(), atol=1e-4, rtol=0)


def test_loaded_cameras_are_the_studio_look_at_cameras(captures):
    """Views were placed with look_at/orbit_eye in the unit frame; undoing the capture's world
    similarity and the normalisation must give the same world-to-camera matrices back."""
    cap = _load(captures, "colmap_bin")
    w = world()
    from studio.scene.base import fibonacci_views

    for v, (az, el) in zip(cap.views, fibonacci_views(VIEWS, 75.0)):
        eye_world = cap.normalisation.to_world(v.eye.double())
        eye_unit = torch.from_numpy(np.linalg.solve(w[:3, :3], eye_world.numpy() - w[:3, 3]))
        expected = orbit_eye(az, el, float(eye_unit.norm()))
        torch.testing.assert_close(eye_unit.float(), expected, atol=1e-4, rtol=0)
        rot_unit = torch.from_numpy(w[:3, :3].T / WORLD_SCALE) @ v.cam_to_world[:3, :3].double()
        torch.testing.assert_close(rot_unit.float(), look_at(expected)[:3, :3].T, atol=1e-5, rtol=0)


@pytest.mark.parametrize("layout", ["nerf", "colmap_txt"])
def test_known_point_reprojects_onto_the_rendered_marker(captures, layout):
    """The marker sphere's centre, taken through the capture's world, the normalisation and each
    loaded camera, lands on the centroid of the marker's pixels in the rendered image."""
    cap = load_capture(captures[layout])
    w = world()
    centre_world = torch.from_numpy(w[:3, :3] @ MARKER_CENTRE + w[:3, 3])
    p = cap.normalisation.to_unit(centre_world).float()
    checked = 0
    for v in cap.views + cap.test_views:
        clip = v.world_to_clip() @ torch.cat([p, torch.ones(1)])
        u = (clip[0] / clip[3] + 1) / 2 * RES
        row = (1 - clip[1] / clip[3]) / 2 * RES
        # The marker is the only surface in a small window around where it should be.  A half-pixel
        # convention error would show as 0.5 px; antialiased coverage of a disc a few pixels wide
        # puts its centroid within about 0.1 px.
        i0, j0 = int(row), int(u)
        if not (6 <= i0 < RES - 6 and 6 <= j0 < RES - 6):
            continue
        win = v.mask[i0 - 5:i0 + 6, j0 - 5:j0 + 6].double()
        cam = v.world_to_camera @ torch.cat([p, torch.ones(1)])
        depth_marker = -cam[2]
        # Skip views where the critter is inside the window (marker in front of or behind it).
        if win[0].sum() + win[-1].sum() + win[:, 0].sum() + win[:, -1].sum() > 0.05:
            continue
        rows, cols = torch.meshgrid(torch.arange(i0 - 5, i0 + 6) + 0.5, torch.arange(j0 - 5, j0 + 6) + 0.5,
                                    indexing="ij")
        cu, cv = float((win * cols).sum() / win.sum()), float((win * rows).sum() / win.sum())
        assert abs(cu - float(u)) < 0.2 and abs(cv - float(row)) < 0.2, (v.name, cu, cv, float(u), float(row))
        assert depth_marker > 0
        checked += 1
    assert checked >= 4
