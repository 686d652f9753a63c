"""The engine's choice of CPU thread count: timed candidates, fixed counts, devices, front ends."""

from __future__ import annotations

import json

import pytest
import torch

from studio.cli import main
from studio.optim import threads as threads_mod
from studio.optim.engine import Engine, EngineConfig, EngineError
from studio.optim.threads import ThreadTuner, candidates, choose

from .test_engine import make_engine, run_to_end


@pytest.fixture(autouse=True)
def _restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_candidates_are_one_half_and_all_cores():
    assert candidates(1) == (1,)
    assert candidates(2) == (1, 2)
    assert candidates(16) == (1, 8, 16)
    assert candidates(3) == (1, 3)


def drive(tuner: ThreadTuner, ms_per_thread_count: dict[int, float]) -> list[int]:
    """Run the tuner's plan with fake step times; returns the thread counts the steps ran with."""
    used = []
    while tuner.measuring:
        tuner.before_step()
        n = torch.get_num_threads()
        used.append(n)
        tuner.after_step(ms_per_thread_count[n] / 1e3)
    return used


@pytest.mark.parametrize("faster", [1, 4])
def test_the_tuner_keeps_the_count_with_the_fastest_median_step(monkeypatch, faster):
    monkeypatch.setattr(threads_mod, "DEFAULT_THREADS", 4)
    tuner = ThreadTuner(None, "cpu")
    times = {1: 5.0, 2: 4.0, 4: 3.0} if faster == 4 else {1: 2.0, 2: 4.0, 4: 3.0}
    used = drive(tuner, times)
    # Two untimed warm-up steps at the default, then interleaved rounds so that drift hits all alike.
    assert used == [4, 4] + [1, 1, 2, 2, 4, 4] * 2
    assert tuner.threads == faster
    tuner.before_step()
    assert torch.get_num_threads() == faster


def test_one_slow_outlier_does_not_decide(monkeypatch):
    monkeypatch.setattr(threads_mod, "DEFAULT_THREADS", 2)
    tuner = ThreadTuner(None, "cpu")
    seen = {1: 0}

    def step_ms(n: int) -> float:
        if n == 1:
            seen[1] += 1
            return 50.0 if seen[1] == 2 else 2.0  # one hiccup (e.g. another process) among fast steps
        return 3.0

    while tuner.measuring:
        tuner.before_step()
        tuner.after_step(step_ms(torch.get_num_threads()) / 1e3)
    assert tuner.threads == 1


def test_retune_measures_again(monkeypatch):
    monkeypatch.setattr(threads_mod, "DEFAULT_THREADS", 2)
    tuner = ThreadTuner(None, "cpu")
    drive(tuner, {1: 1.0, 2: 2.0})
    assert tuner.threads == 1 and not tuner.measuring
    tuner.retune()
    assert tuner.measuring
    drive(tuner, {1: 2.0, 2: 1.0})
    assert tuner.threads == 2


def test_a_fixed_count_is_used_as_given_and_never_measured():
    tuner = ThreadTuner(1, "cpu")
    assert not tuner.measuring and tuner.threads == 1
    tuner.before_step()
    assert torch.get_num_threads() == 1


def test_gpu_devices_leave_cpu_threads_alone():
    before = torch.get_num_threads()
    tuner = ThreadTuner(None, "cuda")  # only the device type matters: no GPU needed
    assert tuner.threads is None and not tuner.measuring
    tuner.before_step()
    tuner.after_step(0.01)
    assert torch.get_num_threads() == before


def test_the_engine_measures_then_reports_its_threads():
    engine = make_engine(steps=30)
    try:
        snap = run_to_end(engine, 30)
    finally:
        engine.stop()
    # It may be measuring again by then if other processes made the steps drift.
    assert snap.threads in candidates() and engine._tuner.measurements >= 1


def test_the_engine_takes_a_fixed_thread_count():
    base = make_engine()
    engine = Engine(base.scene, base.targets, [("l2", 1.0, {})], EngineConfig(steps=3, threads=1))
    try:
        snap = run_to_end(engine, 3)
    finally:
        engine.stop()
    assert snap.threads == 1


def test_a_thread_count_below_one_is_refused():
    base = make_engine()
    with pytest.raises(EngineError, match="threads must be at least 1"):
        Engine(base.scene, base.targets, [("l2", 1.0, {})], EngineConfig(threads=0))


def test_cli_threads_option(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["optimize", "cube", "--threads", "0", "--out", str(tmp_path / "x")])
    assert exit_info.value.code == 2
    assert "expected auto or a whole number of at least 1, got '0'" in capsys.readouterr().err
    out = tmp_path / "run"
    assert main(["optimize", "cube", "--res", "32", "--steps", "3", "--threads", "1", "--no-video",
                 "--out", str(out)]) == 0
    assert json.loads((out / "summary.json").read_text())["cpu_threads"] == 1


def test_fewer_threads_are_preferred_unless_clearly_faster():
    assert choose({1: 1.05, 2: 1.0}) == 1  # within the margin: one thread degrades gracefully
    assert choose({1: 1.5, 2: 1.0}) == 2
    assert choose({1: 2.0, 4: 1.0, 8: 0.95}) == 4


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_step_times_that_drift_trigger_a_new_measurement(monkeypatch):
    monkeypatch.setattr(threads_mod, "DEFAULT_THREADS", 2)
    tuner = ThreadTuner(None, "cpu", clock=FakeClock())
    drive(tuner, {1: 3.0, 2: 2.0})
    assert tuner.threads == 2 and tuner.measurements == 1
    # Steady steps: no new measurement.
    for _ in range(20):
        tuner.before_step()
        tuner.after_step(2.1e-3)
    assert not tuner.measuring
    # Another process makes the thread team collapse: 2-thread steps become 10x slower.
    for _ in range(threads_mod._WATCH_STEPS):
        tuner.before_step()
        tuner.after_step(20e-3)
    assert tuner.measuring
    drive(tuner, {1: 4.0, 2: 20.0})
    assert tuner.threads == 1 and tuner.measurements == 2


def test_the_choice_is_checked_again_after_a_while(monkeypatch):
    monkeypatch.setattr(threads_mod, "DEFAULT_THREADS", 2)
    clock = FakeClock()
    tuner = ThreadTuner(None, "cpu", clock=clock)
    drive(tuner, {1: 2.0, 2: 3.0})
    tuner.before_step()
    tuner.after_step(2e-3)
    assert not tuner.measuring
    clock.now += threads_mod._RETUNE_SECONDS + 1
    tuner.before_step()
    tuner.after_step(2e-3)
    assert tuner.measuring
    # A fixed count is never re-measured.
    fixed = ThreadTuner(2, "cpu", clock=clock)
    clock.now += 10 * threads_mod._RETUNE_SECONDS
    for _ in range(3 * threads_mod._WATCH_STEPS):
        fixed.before_step()
        fixed.after_step(1.0)
    assert not fixed.measuring and fixed.threads == 2
