"""The engine under bad commands and misbehaving plugins: each case -> the sentence it gets, and the
worker still answering afterwards (defects 1-3 of issue 17).

Read the tables top to bottom: ``REFUSED_AT_THE_CALL`` are commands whose arguments have the wrong
type (refused where they are sent, the worker never sees them); ``FAILING_HANDLERS`` are commands
that reach the worker and fail there (a message in the snapshot, the run goes on).
"""

from __future__ import annotations

import threading

import pytest
import torch

from studio.optim.engine import CommandError, Engine
from studio.optim.losses import REGISTRY, loss
from tests.optim.test_engine import make_engine

REFUSED_AT_THE_CALL = [
    ("set_param to a string", lambda e: e.set_param("camera.target", "x"),
     "Engine.set_param: value must be a number or an array of numbers, got 'x' (str)."),
    ("set_param to None", lambda e: e.set_param("camera.fov", None),
     "Engine.set_param: value must be a number or an array of numbers, got None (NoneType)."),
    ("set_param with a ragged list", lambda e: e.set_param("camera.target", [[1], [2, 3]]),
     "Engine.set_param: value must be a number or a rectangular array of numbers"),
    ("set_param with a name that is no string", lambda e: e.set_param(3, [1.0]),
     "Engine.set_param: name must be a string, got 3 (int)."),
    ("set_losses with a weight of None", lambda e: e.set_losses([("l2", None, {})]),
     "Engine.set_losses: the weight of loss 'l2' must be a finite number, got None (NoneType)."),
    ("set_losses with a bare name", lambda e: e.set_losses(["l2"]),
     "Engine.set_losses: losses[0] must be a (name, weight, params) triple, got 'l2' (str)."),
    ("set_frozen with a list for a name", lambda e: e.set_frozen(["x"], True),
     "Engine.set_frozen: name must be a string, got ['x'] (list)."),
    ("set_frozen with a word for a switch", lambda e: e.set_frozen("cube.albedo", "yes"),
     "Engine.set_frozen: frozen must be True or False, got 'yes' (str)."),
    ("call with a number", lambda e: e.call(5), "Engine.call: fn must be a function, got 5 (int)."),
    ("reload_losses with a folder name", lambda e: e.reload_losses("plugins"),
     "Engine.reload_losses: reloader must be a function, got 'plugins' (str)."),
    ("step with a string", lambda e: e.step("3"), "Engine.step: n must be a whole number, got '3' (str)."),
    ("step backwards", lambda e: e.step(-2), "Engine.step: n must be at least 0, got -2 (int)."),
    ("start until a negative step", lambda e: e.start(until=-1), "Engine.start: until must be at least 0"),
    ("set_lr to a word", lambda e: e.set_lr("geometry", "fast"),
     "Engine.set_lr: lr must be a finite number, got 'fast' (str)."),
    ("set_lr below zero", lambda e: e.set_lr("geometry", -1.0),
     "Engine.set_lr: lr must be a number of at least 0, got -1.0 (float)."),
    ("set_loss_weight to NaN", lambda e: e.set_loss_weight("l2", float("nan")),
     "Engine.set_loss_weight: weight must be a finite number, got nan (float)."),
    ("set_group_enabled with a word", lambda e: e.set_group_enabled("material", "no"),
     "Engine.set_group_enabled: enabled must be True or False, got 'no' (str)."),
    ("set_view with a fraction", lambda e: e.set_view(1.5), "Engine.set_view: view must be a whole number"),
    ("set_option antialias to a word", lambda e: e.set_option("antialias", "yes"),
     "Engine.set_option: antialias must be True or False, got 'yes' (str)."),
    ("set_option soft_sigma to zero", lambda e: e.set_option("soft_sigma", 0),
     "Engine.set_option: soft_sigma must be a number above 0 (or None for off), got 0 (int)."),
    ("set_option of an unknown key", lambda e: e.set_option("warp_drive", True),
     "Engine.set_option: unknown option 'warp_drive'; options are visibility, antialias"),
    ("submit with a string", lambda e: e.submit("state_dict"),
     "Engine.submit: fn must be a function, got 'state_dict' (str)."),
]


@pytest.fixture(scope="module")
def engine():
    e = make_engine(steps=10_000)
    e.start_thread()
    yield e
    e.stop()


def took_a_step(e: Engine) -> bool:
    """The worker still takes a step when asked (it is alive and answering)."""
    before = e.wait_snapshot(timeout=30)
    e.step(1)
    return e.wait_snapshot(before.stamp, timeout=30, predicate=lambda s: s.step == before.step + 1) is not None


@pytest.mark.parametrize("case, command, sentence", REFUSED_AT_THE_CALL, ids=[c[0] for c in REFUSED_AT_THE_CALL])
def test_a_wrongly_typed_command_is_refused_at_the_call(engine, case, command, sentence):
    with pytest.raises(CommandError) as info:
        command(engine)
    assert str(info.value).startswith(sentence), str(info.value)
    assert isinstance(info.value, ValueError), "a front end catching ValueError catches it"
    assert str(info.value).count(". ") == 0 and str(info.value).endswith("."), "one sentence"
    assert took_a_step(engine)


def _boom(e: Engine) -> None:
    raise ZeroDivisionError("division by zero")


def _exits(e: Engine) -> None:
    raise SystemExit(4)


FAILING_HANDLERS = [
    ("a call that raises", lambda e: e.call(_boom),
     "the call of _boom failed: ZeroDivisionError: division by zero"),
    ("a call that raises SystemExit", lambda e: e.call(_exits), "the call of _exits failed: SystemExit: 4"),
    ("a reloader that returns None", lambda e: e.reload_losses(lambda: None),
     "the plugin reloader returned None (NoneType), not a list of messages; the losses in use were kept."),
    ("a reloader that raises KeyboardInterrupt", lambda e: e.reload_losses(lambda: (_ for _ in ()).throw(
        KeyboardInterrupt())), "reloading plugins failed: KeyboardInterrupt"),
    ("an unknown parameter", lambda e: e.set_param("no.such.param", [1.0]),
     "the scene has no parameter 'no.such.param'."),
    ("a component out of range", lambda e: e.set_derivative("camera.fov", 99),
     "camera.fov has 1 components (0 to 0); component 99 does not exist."),
    ("an unknown group", lambda e: e.set_lr("sound", 0.1), "group must be one of"),
    ("a value of the wrong shape", lambda e: e.set_param("camera.target", [1.0, 2.0]),
     "camera.target needs a value of shape (3,), got (2,)."),
]


@pytest.mark.parametrize("case, command, sentence", FAILING_HANDLERS, ids=[c[0] for c in FAILING_HANDLERS])
def test_a_failing_handler_becomes_one_sentence_and_the_worker_goes_on(engine, case, command, sentence):
    before = engine.wait_snapshot(timeout=30)
    command(engine)
    snap = engine.wait_snapshot(before.stamp, timeout=30, predicate=lambda s: sentence in (s.message or ""))
    assert snap is not None, engine.latest().message
    assert snap.message.startswith(sentence) and "\n" not in snap.message
    assert engine.alive and took_a_step(engine)


@pytest.mark.parametrize("raised", [SystemExit(3), KeyboardInterrupt(), GeneratorExit()],
                         ids=["SystemExit", "KeyboardInterrupt", "GeneratorExit"])
def test_a_plugin_raising_a_base_exception_is_disabled_and_the_run_goes_on(raised):
    @loss("test_quitter")
    def quitter(render, target, ctx):
        if ctx.iteration >= 2:
            raise raised
        return (render[..., :3] - target[..., :3]).abs().mean()

    try:
        e = make_engine(losses=(("l2", 1.0, {}), ("test_quitter", 1.0, {})), steps=8)
        e.start_thread()
        e.start(until=8)
        snap = e.wait_snapshot(predicate=lambda s: s.finished or (not s.running and s.message), timeout=60)
        e.stop()
    finally:
        REGISTRY.unregister("test_quitter")
    assert snap is not None and snap.finished and snap.step == 8, snap.message if snap else "no snapshot"
    word = type(raised).__name__
    assert any("'test_quitter' (test_engine_faults.py:" in ev and f"raised {word}" in ev
               and "was disabled; the run continues with l2." in ev for ev in snap.events), snap.events


def test_a_stuck_loss_is_reported_and_a_restart_goes_on_from_the_last_good_state():
    release = threading.Event()

    @loss("test_stuck")
    def stuck(render, target, ctx):
        if ctx.iteration >= 3:
            release.wait(60)  # stands for a `while True:` in a plugin (released at the end, to end the thread)
        return (render[..., :3] - target[..., :3]).abs().mean()

    try:
        e = make_engine(losses=(("l2", 1.0, {}), ("test_stuck", 0.5, {})), steps=50)
        e.config.watchdog_s = 0.3
        e.start_thread()
        e.start()
        snap = e.wait_snapshot(predicate=lambda s: s.stalled is not None, timeout=60)
        assert snap is not None and e.stalled is snap.stalled
        assert snap.stalled.stage.loss == "test_stuck" and snap.stalled.step == 3
        assert snap.message.startswith("loss 'test_stuck' from tests/faults/test_engine_faults.py has been "
                                       "running for ")
        assert snap.message.endswith("s; disable loss 'test_stuck' and restart from the last good state (step 3), "
                                     "or keep waiting.")
        good = {k: v.copy() for k, v in snap.params.items()}
        stuck_thread = e._thread
        e.pause()  # a pause cannot be acknowledged by a stuck worker, but it must not raise

        new = e.restarted(["test_stuck"])
        assert not e.alive and new.step_count == 3
        new.start_thread()
        new.step(2)
        later = new.wait_snapshot(predicate=lambda s: s.step == 5 and not s.running, timeout=60)
        assert later is not None, new.latest().message
        assert dict((n, on) for n, _, on, _ in later.losses) == {"l2": True, "test_stuck": False}
        assert len(later.history["step"]) == 5, "the curves go on from the last good state"
        moved = {k: v.copy() for k, v in later.params.items()}
        assert any(not (moved[k] == good[k]).all() for k in good)

        release.set()  # the abandoned thread comes back: it must end without touching the new run
        stuck_thread.join(10)
        assert not stuck_thread.is_alive()
        for k, v in moved.items():
            assert torch.equal(new.params[k].value.detach().cpu(), torch.from_numpy(v)), k
        e.stop(timeout=0.5)
        new.stop()
    finally:
        release.set()
        REGISTRY.unregister("test_stuck")


def test_stop_returns_for_a_stuck_worker_and_abandons_it():
    release = threading.Event()
    e = make_engine()
    e.start_thread()
    e.call(lambda en: release.wait(60))
    try:
        e.stop(timeout=0.3)
        assert not e.alive
    finally:
        release.set()


def test_a_worker_that_dies_is_noticed_instead_of_waited_for(monkeypatch):
    def dies(self):
        raise SystemExit("gone")

    monkeypatch.setattr(Engine, "_work", dies)
    e = make_engine()
    e.start_thread()
    assert e.wait_snapshot(timeout=None) is None, "wait_snapshot must return when the worker is gone"
    assert e.dead and not e.alive
    assert e.events()[-1].startswith("the optimisation worker stopped: SystemExit: gone; save the session")
