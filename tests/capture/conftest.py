"""One small synthetic capture, rendered once and written in every layout the readers know."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.capture import write_colmap, write_nerf
from studio.capture.synth import SynthObject, render_views, rig, similarity, view_to_world
from studio.scene.procedural import icosphere, textured_critter, planet_texture

RES = 40
VIEWS, TEST_VIEWS = 10, 2
#: The capture's world: a similarity of the unit frame the views were rendered in.
WORLD_SCALE = 2.5
WORLD_OFFSET = (0.3, -1.0, 2.0)


def world_rotation() -> np.ndarray:
    a, b = math.radians(35.0), math.radians(-20.0)
    rz = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    return rz @ rx


def world() -> np.ndarray:
    """[4,4] unit frame -> capture world."""
    return similarity(WORLD_SCALE, world_rotation(), WORLD_OFFSET)


#: A small sphere away from the critter's centre whose image centroid the round trips check.
MARKER_CENTRE = np.array([0.62, 0.55, 0.3])
MARKER_RADIUS = 0.12


def _object() -> SynthObject:
    critter = textured_critter(16, 32, radius=0.6)
    marker = icosphere(2, MARKER_RADIUS)
    verts = torch.cat([critter.vertices, marker.vertices + torch.tensor(MARKER_CENTRE, dtype=torch.float32)])
    faces = torch.cat([critter.faces, marker.faces + critter.num_vertices])
    uv = torch.cat([critter.uv, torch.full((1, 2), 0.5)])
    uv_faces = torch.cat([critter.uv_faces, torch.full_like(marker.faces, critter.uv.shape[0])])
    from studio.scene.mesh import Mesh

    return SynthObject(Mesh(verts, faces, uv, uv_faces, name="critter_marker"), planet_texture((64, 128)))


@pytest.fixture(scope="session")
def synth_views():
    """(training views, held-out views) in the capture's world, and the object."""
    obj = _object()
    train = render_views(obj, rig(VIEWS, RES), [f"r_{i}" for i in range(VIEWS)])
    test = render_views(obj, rig(TEST_VIEWS, RES, elevation_range=50.0, azimuth_offset=68.75),
                        [f"r_{i}" for i in range(TEST_VIEWS)])
    w = world()
    return [view_to_world(v, w, WORLD_SCALE) for v in train], [view_to_world(v, w, WORLD_SCALE) for v in test], obj


@pytest.fixture(scope="session")
def captures(synth_views, tmp_path_factory) -> dict[str, Path]:
    """The same capture as a NeRF folder (with held-out views), a COLMAP text project and a COLMAP
    binary project with a masks folder (training views only)."""
    train, test, _ = synth_views
    root = tmp_path_factory.mktemp("captures")
    write_nerf(root / "nerf", train, test)
    write_colmap(root / "colmap_txt", train)
    write_colmap(root / "colmap_bin", train, binary=True, masks_folder=True)
    return {"nerf": root / "nerf", "colmap_txt": root / "colmap_txt", "colmap_bin": root / "colmap_bin"}
