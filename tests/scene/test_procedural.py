"""Generated meshes and textures (studio.scene.procedural)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import trimesh

from studio.scene.mesh import Mesh, normal_consistency
from studio.scene.procedural import (
    checkerboard,
    critter,
    cube_mesh,
    fbm_noise,
    icosphere,
    lobed_sphere,
    peanut,
    planet_texture,
    torus,
    uv_grid,
    uv_sphere,
)

CLOSED = {
    "cube": lambda: cube_mesh(1.5),
    "icosphere": lambda: icosphere(2),
    "uv_sphere": lambda: uv_sphere(8, 12),
    "torus": lambda: torus(),
    "peanut": lambda: peanut(3),
    "lobed_sphere": lambda: lobed_sphere(3),
    "critter": lambda: critter(3),
}
TARGETS = {"peanut": peanut, "lobed_sphere": lobed_sphere, "critter": critter}


def _uv_signed_areas(mesh: Mesh) -> torch.Tensor:
    """[T] signed area of each triangle in (u, v) with u to the right and v up."""
    t = mesh.uv[mesh.uv_faces.long()].double()
    a, b = t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]
    return (a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]) / 2


@pytest.mark.parametrize("name", CLOSED)
def test_meshes_are_closed_outward_and_share_vertices(name):
    mesh = CLOSED[name]()
    assert mesh.vertices.dtype == torch.float32 and mesh.faces.dtype == torch.int32
    tm = trimesh.Trimesh(mesh.vertices.numpy(), mesh.faces.numpy(), process=False)
    assert tm.is_watertight and tm.is_winding_consistent
    assert tm.volume > 0, "faces must be counter-clockwise seen from outside"
    assert tm.euler_number == (0 if name == "torus" else 2)
    assert len(np.unique(mesh.vertices.numpy().round(6), axis=0)) == mesh.num_vertices
    assert torch.allclose(mesh.vertices.mean(0), torch.zeros(3), atol=0.05 if name in TARGETS else 1e-6)


@pytest.mark.parametrize("make", [cube_mesh, uv_sphere, torus])
def test_textured_meshes_are_unmirrored_and_do_not_wrap_across_seams(make):
    # With row 0 at v = 0 an image appears unmirrored from outside exactly when the (u, v-up)
    # winding is clockwise, i.e. the opposite of the outward (counter-clockwise) 3D winding.  A
    # triangle that wrapped around a seam would come out with the wrong sign.
    mesh = make()
    assert mesh.uv.dtype == torch.float32 and mesh.uv_faces.dtype == torch.int32
    assert mesh.uv.min() >= 0 and mesh.uv.max() <= 1
    assert (_uv_signed_areas(mesh) < 0).all()


def test_cube():
    mesh = cube_mesh(2.0)
    assert (mesh.num_vertices, mesh.num_faces) == (8, 12)
    assert torch.equal(mesh.vertices.abs(), torch.ones(8, 3))
    tm = trimesh.Trimesh(mesh.vertices.numpy(), mesh.faces.numpy(), process=False)
    assert tm.volume == pytest.approx(8.0)
    assert mesh.uv.shape == (4, 2)


@pytest.mark.parametrize("subdivisions", [0, 1, 3])
def test_icosphere(subdivisions):
    mesh = icosphere(subdivisions, radius=0.5)
    assert mesh.num_vertices == 10 * 4 ** subdivisions + 2
    assert mesh.num_faces == 20 * 4 ** subdivisions
    assert torch.allclose(mesh.vertices.norm(dim=1), torch.full((mesh.num_vertices,), 0.5))


def test_uv_sphere_seam_lives_only_in_the_uvs():
    rows, cols = 16, 24
    mesh = uv_sphere(rows, cols, radius=2.0)
    assert mesh.num_vertices == 2 + (rows - 1) * cols
    assert mesh.num_faces == 2 * cols * (rows - 1)
    assert mesh.uv.shape[0] > mesh.num_vertices  # seam column and per-triangle pole UVs
    assert torch.allclose(mesh.vertices.norm(dim=1), torch.full((mesh.num_vertices,), 2.0))
    tm = trimesh.Trimesh(mesh.vertices.numpy(), mesh.faces.numpy(), process=False)
    assert tm.volume == pytest.approx(4 / 3 * math.pi * 8, rel=0.05)

    corner_pos = mesh.vertices[mesh.faces.long()].reshape(-1, 3)
    corner_uv = mesh.uv[mesh.uv_faces.long()].reshape(-1, 2)
    north = corner_pos[:, 1] > 1.999
    assert torch.allclose(corner_uv[north, 1], torch.zeros(1)), "north pole (+y) at v = 0, the top row"
    assert torch.allclose(corner_uv[corner_pos[:, 1] < -1.999, 1], torch.ones(1))
    front = (corner_pos - torch.tensor([0.0, 0.0, 2.0])).norm(dim=1) < 1e-5
    assert torch.allclose(corner_uv[front], torch.tensor([0.5, 0.5])), "texture centre faces +z"
    on_seam = corner_pos[:, 0].abs() < 1e-5
    on_seam &= corner_pos[:, 2] < 0
    seam_u = corner_uv[on_seam & ~north & (corner_pos[:, 1] > -1.999), 0]
    assert set(seam_u.tolist()) == {0.0, 1.0}, "the seam (facing -z) uses u = 0 on one side and 1 on the other"


def test_torus():
    mesh = torus(major_radius=1.0, minor_radius=0.25, major_segments=64, minor_segments=32)
    assert mesh.num_vertices == 64 * 32 and mesh.num_faces == 2 * 64 * 32
    assert mesh.uv.shape[0] == 65 * 33
    tm = trimesh.Trimesh(mesh.vertices.numpy(), mesh.faces.numpy(), process=False)
    assert tm.volume == pytest.approx(2 * math.pi ** 2 * 1.0 * 0.25 ** 2, rel=0.01)
    with pytest.raises(ValueError, match="minor_radius"):
        torus(major_radius=0.5, minor_radius=0.5)


@pytest.mark.parametrize("name", TARGETS)
def test_targets_share_the_icosphere_topology_and_are_star_shaped(name):
    make = TARGETS[name]
    mesh = make(3, radius=0.9)
    assert torch.equal(mesh.faces, icosphere(3).faces), "the same topology can be deformed into it"
    r = mesh.vertices.norm(dim=1)
    assert r.max().item() == pytest.approx(0.9)
    assert r.min() / r.max() < 0.75, "clearly not a sphere"
    centroids = mesh.vertices[mesh.faces.long()].mean(1)
    normals = torch.linalg.cross(*(mesh.vertices[mesh.faces[:, k].long()] - mesh.vertices[mesh.faces[:, 0].long()]
                                   for k in (1, 2)), dim=-1)
    assert ((normals * centroids).sum(1) > 0).all(), "every face is seen from the origin from outside"
    assert normal_consistency(mesh.vertices, mesh.faces) < 0.05, "smooth: no creases"
    assert torch.equal(make(3, radius=0.9).vertices, mesh.vertices), "deterministic"


def test_lobed_sphere_seed_changes_the_shape():
    assert not torch.allclose(lobed_sphere(2, seed=0).vertices, lobed_sphere(2, seed=1).vertices)


def test_peanut_waist():
    mesh = peanut(4, pinch=0.8)
    v = mesh.vertices
    tip = v[:, 0].abs().max()
    waist = v[v[:, 0].abs() < 0.02, 1:].norm(dim=1).max()
    assert (waist / tip).item() == pytest.approx(0.6 / math.sqrt(1.64), abs=0.02)
    assert torch.allclose(peanut(2, pinch=0.0).vertices.norm(dim=1), torch.ones(1)), "pinch 0 is a sphere"


# ---------------------------------------------------------------------------------------- textures


@pytest.mark.parametrize("make, shape", [
    (lambda: checkerboard(64), (64, 64, 3)),
    (lambda: checkerboard((32, 128), squares=4), (32, 128, 3)),
    (lambda: uv_grid(128), (128, 128, 3)),
    (lambda: planet_texture(), (256, 512, 3)),
    (lambda: planet_texture((64, 64), seed=3), (64, 64, 3)),
    (lambda: fbm_noise((32, 64)), (32, 64)),
])
def test_textures_have_shape_dtype_range_and_are_deterministic(make, shape):
    tex = make()
    assert tex.shape == shape and tex.dtype == torch.float32 and tex.is_contiguous()
    assert tex.min() >= 0 and tex.max() <= 1
    assert torch.equal(make(), tex)


@pytest.mark.parametrize("make", [checkerboard, uv_grid, fbm_noise, planet_texture])
@pytest.mark.parametrize("size", [0, 100, (64, 48)])
def test_texture_sides_must_be_powers_of_two(make, size):
    with pytest.raises(ValueError, match="powers of two"):
        make(size)


def test_checkerboard_pattern():
    tex = checkerboard(16, squares=4, colors=((1.0, 0.0, 0.0), (0.0, 0.0, 1.0)))
    assert torch.equal(tex[0, 0], torch.tensor([1.0, 0.0, 0.0]))
    assert torch.equal(tex[0, 4], torch.tensor([0.0, 0.0, 1.0]))
    assert torch.equal(tex[4, 0], torch.tensor([0.0, 0.0, 1.0]))
    assert torch.equal(tex[5, 5], torch.tensor([1.0, 0.0, 0.0]))
    assert (tex[..., 0] == 1).float().mean() == 0.5


def test_uv_grid_shows_orientation():
    tex = uv_grid(256, cells=8)
    centres = tex[16::32, 16::32]  # one texel per cell, away from the lines
    red, green = centres[..., 0], centres[..., 1]
    # Cells two apart have the same brightness: red grows along u (columns), green along v (rows);
    # row and column 0 hold the white origin cell.
    assert (red[1:, 2:] > red[1:, :-2]).all() and (green[2:, 1:] > green[:-2, 1:]).all()
    assert torch.equal(tex[8, 8], torch.ones(3)), "the cell at uv = (0, 0) is white"
    assert not torch.equal(tex[-8, -8], torch.ones(3))


def test_fbm_noise_is_seeded_spans_unit_range_and_tiles():
    noise = fbm_noise(128, seed=1)
    assert noise.min() == 0 and noise.max() == 1
    assert not torch.equal(noise, fbm_noise(128, seed=2))
    step = (noise[:, 1:] - noise[:, :-1]).abs().max()
    assert (noise[:, 0] - noise[:, -1]).abs().max() <= step, "no seam across u"
    assert (noise[0] - noise[-1]).abs().max() <= (noise[1:] - noise[:-1]).abs().max(), "no seam across v"


def test_planet_texture_has_oceans_land_and_ice_caps():
    tex = planet_texture((128, 256), seed=0)
    assert (tex[0] > 0.7).all() and (tex[-1] > 0.7).all(), "ice at the poles (top and bottom rows)"
    middle = tex[32:96]
    blue = (middle[..., 2] > middle[..., 0] + 0.1).float().mean()
    green = (middle[..., 1] > middle[..., 2] + 0.05).float().mean()
    assert 0.1 < blue < 0.9 and 0.1 < green < 0.9
    assert not torch.equal(tex, planet_texture((128, 256), seed=1))
    step = (tex[:, 1:] - tex[:, :-1]).abs().max()
    assert (tex[:, 0] - tex[:, -1]).abs().max() <= step, "seamless where uv_sphere's u wraps"
