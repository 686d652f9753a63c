"""A tiny synthetic capture (the capture package's textured critter), kept in memory."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from studio.capture.model import Capture
from studio.capture.synth import load_object, render_views, rig


def tiny(n_train: int = 12, n_test: int = 3, res: int = 48):
    """(capture, true vertices [V,3], true faces [T,3]) of the textured critter in the unit sphere."""
    obj = load_object("textured_critter")
    offset = math.degrees(math.pi * (3.0 - math.sqrt(5.0))) / 2  # held-out cameras between the training ones
    train = render_views(obj, rig(n_train, res), [f"r_{i}" for i in range(n_train)])
    test = render_views(obj, rig(n_test, res, elevation_range=60.0, azimuth_offset=offset),
                        [f"t_{i}" for i in range(n_test)])
    return Capture(Path("synthetic"), "nerf", tuple(train), tuple(test)), obj.mesh.vertices, obj.mesh.faces


@pytest.fixture(scope="session")
def tiny_capture():
    return tiny()
