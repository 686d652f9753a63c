"""load_capture: normalisation against the true object, resizing, hold-outs, NeRF key variants,
undistortion of COLMAP's distorted cameras."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.capture import load_capture, write_colmap
from studio.capture.colmap_files import ColmapCamera, read_model, write_model
from studio.capture.distortion import Distortion, undistort
from studio.capture.model import View

from .conftest import RES, TEST_VIEWS, VIEWS, world


def _world_vertices(obj) -> np.ndarray:
    w = world()
    return obj.mesh.vertices.double().numpy() @ w[:3, :3].T + w[:3, 3]


def test_normalisation_puts_the_true_object_in_the_unit_sphere(captures, synth_views, caplog):
    _, _, obj = synth_views
    with caplog.at_level("INFO", logger="studio.capture"):
        cap = load_capture(captures["nerf"])
    assert any(r.getMessage().startswith("normalised: centre (") for r in caplog.records)
    v = _world_vertices(obj)
    unit = cap.normalisation.to_unit(torch.from_numpy(v)).numpy()
    true_centre = (unit.max(0) + unit.min(0)) / 2
    true_radius = np.linalg.norm(unit - true_centre, axis=1).max()
    # The hull of 10 views contains the object: the object is inside, and not much smaller.
    assert np.linalg.norm(unit, axis=1).max() <= 1.0
    assert 0.8 < true_radius <= 1.0
    assert np.linalg.norm(true_centre) < 0.1


def test_normalisation_without_masks_uses_the_optical_axes(captures, tmp_path, caplog):
    colmap = tmp_path / "no_masks"
    shutil.copytree(captures["colmap_bin"], colmap)
    with caplog.at_level("INFO", logger="studio.capture"):
        cap = load_capture(colmap)  # RGB images, masks not passed
    assert all(v.mask is None for v in cap.views)
    assert any("no masks" in r.getMessage() for r in caplog.records)
    # The rig looks at the unit frame's origin: the capture's world offset.
    np.testing.assert_allclose(cap.normalisation.centre, world()[:3, 3], atol=1e-4)


def test_working_resolution_keeps_aspect_and_intrinsics(captures, tmp_path):
    """A 40x40 capture cropped to 40x30 and loaded at res 20: 20x15 images, intrinsics scaled,
    and the marker test of the round trips still holds (a point projects where it did)."""
    nerf = tmp_path / "nerf"
    shutil.copytree(captures["nerf"], nerf)
    import imageio.v3 as iio

    meta = json.loads((nerf / "transforms_train.json").read_text())
    for fr in meta["frames"]:
        p = nerf / (fr["file_path"] + ".png")
        iio.imwrite(p, iio.imread(p)[5:35])
        fr["h"], fr["cy"] = 30, fr["cy"] - 5
    (nerf / "transforms_train.json").write_text(json.dumps(meta))
    (nerf / "transforms_test.json").unlink()
    full = load_capture(nerf)
    small = load_capture(nerf, res=20)
    assert small.resolution == (15, 20) and full.resolution == (30, 40)
    k, kf = small.views[0].intrinsics, full.views[0].intrinsics
    assert (k.fx, k.cx, k.cy) == pytest.approx((kf.fx / 2, kf.cx / 2, kf.cy / 2))
    # Same world point, same place on the image (in units of the image size); each load has its
    # own normalisation (from masks at its own resolution).
    p = torch.tensor([0.4, -0.9, 2.2], dtype=torch.float64)
    for a, b in zip(full.views, small.views):
        pa = torch.cat([full.normalisation.to_unit(p).float(), torch.ones(1)])
        pb = torch.cat([small.normalisation.to_unit(p).float(), torch.ones(1)])
        ca, cb = a.world_to_clip() @ pa, b.world_to_clip() @ pb
        torch.testing.assert_close(ca[:2] / ca[3], cb[:2] / cb[3], atol=2e-3, rtol=0)
    # Area-averaged downsampling keeps the mask's area (in full-resolution pixels / 4).
    assert float(small.views[0].mask.sum()) == pytest.approx(float(full.views[0].mask.sum()) / 4, rel=0.03)


def test_holdout_every_kth_view(captures):
    cap = load_capture(captures["colmap_txt"], holdout=5)
    assert [v.name for v in cap.test_views] == ["r_0", "r_5"]
    assert len(cap.views) == VIEWS - 2
    # A capture that names its held-out views keeps them whatever --holdout says.
    nerf = load_capture(captures["nerf"], holdout=5)
    assert len(nerf.test_views) == TEST_VIEWS and len(nerf.views) == VIEWS


def test_nerf_single_json_with_fov_keys_extensions_and_per_frame_overrides(captures, tmp_path):
    """transforms.json with camera_angle_x only, file paths with extensions, and one frame whose
    own fl_x/fl_y override the global field of view reads back the same cameras."""
    ref = load_capture(captures["nerf"])
    nerf = tmp_path / "single"
    shutil.copytree(captures["nerf"], nerf)
    meta = json.loads((nerf / "transforms_train.json").read_text())
    for i, fr in enumerate(meta["frames"]):
        fr["file_path"] += ".png"
        for key in ("fl_x", "fl_y", "cx", "cy", "w", "h"):
            fr.pop(key) if i else None
    meta["frames"][0]["fl_x"] = meta["frames"][0]["fl_y"] = 99.0
    for key in ("w", "h", "cx", "cy"):
        meta["frames"][0].pop(key)
    (nerf / "transforms.json").write_text(json.dumps(meta))
    for name in ("transforms_train.json", "transforms_test.json"):
        (nerf / name).unlink()
    cap = load_capture(nerf)
    assert cap.views[0].intrinsics.fx == pytest.approx(99.0)
    assert cap.views[0].intrinsics.cx == pytest.approx(RES / 2)
    for a, b in zip(cap.views[1:], ref.views[1:]):
        assert a.intrinsics.fx == pytest.approx(b.intrinsics.fx, rel=1e-9)
        assert (a.intrinsics.cx, a.intrinsics.width) == (b.intrinsics.cx, b.intrinsics.width)


def _pattern(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """A smooth test image [H,W,3] as a function of normalised camera coordinates."""
    return torch.stack([0.5 + 0.4 * torch.sin(9 * x) * torch.cos(7 * y), 0.5 + 0.4 * torch.cos(11 * x + 3 * y),
                        torch.full_like(x, 0.3)], -1).float()


def _photo(view: View, d: Distortion | None) -> torch.Tensor:
    """What a camera with the view's fx..cy and lens distortion ``d`` sees of :func:`_pattern`
    (each distorted pixel centre is undistorted by fixed-point iteration)."""
    k = view.intrinsics
    v, u = torch.meshgrid(torch.arange(k.height, dtype=torch.float64) + 0.5,
                          torch.arange(k.width, dtype=torch.float64) + 0.5, indexing="ij")
    xd, yd = (u - k.cx) / k.fx, (v - k.cy) / k.fy
    x, y = xd.clone(), yd.clone()
    for _ in range(100 if d is not None else 0):
        dx, dy = d.distort(x, y)
        x, y = x - (dx - xd), y - (dy - yd)
    return _pattern(x, y)


def test_opencv_camera_is_undistorted_back_to_the_pinhole_image(synth_views, tmp_path):
    train, _, _ = synth_views
    d = Distortion(k1=-0.3, k2=0.08, p1=0.004, p2=-0.003)
    photos = [View(v.name, _photo(v, d), None, v.intrinsics, v.cam_to_world) for v in train]
    model_dir = write_colmap(tmp_path / "opencv", photos)
    model = read_model(model_dir)
    cam = next(iter(model.cameras.values()))
    fx, fy, cx, cy = cam.params
    opencv = ColmapCamera(cam.id, "OPENCV", cam.width, cam.height, (fx, fy, cx, cy, d.k1, d.k2, d.p1, d.p2))
    write_model(model_dir, type(model)({cam.id: opencv}, model.images, model.points, model.colors))
    cap = load_capture(tmp_path / "opencv")
    inner = slice(3, RES - 3)  # the corners of an undistorted barrel image fall outside the photo
    for a, photo, v in zip(cap.views, photos, train):
        assert a.intrinsics == v.intrinsics
        pinhole = _photo(v, None)
        err = float((a.image - pinhole)[inner, inner].abs().mean())
        raw = float((photo.image - pinhole)[inner, inner].abs().mean())
        # Left: 8-bit quantisation and bilinear resampling; without undistortion, several times more.
        assert err < 0.01 and err < 0.2 * raw, (err, raw)


def test_undistort_with_zero_distortion_is_the_identity():
    img = torch.rand(9, 13, 4)
    out = undistort(img, 10.0, 11.0, 6.5, 4.5, Distortion())
    torch.testing.assert_close(out, img, atol=1e-5, rtol=0)


def test_nerfstudio_mask_path(captures, tmp_path):
    """RGB images with nerfstudio's per-frame mask_path read back as the RGBA capture does."""
    import imageio.v3 as iio

    ref = load_capture(captures["nerf"])
    nerf = tmp_path / "ns"
    shutil.copytree(captures["nerf"], nerf)
    (nerf / "masks").mkdir()
    meta = json.loads((nerf / "transforms_train.json").read_text())
    for fr in meta["frames"]:
        p = nerf / (fr["file_path"] + ".png")
        rgba = iio.imread(p)
        iio.imwrite(p, rgba[..., :3])
        iio.imwrite(nerf / "masks" / p.name, rgba[..., 3])
        fr["mask_path"] = f"masks/{p.name}"
    (nerf / "transforms_train.json").write_text(json.dumps(meta))
    cap = load_capture(nerf)
    for a, b in zip(cap.views, ref.views):
        torch.testing.assert_close(a.mask, b.mask, atol=1e-6, rtol=0)
        torch.testing.assert_close(a.image, b.image, atol=1e-6, rtol=0)


def test_normalisation_refuses_parallel_views_and_disagreeing_masks(synth_views):
    from studio.capture import CaptureError
    from studio.capture.normalise import estimate_normalisation

    train, _, _ = synth_views
    one = train[0]
    parallel = [(one.cam_to_world.double().numpy(), one.intrinsics)] * 3
    with pytest.raises(CaptureError, match="nearly parallel"):
        estimate_normalisation(parallel, [one.mask] * 3, Path("capture.json"))
    # Each view with a mask in a corner it does not share with the others: no point is in all.
    cams = [(v.cam_to_world.double().numpy(), v.intrinsics) for v in train]
    masks = []
    for i in range(len(train)):
        m = torch.zeros(RES, RES)
        m[:4, :4] = 1.0 if i % 2 else 0.0
        m[-4:, -4:] = 0.0 if i % 2 else 1.0
        masks.append(m)
    with pytest.raises(CaptureError, match="capture.json: no point of space is inside every mask"):
        estimate_normalisation(cams, masks, Path("capture.json"))
