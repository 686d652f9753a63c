"""Dataset export on Ray equals a local export file by file, also when a worker is killed mid-run
or when it resumes an interrupted run; bad input is one sentence."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from studio.data import DatasetError, export_dataset
from studio.scale import export_dataset_ray
from tests.data.test_export import assert_complete_pairs, cli_args, config, tree
from studio.data import cli as data_cli


def dataset_files(out: Path) -> dict[str, bytes]:
    """Every image and label file of a dataset folder (data.yaml names the folder, so it differs)."""
    return {k: v for k, v in tree(out).items() if k.startswith(("images/", "labels/"))}


@pytest.fixture(scope="module")
def local_export(mini, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("local") / "ds"
    export_dataset(config(mini, out, n=8, imgsz=64))
    return out


def test_ray_export_equals_the_local_export_file_by_file(ray_local, mini, local_export, tmp_path):
    result = export_dataset_ray(config(mini, tmp_path / "ds", n=8, imgsz=64), chunk=3)
    local = dataset_files(local_export)
    assert len(local) == 16 and result.written == 8
    assert dataset_files(tmp_path / "ds") == local
    assert (tmp_path / "ds" / "preview.png").exists() and (tmp_path / "ds" / "data.yaml").exists()
    assert not list((tmp_path / "ds").rglob(".*"))


def busy_worker_pids() -> list[int]:
    """Processes whose title says they are running an export chunk (Ray retitles its workers)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if title.startswith(b"ray::render_chunk"):
                pids.append(int(entry.name))
    return pids


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds worker processes through /proc")
def test_a_killed_worker_is_retried_and_the_dataset_still_equals_the_local_one(ray_local, mini, local_export,
                                                                             tmp_path):
    killed: list[int] = []

    def progress(done: int, total: int) -> None:
        if not killed:  # the first chunk is in: others are being rendered now
            for _ in range(200):
                pids = busy_worker_pids()
                if pids:
                    os.kill(pids[0], signal.SIGKILL)
                    killed.append(pids[0])
                    return
                threading.Event().wait(0.01)

    result = export_dataset_ray(config(mini, tmp_path / "ds", n=8, imgsz=64), chunk=2, progress=progress)
    assert killed, "no worker was running a chunk when the first one came back"
    assert result.written == 8
    assert assert_complete_pairs(tmp_path / "ds") == 8
    assert dataset_files(tmp_path / "ds") == dataset_files(local_export)


def test_resume_on_ray_completes_an_interrupted_local_run(ray_local, mini, local_export, tmp_path):
    cancel = threading.Event()
    partial = export_dataset(config(mini, tmp_path / "ds", n=8, imgsz=64), cancel=cancel,
                             progress=lambda done, total: done == 5 and cancel.set())
    assert partial.cancelled and assert_complete_pairs(tmp_path / "ds") == 5
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "ds").rglob("*.png")}
    result = export_dataset_ray(config(mini, tmp_path / "ds", n=8, imgsz=64, resume=True), chunk=4)
    assert result.planned == 3 and result.written == 3
    assert dataset_files(tmp_path / "ds") == dataset_files(local_export)
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())  # kept, not rewritten


def test_gpus_per_task_without_gpus_is_one_sentence(ray_local, mini, tmp_path):
    with pytest.raises(DatasetError, match="asks for GPUs and the Ray cluster has none"):
        export_dataset_ray(config(mini, tmp_path / "ds", n=2), gpus_per_task=1)
    assert not (tmp_path / "ds").exists()


def test_cli_ray_export_says_what_it_wrote(ray_local, mini, tmp_path, capsys):
    out = tmp_path / "ds"
    args = cli_args(str(mini), "--n", "4", "--imgsz", "64", "--out", str(out), "--ray",
                    "--chunk", "2", "--no-hard-case")
    assert data_cli.run(args) == 0
    assert "wrote 4 images" in capsys.readouterr().out
    assert assert_complete_pairs(out) == 4


def test_local_resume_renders_only_the_missing_pairs(mini, local_export, tmp_path):
    cancel = threading.Event()
    export_dataset(config(mini, tmp_path / "ds", n=8, imgsz=64), cancel=cancel,
                   progress=lambda done, total: done == 4 and cancel.set())
    split = next(local_export.rglob("000006.png")).parent.name
    (tmp_path / "ds" / "images" / split / ".000006.png.tmp").write_bytes(b"half")  # a hard kill's leftover
    result = export_dataset(config(mini, tmp_path / "ds", n=8, imgsz=64, resume=True))
    assert result.planned == 4 and result.written == 4
    assert dataset_files(tmp_path / "ds") == dataset_files(local_export)


def test_resume_with_overwrite_is_one_sentence(mini, tmp_path, capsys):
    code = data_cli.run(cli_args(str(mini), "--n", "2", "--out", str(tmp_path / "ds"), "--resume", "--overwrite"))
    assert code == data_cli.EXIT_BAD_INPUT
    assert "pass only one of them" in capsys.readouterr().err


def test_ray_options_without_ray_are_one_sentence(mini, tmp_path, capsys):
    code = data_cli.run(cli_args(str(mini), "--n", "2", "--out", str(tmp_path / "ds"), "--chunk", "4"))
    assert code == data_cli.EXIT_BAD_INPUT
    assert "add --ray" in capsys.readouterr().err and not (tmp_path / "ds").exists()
