"""Sessions under damage: each bad file -> its one-sentence SessionError, each bad state -> a refused
restore that leaves the run exactly as it was (defects 4, 5 and the NaN/orphan parts of 9).
"""

from __future__ import annotations

import copy
import io
import json
import math
import os
import time
import zipfile

import numpy as np
import pytest
import torch

from studio import session
from studio.optim.losses import LossError
from studio.scene.params import ParameterError
from tests.optim.test_engine import make_engine, run_to_end


@pytest.fixture(scope="module")
def trained():
    """An engine paused at step 6 (Adam state, curves), and its state."""
    e = make_engine(steps=1000)
    run_to_end(e, 6)
    e.stop()
    return e, e.state_dict()


@pytest.fixture(scope="module")
def saved(trained, tmp_path_factory):
    e, _ = trained
    return session.write_session(tmp_path_factory.mktemp("s") / "run.studio", e.state_dict(), {"scene": "tiny-cube"})


def _optimizer_slot(state, key="exp_avg"):
    return state["optimizer"]["state"][0][key]


def _edited(state, edit):
    s = copy.deepcopy(state)
    edit(s)
    return s


def _nan_param(s):
    s["params"]["cube.albedo"] = s["params"]["cube.albedo"].clone().fill_(float("nan"))


def _wrong_moment(s):
    s["optimizer"]["state"][0]["exp_avg"] = torch.zeros(2, 2)


def _nan_moment(s):
    s["optimizer"]["state"][0]["exp_avg_sq"] = s["optimizer"]["state"][0]["exp_avg_sq"].clone().fill_(float("inf"))


BAD_STATES = [
    ("step is a word", lambda s: s.update(step="x"), ParameterError, "the session's step must be a whole number"),
    ("step is negative", lambda s: s.update(step=-1), ParameterError, "the session's step must be a whole number"),
    ("a parameter is NaN", _nan_param, ParameterError, "the session's value of cube.albedo contains NaN or Inf"),
    ("a parameter has another shape", lambda s: s["params"].update({"cube.albedo": torch.zeros(2)}), ParameterError,
     "the session's value of cube.albedo has shape (2,) but this scene's has"),
    ("a parameter is a list", lambda s: s["initial"].update({"camera.fov": [45.0]}), ParameterError,
     "the session's initial value of camera.fov must be a tensor of numbers, not list"),
    ("an unknown parameter", lambda s: s["params"].update({"ghost.albedo": torch.zeros(3)}), ParameterError,
     "the session was saved for a different scene (this scene has no parameter 'ghost.albedo')"),
    ("a learning rate of an unknown parameter", lambda s: s["lr"].update({"ghost": 0.1}), ParameterError,
     "the session sets the learning rate of 'ghost', which this scene does not have"),
    ("a learning rate that is a word", lambda s: s["lr"].update({"cube.albedo": "fast"}), ParameterError,
     "the session's learning rate of cube.albedo must be a finite number"),
    ("an unknown group switch", lambda s: s["group_enabled"].update({"sound": True}), ParameterError,
     "the session's group switches name an unknown group 'sound'"),
    ("a frozen parameter that does not exist", lambda s: s.update(frozen=["ghost"]), ParameterError,
     "the session's frozen parameters must be a list of this scene's parameter names"),
    ("a loss weight that is a word", lambda s: s["losses"][0].update(weight="heavy"), ParameterError,
     "the session's weight of loss 'l2' must be a finite number"),
    ("a loss that is not registered", lambda s: s["losses"][0].update(name="nope"), LossError, "unknown loss 'nope'"),
    ("no losses", lambda s: s.update(losses=[]), LossError, "the session has no losses"),
    ("curves with words", lambda s: s["history"]["loss"].__setitem__(0, "x"), ParameterError,
     "the session's curve 'loss' holds something other than numbers"),
    ("curves of different lengths", lambda s: s["history"]["loss"].pop(), ParameterError,
     "the session's curves are incomplete"),
    ("an optimiser moment of another shape", _wrong_moment, ParameterError,
     "the session's optimiser state has a exp_avg of shape (2, 2)"),
    ("an optimiser moment that is Inf", _nan_moment, ParameterError,
     "the session's optimiser state has NaN or Inf in its exp_avg_sq values"),
    ("a view that does not exist", lambda s: s.update(view=99), ParameterError,
     "the session's view must be between 0 and 5, not 99"),
    ("a generator state that is garbage", lambda s: s.update(generator=torch.zeros(3, dtype=torch.uint8)),
     ParameterError, "the session's random generator state is not a generator's state"),
    ("a missing field", lambda s: s.pop("history"), ParameterError, "the session's state has no history"),
]


@pytest.mark.parametrize("case, edit, error, sentence", BAD_STATES, ids=[c[0] for c in BAD_STATES])
def test_a_bad_state_is_refused_and_the_run_is_left_as_it_was(trained, case, edit, error, sentence):
    e, state = trained
    before = e.state_dict()
    with pytest.raises(error) as info:
        e.load_state_dict(_edited(state, edit))
    assert str(info.value).startswith(sentence) or sentence in str(info.value), str(info.value)
    after = e.state_dict()
    assert after["step"] == 6 and after["history"] == before["history"] and after["losses"] == before["losses"]
    for name, v in before["params"].items():
        assert torch.equal(after["params"][name], v), name
    assert torch.equal(_optimizer_slot(after), _optimizer_slot(before))
    assert torch.equal(after["optimizer"]["state"][0]["step"], before["optimizer"]["state"][0]["step"])


def test_restore_copies_the_optimiser_state_in_and_out(trained):
    _, state = trained
    saved_step = state["optimizer"]["state"][0]["step"].clone()
    saved_moment = _optimizer_slot(state).clone()
    results = []
    for seed in (1, 2):  # the same state restored twice gives the same run
        b = make_engine(steps=1000, seed=seed)
        b.load_state_dict(state)
        b.start_thread()
        b.step(3)
        results.append(b.wait_snapshot(predicate=lambda s: s.step == 9, timeout=60))
        out = b.state_dict()
        b.stop()
        assert float(out["optimizer"]["state"][0]["step"]) == float(saved_step) + 3
    assert torch.equal(state["optimizer"]["state"][0]["step"], saved_step), "Adam's step was counted in the caller's state"
    assert torch.equal(_optimizer_slot(state), saved_moment), "the caller's moments were changed"
    for name in results[0].params:
        np.testing.assert_array_equal(results[0].params[name], results[1].params[name], err_msg=name)


def _rewrite(src, dst, **members):
    with zipfile.ZipFile(src) as z:
        content = {n: z.read(n) for n in z.namelist()}
    content.update(members)
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as z:
        for n, data in content.items():
            z.writestr(n, data)
    return dst


class NotATensor:
    """A pickled object a session must never run or accept."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


def _pickle_payload() -> bytes:
    buf = io.BytesIO()
    torch.save({"params": NotATensor()}, buf)
    return buf.getvalue()


def _tensors_without(saved, key) -> bytes:
    with zipfile.ZipFile(saved) as z:
        tensors = torch.load(io.BytesIO(z.read("tensors.pt")), weights_only=True)
    tensors.pop(key)
    buf = io.BytesIO()
    torch.save(tensors, buf)
    return buf.getvalue()


def _doc(saved, edit) -> bytes:
    with zipfile.ZipFile(saved) as z:
        doc = json.loads(z.read("session.json"))
    edit(doc)
    return json.dumps(doc).encode()


BAD_FILES = [
    ("not JSON", lambda p: {"session.json": b"{ this is not json"}, "session.json is not valid JSON"),
    ("JSON that is a list", lambda p: {"session.json": b"[1, 2]"}, "is not a studio session"),
    ("a state that is a number", lambda p: {"session.json": b'{"format": 1, "state": 5}'}, "is not a studio session"),
    ("a format that is a word", lambda p: {"session.json": _doc(p, lambda d: d.update(format="one"))},
     "its format is 'one', not a number"),
    ("a newer format", lambda p: {"session.json": _doc(p, lambda d: d.update(format=99))},
     "was saved by a newer studio (format 99)"),
    ("curves that are a word", lambda p: {"session.json": _doc(p, lambda d: d["state"].update(history="x"))},
     "its curves are not a table"),
    ("curves with words", lambda p: {"session.json": _doc(p, lambda d: d["state"]["history"].update(loss=["a"]))},
     "its curve 'loss' is not a list of numbers"),
    ("a missing field", lambda p: {"session.json": _doc(p, lambda d: d["state"].pop("losses"))},
     "is incomplete (no losses)"),
    ("tensors that are a pickle", lambda p: {"tensors.pt": _pickle_payload()},
     "tensors.pt holds something other than plain tensors (UnpicklingError)"),
    ("tensors that are garbage", lambda p: {"tensors.pt": b"\x00garbage" * 10}, "tensors.pt holds something other"),
    ("tensors without the optimiser", lambda p: {"tensors.pt": _tensors_without(p, "optimizer")},
     "is incomplete (no optimizer)"),
]


@pytest.mark.parametrize("case, members, sentence", BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_a_bad_session_file_gives_one_session_error(saved, tmp_path, case, members, sentence):
    path = _rewrite(saved, tmp_path / "bad.studio", **members(saved))
    with pytest.raises(session.SessionError) as info:
        session.read_session(path)
    text = str(info.value)
    assert sentence in text and str(path) in text and "weights_only" not in text and "\n" not in text, text


def test_every_single_byte_flip_gives_a_session_error_or_a_good_read(saved, tmp_path):
    data = saved.read_bytes()
    kinds = set()
    for i in range(0, len(data), max(1, len(data) // 150)):
        flipped = bytearray(data)
        flipped[i] ^= 0xFF
        path = tmp_path / "flip.studio"
        path.write_bytes(bytes(flipped))
        try:
            session.read_session(path)
        except session.SessionError as exc:
            kinds.add(str(exc).split("(")[1].split(")")[0] if "(" in str(exc) else "other")
        # anything else propagates and fails the test (zlib.error, KeyError, ...)
    assert kinds, "no flip was noticed at all"


def test_a_save_removes_the_temporary_files_of_saves_that_were_killed(trained, tmp_path):
    e, state = trained
    orphan = tmp_path / ".run.studio.k1ll3d.tmp"
    orphan.write_bytes(b"half a session")
    old = time.time() - 3600
    os.utime(orphan, (old, old))
    fresh = tmp_path / ".run.studio.running.tmp"  # a save still running in another process
    fresh.write_bytes(b"being written")
    session.write_session(tmp_path / "run.studio", state, {"scene": "tiny-cube"})
    assert not orphan.exists() and fresh.exists()


def test_nan_parameters_in_a_session_file_are_refused_when_restoring(trained, tmp_path):
    e, state = trained
    bad = _edited(state, _nan_param)
    path = session.write_session(tmp_path / "nan.studio", bad, {"scene": "tiny-cube"})
    meta, read = session.read_session(path)
    fresh = make_engine(steps=1000)
    with pytest.raises(ParameterError, match="contains NaN or Inf"):
        fresh.load_state_dict(read)
    assert fresh.step_count == 0 and all(math.isfinite(float(x)) for x in fresh.params["cube.albedo"].value.detach().flatten())
