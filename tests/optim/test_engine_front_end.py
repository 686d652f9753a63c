"""Engine commands that front ends (the studio window) use: submit, render modes, freezing one
parameter, resetting one parameter, and the group settings published in snapshots."""

from __future__ import annotations

import numpy as np
import pytest

from studio.render.modes import MODES
from tests.optim.test_engine import make_engine


def test_submit_runs_on_the_worker_and_returns_results_and_errors():
    import threading

    e = make_engine()
    assert e.submit(lambda en: en.step_count).result(1) == 0  # before start_thread: runs at once
    e.start_thread()
    assert e.submit(lambda en: threading.current_thread().name).result(10) == "studio-engine"
    with pytest.raises(ZeroDivisionError):
        e.submit(lambda en: 1 / 0).result(10)
    e.step(2)
    assert e.wait_snapshot(predicate=lambda s: s.step == 2, timeout=30), "the worker died after a failing call"
    e.stop()


def test_every_render_mode_is_published_and_unknown_ones_are_refused():
    e = make_engine()
    e.start_thread()
    snap = e.wait_snapshot(timeout=30)
    for mode in MODES:
        e.set_display_mode(mode)
        snap = e.wait_snapshot(snap.stamp, timeout=30, predicate=lambda s, m=mode: s.display_mode == m)
        assert snap is not None, mode
        if mode == "shaded":
            assert snap.display is None
        else:
            assert snap.display.shape == snap.render.shape and not snap.display.flags.writeable
    e.set_display_mode("x-ray")
    snap = e.wait_snapshot(snap.stamp, timeout=30, predicate=lambda s: s.message and "x-ray" in s.message)
    assert snap is not None and snap.display_mode == "loss gradient"
    e.stop()


def test_a_frozen_parameter_stays_while_its_group_moves_and_reset_param_restores_one():
    e = make_engine(steps=1000)
    e.start_thread()
    e.set_frozen("cube.vertices", True)
    start = e.wait_snapshot(timeout=30, predicate=lambda s: s.frozen == ("cube.vertices",))
    e.step(5)
    snap = e.wait_snapshot(start.stamp, timeout=60, predicate=lambda s: s.step == 5)
    np.testing.assert_array_equal(snap.params["cube.vertices"], start.params["cube.vertices"])
    assert not np.allclose(snap.params["cube.albedo"], start.params["cube.albedo"])
    e.reset_param("cube.albedo")
    e.set_frozen("cube.vertices", False)
    snap = e.wait_snapshot(snap.stamp, timeout=30, predicate=lambda s: not s.frozen)
    np.testing.assert_array_equal(snap.params["cube.albedo"], start.params["cube.albedo"])
    assert snap.step == 5, "resetting one parameter keeps the run"
    e.stop()


def test_group_switches_and_learning_rates_are_published():
    e = make_engine()
    e.start_thread()
    e.set_group_enabled("material", False)
    e.set_lr("geometry", 0.123)
    snap = e.wait_snapshot(timeout=30, predicate=lambda s: not s.group_enabled["material"]
                           and s.group_lr.get("geometry") == pytest.approx(0.123))
    assert snap is not None and set(snap.group_lr) == {"geometry", "material"}
    e.stop()
