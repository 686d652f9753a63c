"""End to end: a tiny synthetic capture reconstructed at low resolution, and its output files."""

import csv
import json

import numpy as np
import pytest
import trimesh

from studio.reconstruct.export import write_turntable
from studio.reconstruct.metrics import bounding_radius, surface_distance
from studio.reconstruct.run import ReconstructOptions, build_reconstruction, run_reconstruction
from studio.reconstruct.scene import Stage

STEPS = 45
STAGES = (Stage("coarse", 0.0, 0.08, 4e-3, 20.0), Stage("fine", 0.4, 0.05, 2e-3, 20.0),
          Stage("texture", 0.75, None, 7e-4, 20.0, texture=True))


@pytest.fixture(scope="module")
def run(tiny_capture, tmp_path_factory):
    capture, tv, tf = tiny_capture
    opts = ReconstructOptions(steps=STEPS, backend="torch", device="cpu", texture_size=64, hull_resolution=40,
                              stages=STAGES, threads=1)
    scene, engine, notes = build_reconstruction(capture, opts)
    start = scene.heldout_metrics()
    m = scene.mesh()
    start["distance"] = surface_distance(m.vertices.numpy(), m.faces.numpy(), tv.numpy(), tf.numpy(), 5000)
    out = tmp_path_factory.mktemp("reconstruction")
    summary = run_reconstruction(scene, engine, out, progress=False, video=False)
    m = scene.mesh()
    summary["distance"] = surface_distance(m.vertices.numpy(), m.faces.numpy(), tv.numpy(), tf.numpy(), 5000)
    return scene, start, summary, out, bounding_radius(tv.numpy())


def test_metrics_improve_and_meet_loose_bars(run):
    scene, start, s, _, radius = run
    assert s["heldout_psnr"] > start["heldout_psnr"] + 3.0
    assert s["heldout_iou"] >= start["heldout_iou"] - 0.005
    assert s["heldout_psnr"] > 27.0 and s["heldout_iou"] > 0.93 and s["train_psnr"] > 28.0
    assert s["distance"] < 0.03 * radius
    assert s["textured"] and s["steps"] == STEPS and s["faces"] == scene.faces.shape[0]
    assert [e["event"].split(":")[0] for e in s["events"]] == ["stage fine", "stage texture"]
    assert set(s["lighting"]) == {"sun_direction", "sun_intensity", "sh"}


def test_output_files(run, tmp_path):
    scene, _, s, out, _ = run
    assert json.loads((out / "summary.json").read_text())["heldout_psnr"] == s["heldout_psnr"]
    glb = trimesh.load(out / "mesh.glb", force="mesh")
    assert len(glb.faces) == s["faces"]
    assert glb.visual.kind == "texture" and glb.visual.material.baseColorTexture.size == (64, 64)
    obj = trimesh.load(out / "mesh.obj", force="mesh")
    assert len(obj.faces) == s["faces"] and obj.visual.uv is not None
    for v in scene.capture.test_views:
        png = trimesh.util.wrap_as_stream((out / "test" / f"{v.name}.png").read_bytes())
        from PIL import Image

        im = np.asarray(Image.open(png))
        assert im.shape == (*v.image.shape[:2], 4)
        # The rendered silhouette matches the held-out view's mask.
        assert ((im[..., 3] > 127) == (v.mask.numpy() > 0.5)).mean() > 0.95
    rows = list(csv.DictReader((out / "curves.csv").open()))
    assert len(rows) == STEPS and {"l1", "mask_iou", "heldout_psnr", "event"} <= set(rows[0])
    assert sum(bool(r["event"]) for r in rows) == 2
    name = write_turntable(scene, tmp_path, frames=4, size=32)
    assert (tmp_path / name).stat().st_size > 0


def test_registry_losses_and_regularisers_drive_the_reconstruction(tiny_capture):
    capture, _, _ = tiny_capture
    opts = ReconstructOptions(steps=2, backend="torch", device="cpu", hull_resolution=24, stages=STAGES[:1],
                              losses=[("l2", 1.0), ("laplacian", 0.01)], threads=1)
    scene, engine, _ = build_reconstruction(capture, opts)
    engine.start_thread()
    engine.step(2)
    snap = engine.wait_snapshot(predicate=lambda s: s.step >= 2 and not s.running, timeout=120)
    engine.stop()
    assert snap is not None and snap.message is None
    assert np.isfinite(snap.history["loss:laplacian"]).all() and snap.history["loss:laplacian"][-1] > 0
