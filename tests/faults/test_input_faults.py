"""`studio optimize` under bad input and misbehaving plugins: each case -> exit code and the one
sentence on stderr (defects 2, 3, 6, 7 and 9 of issue 17).

The tables first (scene files, then command-line arguments), then the runs that go wrong halfway:
a stuck loss, Ctrl-C, a dead worker, NaN steps, a plugin stuck at import.  The last two run in a
subprocess: one to see stderr as a terminal does, the other because its thread spins for good.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest

from studio import cli
from studio.cli import EXIT_BAD_INPUT, EXIT_INCOMPLETE, EXIT_INTERRUPTED, main
from studio.optim.engine import Engine
from studio.optim.losses import REGISTRY, loss
from studio.outputs import FrameRecorder

ROOT = Path(__file__).resolve().parents[2]

SCENE = """name = "fault-cube"
[render]
resolution = 16
shading = "unlit"
[optimize]
steps = 3
[camera]
fov = 40
distance = 3.6
views = 2
[[object]]
name = "thing"
mesh = "procedural:cube"
albedo = [0.8, 0.3, 0.2]
position = [0, 0, 0]
scale = 1.0
[[param]]
path = "thing.albedo"
init = [0.5, 0.5, 0.5]
"""

# (case, line of SCENE replaced, its replacement, the sentence after "FILE line N: ")
BAD_SCENES = [
    ("steps is a word", "steps = 3", 'steps = "five"', "steps in [optimize] must be a whole number, got 'five'."),
    ("fov is a word", "fov = 40", 'fov = "wide"', "fov in [camera] must be a number, got 'wide'."),
    ("fov is 0", "fov = 40", "fov = 0", "fov in [camera] is the vertical field of view in degrees and must be "
     "between 0 and 180 (exclusive), got 0."),
    ("fov is 180", "fov = 40", "fov = 180", "fov in [camera] is the vertical field of view in degrees and must be "
     "between 0 and 180 (exclusive), got 180."),
    ("distance is 0", "distance = 3.6", "distance = 0", "distance in [camera] must be above 0 scene units (the "
     "camera cannot sit on its target), got 0."),
    ("views is 0", "views = 2", "views = 0", "views in [camera] must be at least 1, got 0."),
    ("views is an empty list", "views = 2", "views = []", "views in [camera] must list at least one [azimuth, "
     "elevation] pair of numbers, got []."),
    ("resolution is a string", "resolution = 16", 'resolution = "64"', "resolution in [render] must be a whole "
     "number of pixels or [height, width], got '64'."),
    ("a scale that is a word", "scale = 1.0", 'scale = "big"', "scale in [[object]] #1 must be a number, got 'big'."),
    ("a position of two numbers", "position = [0, 0, 0]", "position = [0, 0]",
     "position in [[object]] #1 must have 3 numbers, got 2."),
    ("shading is a number", 'shading = "unlit"', "shading = 3", "shading in [render] must be a string, got 3."),
    ("the name is a number", 'name = "fault-cube"', "name = 5", "name in the scene must be a string, got 5."),
    ("a NaN lr_decay", "steps = 3", "lr_decay = nan", "lr_decay in [optimize] must be a number, got nan."),
]


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_sentence(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("studio: "), err
    return lines[0][len("studio: "):]


@pytest.mark.parametrize("case, line, replacement, sentence", BAD_SCENES, ids=[c[0] for c in BAD_SCENES])
def test_a_bad_scene_file_names_the_key_and_its_line(capsys, tmp_path, case, line, replacement, sentence):
    text = SCENE.replace(line, replacement)
    number = text.splitlines().index(replacement) + 1
    path = tmp_path / "scene.toml"
    path.write_text(text)
    code, _, err = run_cli(capsys, "optimize", str(path), "--backend", "torch", "--device", "cpu",
                           "--out", str(tmp_path / "out"))
    assert code == EXIT_BAD_INPUT
    assert one_sentence(err) == f"{path} line {number}: {sentence}"
    assert not (tmp_path / "out").exists(), "bad input must leave no output folder"


def write_png_header(path: Path, width: int, height: int) -> Path:
    """A tiny PNG file that claims ``width`` x ``height`` pixels (a decompression bomb's header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 4096))
                     + chunk(b"IEND", b""))
    return path


def _big_npy(path: Path) -> Path:
    """A 5000x5000 RGB float array file, sparse on disk: only its header is ever read."""
    np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(5000, 5000, 3)).flush()
    return path


def _garbage_obj(tmp: Path) -> list[str]:
    mesh = tmp / "garbage.obj"
    mesh.write_bytes(b"v 1 2 3\nv \xe9\xff 1 2\nf 1 2 3\n" * 50)
    scene = tmp / "garbage.toml"
    scene.write_text(SCENE.replace('"procedural:cube"', f'"{mesh}"'))
    return [str(scene)]


# (case, arguments after `optimize` given the test folder, the start of the sentence)
BAD_ARGUMENTS = [
    ("--out is an existing file", lambda t: ["cube", "--out", str((t / "f").write_text("x") and t / "f")],
     "--out {t}/f is an existing file; give a folder for the results"),
    ("--mask without --target", lambda t: ["cube", "--mask", "m.png", "--out", str(t / "o")],
     "--mask m.png needs --target: a mask says which pixels of a target photograph show the object."),
    ("a 20000x20000 target", lambda t: ["cube", "--target", str(write_png_header(t / "big.png", 20000, 20000)),
                                        "--out", str(t / "o")],
     "image file {t}/big.png is 20000x20000 pixels, more than the 16.8 megapixels (4096x4096) the studio reads; "
     "downscale it first (it was not loaded)."),
    ("a 12000x12000 target", lambda t: ["cube", "--target", str(write_png_header(t / "b.png", 12000, 12000)),
                                        "--out", str(t / "o")],
     "image file {t}/b.png is 12000x12000 pixels, more than the 16.8 megapixels"),
    ("a 5000x5000 NPY target", lambda t: ["cube", "--target", str(_big_npy(t / "big.npy")), "--out", str(t / "o")],
     "image file {t}/big.npy is 5000x5000 pixels, more than the 16.8 megapixels"),
    ("a garbage OBJ", lambda t: [*_garbage_obj(t), "--out", str(t / "o")], "mesh file {t}/garbage.obj "),
    ("--watchdog 0", lambda t: ["cube", "--watchdog", "0", "--out", str(t / "o")],
     "--watchdog must be a number of seconds above 0, got 0."),
]


@pytest.mark.parametrize("case, argv, sentence", BAD_ARGUMENTS, ids=[c[0] for c in BAD_ARGUMENTS])
def test_a_bad_argument_is_one_sentence_and_exit_2(capsys, tmp_path, case, argv, sentence):
    code, _, err = run_cli(capsys, "optimize", *argv(tmp_path), "--backend", "torch", "--device", "cpu",
                           "--steps", "1", "--res", "16")
    assert code == EXIT_BAD_INPUT, err
    assert one_sentence(err).startswith(sentence.format(t=tmp_path)), err


def test_threads_beyond_the_machine_are_capped(capsys, tmp_path):
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    code, _, err = run_cli(capsys, "optimize", "cube", "--threads", "999", "--steps", "2", "--res", "16",
                           "--backend", "torch", "--device", "cpu", "--no-video", "--out", str(tmp_path / "o"))
    assert code == 0, err
    assert (f"studio: --threads 999 is more than the {available} CPU threads this machine offers; using "
            f"{available}.") in err


def test_the_progress_video_keeps_only_the_frames_it_uses(capsys, tmp_path, monkeypatch):
    seen = []

    class Spy(FrameRecorder):
        def add(self, snap):
            super().add(snap)
            seen.append(len(self.frames))

    monkeypatch.setattr(cli, "FrameRecorder", lambda: Spy(max_frames=8))
    code, _, err = run_cli(capsys, "optimize", "cube", "--steps", "150", "--res", "16", "--backend", "torch",
                           "--device", "cpu", "--out", str(tmp_path / "o"))
    assert code == 0, err
    assert len(seen) > 8, "the run should publish more snapshots than the recorder keeps"
    assert max(seen) <= 8, f"kept up to {max(seen)} frames"


def test_the_frame_recorder_stays_bounded_and_even_over_a_long_run():
    class Snap:
        def __init__(self, step):
            self.step, self.target, self.render = step, np.zeros((2, 2, 3), np.float32), np.zeros((2, 2, 3), np.float32)

    rec, most = FrameRecorder(max_frames=120), 0
    for step in range(1, 20_001):
        rec.add(Snap(step))
        most = max(most, len(rec.frames))
    assert 60 <= len(rec.frames) < 120 and most < 120


def test_a_stuck_loss_is_reported_and_the_last_good_state_is_written(capsys, tmp_path, monkeypatch):
    release = threading.Event()

    @loss("test_cli_stuck")
    def stuck(render, target, ctx):
        if ctx.iteration >= 3:
            release.wait(120)  # stands for a `while True:` (released at the end, so the thread ends)
        return (render[..., :3] - target[..., :3]).abs().mean()

    monkeypatch.chdir(tmp_path)
    try:
        code, _, err = run_cli(capsys, "optimize", "cube", "--steps", "50", "--res", "16", "--backend", "torch",
                               "--device", "cpu", "--loss", "l2=1", "--loss", "test_cli_stuck=1", "--watchdog", "0.5",
                               "--out", "out")
    finally:
        release.set()
        REGISTRY.unregister("test_cli_stuck")
    assert code == EXIT_INCOMPLETE, err
    assert re.search(rf"studio: loss 'test_cli_stuck' from {re.escape(__file__)} has been running for \d+ s; wrote "
                     r"the outputs of step 3 \(the last good state\) to \S*out/\.", err), err
    for name in ("summary.json", "curves.csv", "params.json", "final.png"):
        assert (tmp_path / "out" / name).exists(), name
    assert (tmp_path / "out" / "curves.csv").read_text().count("\n") == 4  # header + steps 1-3


def test_ctrl_c_writes_the_outputs_of_the_last_good_state(capsys, tmp_path, monkeypatch):
    class CtrlC(FrameRecorder):
        def add(self, snap):
            super().add(snap)
            if snap.step >= 5:
                raise KeyboardInterrupt  # where the user's Ctrl-C lands: the main thread, waiting on the run

    monkeypatch.setattr(cli, "FrameRecorder", CtrlC)
    code, _, err = run_cli(capsys, "optimize", "cube", "--steps", "100000", "--res", "16", "--backend", "torch",
                           "--device", "cpu", "--out", str(tmp_path / "out"))
    assert code == EXIT_INTERRUPTED, err
    assert "studio: interrupted; wrote the outputs of step " in err
    for name in ("summary.json", "curves.csv", "params.json", "final.png", "progress.gif"):
        assert (tmp_path / "out" / name).exists(), name


def test_a_worker_that_dies_ends_the_run_with_a_sentence_instead_of_a_wait(capsys, tmp_path, monkeypatch):
    def dies(self):
        raise SystemExit("gone")

    monkeypatch.setattr(Engine, "_work", dies)
    code, _, err = run_cli(capsys, "optimize", "cube", "--steps", "5", "--res", "16", "--backend", "torch",
                           "--device", "cpu", "--out", str(tmp_path / "o"))
    assert code == EXIT_INCOMPLETE
    assert "studio: the optimisation worker stopped: SystemExit: gone; save the session and reload the scene; " \
           "wrote the outputs of step 0 (the last good state)" in err
    assert (tmp_path / "o" / "params.json").exists()


# ---------------------------------------------------------------------- runs in a subprocess

NAN_GRADIENT = """
from studio.optim.losses import loss

@loss("nan_grad")
def nan_grad(render, target, ctx):
    # finite value, infinite gradient: every step is skipped, and after 5 the run pauses
    return (render[..., :3] - render[..., :3].detach()).abs().sqrt().sum()
"""

def studio(tmp: Path, *argv: str, plugin: str | None = None, timeout: float = 120) -> tuple[int, str]:
    """Run ``studio optimize`` in ``tmp``; returns (exit code, stderr)."""
    args = [sys.executable, "-m", "studio.cli", "optimize", *argv, "--backend", "torch", "--device", "cpu",
            "--res", "16", "--out", "out"]
    if plugin is not None:
        (tmp / "plugins").mkdir(exist_ok=True)
        (tmp / "plugins" / "p_test.py").write_text(plugin)
        args += ["--plugins", "plugins"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(args, cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, err = proc.communicate(timeout=timeout)
    finally:
        proc.kill()
    return proc.returncode, err


def test_a_run_paused_by_nan_steps_exits_3_with_its_outputs_and_log_lines_are_not_glued_to_the_bar(tmp_path):
    code, err = studio(tmp_path, "cube", "--steps", "20", "--loss", "nan_grad=1", "--threads", "1",
                       plugin=NAN_GRADIENT)
    assert code == EXIT_INCOMPLETE, err
    assert "studio: paused after 5 steps in a row with NaN/Inf values; lower the learning rate, check the losses, " \
           f"or Reset; wrote the outputs of step 5 (the last good state) to {tmp_path.resolve()}/out/." in err
    assert (tmp_path / "out" / "params.json").exists() and (tmp_path / "out" / "final.png").exists()
    logged = [seg for line in err.split("\n") for seg in [line.split("\r")[-1]] if "was NaN or Inf" in line]
    assert logged, err
    assert all(seg.startswith("step ") for seg in logged), f"a log line is glued to the progress bar: {logged}"
    assert "Traceback" not in err


def test_a_plugin_stuck_at_import_is_reported_before_the_run(tmp_path):
    code, err = studio(tmp_path, "cube", "--watchdog", "0.5", plugin="while True:\n    pass\n")
    assert code == EXIT_BAD_INPUT, err
    assert err.strip().splitlines()[-1].startswith(
        "studio: importing plugins and building the scene (at plugins/p_test.py line 1) has been running for ")
