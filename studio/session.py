"""Sessions: a run saved to one file and loaded back (parameters, optimiser state, curves, settings).

A session file (``*.studio``) is a zip archive with two members:

- ``session.json``: what the run is (scene, resolution, backend, when it was saved) and every
  setting and curve as plain JSON (NaN written as null), readable with ``unzip -p FILE session.json``;
- ``tensors.pt``: parameter values, the initial values Reset returns to, the optimiser state and
  the random generator that picks the views of the next steps, written with ``torch.save`` and
  read back with ``torch.load(weights_only=True)``, so opening a session never runs code from it.

Writing goes to a temporary file in the same folder, then ``os.replace``: a crash while saving
leaves the previous file intact, and the next save removes the temporary files such crashes left.  Headless: the GUI and scripts use the same functions, which
talk to the engine only through :meth:`Engine.submit` (the worker thread applies them between steps).
"""

from __future__ import annotations

import glob
import io
import json
import math
import os
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import torch

from .paths import user_path

FORMAT = 1
SUFFIX = ".studio"
_JSON = "session.json"
_TENSORS = "tensors.pt"
_TENSOR_KEYS = ("params", "initial", "optimizer", "generator")
_ORPHAN_S = 60.0  # a temporary file older than this is left over from a save that was killed


class SessionError(ValueError):
    """A session file that cannot be written or used; the message names the file and what to do."""


def capture(engine: Any, timeout: float = 60.0) -> dict[str, Any]:
    """The engine's state (see :meth:`Engine.state_dict`), taken on its worker between steps."""
    return engine.submit(lambda e: e.state_dict()).result(timeout)


def write_session(path: str | Path, state: dict[str, Any], meta: dict[str, Any]) -> Path:
    """Write ``state`` (from :func:`capture`) and ``meta`` (scene, resolution, backend...) atomically.

    Returns the path written (``SUFFIX`` is added when the name has no suffix).

    Raises:
        SessionError: the folder is missing or not writable.
    """
    path = user_path(path)
    if not path.suffix:
        path = path.with_suffix(SUFFIX)
    doc = {"format": FORMAT, "saved": time.strftime("%Y-%m-%dT%H:%M:%S"), **meta,
           "state": {k: v for k, v in state.items() if k not in _TENSOR_KEYS}}
    doc["state"]["history"] = {k: [x if math.isfinite(x) else None for x in v] for k, v in state["history"].items()}
    buf = io.BytesIO()
    torch.save({k: state[k] for k in _TENSOR_KEYS}, buf)
    if not path.parent.is_dir():
        raise SessionError(f"cannot save the session to {path}: the folder {path.parent} does not exist.")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _unwritable(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
                z.writestr(_JSON, json.dumps(doc, indent=1, allow_nan=False))
                z.writestr(_TENSORS, buf.getvalue())
            f.flush()
            os.fsync(f.fileno())  # on disk before it takes the old file's place
        os.replace(tmp, path)
        _remove_orphans(path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _unwritable(path, exc) from None
        raise
    return path


def _remove_orphans(path: Path) -> None:
    """Delete what saves of ``path`` killed halfway left behind (their temporary files); a file
    younger than ``_ORPHAN_S`` may belong to a save still running in another process."""
    now = time.time()
    for f in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        try:
            if now - f.stat().st_mtime > _ORPHAN_S:
                f.unlink()
        except OSError:  # gone already, or not ours to delete: the save itself succeeded
            pass


def _unwritable(path: Path, exc: OSError) -> SessionError:
    return SessionError(f"cannot save the session to {path}: {exc.strerror or exc}; choose another folder.")


def _unreadable(path: Path, what: str) -> SessionError:
    return SessionError(f"{path} is not a readable studio session ({what}); it may be corrupt or another kind of "
                        f"file, so choose a {SUFFIX} file saved by the studio.")


def _curves(path: Path, history: Any) -> dict[str, list[float]]:
    """The JSON curves back as floats (null -> NaN)."""
    if not isinstance(history, dict):
        raise _unreadable(path, "its curves are not a table")
    out = {}
    for k, v in history.items():
        if not isinstance(v, list) or not all(x is None or (isinstance(x, (int, float)) and not isinstance(x, bool))
                                              for x in v):
            raise _unreadable(path, f"its curve {k!r} is not a list of numbers")
        out[k] = [math.nan if x is None else float(x) for x in v]
    return out


def read_session(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(meta, state) of a session file; ``state`` is ready for :meth:`Engine.load_state_dict`
    (which checks every field against its scene).

    Raises:
        SessionError: missing, not a session file, corrupt (damaged zip or compressed data,
            malformed JSON, a tensors file that is not plain tensors), or written by a newer
            studio.  Never another exception type, and the tensors file is read with
            ``weights_only=True``: a pickle in it is refused, never run.
    """
    path = user_path(path)
    if not path.is_file():
        raise SessionError(f"session file {path} does not exist.")
    try:
        with zipfile.ZipFile(path) as z:
            raw_json, raw_tensors = z.read(_JSON), z.read(_TENSORS)
    except KeyError as exc:
        raise _unreadable(path, f"it has no {exc.args[0] if exc.args else 'member'}") from None
    except Exception as exc:  # noqa: BLE001 - zipfile and zlib raise many kinds for damaged data
        raise _unreadable(path, f"damaged archive: {type(exc).__name__}") from None
    try:
        doc = json.loads(raw_json)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        raise _unreadable(path, f"{_JSON} is not valid JSON") from None
    try:
        tensors = torch.load(io.BytesIO(raw_tensors), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - its text may advise weights_only=False, which we never do
        raise _unreadable(path, f"{_TENSORS} holds something other than plain tensors ({type(exc).__name__})") from None
    if not isinstance(doc, dict) or not isinstance(tensors, dict) or not isinstance(doc.get("state"), dict):
        raise SessionError(f"{path} is not a studio session; choose a {SUFFIX} file saved by the studio.")
    fmt = doc.get("format", 0)
    if isinstance(fmt, bool) or not isinstance(fmt, int):
        raise _unreadable(path, f"its format is {fmt!r}, not a number")
    if fmt > FORMAT:
        raise SessionError(f"{path} was saved by a newer studio (format {fmt}); update the studio to open it.")
    state = dict(doc.pop("state"))
    missing = [k for k in _TENSOR_KEYS if k not in tensors] + \
        [k for k in ("step", "skipped_steps", "lr", "group_enabled", "frozen", "losses", "view", "history")
         if k not in state]
    if missing:
        raise SessionError(f"{path} is incomplete (no {', '.join(missing)}); it may be corrupt.")
    state["history"] = _curves(path, state["history"])
    for key in ("params", "initial"):
        if not isinstance(tensors[key], dict) or not all(isinstance(v, torch.Tensor) for v in tensors[key].values()):
            raise _unreadable(path, f"its {key} are not tensors")
    if tensors["generator"] is not None and not isinstance(tensors["generator"], torch.Tensor):
        raise _unreadable(path, "its random generator state is not a tensor")
    state.update({k: tensors[k] for k in _TENSOR_KEYS})
    return doc, state


def restore(engine: Any, state: dict[str, Any], timeout: float = 60.0) -> None:
    """Load ``state`` into the engine on its worker (paused afterwards), all or nothing; re-raises
    its one-sentence ParameterError / LossError when the session does not fit the engine's scene
    (the engine's run is then unchanged)."""
    engine.submit(lambda e: e.load_state_dict(state)).result(timeout)


def scene_meta(engine: Any, scene_ref: str) -> dict[str, Any]:
    """What a session records about its scene so that it can be reopened: ``scene_ref`` (built-in
    name or .toml path), name, resolution, backend and device."""
    scene = engine.scene
    return {"scene": scene_ref, "scene_name": scene.spec.name, "resolution": list(scene.resolution),
            "backend": scene.backend.name, "device": str(scene.backend.device)}


def save_session(path: str | Path, engine: Any, scene_ref: str, timeout: float = 60.0) -> Path:
    """Capture the engine's run and write it to ``path`` (blocking; call it off the GUI thread)."""
    return write_session(path, capture(engine, timeout), scene_meta(engine, scene_ref))


def load_session(path: str | Path, engine: Any, timeout: float = 60.0) -> dict[str, Any]:
    """Read ``path`` and restore it into ``engine``; returns the session's meta."""
    meta, state = read_session(path)
    restore(engine, state, timeout)
    return meta
