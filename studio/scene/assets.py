"""Resolve asset references in scene files: generated meshes, textures and environment light.

Scene files name assets as strings:

- meshes: ``"procedural:NAME[:ARG]"`` (cube, icosphere:N, uv_sphere, torus, peanut:N,
  lobed_sphere:N, critter:N, displaced_icosphere:N, scanned_blob:VERTICES) or a mesh file path
  relative to the scene file;
- textures: ``"NAME[:SIZE]"`` (checkerboard, uv_grid, planet) or an image path;
- environment light: ``"sky[:SIZE]"`` (a cube map) or ``"sky_sh"`` (its 9 SH coefficients).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..images import ImageError, read_image, srgb_to_linear
from . import procedural
from .mesh import Mesh, load_mesh, normalize_mesh
from .spec import SceneError

_MESHES: dict[str, Callable[..., Mesh]] = {
    "cube": lambda: procedural.cube_mesh(1.0),
    "icosphere": lambda n="3": procedural.icosphere(int(n)),
    "uv_sphere": lambda rows="32": procedural.uv_sphere(int(rows), 2 * int(rows)),
    "torus": lambda: procedural.torus(),
    "peanut": lambda n="4": procedural.peanut(int(n)),
    "lobed_sphere": lambda n="4": procedural.lobed_sphere(int(n)),
    "critter": lambda n="4": procedural.critter(int(n)),
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
    path = Path(ref)
    return load_mesh(path if path.is_absolute() else base_dir / path, normalize=normalize)


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
    path = Path(ref) if Path(ref).is_absolute() else base_dir / ref
    if path.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"):
        img = read_image(path)
        if img.shape[-1] < 3:
            img = np.repeat(img[..., :1], 3, -1)
        return torch.from_numpy(srgb_to_linear(img[..., :3])).float()
    if path.exists():
        raise ImageError(f"texture {path} is not a PNG/JPEG/BMP/TIFF image.")
    raise SceneError(f"unknown texture {ref!r}; use checkerboard, uv_grid, planet, sky, sky_sh or an image file.")


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


def _cube_directions(size: int) -> torch.Tensor:
    """Unit directions [6,R,R,3] of cube-map texel centres (faces +x,-x,+y,-y,+z,-z, OpenGL layout)."""
    c = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1
    t, s = torch.meshgrid(c, c, indexing="ij")  # t down the rows, s along the columns
    one = torch.ones_like(s)
    faces = [
        torch.stack([one, -t, -s], -1), torch.stack([-one, -t, s], -1),
        torch.stack([s, one, t], -1), torch.stack([s, -one, -t], -1),
        torch.stack([s, -t, one], -1), torch.stack([-s, -t, -one], -1),
    ]
    return torch.nn.functional.normalize(torch.stack(faces), dim=-1)


def sky_cubemap(size: int = 32) -> torch.Tensor:
    """[6,R,R,3] cube map of :func:`sky_radiance`."""
    return sky_radiance(_cube_directions(size))


def sky_sh(samples: int = 64) -> torch.Tensor:
    """[9,3] order-2 SH projection of :func:`sky_radiance` (the same light as :func:`sky_cubemap`)."""
    d = _cube_directions(samples).reshape(-1, 3)
    # Solid angle of each texel of a cube map: proportional to 1 / |p|^3 for the unnormalised p.
    c = (torch.arange(samples, dtype=torch.float32) + 0.5) / samples * 2 - 1
    t, s = torch.meshgrid(c, c, indexing="ij")
    w = (1 + s * s + t * t) ** -1.5
    w = w.reshape(-1).repeat(6)
    w = w * (4 * math.pi / w.sum())
    x, y, z = d.unbind(-1)
    basis = torch.stack([
        torch.full_like(x, 0.282095), 0.488603 * y, 0.488603 * z, 0.488603 * x,
        1.092548 * x * y, 1.092548 * y * z, 0.315392 * (3 * z * z - 1), 1.092548 * x * z, 0.546274 * (x * x - y * y),
    ], -1)
    return (basis * w[:, None]).T @ sky_radiance(d)
