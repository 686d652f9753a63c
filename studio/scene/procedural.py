"""Generated meshes and textures: deterministic, CPU-only, no downloads.

Meshes are :class:`~studio.scene.mesh.Mesh` objects with shared vertices and outward,
counter-clockwise triangles, centred on the origin.  Where they have UVs, an image (top row first,
nvdiffrast's convention: row 0 at v = 0) appears unmirrored seen from outside: u runs eastwards
(to the right), v southwards (down).

The target shapes for "deform an icosphere into this" (:func:`peanut`, :func:`lobed_sphere`,
:func:`critter`) move the vertices of ``icosphere(subdivisions)`` radially, so they share its faces
exactly; they are smooth, star-shaped from the origin and scaled so the farthest vertex is at
``radius``.

Textures are float32 torch tensors [H,W,3] in linear RGB (or [H,W] for :func:`fbm_noise`), top row
first, with power-of-two sides so every mip level exists.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
import trimesh

from ..images import srgb_to_linear
from .mesh import Mesh

Color = Sequence[float]

# Corner c of the cube is (x, y, z) = bits (4, 2, 1) of c.  Each face is listed counter-clockwise
# seen from outside, starting at its lower-left corner (seen with +y, or -z for the top and +z for
# the bottom, pointing up).
_CUBE_QUADS = ((5, 4, 6, 7), (0, 1, 3, 2), (3, 7, 6, 2), (0, 4, 5, 1), (1, 5, 7, 3), (4, 0, 2, 6))


def _tensor(a: np.ndarray | None, dtype: torch.dtype) -> torch.Tensor | None:
    return None if a is None else torch.from_numpy(np.ascontiguousarray(a)).to(dtype)


def _mesh(vertices: np.ndarray, faces: np.ndarray, name: str, uv: np.ndarray | None = None,
          uv_faces: np.ndarray | None = None) -> Mesh:
    return Mesh(_tensor(vertices, torch.float32), _tensor(faces, torch.int32), _tensor(uv, torch.float32),
                _tensor(uv_faces, torch.int32), name=name)


def cube_mesh(size: float = 1.0) -> Mesh:
    """Axis-aligned cube centred on the origin with edge length ``size`` (scene units).

    8 shared vertices and 12 triangles; each face carries the whole texture (4 UVs shared by all
    faces through ``uv_faces``), upright on the side faces.
    """
    corners = np.array([[(c >> 2) & 1, (c >> 1) & 1, c & 1] for c in range(8)], dtype=np.float64)
    quads = np.array(_CUBE_QUADS)
    faces = np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]], 1).reshape(-1, 3)
    uv = np.array([[0.0, 1.0], [1.0, 1.0], [1.0, 0.0], [0.0, 0.0]])  # lower-left, lower-right, ...
    uv_faces = np.tile([[0, 1, 2], [0, 2, 3]], (6, 1))
    return _mesh((corners - 0.5) * size, faces, "cube", uv, uv_faces)


def icosphere(subdivisions: int = 3, radius: float = 1.0) -> Mesh:
    """Geodesic sphere: an icosahedron split ``subdivisions`` times, vertices on the sphere.

    10 * 4**subdivisions + 2 vertices and 20 * 4**subdivisions triangles of nearly equal size,
    which makes it the usual starting shape for deformation.
    """
    if subdivisions < 0:
        raise ValueError(f"subdivisions must be >= 0, got {subdivisions}.")
    tm = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    return _mesh(np.asarray(tm.vertices), np.asarray(tm.faces), f"icosphere{subdivisions}")


def _grid_faces(pos: np.ndarray, uvi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two triangles per cell of a grid of points whose rows run south and columns east.

    ``pos`` and ``uvi`` are [R,C] position and UV indices of the points; returns faces and
    uv_faces [2*(R-1)*(C-1),3], counter-clockwise seen from outside (east, then north).
    """
    def corners(a: np.ndarray) -> np.ndarray:
        sw, se, ne, nw = a[1:, :-1], a[1:, 1:], a[:-1, 1:], a[:-1, :-1]
        return np.stack([np.stack([sw, se, ne], -1), np.stack([sw, ne, nw], -1)], 2).reshape(-1, 3)

    return corners(pos), corners(uvi)


def uv_sphere(rows: int = 32, cols: int = 64, radius: float = 1.0) -> Mesh:
    """Latitude-longitude sphere with an equirectangular UV map.

    ``rows`` latitude bands from the north pole (+y, v = 0) to the south pole (v = 1), ``cols``
    longitude segments; u = 0.5 faces +z and the seam (u = 0 and 1) faces -z.  Positions are
    shared across the seam and at the poles (2 + (rows - 1) * cols vertices, 2 * cols * (rows - 1)
    triangles); the seam lives only in ``uv_faces``, and each pole triangle has its own pole UV at
    the centre of its column, which keeps the texture's top and bottom rows from twisting.
    """
    if rows < 2 or cols < 3:
        raise ValueError(f"uv_sphere needs rows >= 2 and cols >= 3, got rows={rows}, cols={cols}.")
    theta, phi = np.meshgrid(np.pi * np.arange(1, rows) / rows, 2 * np.pi * (np.arange(cols) / cols - 0.5),
                             indexing="ij")
    rings = np.stack([np.sin(theta) * np.sin(phi), np.cos(theta), np.sin(theta) * np.cos(phi)], -1)
    vertices = np.concatenate([[[0.0, 1.0, 0.0]], rings.reshape(-1, 3), [[0.0, -1.0, 0.0]]]) * radius
    north, south = 0, len(vertices) - 1

    # Ring points on rows 1 .. rows-1 of a (rows+1) x (cols+1) point grid; column cols is the seam.
    i, j = np.meshgrid(np.arange(rows - 1), np.arange(cols + 1), indexing="ij")
    pos = 1 + i * cols + j % cols
    uvi = i * (cols + 1) + j
    uv_rings = np.stack([j / cols, (i + 1) / rows], -1).reshape(-1, 2)
    centres = (np.arange(cols) + 0.5) / cols
    uv_poles = np.concatenate([np.stack([centres, np.zeros(cols)], 1), np.stack([centres, np.ones(cols)], 1)])
    top, bottom = len(uv_rings) + np.arange(cols), len(uv_rings) + cols + np.arange(cols)

    body, body_uv = _grid_faces(pos, uvi)
    faces = np.concatenate([
        np.stack([pos[0, :-1], pos[0, 1:], np.full(cols, north)], 1),
        body,
        np.stack([np.full(cols, south), pos[-1, 1:], pos[-1, :-1]], 1),
    ])
    uv_faces = np.concatenate([
        np.stack([uvi[0, :-1], uvi[0, 1:], top], 1),
        body_uv,
        np.stack([bottom, uvi[-1, 1:], uvi[-1, :-1]], 1),
    ])
    return _mesh(vertices, faces, f"uv_sphere{rows}x{cols}", np.concatenate([uv_rings, uv_poles]), uv_faces)


def ground_plane(segments: int = 8) -> Mesh:
    """A square ground in the xz-plane at y = 0, from -1 to 1 on both axes, facing +y, split into
    ``segments`` x ``segments`` cells (two triangles each) with a UV map over the square."""
    if segments < 1:
        raise ValueError(f"a ground plane needs at least 1 segment, got {segments}.")
    n = segments + 1
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    x, z = 2 * j / segments - 1, 2 * i / segments - 1
    vertices = np.stack([x, np.zeros_like(x), z], -1).reshape(-1, 3)
    uv = np.stack([j / segments, i / segments], -1).reshape(-1, 2)
    idx = i * n + j
    faces, _ = _grid_faces(idx, idx)
    return _mesh(vertices, faces, "ground_plane", uv, faces)


def torus(major_radius: float = 0.7, minor_radius: float = 0.3, major_segments: int = 48,
          minor_segments: int = 24) -> Mesh:
    """Torus around the y axis (a ring lying in the xz-plane) with a UV map.

    u runs once around the ring (eastwards, u = 0.5 at +z), v once around the tube, starting on
    the outer equator and going down first.  Positions are shared across both seams
    (major_segments * minor_segments vertices); the seams live only in ``uv_faces``.

    Args:
        major_radius: distance from the axis to the tube's centre, scene units.
        minor_radius: tube radius (smaller than ``major_radius``).
        major_segments, minor_segments: subdivisions around the ring and around the tube.
    """
    if not 0 < minor_radius < major_radius:
        raise ValueError(f"torus needs 0 < minor_radius < major_radius, got {minor_radius} and {major_radius}.")
    if major_segments < 3 or minor_segments < 3:
        raise ValueError("torus needs at least 3 segments around the ring and around the tube.")
    psi, phi = np.meshgrid(2 * np.pi * np.arange(minor_segments) / minor_segments,
                           2 * np.pi * (np.arange(major_segments) / major_segments - 0.5), indexing="ij")
    ring = major_radius + minor_radius * np.cos(psi)
    vertices = np.stack([ring * np.sin(phi), -minor_radius * np.sin(psi), ring * np.cos(phi)], -1).reshape(-1, 3)
    i, j = np.meshgrid(np.arange(minor_segments + 1), np.arange(major_segments + 1), indexing="ij")
    uv = np.stack([j / major_segments, i / minor_segments], -1).reshape(-1, 2)
    faces, uv_faces = _grid_faces((i % minor_segments) * major_segments + j % major_segments,
                                  i * (major_segments + 1) + j)
    return _mesh(vertices, faces, "torus", uv, uv_faces)


# ------------------------------------------------------------------------------- target shapes


def _radial(subdivisions: int, radius: float, name: str, r: Callable[[np.ndarray], np.ndarray]) -> Mesh:
    """The icosphere with each unit direction d moved to r(d) * d, scaled to max radius ``radius``."""
    base = trimesh.creation.icosphere(subdivisions=subdivisions)
    d = np.asarray(base.vertices) / np.linalg.norm(base.vertices, axis=1, keepdims=True)
    rad = r(d)
    return _mesh(d * (rad * radius / rad.max())[:, None], np.asarray(base.faces), name)


def _lobes(d: np.ndarray, centres: np.ndarray, amplitude: np.ndarray, sharpness: np.ndarray) -> np.ndarray:
    """Sum of smooth bumps exp(s (d . c - 1)) * a (von Mises-Fisher shaped) [V] at unit directions."""
    cos = d @ centres.T
    return (amplitude * np.exp(sharpness * (cos - 1))).sum(1)


def _unit(v: Sequence[Sequence[float]]) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def peanut(subdivisions: int = 4, radius: float = 1.0, pinch: float = 0.8) -> Mesh:
    """Peanut along x: the surface of revolution of a Cassini oval, r^2 = p^2 cos 2t + sqrt(1 -
    p^4 sin^2 2t) with t the angle from the x axis and p = ``pinch``.

    ``pinch`` in [0, 1): 0 is a sphere, above 0.71 the waist turns concave, 0.8 gives a waist
    about half as thick as the length.
    """
    if not 0 <= pinch < 1:
        raise ValueError(f"pinch must be in [0, 1), got {pinch}.")

    def r(d: np.ndarray) -> np.ndarray:
        cos2t = 2 * d[:, 0] ** 2 - 1
        return np.sqrt(pinch ** 2 * cos2t + np.sqrt(1 - pinch ** 4 * (1 - cos2t ** 2)))

    return _radial(subdivisions, radius, "peanut", r)


def lobed_sphere(subdivisions: int = 4, radius: float = 1.0, lobes: int = 5, amplitude: float = 0.8,
                 sharpness: float = 10.0, seed: int = 0) -> Mesh:
    """A sphere with ``lobes`` large smooth bumps, evenly spread and randomly turned by ``seed``.

    r(d) = 1 + sum_k a_k exp(sharpness * (d . c_k - 1)) with a_k drawn from
    [0.6, 1] * ``amplitude``; larger ``sharpness`` makes the lobes narrower.
    """
    if lobes < 1:
        raise ValueError(f"lobes must be >= 1, got {lobes}.")
    rng = np.random.default_rng(seed)
    # Fibonacci points keep lobes from merging into one; a random rotation varies them per seed.
    k = np.arange(lobes) + 0.5
    z = 1 - 2 * k / lobes
    ring = np.sqrt(1 - z ** 2)
    golden = np.pi * (3 - np.sqrt(5)) * k
    spread = np.stack([ring * np.cos(golden), z, ring * np.sin(golden)], 1)
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    rotation = q * np.sign(np.diag(r))
    centres = spread @ rotation.T
    heights = amplitude * rng.uniform(0.6, 1.0, lobes)
    return _radial(subdivisions, radius, "lobed_sphere",
                   lambda d: 1 + _lobes(d, centres, heights, np.full(lobes, sharpness)))


def _critter_radius(d: np.ndarray) -> np.ndarray:
    """Radius [V] of :func:`critter`'s surface along unit directions d [V,3] (before scaling)."""
    #          direction               amplitude  sharpness
    parts = [((0.0, 0.5, 1.0),         0.45,      10.0),   # head
             ((0.0, 0.2, 1.0),         0.15,      40.0),   # snout
             ((0.55, -1.0, 0.65),      0.45,      30.0),   # legs
             ((-0.55, -1.0, 0.65),     0.45,      30.0),
             ((0.55, -1.0, -0.65),     0.45,      30.0),
             ((-0.55, -1.0, -0.65),    0.45,      30.0),
             ((0.55, 0.85, 0.75),      0.22,      60.0),   # ears
             ((-0.55, 0.85, 0.75),     0.22,      60.0),
             ((0.0, 0.35, -1.0),       0.2,       60.0)]   # tail
    centres = _unit([p[0] for p in parts])
    amplitude = np.array([p[1] for p in parts])
    sharpness = np.array([p[2] for p in parts])
    semi_axes = np.array([0.55, 0.5, 0.9])
    return 1 / np.sqrt(((d / semi_axes) ** 2).sum(1)) + _lobes(d, centres, amplitude, sharpness)


def critter(subdivisions: int = 4, radius: float = 1.0) -> Mesh:
    """A creature-like blob (a nod to the "spot" cow): an ellipsoid body along z with a head and
    snout towards +z, four legs below, two ears and a tail.  Still star-shaped, so it suits the same
    icosphere-deformation demo, but it needs more detail than the other targets (subdivisions >= 4)."""
    return _radial(subdivisions, radius, "critter", _critter_radius)


# ------------------------------------------------------------------------- dense test meshes


def displaced_icosphere(subdivisions: int = 5, radius: float = 1.0, amplitude: float = 0.12, bumps: int = 24,
                        seed: int = 0) -> Mesh:
    """A dense, lumpy sphere: ``icosphere(subdivisions)`` (5 gives 20,480 faces) with ``bumps``
    random smooth bumps and dents of relative height up to ``amplitude``, so its outline and its
    self-occlusions change with the view (a sphere's would not)."""
    if bumps < 0 or amplitude < 0:
        raise ValueError(f"bumps and amplitude must be >= 0, got {bumps} and {amplitude}.")
    rng = np.random.default_rng(seed)
    centres = _unit(rng.normal(size=(max(bumps, 1), 3)))[:bumps]
    heights = amplitude * rng.uniform(-1.0, 1.0, bumps)
    sharp = rng.uniform(6.0, 30.0, bumps)
    return _radial(subdivisions, radius, "displaced_icosphere", lambda d: 1 + _lobes(d, centres, heights, sharp))


def _scan_directions(count: int, rng: np.random.Generator, anisotropy: float, axis: np.ndarray) -> np.ndarray:
    """``count`` unit directions on scan lines of constant latitude around ``axis``, ``anisotropy``
    times denser along each line than between lines, jittered a little (a range scanner's rows)."""
    spacing = np.sqrt(4 * np.pi * anisotropy / count)
    rows = max(2, int(round(np.pi / spacing)))
    lat = (np.arange(rows) + 0.5) / rows * np.pi - np.pi / 2
    per_row = np.maximum(1, np.round(2 * np.pi * np.cos(lat) / (spacing / anisotropy))).astype(int)
    per_row = np.maximum(1, np.round(per_row * count / per_row.sum())).astype(int)
    la = np.repeat(lat, per_row) + rng.normal(0, 0.08 * spacing, per_row.sum())
    lon = np.concatenate([(np.arange(n) + rng.uniform()) / n * 2 * np.pi for n in per_row])
    d = np.stack([np.cos(la) * np.cos(lon), np.cos(la) * np.sin(lon), np.sin(la)], 1)
    # Rotate the scan's pole (z) onto ``axis``.
    z = np.array([0.0, 0.0, 1.0])
    v, c = np.cross(z, axis), float(z @ axis)
    if np.linalg.norm(v) < 1e-9:
        return d if c > 0 else -d
    k = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    rot = np.eye(3) + k + k @ k / (1 + c)
    return d @ rot.T


def scanned_blob(vertices: int = 8000, radius: float = 1.0, noise: float = 0.004, anisotropy: float = 8.0,
                 seed: int = 0) -> Mesh:
    """A "scanned-like" closed mesh: about 2 * ``vertices`` faces (8000 gives ~16k) of very uneven
    shape and size, as a triangulated range scan has.

    Two scans' rows (``anisotropy`` times denser along a row than across) are merged, so their
    crossing patterns leave many sliver triangles; the surface is a creature-like blob
    (:func:`critter`'s shape) with per-vertex scanner noise of relative size ``noise``.  It is
    triangulated as the convex hull of the unit directions (a spherical Delaunay triangulation),
    so it is closed, manifold and star-shaped.
    """
    from scipy.spatial import ConvexHull

    if vertices < 20:
        raise ValueError(f"vertices must be at least 20, got {vertices}.")
    rng = np.random.default_rng(seed)
    half = vertices // 2
    d = np.concatenate([_scan_directions(half, rng, anisotropy, _unit([0.3, 1.0, 0.2])),
                        _scan_directions(vertices - half, rng, anisotropy, _unit([1.0, -0.2, 0.6]))])
    d = d / np.linalg.norm(d, axis=1, keepdims=True)
    faces = ConvexHull(d).simplices
    centre = d[faces].mean(1)
    normal = np.cross(d[faces[:, 1]] - d[faces[:, 0]], d[faces[:, 2]] - d[faces[:, 0]])
    flip = (normal * centre).sum(1) < 0
    faces[flip] = faces[flip][:, [0, 2, 1]]
    r = _critter_radius(d)
    r = r * (1 + noise * rng.normal(size=r.shape))
    return _mesh(d * (r * radius / r.max())[:, None], faces, "scanned_blob")


def textured_critter(rows: int = 48, cols: int = 96, radius: float = 1.0) -> Mesh:
    """:func:`critter`'s shape on :func:`uv_sphere`'s vertices, with its equirectangular UVs.

    A non-convex, genus-0 shape with a texture map (poles at +-y, seam facing -z), for textured
    captures and reconstructions; ``rows`` x ``cols`` as in :func:`uv_sphere`.
    """
    sphere = uv_sphere(rows, cols)
    d = sphere.vertices.double().numpy()
    rad = _critter_radius(d)
    return _mesh(d * (rad * radius / rad.max())[:, None], sphere.faces.numpy(), "textured_critter",
                 sphere.uv.numpy(), sphere.uv_faces.numpy())


# ------------------------------------------------------------------------------------ textures


def _texture_size(size: int | tuple[int, int]) -> tuple[int, int]:
    h, w = (size, size) if isinstance(size, (int, np.integer)) else size
    for side in (h, w):
        if not (isinstance(side, (int, np.integer)) and side >= 1 and side & (side - 1) == 0):
            raise ValueError(f"texture sides must be powers of two (1, 2, 4, ...), got {size}.")
    return int(h), int(w)


def _texture(srgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(srgb_to_linear(np.clip(srgb, 0.0, 1.0)))).float()


def checkerboard(size: int | tuple[int, int] = 256, squares: int = 8,
                 colors: tuple[Color, Color] = ((0.8, 0.8, 0.8), (0.05, 0.05, 0.05))) -> torch.Tensor:
    """Checkerboard [H,W,3] float32 linear RGB with ``squares`` squares across the width.

    Args:
        size: side, or (height, width), in texels; powers of two.
        squares: squares along the width (square cells; along the height in proportion).
        colors: two linear RGB colours in [0, 1]; ``colors[0]`` is the square at texel (0, 0).
    """
    h, w = _texture_size(size)
    if not 1 <= squares <= w:
        raise ValueError(f"squares must be between 1 and the width {w}, got {squares}.")
    cell = (np.arange(h)[:, None] * squares // w + np.arange(w)[None, :] * squares // w) % 2
    palette = np.asarray(colors, dtype=np.float32)
    return torch.from_numpy(palette[cell])


def uv_grid(size: int | tuple[int, int] = 512, cells: int = 8) -> torch.Tensor:
    """UV test texture [H,W,3] float32 linear RGB that makes orientation and stretching obvious.

    Red grows with u (left to right), green with v (top to bottom), so any flip or swap shows as
    a wrong colour ramp; cells alternate in brightness, dark lines mark the ``cells`` x ``cells``
    grid, and the cell at uv = (0, 0) is white.
    """
    h, w = _texture_size(size)
    if not 1 <= cells <= min(h, w):
        raise ValueError(f"cells must be between 1 and {min(h, w)}, got {cells}.")
    u = (np.arange(w) + 0.5) / w
    v = (np.arange(h) + 0.5) / h
    ci, cj = np.floor(v * cells).astype(int)[:, None], np.floor(u * cells).astype(int)[None, :]
    srgb = np.stack(np.broadcast_arrays(u[None, :], v[:, None], np.full((1, 1), 0.45)), -1).copy()
    srgb *= np.where((ci + cj) % 2 == 0, 1.0, 0.75)[..., None]
    srgb[(ci == 0) & (cj == 0)] = 1.0
    line = max(1, min(h, w) // 128)
    on_line = ((np.arange(h) % (h // cells)) < line)[:, None] | ((np.arange(w) % (w // cells)) < line)[None, :]
    srgb[on_line] = 0.1
    return _texture(srgb)


def fbm_noise(size: int | tuple[int, int] = 256, octaves: int = 6, seed: int = 0, base_cells: int = 4,
              persistence: float = 0.5) -> torch.Tensor:
    """Fractal (fBm) value noise [H,W] float32, rescaled to span [0, 1] exactly.

    Octave k interpolates (smoothstep) random values on a lattice of ``base_cells * 2**k`` cells
    across the width (square cells) with weight ``persistence**k``.  The lattice wraps, so the
    noise tiles in both directions and a texture made from it has no visible UV seam.
    """
    h, w = _texture_size(size)
    rng = np.random.default_rng(seed)
    total = np.zeros((h, w))
    for k in range(octaves):
        cx = min(w, base_cells * 2 ** k)
        cy = max(1, cx * h // w)
        lattice = rng.random((cy, cx))
        y, x = (np.arange(h) + 0.5) * cy / h, (np.arange(w) + 0.5) * cx / w
        y0, x0 = np.floor(y).astype(int), np.floor(x).astype(int)
        ty, tx = (y - y0) ** 2 * (3 - 2 * (y - y0)), (x - x0) ** 2 * (3 - 2 * (x - x0))
        top = lattice[y0 % cy][:, x0 % cx] * (1 - tx) + lattice[y0 % cy][:, (x0 + 1) % cx] * tx
        bottom = lattice[(y0 + 1) % cy][:, x0 % cx] * (1 - tx) + lattice[(y0 + 1) % cy][:, (x0 + 1) % cx] * tx
        total += persistence ** k * (top * (1 - ty)[:, None] + bottom * ty[:, None])
    span = total.max() - total.min()
    return torch.from_numpy((total - total.min()) / (span if span > 0 else 1.0)).float()


# Height (fBm value) -> sRGB colour stops of the planet texture: ocean, coast, land, rock, snow.
_PLANET_STOPS = np.array([
    [0.00, 0.02, 0.07, 0.25],
    [0.45, 0.06, 0.25, 0.55],
    [0.50, 0.15, 0.45, 0.65],
    [0.51, 0.80, 0.75, 0.52],
    [0.55, 0.30, 0.55, 0.20],
    [0.70, 0.15, 0.35, 0.12],
    [0.82, 0.45, 0.40, 0.35],
    [0.92, 0.95, 0.95, 0.97],
    [1.00, 0.95, 0.95, 0.97],
])


def planet_texture(size: int | tuple[int, int] = (256, 512), seed: int = 0, octaves: int = 7) -> torch.Tensor:
    """Earth-like equirectangular texture [H,W,3] float32 linear RGB for :func:`uv_sphere`.

    Oceans, coasts, land, mountains and snow from an fBm height field (seamless across u), plus
    ice caps towards the top and bottom rows (the poles), whose edges follow the noise.
    """
    h, w = _texture_size(size)
    height = fbm_noise((h, w), octaves=octaves, seed=seed).double().numpy()
    srgb = np.stack([np.interp(height, _PLANET_STOPS[:, 0], _PLANET_STOPS[:, c]) for c in (1, 2, 3)], -1)
    latitude = np.abs((np.arange(h) + 0.5) / h - 0.5)[:, None] * 2
    ice = np.clip((latitude + 0.15 * height - 0.88) / 0.04, 0.0, 1.0)[..., None]
    return _texture(srgb * (1 - ice) + 0.93 * ice)
