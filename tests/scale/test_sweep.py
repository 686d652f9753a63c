"""Sweeps: the grid, each run through `studio optimize` itself, sweep.csv / sweep.png, the same rows
locally and on Ray, and bad settings as one sentence."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image

from studio import cli
from studio.scale import ScaleError, run_sweep
from studio.scale.sweep import make_grid, parse_seeds, parse_set, run_one

GRID = {"antialias": ["on", "off"], "lr.camera": ["0.05", "0.5"]}
SMALL = {"res": ["32"]}  # tiny renders (the lesson holds at 32 px)


def finals(rows: list[dict]) -> dict[str, tuple[float, float]]:
    return {r["run"]: (round(float(r["camera_initial"]), 6), round(float(r["camera_final"]), 6)) for r in rows}


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory) -> tuple[Path, list[dict]]:
    out = tmp_path_factory.mktemp("sweep")
    rows = run_sweep("camera", {**GRID, **SMALL}, out=out, steps=12, threads=1)
    return out, rows


def test_a_2x2_sweep_writes_every_run_csv_and_plot(local_sweep):
    out, rows = local_sweep
    assert [r["run"] for r in rows] == ["0_antialias-on_lr.camera-0.05_res-32", "1_antialias-on_lr.camera-0.5_res-32",
                                        "2_antialias-off_lr.camera-0.05_res-32", "3_antialias-off_lr.camera-0.5_res-32"]
    for r in rows:
        run = out / "runs" / r["run"]
        assert {"summary.json", "curves.csv", "log.txt"} <= {p.name for p in run.iterdir()}
        summary = json.loads((run / "summary.json").read_text())
        assert summary["steps"] == 12 and summary["groups"]["camera"]["final"] == pytest.approx(r["camera_final"])
    with (out / "sweep.csv").open() as f:
        table = list(csv.DictReader(f))
    assert [t["run"] for t in table] == [r["run"] for r in rows]
    assert {"antialias", "lr.camera", "res", "seconds", "loss_final", "camera_initial", "camera_final"} <= set(table[0])
    assert Image.open(out / "sweep.png").size[0] >= 3 * 400  # one panel per swept setting


def test_the_sweep_shows_the_antialias_lesson_and_the_learning_rate(local_sweep):
    _, rows = local_sweep
    by = {(r["antialias"], r["lr.camera"]): r for r in rows}
    for lr in ("0.05", "0.5"):  # no silhouette gradient: the camera does not move at all
        assert by["off", lr]["camera_final"] == by["off", lr]["camera_initial"]
    moved = {lr: by["on", lr]["camera_initial"] - by["on", lr]["camera_final"] for lr in ("0.05", "0.5")}
    assert 0 < moved["0.05"] < moved["0.5"]


def fit(summary_json: bytes) -> tuple:
    """What a run found (curves.csv samples the error at timing-dependent steps, so it is not compared)."""
    s = json.loads(summary_json)
    return s["steps"], s["loss"], s["groups"]


def test_a_run_is_studio_optimize_with_its_settings(local_sweep, tmp_path):
    out, rows = local_sweep
    run = make_grid("camera", {**GRID, **SMALL}, steps=12)[1]
    assert cli.main(["optimize", *run.argv(tmp_path / "direct", threads=1)]) == 0
    swept = (out / "runs" / run.id / "summary.json").read_bytes()
    assert fit((tmp_path / "direct" / "summary.json").read_bytes()) == fit(swept)
    assert fit(run_one(run, threads=1).files["summary.json"]) == fit(swept)


def test_the_sweep_on_ray_gives_the_local_rows(ray_local, local_sweep, tmp_path):
    out, rows = local_sweep
    ray_rows = run_sweep("camera", {**GRID, **SMALL}, out=tmp_path, steps=12, ray=True)
    assert finals(ray_rows) == finals(rows)
    for r in rows:
        assert fit((tmp_path / "runs" / r["run"] / "summary.json").read_bytes()) == \
            fit((out / "runs" / r["run"] / "summary.json").read_bytes())


def test_seeds_and_sets_parse():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4] and parse_seeds("0-1,5,1") == [0, 1, 5]
    assert parse_set("lr.camera=0.1, 0.5") == ("lr.camera", ["0.1", "0.5"])
    runs = make_grid("camera", {"soft": ["1", "4"]}, seeds=[0, 1, 2])
    assert len(runs) == 6 and runs[5].settings == (("soft", "4"), ("seed", "2"))
    assert make_grid("camera", {"loss": ["l1=1+mask_iou=0.5"]})[0].argv("o")[-4:] == ["--loss", "l1=1", "--loss",
                                                                                      "mask_iou=0.5"]


def test_an_output_file_is_one_sentence(tmp_path, capsys):
    (tmp_path / "s").write_text("not a folder")
    assert cli.main(["sweep", "camera", "--out", str(tmp_path / "s"), "--set", "res=16"]) == cli.EXIT_BAD_INPUT
    assert "is a file; give a folder for the sweep" in capsys.readouterr().err


@pytest.mark.parametrize("argv, words", [
    (["--set", "antialias"], "--set must look like KEY=V1,V2"),
    (["--set", "colour=red"], "unknown sweep setting 'colour'"),
    (["--set", "antialias=on,maybe"], "--set antialias=maybe: expected on or off"),
    (["--set", "backend=vulkan"], "--set backend=vulkan: choose among auto, torch, nvdiffrast"),
    (["--set", "lr.colour=0.1"], "--lr must look like GROUP=RATE"),
    (["--set", "out=a,b"], "--set out is not a sweep setting"),
    (["--seeds", "4-1"], "--seeds must be a range or list"),
])
def test_bad_settings_are_one_sentence_and_exit_2(tmp_path, capsys, argv, words):
    assert cli.main(["sweep", "camera", "--out", str(tmp_path / "s"), *argv]) == cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith("studio: ") and words in err and err.strip().count("\n") == 0
    assert not (tmp_path / "s").exists()


def test_without_ray_the_ray_option_says_how_to_install(monkeypatch, tmp_path, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(ScaleError, match=r"install it with pip install -e '\.\[ray\]'"):
        run_sweep("camera", SMALL, out=tmp_path, steps=1, ray=True)
    assert cli.main(["export-dataset", "objects", "--n", "2", "--imgsz", "32", "--out", str(tmp_path / "d"),
                     "--ray"]) == cli.EXIT_BAD_INPUT
    assert "needs Ray, which is not installed" in capsys.readouterr().err
