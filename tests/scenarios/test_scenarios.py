"""Every built-in scenario, shortened: it loads, renders, and each optimised group's error falls.

The full budgets and the >= 90% rule are measured by ``bench/scenarios.py`` (too slow for tests).
"""

from __future__ import annotations

import pytest

from studio.optim.engine import Engine, EngineConfig
from studio.scenarios import list_scenarios, load_spec
from studio.workspace import build_scene, load_targets

SHORT = {"pose": 40, "texture": 25, "joint": 40, "deform": 40}


@pytest.mark.parametrize("name", [s.name for s in list_scenarios()])
def test_scenario_error_falls_in_a_short_run(name):
    spec = load_spec(name)
    steps = SHORT.get(name, 30)
    spec.resolution = (min(spec.resolution[0], 64), min(spec.resolution[1], 64))
    scene = build_scene(spec, "torch", "cpu")
    targets, _ = load_targets(scene)
    engine = Engine(scene, targets, [(l.name, l.weight, l.params) for l in spec.losses],
                    EngineConfig(steps=steps, views_per_step=spec.views_per_step, seed=spec.seed, group_lr=spec.group_lr,
                                 restarts=spec.restarts, lr_decay=spec.lr_decay))
    before = scene.params.group_errors()
    assert before, f"{name} has no group with ground truth"
    engine.start_thread()
    engine.start(until=steps)
    snap = engine.wait_snapshot(predicate=lambda s: s.finished, timeout=120)
    engine.stop()
    assert snap is not None and snap.step == steps and snap.skipped_steps == 0
    after = scene.params.group_errors()
    for group, err in before.items():
        assert after[group].value < err.value, f"{name}: {group} error did not fall ({err.value} -> {after[group].value})"
    assert spec.description and spec.lesson.strip(), f"{name} needs a description and a lesson"
