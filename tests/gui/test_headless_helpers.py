"""The GUI's headless helpers (no window needed): export writers, the progress recorder, background
jobs and the display check."""

from __future__ import annotations

import threading
from concurrent.futures import Future

import imageio.v3 as iio
import numpy as np
import pytest

from studio.gui import exports
from studio.gui.jobs import Jobs
from tests.optim.test_engine import make_engine, run_to_end


@pytest.fixture(scope="module")
def run():
    e = make_engine(steps=1000)
    snap = run_to_end(e, 5)
    yield e, snap
    e.stop()


def test_exports_write_what_the_window_shows(run, tmp_path):
    engine, snap = run
    png = exports.write_render_png(tmp_path / "render", snap)
    assert png.suffix == ".png" and iio.imread(png).shape == (32, 32, 3)
    csv = exports.write_curves_csv(tmp_path / "curves.csv", snap.history)
    assert csv.read_text().splitlines()[0] == "step,loss,geometry,material,lighting,camera"
    mesh = engine.submit(exports.fitted_mesh).result(30)
    obj = exports.write_mesh_obj(tmp_path / "mesh.obj", mesh)
    assert obj.read_text().count("\nv ") == 8
    with pytest.raises(exports.ExportError, match="does not exist"):
        exports.write_render_png(tmp_path / "no" / "such" / "folder.png", snap)
    with pytest.raises(exports.ExportError, match="no progress"):
        exports.write_video(tmp_path / "empty.gif", [])


def test_the_recorder_keeps_a_bounded_even_sample(run, tmp_path):
    _, snap = run
    from dataclasses import replace

    rec = exports.FrameRecorder(max_frames=8)
    for step in range(1, 40):
        frame = replace(snap, step=step, render=snap.render * (step / 40))
        rec.add(frame)
        rec.add(frame)  # the same step twice is one frame
    assert 4 <= len(rec.frames) < 8
    assert rec.frames[0].dtype == np.uint8 and rec.frames[0].shape == (32, 64, 3)
    gif = exports.write_video(tmp_path / "progress", rec.frames)
    assert gif.suffix == ".gif" and len(iio.imread(gif, index=None)) == len(rec.frames)


def test_jobs_deliver_results_and_errors_on_the_polling_thread():
    jobs = Jobs()
    seen = []
    here = threading.current_thread
    jobs.run(lambda: here().name, lambda r: seen.append(("done", r, here().name)), lambda e: seen.append(("error", e)))
    jobs.run(lambda: 1 / 0, lambda r: seen.append(("done", r)), lambda e: seen.append(("error", type(e).__name__)))
    fut: Future = Future()
    jobs.watch(fut, lambda r: seen.append(("watched", r)), lambda e: None)
    fut.set_result(42)
    for _ in range(200):
        jobs.poll()
        if len(seen) == 3:
            break
        threading.Event().wait(0.01)
    jobs.shutdown()
    kinds = sorted(s[0] for s in seen)
    assert kinds == ["done", "error", "watched"]
    done = next(s for s in seen if s[0] == "done")
    assert done[1].startswith("studio-job") and done[2] == threading.current_thread().name
    assert not jobs.busy


def test_display_problem_without_display(monkeypatch):
    import sys

    from studio.gui.display import display_problem

    if not sys.platform.startswith("linux"):
        pytest.skip("DISPLAY decides only on Linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert "no display" in display_problem()


def test_the_status_sentence_for_running_out_of_memory_says_what_to_do():
    from studio.gui.errors import one_sentence

    sentence = one_sentence("loading the scene", MemoryError())
    assert sentence == ("loading the scene failed: the computer ran out of memory; lower the resolution or the views "
                        "per step (or use a smaller mesh), then try again.")
    assert one_sentence("loading the scene", ValueError("bad\nsecond line")) == (
        "loading the scene failed (ValueError: bad); the details are in the Log tab.")
