"""The headless CLI: what `studio optimize` writes, and one clear sentence for each bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import trimesh

from studio.cli import EXIT_BAD_INPUT, main

CUBE_FROM_FILE = """
name = "file-cube"
[render]
resolution = 32
shading = "unlit"
[optimize]
steps = 5
[camera]
distance = 3.6
[[object]]
name = "thing"
mesh = "{mesh}"
albedo = [0.8, 0.3, 0.2]
[[param]]
path = "thing.albedo"
init = [0.5, 0.5, 0.5]
"""


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_scenes_lists_every_builtin_scenario(capsys):
    code, out, _ = run_cli(capsys, "scenes")
    assert code == 0
    names = [line.split()[0] for line in out.strip().splitlines()]
    for expected in ("cube", "pose", "texture", "lighting", "camera", "deform", "joint", "sdf"):
        assert expected in names
    assert all(len(line.split(maxsplit=1)) == 2 for line in out.strip().splitlines()), "one line with a description each"


def test_optimize_writes_summary_curves_params_images_video_and_mesh(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("STUDIO_COMPILE", raising=False)
    out_dir = tmp_path / "run"
    code, out, err = run_cli(capsys, "optimize", "cube", "--steps", "12", "--res", "48", "--backend", "torch",
                             "--device", "cpu", "--out", str(out_dir))
    assert code == 0, err
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["scene"] == "cube" and summary["steps"] == 12
    assert summary["backend"] == "torch" and summary["device"] == "cpu" and summary["compiled"] is False
    assert summary["seconds"] > 0 and summary["it_per_s"] > 0
    assert set(summary["loss"]) == {"initial", "final"} and summary["loss"]["final"] < summary["loss"]["initial"]
    assert set(summary["groups"]) == {"geometry", "material"}
    for g in summary["groups"].values():
        assert set(g) == {"initial", "final", "unit"} and g["final"] < g["initial"]
    with (out_dir / "curves.csv").open() as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["step", "loss", "geometry", "material", "lighting", "camera"]
    assert len(rows) == 13 and rows[1][4] == "" and rows[1][5] == "", "no ground truth -> empty cells"
    params = json.loads((out_dir / "params.json").read_text())
    assert len(params["cube.vertices"]) == 8
    final = iio.imread(out_dir / "final.png")
    assert final.shape == (48, 144, 3) and final.std() > 5
    frames = iio.imread(out_dir / "progress.gif", index=None)
    assert frames.ndim == 4 and frames.shape[0] >= 2
    mesh = trimesh.load(out_dir / "mesh.obj", force="mesh")
    assert len(mesh.faces) == 12
    assert "cube:" in out and "geometry" in out


def test_render_writes_the_ground_truth_and_the_initial_guess(capsys, tmp_path):
    truth, initial = tmp_path / "gt.png", tmp_path / "init.png"
    assert run_cli(capsys, "render", "cube", "--res", "40", "--out", str(truth))[0] == 0
    assert run_cli(capsys, "render", "cube", "--res", "40", "--initial", "--out", str(initial))[0] == 0
    a, b = iio.imread(truth), iio.imread(initial)
    assert a.shape == (40, 40, 3) and a.std() > 5 and not np.array_equal(a, b)


def test_a_photograph_target_of_another_size_is_resized_with_a_note(capsys, tmp_path):
    photo = tmp_path / "photo.png"
    iio.imwrite(photo, (np.random.default_rng(0).random((50, 70, 3)) * 255).astype(np.uint8))
    code, _, err = run_cli(capsys, "optimize", "camera", "--steps", "2", "--res", "32", "--target", str(photo),
                           "--no-video", "--out", str(tmp_path / "out"))
    assert code == 0
    assert "resized to the render resolution 32x32" in err


def _scene_file(tmp_path: Path, text: str) -> str:
    p = tmp_path / "scene.toml"
    p.write_text(text)
    return str(p)


def _one_sentence(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got: {err!r}"
    assert lines[0].startswith("studio: ") and lines[0].endswith(".") and "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("case", ["missing", "corrupt", "empty"])
def test_bad_mesh_files_are_one_sentence_and_exit_2(capsys, tmp_path, case):
    mesh = tmp_path / "thing.obj"
    if case == "corrupt":
        mesh.write_bytes(b"\x00\x01 this is not an obj file \xff\xfe" * 20)
        mesh = mesh.with_suffix(".ply")
        mesh.write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 3\nproperty float x\nend_header\n\x00")
    elif case == "empty":
        mesh.write_text("# no triangles here\nv 0 0 0\nv 1 0 0\n")
    scene = _scene_file(tmp_path, CUBE_FROM_FILE.format(mesh=mesh.name))
    code, _, err = run_cli(capsys, "render", scene, "--out", str(tmp_path / "x.png"))
    assert code == EXIT_BAD_INPUT
    sentence = _one_sentence(err)
    assert mesh.name in sentence


def test_toml_syntax_error_names_the_line(capsys, tmp_path):
    scene = _scene_file(tmp_path, 'name = "x"\n[render]\nresolution = = 5\n')
    code, _, err = run_cli(capsys, "render", scene, "--out", str(tmp_path / "x.png"))
    assert code == EXIT_BAD_INPUT
    assert "line 3" in _one_sentence(err)


def test_unknown_key_and_unknown_scenario(capsys, tmp_path):
    scene = _scene_file(tmp_path, CUBE_FROM_FILE.format(mesh="procedural:cube").replace("shading =", "shadng ="))
    code, _, err = run_cli(capsys, "render", scene, "--out", str(tmp_path / "x.png"))
    assert code == EXIT_BAD_INPUT and "unknown key 'shadng' in [render]" in _one_sentence(err)
    code, _, err = run_cli(capsys, "optimize", "no-such-scene", "--out", str(tmp_path / "o"))
    assert code == EXIT_BAD_INPUT and "unknown scenario 'no-such-scene'" in _one_sentence(err)


def test_unreadable_target_image_and_mask_size_mismatch(capsys, tmp_path):
    bad = tmp_path / "target.png"
    bad.write_bytes(b"not a png at all")
    code, _, err = run_cli(capsys, "optimize", "camera", "--steps", "1", "--target", str(bad), "--out", str(tmp_path / "o"))
    assert code == EXIT_BAD_INPUT and "target.png" in _one_sentence(err)
    photo, mask = tmp_path / "photo.png", tmp_path / "mask.png"
    iio.imwrite(photo, np.zeros((20, 30, 3), np.uint8))
    iio.imwrite(mask, np.zeros((10, 30), np.uint8))
    code, _, err = run_cli(capsys, "optimize", "camera", "--steps", "1", "--target", str(photo), "--mask", str(mask),
                           "--out", str(tmp_path / "o"))
    sentence = _one_sentence(err)
    assert code == EXIT_BAD_INPUT and "mask" in sentence and "same size" in sentence


def test_bad_loss_option_is_one_sentence(capsys, tmp_path):
    code, _, err = run_cli(capsys, "optimize", "cube", "--steps", "1", "--loss", "no_such_loss=1", "--out", str(tmp_path / "o"))
    assert code == EXIT_BAD_INPUT and "unknown loss 'no_such_loss'" in _one_sentence(err)


def test_running_out_of_memory_is_one_sentence_with_advice(capsys, tmp_path, monkeypatch):
    import studio.workspace

    def exhausted(*args, **kwargs):
        raise RuntimeError("CUDA out of memory. Tried to allocate 8.00 GiB (GPU 0; 7.79 GiB total capacity)")

    monkeypatch.setattr(studio.workspace, "build_scene", exhausted)
    code, _, err = run_cli(capsys, "optimize", "cube", "--steps", "1", "--out", str(tmp_path / "o"))
    assert code == EXIT_BAD_INPUT
    assert _one_sentence(err) == ("studio: the GPU ran out of memory; lower the resolution or the views per step "
                                  "(or use a smaller mesh), then try again.")


def test_other_runtime_errors_are_bugs_with_a_traceback(capsys, tmp_path, monkeypatch):
    import studio.workspace

    def broken(*args, **kwargs):
        raise RuntimeError("something else")

    monkeypatch.setattr(studio.workspace, "build_scene", broken)
    with pytest.raises(RuntimeError, match="something else"):
        run_cli(capsys, "optimize", "cube", "--steps", "1", "--out", str(tmp_path / "o"))
