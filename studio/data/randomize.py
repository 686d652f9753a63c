"""Per-image randomisation as a pure function of (dataset seed, image index).

Image ``i`` draws everything from ``numpy.random.default_rng([seed, i])``, so any process can
render any image without the others: shards are disjoint and reproducible, and a shard's images
are byte-identical to the same images of an unsharded export.  The train/val split is a function
of the index alone (see :func:`split_of`).

A plan holds only decisions (numbers and names); turning it into tensors, backgrounds and renders
happens in :mod:`studio.data.render`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from .config import ExportSection, Range

# Placement tries per object before keeping the best-separated one.
_PLACEMENT_TRIES = 50


@dataclass(frozen=True)
class SceneInfo:
    """What randomisation needs to know about a scene.

    Attributes:
        objects: object names, in the scene's order (= object ids in the id buffer).
        lights: names of the directional lights.
        base: the scene's own values (float64 arrays) of the parameters that may be randomised.
        radii: bounding radius of each object at scale 1, scene units (for ``separation``).
    """

    objects: list[str]
    lights: list[str]
    base: dict[str, np.ndarray]
    radii: list[float]


@dataclass(frozen=True)
class BackgroundPlan:
    """One image's background.

    Attributes:
        kind: "scene" (the scene file's colour), "solid", "gradient", "noise" or "image".
        colors: [2,3] sRGB colours in [0, 1] (solid uses the first; gradient and noise blend both).
        angle: direction of the gradient, radians (0 = left to right).
        noise_seed: seed of the noise lattices.
        noise_cells: lattice cells across the image at the coarsest noise octave.
        image: photo file for "image".
        crop: (side as a fraction of the photo's shorter side, x offset, y offset in [0, 1]).
        flip: mirror the photo left-right.
    """

    kind: str
    colors: np.ndarray
    angle: float
    noise_seed: int
    noise_cells: int
    image: Path | None
    crop: tuple[float, float, float]
    flip: bool


@dataclass(frozen=True)
class ImagePlan:
    """Every random decision of one image.

    Attributes:
        index: global image index.
        split: "train" or "val".
        values: parameter overrides by name (float32 arrays of the parameter's shape).
        albedo_factors: per-object [3] multipliers of the albedo (material jitter).
        absent: objects left out of this image (rendered at zero scale).
        background: the background.
        hard_case: run the edge-case search on this image.
        focus_draw: U(0, 1) that picks the hard-case focus among the visible objects.
    """

    index: int
    split: str
    values: dict[str, np.ndarray]
    albedo_factors: dict[str, np.ndarray]
    absent: frozenset[str]
    background: BackgroundPlan
    hard_case: bool
    focus_draw: float


def split_of(index: int, val_fraction: float) -> str:
    """"val" for the images where floor((i + 1) f) steps up, else "train".

    Exactly floor(N f) of the first N images are validation images, spread evenly, for every N,
    so a shard can decide without knowing the others.
    """
    f = Fraction(val_fraction).limit_denominator(1_000_000)
    a, b = f.numerator, f.denominator
    return "val" if (index + 1) * a // b > index * a // b else "train"


def _uniform(rng: np.random.Generator, r: Range | None, default: float) -> float:
    return float(rng.uniform(r[0], r[1])) if r is not None else default


def _angles(direction: np.ndarray) -> tuple[float, float]:
    """(azimuth, elevation) in degrees of a direction, with the camera's orbit convention."""
    d = direction / max(float(np.linalg.norm(direction)), 1e-12)
    return math.degrees(math.atan2(d[0], d[2])), math.degrees(math.asin(float(np.clip(d[1], -1, 1))))


def orbit_direction(azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    """Unit vector [3] at (azimuth, elevation): azimuth 0 = +z, towards +x; elevation up from xz."""
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    return np.array([math.cos(el) * math.sin(az), math.sin(el), math.cos(el) * math.cos(az)])


def quaternion_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a * b of quaternions (w, x, y, z): rotate by b, then by a."""
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return np.array([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2, w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                     w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2, w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2])


def plan_image(section: ExportSection, info: SceneInfo, seed: int, index: int, val_fraction: float) -> ImagePlan:
    """All random decisions of image ``index`` (a pure function of its arguments)."""
    rng = np.random.default_rng([seed, index])
    base = info.base
    values: dict[str, np.ndarray] = {}

    def put(name: str, value: object) -> None:
        values[name] = np.asarray(value, dtype=np.float32).reshape(base[name].shape)

    cam = section.camera
    for key in ("azimuth", "elevation", "distance", "fov"):
        r = getattr(cam, key)
        if r is not None:
            put(f"camera.{key}", rng.uniform(*r))
    if cam.target_jitter > 0:
        put("camera.target", base["camera.target"] + rng.uniform(-cam.target_jitter, cam.target_jitter, 3))

    light = section.light
    for name in info.lights:
        key = f"light.{name}"
        if light.azimuth is not None or light.elevation is not None:
            az, el = _angles(base[f"{key}.direction"])
            az, el = _uniform(rng, light.azimuth, az), _uniform(rng, light.elevation, el)
            put(f"{key}.direction", orbit_direction(az, el))
        if light.intensity is not None:
            put(f"{key}.intensity", rng.uniform(*light.intensity))
        if light.color_jitter > 0:
            jitter = 1 + rng.uniform(-light.color_jitter, light.color_jitter, 3)
            put(f"{key}.color", np.clip(base[f"{key}.color"] * jitter, 0.0, 1.0))
    if light.ambient is not None:
        put("light.ambient", np.full(3, rng.uniform(*light.ambient)))

    place, mat = section.placement, section.material
    albedo_factors: dict[str, np.ndarray] = {}
    absent = set()
    placed: list[tuple[np.ndarray, float]] = []
    for name, radius in zip(info.objects, info.radii):
        present = bool(rng.random() < place.presence)
        scale = float(base[f"{name}.scale"][0]) * _uniform(rng, place.scale, 1.0)
        pos0 = base[f"{name}.position"]
        best, best_gap = pos0, -math.inf
        tries = _PLACEMENT_TRIES if (place.separation > 0 and present and placed) else 1
        for _ in range(tries):
            pos = np.array([_uniform(rng, place.x, pos0[0]), _uniform(rng, place.y, pos0[1]),
                            _uniform(rng, place.z, pos0[2])])
            gap = min((float(np.linalg.norm(pos - q)) - place.separation * (scale * radius + rq)
                       for q, rq in placed), default=0.0)
            if gap > best_gap:
                best, best_gap = pos, gap
            if gap >= 0:
                break
        put(f"{name}.position", best)
        rot = base[f"{name}.rotation"]
        if place.yaw is not None:
            half = math.radians(rng.uniform(*place.yaw)) / 2
            rot = quaternion_multiply(np.array([math.cos(half), 0.0, math.sin(half), 0.0]), rot)
        if place.tilt is not None:
            axis = rng.uniform(0, 2 * math.pi)
            half = math.radians(rng.uniform(*place.tilt)) / 2
            s = math.sin(half)
            rot = quaternion_multiply(np.array([math.cos(half), s * math.cos(axis), 0.0, s * math.sin(axis)]), rot)
        put(f"{name}.rotation", rot)
        if mat.albedo_jitter > 0:
            albedo_factors[name] = (1 + rng.uniform(-mat.albedo_jitter, mat.albedo_jitter, 3)).astype(np.float32)
        if mat.specular is not None:
            put(f"{name}.specular", rng.uniform(*mat.specular))
        if mat.shininess is not None:
            put(f"{name}.shininess", rng.uniform(*mat.shininess))
        if present:
            placed.append((best, scale * radius))
            put(f"{name}.scale", scale)
        else:
            absent.add(name)
            put(f"{name}.scale", 0.0)  # every triangle collapses to a point: nothing is drawn

    kinds, photos = section.background.kinds, section.background.images
    kind = kinds[int(rng.integers(len(kinds)))] if kinds else "scene"
    colors = rng.random((2, 3))
    crop = (float(rng.uniform(0.5, 1.0)), float(rng.random()), float(rng.random()))
    background = BackgroundPlan(
        kind=kind, colors=colors, angle=float(rng.uniform(0, 2 * math.pi)),
        noise_seed=int(rng.integers(2 ** 32)), noise_cells=int(rng.integers(2, 9)),
        image=photos[int(rng.integers(len(photos)))] if kind == "image" else None,
        crop=crop, flip=bool(rng.random() < 0.5))
    hard = section.hard_case
    hard_case = hard is not None and bool(rng.random() < hard.fraction)
    return ImagePlan(index, split_of(index, val_fraction), values, albedo_factors, frozenset(absent), background,
                     hard_case, float(rng.random()))
