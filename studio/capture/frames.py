"""What a capture file says about its views before any image is read.

Readers (:mod:`.nerf`, :mod:`.colmap`) turn their files into a :class:`FrameSet`; the loader
(:mod:`.load`) reads the images, checks them, resizes, normalises and builds the
:class:`~.model.Capture`.  Poses here are still in the capture's own world units.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .distortion import Distortion
from .model import Intrinsics


@dataclass(frozen=True)
class Frame:
    """One view as described by the capture files.

    Attributes:
        name: file stem, unique within its split.
        image: the image file.
        intrinsics: the pinhole camera for the image size the capture file declares.
        cam_to_world: [4,4] float64, OpenGL camera axes, capture world units.
        described_by: the file that names this view (for messages).
        mask: an explicit mask file (``--masks DIR``), else None (the alpha channel, if any).
        distortion: lens distortion to remove from the image, or None for a pinhole camera.
    """

    name: str
    image: Path
    intrinsics: Intrinsics
    cam_to_world: np.ndarray
    described_by: Path
    mask: Path | None = None
    distortion: Distortion | None = None


@dataclass(frozen=True)
class FrameSet:
    """The views of a capture as its files describe them.

    Attributes:
        source: the json file or COLMAP model folder read.
        layout: "nerf" or "colmap".
        train: training views in file order.
        test: held-out views named by the capture itself (``transforms_test.json``), or None.
        points: optional [P,3] float64 sparse points (COLMAP's ``points3D``) in world units.
    """

    source: Path
    layout: str
    train: tuple[Frame, ...]
    test: tuple[Frame, ...] | None = None
    points: np.ndarray | None = None
