"""Render a measurement capture with an independent physically based renderer (Mitsuba 3).

Dev tool, not used by the tests.  A mesh (e.g. a scanned Stanford bunny, or the procedural
``textured_critter``), normalised into the unit sphere, with a diffuse albedo (constant, or a texture
for meshes with UVs), lit by a sky
environment map plus a sun, path traced (Mitsuba's ``path`` integrator, box pixel filter, emitters
hidden so the background is black with alpha 0) from the studio's synthetic-capture cameras
(32 training views on a Fibonacci spiral, 8 held-out views on a turned one, 200x200 by default).
Written twice: a NeRF capture and the same views as a COLMAP text model (held-out views ``t_*``
at every 5th position, so ``--holdout 5`` selects them), each with ``gt_mesh.ply``.

    pip install mitsuba        # brings drjit; the CPU variant scalar_rgb is used
    python bench/make_pbr_capture.py /work/data/bunny.off --nerf-out /work/data/bunny_capture \\
        --colmap-out /work/data/bunny_colmap

It ends by loading the NeRF capture back with ``studio.capture.load_capture`` and printing the
silhouette IoU between Mitsuba's alpha and the studio's rasterization of the ground-truth mesh from
the loaded cameras: a check of the camera conventions by a renderer that shares no code with ours.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import trimesh

from studio.capture import load_capture
from studio.capture.model import View
from studio.capture.synth import (SUN_COLOR, SUN_DIRECTION, SynthObject, capture_rigs, load_object, render_views,
                                  write_capture)
from studio.images import save_png
from studio.scene.assets import sky_radiance
from studio.scene.mesh import save_obj

#: Scale of the sky map and irradiance of the sun (Mitsuba units: W/m^2 for the sun).
SKY_SCALE = 0.55
SUN_IRRADIANCE = 1.6


def _mitsuba():
    try:
        import mitsuba as mi
    except ImportError:
        sys.exit("make_pbr_capture needs Mitsuba 3: pip install mitsuba")
    mi.set_variant("scalar_rgb")  # drjit's LLVM variants need LLVM >= 16
    return mi


def _sky_bitmap(mi, height: int = 128):
    """Lat-long sky for Mitsuba's envmap (+y up; u = atan2(x, -z) / 2pi, v = acos(y) / pi)."""
    theta = (torch.arange(height) + 0.5) / height * math.pi
    phi = (torch.arange(2 * height) + 0.5) / (2 * height) * 2 * math.pi
    t, p = torch.meshgrid(theta, phi, indexing="ij")
    d = torch.stack([torch.sin(t) * torch.sin(p), torch.cos(t), -torch.sin(t) * torch.cos(p)], -1)
    return mi.Bitmap(np.ascontiguousarray((sky_radiance(d) * SKY_SCALE).numpy().astype(np.float32)))


def _look_at(mi, c2w: torch.Tensor):
    eye, forward, up = c2w[:3, 3], -c2w[:3, 2], c2w[:3, 1]
    t = mi.ScalarTransform4f()
    return t.look_at(origin=eye.tolist(), target=(eye + forward).tolist(), up=up.tolist())


def render_mitsuba(mesh_file: Path, cams, spp: int, albedo: tuple[float, float, float],
                   texture: Path | None) -> list[tuple[np.ndarray, np.ndarray]]:
    """(linear RGB over black [H,W,3], alpha [H,W]) of each camera."""
    mi = _mitsuba()
    bsdf = {"type": "diffuse", "reflectance": {"type": "rgb", "value": list(albedo)}}
    if texture is not None:
        bsdf = {"type": "diffuse", "reflectance": {"type": "bitmap", "filename": str(texture)}}
    scene = mi.load_dict({
        "type": "scene",
        "integrator": {"type": "path", "max_depth": 5, "hide_emitters": True},
        "sky": {"type": "envmap", "bitmap": _sky_bitmap(mi)},
        "sun": {"type": "directional", "direction": [-x for x in SUN_DIRECTION],
                "irradiance": {"type": "rgb", "value": [SUN_IRRADIANCE * c / max(SUN_COLOR) for c in SUN_COLOR]}},
        "object": {"type": "obj", "filename": str(mesh_file), "bsdf": bsdf, "face_normals": False},
    })
    out = []
    for i, (c2w, k) in enumerate(cams):
        sensor = mi.load_dict({
            "type": "perspective", "fov": math.degrees(2 * math.atan(k.width / 2 / k.fx)), "fov_axis": "x",
            "near_clip": 0.05, "far_clip": 20.0, "to_world": _look_at(mi, c2w),
            "film": {"type": "hdrfilm", "width": k.width, "height": k.height, "pixel_format": "rgba",
                     "rfilter": {"type": "box"}},
            "sampler": {"type": "independent", "sample_count": spp, "seed": i},
        })
        img = np.array(mi.render(scene, sensor=sensor, spp=spp), dtype=np.float32)
        out.append((np.clip(img[..., :3], 0.0, None), np.clip(img[..., 3], 0.0, 1.0)))
        print(f"\rrendered {i + 1}/{len(cams)} views", end="", file=sys.stderr)
    print(file=sys.stderr)
    return out


def silhouette_iou(capture_dir: Path, mesh) -> float:
    """Mean IoU between the capture's masks and the studio's render of the gt mesh (its cameras)."""
    cap = load_capture(capture_dir)
    gt = trimesh.load(capture_dir / "gt_mesh.ply")
    unit = cap.normalisation.to_unit(torch.from_numpy(np.asarray(gt.vertices))).float()
    obj = SynthObject(type(mesh)(unit, torch.from_numpy(np.asarray(gt.faces)).int(), name="gt"))
    views = list(cap.views) + list(cap.test_views)
    ours = render_views(obj, [(v.cam_to_world, v.intrinsics) for v in views], [v.name for v in views])
    ious = []
    for a, b in zip(views, ours):
        ma, mb = a.mask >= 0.5, b.mask >= 0.5
        ious.append(float((ma & mb).sum()) / max(1.0, float((ma | mb).sum())))
    return float(np.mean(ious))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mesh", help="mesh file (OBJ, PLY, OFF, ...) or procedural shape (textured_critter), "
                                 "normalised into the unit sphere")
    ap.add_argument("--nerf-out", required=True, help="output folder of the NeRF capture")
    ap.add_argument("--colmap-out", default=None, help="output folder of the same capture as a COLMAP text model")
    ap.add_argument("--views", type=int, default=32)
    ap.add_argument("--test-views", type=int, default=8)
    ap.add_argument("--res", type=int, default=200)
    ap.add_argument("--spp", type=int, default=128, help="samples per pixel")
    ap.add_argument("--albedo", type=float, nargs=3, default=(0.75, 0.62, 0.48), help="linear RGB diffuse albedo")
    ap.add_argument("--texture", default=None, help="albedo texture: name (planet, uv_grid) or image, for meshes "
                                                    "with UVs (default: a procedural shape's own)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    obj = load_object(args.mesh, args.texture)
    mesh = obj.mesh
    if obj.texture is None and mesh.vertex_colors is not None:
        print("vertex colours are not passed to Mitsuba; the albedo is --albedo", file=sys.stderr)
    train_cams, test_cams = capture_rigs(args.views, args.test_views, args.res)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        obj_file = Path(tmp) / "object.obj"
        save_obj(mesh, obj_file)
        tex_file = None
        if obj.texture is not None:
            tex_file = Path(tmp) / "albedo.png"
            save_png(tex_file, obj.texture.numpy())  # sRGB 8-bit; Mitsuba linearises it on load
        images = render_mitsuba(obj_file, train_cams + test_cams, args.spp, tuple(args.albedo), tex_file)
    seconds = time.perf_counter() - t0

    def views(cams, imgs, offset=0):
        return [View(f"r_{i}", torch.from_numpy(rgb), torch.from_numpy(alpha), k, c2w)
                for i, ((c2w, k), (rgb, alpha)) in enumerate(zip(cams, imgs))]

    train = views(train_cams, images[:len(train_cams)])
    test = views(test_cams, images[len(train_cams):])
    gt = trimesh.Trimesh(mesh.vertices.double().numpy(), mesh.faces.numpy(), process=False)
    write_capture(args.nerf_out, "nerf", train, test, gt)
    if args.colmap_out:
        write_capture(args.colmap_out, "colmap", train, test, gt)
    iou = silhouette_iou(Path(args.nerf_out), mesh)
    print(f"rendered {len(images)} views at {args.res}x{args.res}, {args.spp} spp in {seconds:.0f} s (Mitsuba "
          f"scalar_rgb); mask IoU Mitsuba vs studio rasterizer from the loaded cameras: {iou:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
