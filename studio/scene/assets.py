"""Resolve asset references in scene files: generated meshes, textures and environment light.

Scene files name assets as strings:

- meshes: ``"procedural:NAME[:ARG]"`` (cube, icosphere:N, uv_sphere, torus, peanut:N,
  lobed_sphere:N, critter:N, textured_critter:ROWS, ground:N, displaced_icosphere:N,
  scanned_blob:VERTICES) or a mesh file path relative to the scene file;
- textures: ``"NAME[:SIZE]"`` (checkerboard, uv_grid, planet) or an image path;
- environment light: ``"sky[:SIZE]"`` or ``"studio[:SIZE]"`` (cube maps) or ``"sky_sh"`` (the sky's 9
  SH coefficients).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..images import ImageError, read_linear
from ..paths import user_path
from ..render.envmap import cube_directions, cube_sh
from . import procedural
from .mesh import Mesh, load_mesh, normalize_mesh
from .spec import SceneError

_MESHES: dict[str, Callable[..., Mesh]] = {
    "cube": lambda: procedural.cube_mesh(1.0),
    "icosphere": lambda n="3": procedural.icosphere(int(n)),
    "uv_sphere": lambda rows="32": procedural.uv_sphere(int(rows), 2 * int(rows)),
    "torus": lambda: procedural.torus(),
    "ground": lambda n="8": procedural.ground_plane(int(n)),
    "peanut": lambda n="4": procedural.peanut(int(n)),
    "lobed_sphere": lambda n="4": procedural.lobed_sphere(int(n)),
    "critter": lambda n="4": procedural.critter(int(n)),
    "textured_critter": lambda rows="48": procedural.textured_critter(int(rows), 2 * int(rows)),
    "displaced_icosphere": lambda n="5": procedural.displaced_icosphere(int(n)),
    "scanned_blob": lambda n="8000": procedural.scanned_blob(int(n)),
}


def resolve_mesh(ref: str, base_dir: Path, normalize: bool = True) -> Mesh:
    """A mesh from a ``procedural:`` reference or a file (relative to ``base_dir``).

    Raises:
        SceneError: unknown generator name or bad argument.
        MeshError: a mesh file that is missing, corrupt or empty.
    """
    if ref.startswith("procedural:"):
        name, *args = ref[len("procedural:"):].split(":")
        if name not in _MESHES:
            raise SceneError(f"unknown procedural mesh {name!r}; available: {', '.join(sorted(_MESHES))}.")
        try:
            mesh = _MESHES[name](*args)
        except (TypeError, ValueError):
            raise SceneError(f"procedural mesh {ref!r} has a bad argument; e.g. procedural:icosphere:3.") from None
        return normalize_mesh(mesh) if normalize else mesh
    return load_mesh(user_path(ref, base_dir), normalize=normalize)


def _size(args: list[str], default: int) -> int:
    try:
        size = int(args[0]) if args else default
    except ValueError:
        raise SceneError(f"texture size must be an integer, got {args[0]!r}.") from None
    if size < 1 or size & (size - 1):
        raise SceneError(f"texture size must be a power of two, got {size}.")
    return size


def resolve_texture(ref: str, base_dir: Path) -> torch.Tensor:
    """A [H,W,3] linear texture, [6,R,R,3] cube map or [9,3] SH array from a reference.

    Raises:
        SceneError: unknown name or bad size; ImageError: an unreadable image file.
    """
    name, *args = ref.split(":")
    if name == "checkerboard":
        return procedural.checkerboard(_size(args, 256))
    if name == "uv_grid":
        return procedural.uv_grid(_size(args, 256))
    if name == "planet":
        s = _size(args, 256)
        return procedural.planet_texture((s // 2, s))
    if name == "sky":
        return sky_cubemap(_size(args, 32))
    if name == "sky_sh":
        return sky_sh()
    if name == "studio":
        return studio_radiance(cube_directions(_size(args, 32)))
    path = user_path(ref, base_dir)
    if path.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".exr", ".npy"):
        img = read_linear(path)
        if img.shape[-1] < 3:
            img = np.repeat(img[..., :1], 3, -1)
        return torch.from_numpy(np.ascontiguousarray(img[..., :3])).float()
    if path.exists():
        raise ImageError(f"texture {path} is not a PNG/JPEG/BMP/TIFF/EXR/NPY image.")
    raise SceneError(f"unknown texture {ref!r}; use checkerboard, uv_grid, planet, sky, sky_sh, studio or an image "
                     "file.")


def sky_radiance(d: torch.Tensor) -> torch.Tensor:
    """Radiance [...,3] of a simple outdoor sky for unit directions [...,3] (+y up): a blue
    zenith fading to a bright horizon, a dim warm ground and a small bright sun."""
    y = d[..., 1:2]
    zenith = torch.tensor([0.25, 0.45, 0.9])
    horizon = torch.tensor([0.9, 0.9, 0.85])
    ground = torch.tensor([0.25, 0.2, 0.15])
    t = y.clamp(min=0.0) ** 0.5
    sky = horizon * (1 - t) + zenith * t
    color = torch.where(y >= 0, sky, ground * (1 + y).clamp(min=0.3))
    sun_dir = torch.nn.functional.normalize(torch.tensor([0.5, 0.6, 0.6]), dim=0)
    sun = (d * sun_dir).sum(-1, keepdim=True).clamp(min=0.0) ** 200 * torch.tensor([6.0, 5.5, 4.5])
    return color + sun


def studio_radiance(d: torch.Tensor) -> torch.Tensor:
    """Radiance [...,3] of a photo studio for unit directions [...,3] (+y up): a dim room, a warm
    key softbox up left in front, a cool fill softbox to the right and a bright strip light behind
    (distinct shapes in glossy reflections, which is what tells roughness from colour)."""
    y = d[..., 1:2]
    room = 0.06 + 0.04 * y.clamp(min=0.0)
    color = room.expand(*d.shape[:-1], 3) * torch.tensor([1.0, 0.95, 0.9])

    def box(towards: list[float], cos_edge: float, radiance: list[float]) -> torch.Tensor:
        c = (d * torch.nn.functional.normalize(torch.tensor(towards), dim=0)).sum(-1, keepdim=True)
        return torch.sigmoid((c - cos_edge) * 120) * torch.tensor(radiance)

    color = color + box([-0.6, 0.6, 0.6], 0.92, [3.0, 2.5, 2.0]) + box([0.8, 0.2, 0.4], 0.94, [1.0, 1.4, 2.2])
    strip = torch.sigmoid((0.15 - (d[..., 0:1]).abs()) * 60) * torch.sigmoid((-d[..., 2:3] - 0.3) * 60)
    return color + strip * torch.sigmoid((y - 0.1) * 60) * torch.tensor([2.0, 2.0, 2.0])


def sky_cubemap(size: int = 32) -> torch.Tensor:
    """[6,R,R,3] cube map of :func:`sky_radiance`."""
    return sky_radiance(cube_directions(size))


def sky_sh(samples: int = 64) -> torch.Tensor:
    """[9,3] order-2 SH projection of :func:`sky_radiance` (the same light as :func:`sky_cubemap`)."""
    return cube_sh(sky_cubemap(samples))
