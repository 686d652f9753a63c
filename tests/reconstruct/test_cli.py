"""``studio reconstruct`` on files: outputs, and one sentence with exit code 2 for a bad capture."""

import json

import imageio.v3 as iio
import numpy as np
import pytest
import trimesh

from studio.capture.synth import make_capture
from studio.cli import main

FAST = ["--backend", "torch", "--device", "cpu", "--texture-size", "32", "--no-video", "--threads", "1"]


@pytest.fixture(scope="module")
def capture_dir(tmp_path_factory):
    return make_capture("textured_critter", tmp_path_factory.mktemp("capture"), views=8, res=32, test_views=2)


def test_reconstruct_command_writes_its_files(capture_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["reconstruct", str(capture_dir), "--out", str(out), "--steps", "4", *FAST]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["views"] == 8 and s["test_views"] == 2 and s["resolution"] == [32, 32] and s["steps"] == 4
    assert s["textured"] and s["heldout_psnr"] > 15
    assert len(trimesh.load(out / "mesh.glb", force="mesh").faces) == s["faces"]
    renders = sorted((out / "test").iterdir())
    assert len(renders) == 2 and all(iio.imread(p).shape == (32, 32, 4) for p in renders)
    assert "held-out PSNR" in capsys.readouterr().out


def test_bad_captures_exit_2_with_one_sentence(capture_dir, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "transforms.json").write_text(json.dumps({"camera_angle_x": 0.7, "frames": []}))
    assert main(["reconstruct", str(empty), "--out", str(tmp_path / "o1"), *FAST]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no frames" in err

    image = sorted(capture_dir.glob("**/r_0.png"))[0]
    rgba = iio.imread(image)
    try:
        iio.imwrite(image, np.concatenate([rgba[..., :3], np.zeros_like(rgba[..., 3:])], -1))
        assert main(["reconstruct", str(capture_dir), "--out", str(tmp_path / "o2"), *FAST]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "empty" in err and "r_0" in err
    finally:
        iio.imwrite(image, rgba)
