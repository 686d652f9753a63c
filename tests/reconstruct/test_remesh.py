"""Isotropic remeshing keeps a closed manifold, reaches the target edge length and raises angles."""

import numpy as np
import pytest
import trimesh

from studio.reconstruct.remesh import isotropic_remesh, mean_edge_length


def _noisy_sphere():
    m = trimesh.creation.icosphere(3)
    rng = np.random.default_rng(0)
    # Anisotropic squash plus jitter: long, short and skinny triangles all at once.
    v = m.vertices * [1.0, 0.6, 1.0] + 0.02 * rng.normal(size=m.vertices.shape)
    return v, np.asarray(m.faces)


def _check_manifold(v, f):
    tm = trimesh.Trimesh(v, f, process=False)
    assert tm.is_watertight and tm.is_winding_consistent
    assert tm.euler_number == 2
    assert len(np.unique(np.sort(f, 1), axis=0)) == len(f)
    assert tm.volume > 0  # still counter-clockwise seen from outside


@pytest.mark.parametrize("target", [0.05, 0.25])
def test_remesh_reaches_target_and_stays_manifold(target):
    v, f = _noisy_sphere()
    before = trimesh.Trimesh(v, f, process=False)
    r = isotropic_remesh(v, f, target, iterations=5, attributes=np.ones((len(v), 2)))
    _check_manifold(r.vertices, r.faces)
    assert abs(mean_edge_length(r.vertices, r.faces) / target - 1) < 0.15
    after = trimesh.Trimesh(r.vertices, r.faces, process=False)
    assert np.degrees(after.face_angles.min()) > np.degrees(before.face_angles.min()) + 5
    assert np.degrees(after.face_angles.min()) > 20
    np.testing.assert_allclose(r.attributes, 1.0)
    assert abs(after.volume / before.volume - 1) < 0.1  # the shape is kept


def test_remesh_carries_attributes_by_averaging():
    v, f = _noisy_sphere()
    r = isotropic_remesh(v, f, 0.05, iterations=2, attributes=v[:, :1].copy())
    # A linear attribute stays (nearly) linear in position under midpoint splits and collapses.
    assert np.abs(r.attributes[:, 0] - r.vertices[:, 0]).max() < 0.08
