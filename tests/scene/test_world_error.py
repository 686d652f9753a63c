"""Geometry error in world space: the object's position, rotation and scale count (studio.scene.scene)."""

from __future__ import annotations

import math

import pytest
import torch

from studio.render import get_backend
from studio.scene.camera import axis_angle_to_quaternion
from studio.scene.scene import Scene
from studio.scene.spec import parse_scene

SCENE = """
name = "world-error"
[render]
resolution = 16
[camera]
distance = 3.0
[[object]]
name = "ball"
mesh = "procedural:icosphere:1"
{target}
[[param]]
path = "ball.vertices"
"""


def _scene(target: str = "") -> Scene:
    return Scene(parse_scene(SCENE.format(target=target)), get_backend("torch", "cpu"))


def _geometry(scene: Scene) -> float:
    return scene.params.group_errors()["geometry"].value


def test_moving_turning_or_scaling_an_object_is_a_geometry_error():
    scene = _scene()
    verts = scene.params["ball.vertices"].value.detach().clone()
    rms_radius = float(verts.square().sum(-1).mean().sqrt())
    assert _geometry(scene) == pytest.approx(0.0, abs=1e-6)

    scene.params["ball.position"].set(torch.tensor([0.3, -0.4, 0.0]))  # moved by 0.5 units
    assert _geometry(scene) == pytest.approx(0.5, rel=1e-5)
    scene.params["ball.position"].set(torch.zeros(3))

    scene.params["ball.scale"].set(torch.tensor([3.0]))  # every vertex 2 radii off
    assert _geometry(scene) == pytest.approx(2.0 * rms_radius, rel=1e-5)
    scene.params["ball.scale"].set(torch.tensor([1.0]))

    angle = 90.0  # a vertex at distance r from the y axis moves by r * sqrt(2)
    scene.params["ball.rotation"].set(axis_angle_to_quaternion(torch.tensor([0.0, 1.0, 0.0]), angle))
    off_axis = float(verts[:, [0, 2]].square().sum(-1).mean().sqrt())
    assert _geometry(scene) == pytest.approx(off_axis * math.sqrt(2.0), rel=1e-4)


def test_a_mesh_fitted_to_a_target_mesh_is_measured_where_the_target_stands():
    scene = _scene('target_mesh = "procedural:icosphere:1"')
    before = _geometry(scene)
    assert before == pytest.approx(0.0, abs=1e-5)
    scene.params["ball.position"].set(torch.tensor([0.0, 0.0, 2.0]))  # far from the target: no overlap
    assert _geometry(scene) > 1.0
