"""Bad captures: each one is a CaptureError whose one sentence names the file and what to do."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from studio.capture import CaptureError, load_capture
from studio.cli import main


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / src.name
    shutil.copytree(src, dst)
    return dst


def _fails(path: Path, *needles: str, **options) -> None:
    """load_capture(path) raises a CaptureError of one sentence that contains every needle."""
    with pytest.raises(CaptureError) as e:
        load_capture(path, **options)
    msg = str(e.value)
    assert msg.endswith(".") and "\n" not in msg, msg
    for n in needles:
        assert n in msg, msg


def _edit_json(path: Path, edit) -> None:
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))


def test_missing_capture_and_unknown_folder(tmp_path):
    _fails(tmp_path / "nothing", "nothing", "does not exist")
    _fails(tmp_path, str(tmp_path), "COLMAP model")


def test_missing_image_nerf_and_colmap(captures, tmp_path):
    nerf = _copy(captures["nerf"], tmp_path)
    (nerf / "train" / "r_3.png").unlink()
    _fails(nerf, "transforms_train.json", "frame 3", "does not exist")
    colmap = _copy(captures["colmap_txt"], tmp_path)
    (colmap / "images" / "r_2.png").unlink()
    _fails(colmap, "r_2.png", "--images")


def test_images_of_different_sizes(captures, tmp_path):
    nerf = _copy(captures["nerf"], tmp_path)
    img = iio.imread(nerf / "train" / "r_4.png")
    iio.imwrite(nerf / "train" / "r_4.png", img[:-4])
    _fails(nerf, "r_4.png", "same size")


def test_json_without_frames_and_invalid_json(captures, tmp_path):
    nerf = _copy(captures["nerf"], tmp_path)
    _edit_json(nerf / "transforms_train.json", lambda m: m.update(frames=[]))
    _fails(nerf, "transforms_train.json", "no frames")
    (nerf / "transforms_train.json").write_text('{"frames": [')
    _fails(nerf, "not valid JSON")


@pytest.mark.parametrize("model, words", [("WEIRD_CAMERA", "unknown model"),
                                          ("OPENCV_FISHEYE", "image_undistorter")])
def test_colmap_unknown_or_fisheye_camera(captures, tmp_path, model, words):
    colmap = _copy(captures["colmap_txt"], tmp_path)
    cams = colmap / "sparse" / "0" / "cameras.txt"
    lines = [ln for ln in cams.read_text().splitlines() if not ln.startswith("#")]
    cid, _, w, h, fx, fy, cx, cy = lines[0].split()
    cams.write_text(f"{cid} {model} {w} {h} {fx} {fy} {cx} {cy} 0.01 0.0 0.0 0.0\n")
    _fails(colmap, "cameras.txt", words)


def test_colmap_binary_truncated_and_unknown_model_id(captures, tmp_path):
    colmap = _copy(captures["colmap_bin"], tmp_path)
    images = colmap / "sparse" / "0" / "images.bin"
    images.write_bytes(images.read_bytes()[:-30])
    _fails(colmap, "images.bin", "truncated or corrupt")
    cams = colmap / "sparse" / "0" / "cameras.bin"
    data = bytearray(cams.read_bytes())
    data[12:16] = (99).to_bytes(4, "little")  # the first camera's model id
    cams.write_bytes(bytes(data))
    _fails(colmap, "cameras.bin", "unknown model id 99")


def test_empty_mask(captures, tmp_path):
    nerf = _copy(captures["nerf"], tmp_path)
    img = iio.imread(nerf / "train" / "r_5.png")
    img[..., 3] = 0
    img[0, 0, 3] = 10  # not uniformly opaque, so still read as a mask
    iio.imwrite(nerf / "train" / "r_5.png", img)
    _fails(nerf, "r_5", "empty")


def test_cameras_pointing_away(captures, tmp_path):
    """Poses written in OpenCV axes by mistake: every camera looks away from the object."""
    nerf = _copy(captures["nerf"], tmp_path)

    def flip(meta):
        for fr in meta["frames"]:
            fr["transform_matrix"] = (np.asarray(fr["transform_matrix"]) @ np.diag([1.0, -1.0, -1.0, 1.0])).tolist()

    _edit_json(nerf / "transforms_train.json", flip)
    _fails(nerf, "transforms_train.json", "point away", "OpenGL camera-to-world")


def test_corrupt_image_and_mask_folder(captures, tmp_path):
    nerf = _copy(captures["nerf"], tmp_path)
    (nerf / "train" / "r_1.png").write_bytes(b"not a png at all")
    _fails(nerf, "r_1.png", "cannot be read")
    colmap = _copy(captures["colmap_bin"], tmp_path)
    (colmap / "masks" / "r_0.png.png").unlink()
    _fails(colmap, "r_0.png", "--masks", masks=colmap / "masks")


def test_cli_prints_one_sentence_and_exits_2(capsys, tmp_path):
    assert main(["make-capture", "no_such_shape", "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("studio: no_such_shape is neither")
