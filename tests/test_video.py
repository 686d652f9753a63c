"""Videos: a run (target | render | difference over the curves, one frame every K steps), a
turntable of a fitted scene, and the GIF fallback without imageio-ffmpeg (studio.video)."""

from __future__ import annotations

import builtins
import json

import numpy as np
import pytest

from studio.cli import main
from studio.scene.params import GROUP_COLORS
from studio.video import VideoError, VideoWriter

imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
CPU = ["--backend", "torch", "--device", "cpu", "--threads", "1"]


def read_frames(path) -> list[np.ndarray]:
    reader = imageio_ffmpeg.read_frames(str(path))
    w, h = next(reader)["size"]
    return [np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in reader]


def colour_pixels(img: np.ndarray, rgb) -> int:
    return int((np.abs(img.astype(int) - np.array(rgb)).sum(-1) < 90).sum())  # MP4 shifts colours a little


def test_optimize_video_shows_pictures_over_falling_curves(tmp_path, capsys):
    video = tmp_path / "run.mp4"
    code = main(["optimize", "cube", "--steps", "12", "--res", "16", *CPU, "--no-video", "--out", str(tmp_path / "r"),
                 "--video", str(video), "--video-every", "3"])
    assert code == 0, capsys.readouterr().err
    assert "one every 3 steps" in capsys.readouterr().out
    frames = read_frames(video)
    assert 2 <= len(frames) <= 5, "one frame every 3 of 12 steps (the last always), fewer if snapshots skipped steps"
    first, last = frames[0], frames[-1]
    assert first.shape == last.shape and first.shape[1] == 3 * 16 * 15, "3 pictures of 16 px enlarged 15x"
    pictures, curves = last[22:22 + 240], last[22 + 240:]
    assert pictures[:, :240].std() > 10, "the target picture shows the cube"
    for g in ("geometry", "material"):
        assert colour_pixels(curves, GROUP_COLORS[g]) > 30, f"no {g} curve under the pictures"


def test_turntable_of_the_fitted_scene(tmp_path, capsys):
    run = tmp_path / "r"
    assert main(["optimize", "cube", "--steps", "3", "--res", "16", *CPU, "--no-video", "--out", str(run)]) == 0
    spin = tmp_path / "spin.mp4"
    code = main(["render", "cube", "--res", "16", *CPU[:4], "--params", str(run / "params.json"), "--turntable",
                 "--frames", "4", "--out", str(spin)])
    assert code == 0, capsys.readouterr().err
    frames = read_frames(spin)
    assert len(frames) == 4 and frames[0].shape[:2] == (16 * 15, 16 * 15)
    assert np.abs(frames[0].astype(float) - frames[1].astype(float)).mean() > 2, "the camera moves between frames"
    params = json.loads((run / "params.json").read_text())
    params["nope"] = [1.0]
    (run / "bad.json").write_text(json.dumps(params))
    assert main(["render", "cube", *CPU[:4], "--params", str(run / "bad.json"), "--out", str(tmp_path / "x.png")]) == 2
    assert "does not have" in capsys.readouterr().err


def test_without_imageio_ffmpeg_a_gif_is_written_and_said(tmp_path, monkeypatch):
    real = builtins.__import__
    monkeypatch.setattr(builtins, "__import__", lambda name, *a, **k: (_ for _ in ()).throw(ImportError(name))
                        if name == "imageio_ffmpeg" else real(name, *a, **k))
    with VideoWriter(tmp_path / "v.mp4") as w:
        for i in range(3):
            w.write(np.full((9, 11, 3), 40 * i, np.uint8))
    assert w.path == tmp_path / "v.gif" and w.path.is_file() and "imageio-ffmpeg" in w.note
    with pytest.raises(VideoError, match="must end in .mp4 or .gif"):
        VideoWriter(tmp_path / "v.avi")
