"""Synthetic captures: a mesh rendered by the studio's own rasterizer from N views, written to disk.

For tests, demos and checking a reconstruction against ground truth.  The object (a procedural
mesh, a mesh file or a mesh scene's objects, normalised into the unit sphere) is lit by the sky's SH environment plus a
sun (Lambert), textured when it has UVs and a texture, and rendered with antialiased silhouettes
over black; the alpha channel is the mask.  Cameras look at the object from a Fibonacci spiral
(training views) and from a second, offset spiral (held-out views).

The capture's world can be a similarity of the unit frame (``world_scale``, ``world_rotation``,
``world_offset``), so that readers and normalisation are exercised away from the origin; the
ground-truth mesh ``gt_mesh.ply`` is saved in that world.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import trimesh

from ..render.backend import get_backend
from ..render.raster_pass import raster_gbuffer
from ..render.shading import Lights, shade
from ..scene.assets import resolve_mesh, resolve_texture, sky_sh
from ..scene.base import fibonacci_views
from ..scenarios import SCENES_DIR, load_spec
from ..scene.camera import look_at, orbit_eye, quaternion_to_matrix, to_clip
from ..scene.mesh import MESH_EXTENSIONS, Mesh, normalize_mesh, vertex_normals
from .colmap import write_colmap
from .conventions import focal_from_fov
from .errors import CaptureError
from .model import Intrinsics, View
from .nerf import write_nerf

log = logging.getLogger("studio.capture")

#: Procedural shapes offered by name, and the texture each gets by default (None: constant albedo).
SHAPES = {"textured_critter": "planet:512", "critter": None, "peanut": None, "lobed_sphere": None, "torus": "uv_grid",
          "uv_sphere": "planet:512", "cube": "checkerboard"}
#: Direction towards the sun (world, +y up) and its radiance.
SUN_DIRECTION = (0.45, 0.8, 0.4)
SUN_COLOR = (1.6, 1.5, 1.35)
#: Scale of the sky's SH environment light.
SKY_STRENGTH = 0.45
#: Views rendered per rasterizer call.
_BATCH = 8


@dataclass(frozen=True)
class SynthObject:
    """What is rendered: a mesh in the unit frame and its diffuse albedo.

    Attributes:
        mesh: unit-sphere mesh (vertex colours are used when there is no texture).
        texture: optional [H,W,3] linear RGB albedo map (needs ``mesh.uv``).
        albedo: constant linear RGB albedo when there is neither a texture nor vertex colours.
    """

    mesh: Mesh
    texture: torch.Tensor | None = None
    albedo: tuple[float, float, float] = (0.7, 0.65, 0.6)


def load_object(source: str, texture: str | None = None) -> SynthObject:
    """A :class:`SynthObject` from a procedural shape name (``textured_critter``, ``procedural:NAME``),
    a mesh file or a mesh scene (a built-in scenario name or a scene .toml: its objects with their
    placement and albedo), normalised into the unit sphere; ``texture`` is a texture name or image
    file for a mesh with UVs.

    Raises:
        CaptureError: an unknown name, an SDF scene, or a texture on a mesh without UVs.
    """
    name = source[len("procedural:"):] if source.startswith("procedural:") else source
    shape = name.split(":")[0]
    if shape in SHAPES:
        mesh = resolve_mesh(f"procedural:{name}", Path.cwd())
        texture = texture if texture is not None else SHAPES[shape]
    elif Path(source).suffix.lower() in MESH_EXTENSIONS:
        mesh = resolve_mesh(str(Path(source).resolve()), Path.cwd())
    elif Path(source).suffix.lower() == ".toml" or (SCENES_DIR / f"{source}.toml").is_file():
        return _scene_object(source, texture)
    else:
        raise CaptureError(f"{source} is neither a mesh file ({', '.join(MESH_EXTENSIONS)}), a scene nor a shape "
                           f"({', '.join(SHAPES)}); give one of those.")
    if texture is not None and mesh.uv is None:
        raise CaptureError(f"{source} has no UVs, so the texture {texture} cannot be applied; leave out --texture.")
    tex = resolve_texture(texture, Path.cwd()) if texture is not None else None
    return SynthObject(mesh, tex)


def _scene_object(source: str, texture: str | None) -> SynthObject:
    """A mesh scene's ground-truth objects, placed and merged (vertex colours for constant albedos;
    a texture only when the scene has one object)."""
    spec = load_spec(source)
    if spec.kind != "mesh" or not spec.objects:
        raise CaptureError(f"scene {source} has no mesh objects ({spec.kind} scene); give a mesh scene or a mesh.")
    parts, colors = [], []
    tex = None
    for o in spec.objects:
        m = resolve_mesh(o.target_mesh or o.mesh, spec.base_dir, normalize=o.normalize)
        rot = quaternion_to_matrix(torch.tensor(o.rotation, dtype=torch.float32))
        v = (m.vertices * float(o.scale)) @ rot.T + torch.tensor(o.position, dtype=torch.float32)
        parts.append(replace(m, vertices=v))
        a = o.albedo
        if isinstance(a, str) and a.startswith("texture:") and len(spec.objects) == 1 and m.uv is not None:
            tex = resolve_texture(texture or a[len("texture:"):], spec.base_dir)
        elif isinstance(a, str) and m.vertex_colors is not None:
            colors.append(m.vertex_colors)
        else:
            rgb = [float(c) for c in a] if not isinstance(a, str) else [0.7, 0.7, 0.7]
            colors.append(torch.tensor(rgb).expand(m.num_vertices, 3))
    if tex is not None:
        return SynthObject(normalize_mesh(parts[0]), tex)
    offsets = np.cumsum([0] + [p.num_vertices for p in parts[:-1]])
    merged = Mesh(torch.cat([p.vertices for p in parts]), torch.cat([p.faces + int(k) for p, k in zip(parts, offsets)]),
                  vertex_colors=torch.cat(colors).float().contiguous(), name=spec.name)
    return SynthObject(normalize_mesh(merged))


def rig(n: int, res: int, fov_deg: float = 40.0, elevation_range: float = 75.0, azimuth_offset: float = 0.0,
        fill: float = 0.85) -> list[tuple[torch.Tensor, Intrinsics]]:
    """(cam_to_world [4,4] OpenGL axes, intrinsics) of ``n`` square views around the unit sphere.

    Views follow a Fibonacci spiral (elevations within +-``elevation_range`` degrees) at the
    distance where the unit sphere's outline spans ``fill`` of the field of view ``fov_deg``.
    """
    distance = 1.0 / math.sin(math.radians(fov_deg) / 2 * fill)
    f = focal_from_fov(math.radians(fov_deg), res)
    k = Intrinsics(f, f, res / 2, res / 2, res, res)
    out = []
    for az, el in fibonacci_views(n, elevation_range):
        eye = orbit_eye(az + azimuth_offset, el, distance)
        out.append((torch.linalg.inv(look_at(eye)), k))
    return out


def capture_rigs(views: int, test_views: int, res: int) -> tuple[list, list]:
    """(training cameras, held-out cameras) of a synthetic capture: the held-out spiral is turned by
    half the golden angle and kept lower (+-60 degrees), so no held-out view repeats a training one."""
    golden_half = math.degrees(math.pi * (3.0 - math.sqrt(5.0))) / 2
    test = rig(test_views, res, elevation_range=60.0, azimuth_offset=golden_half) if test_views else []
    return rig(views, res), test


def render_views(obj: SynthObject, cams: Sequence[tuple[torch.Tensor, Intrinsics]], names: Sequence[str],
                 backend_name: str = "torch") -> list[View]:
    """Render the object from each camera (unit frame; the cameras share one image size): views
    with [H,W,3] linear RGB over black and the antialiased coverage as mask."""
    backend = get_backend(backend_name, "cpu")
    m = obj.mesh
    verts, faces = m.vertices.float(), m.faces.int().contiguous()
    normals = vertex_normals(verts, faces)
    lights = Lights(ambient=torch.zeros(3), directions=torch.tensor([SUN_DIRECTION]), colors=torch.tensor([SUN_COLOR]),
                    sh=sky_sh() * SKY_STRENGTH)
    colors = m.vertex_colors if (obj.texture is None and m.vertex_colors is not None) else \
        torch.tensor(obj.albedo).expand(m.num_vertices, 3).contiguous()
    uv = m.uv if obj.texture is not None else None
    topology = backend.construct_topology(faces)
    out: list[View] = []
    with torch.no_grad():
        for start in range(0, len(cams), _BATCH):
            batch = cams[start:start + _BATCH]
            size = (batch[0][1].height, batch[0][1].width)
            c2w = torch.stack([c for c, _ in batch])
            mvp = torch.stack([kk.projection() @ torch.linalg.inv(c) for c, kk in batch])
            gb = raster_gbuffer(backend, to_clip(verts, mvp).contiguous(), faces, size, world_pos=verts,
                                normals=normals, eye=c2w[:, :3, 3], forward=-c2w[:, :3, 2], colors=colors, uv=uv,
                                uv_tri=m.uv_faces if uv is not None else None, topology=topology)
            albedo = gb.albedo
            if obj.texture is not None:
                albedo = backend.texture(obj.texture[None].contiguous(), gb.uv.contiguous(), gb.uv_da.contiguous(),
                                         filter_mode="linear-mipmap-linear")
            color = shade(gb, albedo, lights, "lambert")
            rgba = gb.finish(torch.cat([color * gb.mask, gb.mask], -1))
            for i, (cam, kk) in enumerate(batch):
                out.append(View(names[start + i], rgba[i, ..., :3].clamp(min=0.0).contiguous(),
                                rgba[i, ..., 3].clamp(0.0, 1.0).contiguous(), kk, cam.float()))
    return out


def similarity(scale: float, rotation: np.ndarray, offset: Sequence[float]) -> np.ndarray:
    """[4,4] float64 map of the unit frame into a capture world: ``scale * rotation @ x + offset``."""
    t = np.eye(4)
    t[:3, :3] = scale * np.asarray(rotation, dtype=np.float64)
    t[:3, 3] = offset
    return t


def view_to_world(v: View, world: np.ndarray, scale: float) -> View:
    """The view moved by the similarity ``world`` of scale ``scale`` (the image is unchanged)."""
    c2w = v.cam_to_world.double().numpy()
    out = np.eye(4)
    out[:3, :3] = world[:3, :3] / scale @ c2w[:3, :3]
    out[:3, 3] = world[:3, :3] @ c2w[:3, 3] + world[:3, 3]
    return View(v.name, v.image, v.mask, v.intrinsics, torch.from_numpy(out).float())


def colmap_order(n_train: int, n_test: int) -> tuple[list[int], int | None]:
    """An interleaving of training (0..n_train-1) and held-out (n_train..) view indices such that
    the held-out ones sit at positions i % K == 0, and that K (None when it does not divide)."""
    total = n_train + n_test
    if n_test == 0 or total % n_test:
        return list(range(total)), None
    k = total // n_test
    train, test = iter(range(n_train)), iter(range(n_train, total))
    return [next(test) if i % k == 0 else next(train) for i in range(total)], k


def make_capture(source: str | SynthObject, out: str | Path, views: int = 32, res: int = 200, layout: str = "nerf",
                 binary: bool = False, test_views: int = 0, texture: str | None = None, world_scale: float = 1.0,
                 world_rotation: np.ndarray | None = None, world_offset: Sequence[float] = (0.0, 0.0, 0.0),
                 masks_folder: bool = False) -> Path:
    """Render a synthetic capture into ``out`` in the NeRF or COLMAP layout, with ``gt_mesh.ply``.

    Args:
        source: shape name, mesh file, or a :class:`SynthObject`.
        out: output folder (created).
        views, test_views: training and held-out view counts; COLMAP captures interleave them so
            that ``--holdout K`` (logged) selects the held-out ones.
        res: image side in pixels (square views).
        layout: "nerf" or "colmap" (``binary`` for .bin model files, ``masks_folder`` for RGB
            images plus a masks/ folder instead of RGBA images).
        texture: texture name or image file for meshes with UVs (default: the shape's own).
        world_scale, world_rotation, world_offset: the capture's world = scale * R @ unit + offset.

    Returns:
        The path to load: the folder (NeRF) or the COLMAP project folder.
    """
    if layout not in ("nerf", "colmap"):
        raise CaptureError(f"--layout must be nerf or colmap, got {layout!r}.")
    if views < 2 or test_views < 0 or res < 8:
        raise CaptureError(f"a capture needs at least 2 views of at least 8 pixels (got {views} views at {res}).")
    obj = source if isinstance(source, SynthObject) else load_object(source, texture)
    world = similarity(world_scale, np.eye(3) if world_rotation is None else world_rotation, world_offset)
    train_cams, test_cams = capture_rigs(views, test_views, res)
    train = render_views(obj, train_cams, [f"r_{i}" for i in range(views)])
    test = render_views(obj, test_cams, [f"r_{i}" for i in range(test_views)]) if test_views else []
    train = [view_to_world(v, world, world_scale) for v in train]
    test = [view_to_world(v, world, world_scale) for v in test]

    v_world = obj.mesh.vertices.double().numpy() @ world[:3, :3].T + world[:3, 3]
    return write_capture(out, layout, train, test, trimesh.Trimesh(v_world, obj.mesh.faces.numpy(), process=False),
                         binary=binary, masks_folder=masks_folder)


def write_capture(out: str | Path, layout: str, train: Sequence[View], test: Sequence[View], gt: trimesh.Trimesh,
                  binary: bool = False, masks_folder: bool = False) -> Path:
    """Write rendered views (capture world) and the ground-truth mesh ``gt_mesh.ply`` as a NeRF
    capture or a COLMAP project whose held-out views (named ``t_*``) sit at every K-th position
    (logged) and whose points3D are 2000 samples of the true surface; returns the path to load."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    gt.export(out / "gt_mesh.ply")
    res = f"{train[0].intrinsics.width}x{train[0].intrinsics.height}"
    if layout == "nerf":
        write_nerf(out, train, test)
        log.info("wrote a NeRF capture to %s: %d training + %d held-out views at %s", out, len(train), len(test), res)
        return out
    order, k = colmap_order(len(train), len(test))
    everything = list(train) + [View(f"t_{i}", v.image, v.mask, v.intrinsics, v.cam_to_world) for i, v in enumerate(test)]
    points = np.asarray(gt.sample(2000, seed=0))
    write_colmap(out, [everything[i] for i in order], binary=binary, points=points, masks_folder=masks_folder)
    hint = f"; load with --holdout {k} to hold out the t_* views" if k else ""
    log.info("wrote a COLMAP capture to %s: %d views at %s%s", out, len(everything), res, hint)
    return out
