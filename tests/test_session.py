"""Sessions: a run saved to one file comes back exactly (parameters, optimiser, curves, settings),
bad files give one sentence, and a crash while saving never damages the previous file."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch

from studio import session
from studio.scene.params import ParameterError
from tests.optim.test_engine import make_engine, run_to_end


def trained(steps: int = 6, seed: int = 0):
    e = make_engine(steps=1000, seed=seed)
    e.set_lr("material", 0.05)
    e.set_group_enabled("geometry", False)
    e.set_frozen("cube.albedo", False)
    e.set_loss_weight("l2", 2.0)
    snap = run_to_end(e, steps)
    return e, snap


def test_save_then_load_resumes_the_run_exactly(tmp_path):
    a, snap = trained()
    path = session.save_session(tmp_path / "run", a, "tiny-cube")
    assert path.suffix == ".studio" and path.exists()
    a.step(3)
    after_a = a.wait_snapshot(snap.stamp, timeout=30, predicate=lambda s: s.step == 9)

    b = make_engine(steps=1000, seed=7)  # a fresh engine of the same scene
    b.start_thread()
    meta = session.load_session(path, b)
    assert meta["scene"] == "tiny-cube" and meta["resolution"] == [32, 32]
    back = b.wait_snapshot(predicate=lambda s: s.step == 6, timeout=30)
    for name, value in snap.params.items():
        np.testing.assert_allclose(back.params[name], value, atol=1e-7, err_msg=name)
    np.testing.assert_allclose(back.history["loss"], snap.history["loss"])
    assert back.group_enabled["geometry"] is False and back.group_lr["material"] == pytest.approx(0.05)
    assert back.losses[0][1] == pytest.approx(2.0)
    b.step(3)  # same optimiser state: the same next steps as the original run
    after_b = b.wait_snapshot(back.stamp, timeout=30, predicate=lambda s: s.step == 9)
    for name in snap.params:
        np.testing.assert_allclose(after_b.params[name], after_a.params[name], atol=1e-5, err_msg=name)
    a.stop()
    b.stop()


def test_the_file_is_json_plus_tensors_loaded_with_weights_only(tmp_path, monkeypatch):
    a, _ = trained(steps=3)
    path = session.save_session(tmp_path / "run.studio", a, "tiny-cube")
    a.stop()
    with zipfile.ZipFile(path) as z:
        assert sorted(z.namelist()) == ["session.json", "tensors.pt"]
        doc = json.loads(z.read("session.json"))
    assert doc["format"] == session.FORMAT and doc["state"]["step"] == 3
    calls = []
    real = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(k) or real(*a, **k))
    session.read_session(path)
    assert calls and calls[0]["weights_only"] is True


def test_a_failed_save_keeps_the_previous_file(tmp_path, monkeypatch):
    a, _ = trained(steps=2)
    path = session.save_session(tmp_path / "run.studio", a, "tiny-cube")
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(session.os, "replace", broken)
    with pytest.raises(session.SessionError, match="No space left"):
        session.save_session(path, a, "tiny-cube")
    a.stop()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["run.studio"], "the temporary file was left behind"


@pytest.mark.parametrize("content", [b"", b"not a zip at all", None])
def test_bad_files_are_one_sentence(tmp_path, content):
    path = tmp_path / "bad.studio"
    if content is None:
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("session.json", "{}")
    else:
        path.write_bytes(content)
    with pytest.raises(session.SessionError) as info:
        session.read_session(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(session.SessionError, match="does not exist"):
        session.read_session(tmp_path / "missing.studio")


def test_a_session_of_another_scene_is_refused_and_nothing_changes(tmp_path):
    a, _ = trained(steps=2)
    meta, state = session.read_session(session.save_session(tmp_path / "run", a, "tiny-cube"))
    a.stop()
    state["params"]["cube.extra"] = torch.zeros(3)
    b = make_engine()
    before = b.params.numpy_values()
    with pytest.raises(ParameterError, match="different scene"):
        session.restore(b, state)
    del state["params"]["cube.extra"]
    state["params"]["cube.albedo"] = torch.zeros(2, 3)
    with pytest.raises(ParameterError, match="shape"):
        session.restore(b, state)
    for name, value in b.params.numpy_values().items():
        np.testing.assert_array_equal(value, before[name])
