"""Scene files: TOML in, a validated :class:`SceneSpec` out, or one sentence saying what is wrong.

A scene file describes the ground-truth scene (objects, camera rig, lights, render settings), which
of its quantities are free for the optimiser and how they start (``[[param]]``), the losses, and
the default budget.  Paths inside a file (meshes, images) are relative to the file.
See ``assets/scenes/*.toml`` for complete examples; the format is documented in the README.
"""

from __future__ import annotations

import math
import re
import sys
import types
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from ..render.raster_pass import VISIBILITY_MODES
from .params import GROUPS


class SceneError(ValueError):
    """A scene file or scene argument the studio cannot use; the message is one sentence."""


SHADING = ("unlit", "lambert", "phong", "pbr")


@dataclass
class ObjectSpec:
    """One mesh object.  ``albedo`` is [r,g,b], "vertex" (mesh colours, or random if it has none)
    or "texture:NAME[:SIZE]" (a procedural texture); ``mesh`` is "procedural:NAME[:ARG]" or a file."""

    name: str
    mesh: str
    target_mesh: str | None = None
    class_name: str | None = None
    position: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    rotation: list[float] = field(default_factory=lambda: [1.0, 0.0, 0.0, 0.0])
    scale: float = 1.0
    albedo: Any = field(default_factory=lambda: [0.7, 0.7, 0.7])
    specular: float = 0.0
    shininess: float = 32.0
    roughness: Any = 0.5  # shading = "pbr": GGX perceptual roughness in [0, 1], or "texture:NAME[:SIZE]"
    metallic: Any = 0.0  # shading = "pbr": 0 dielectric, 1 metal, or "texture:NAME[:SIZE]"
    normalize: bool = True


@dataclass
class PrimitiveSpec:
    """One SDF primitive (for ``kind = "sdf"`` scenes); ``params`` are its shape parameters."""

    name: str
    type: str
    params: dict[str, Any] = field(default_factory=dict)
    op: str = "union"
    smoothness: float = 0.0
    color: list[float] = field(default_factory=lambda: [0.7, 0.7, 0.7])
    class_name: str | None = None


@dataclass
class LightSpec:
    name: str
    direction: list[float]
    color: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0])
    intensity: float = 1.0
    penumbra: float = 2.0  # angular radius in degrees: the width of mesh shadows' penumbra ([shadows])


@dataclass
class CameraSpec:
    """An orbit camera (degrees, scene units) and the rig of target views as offsets from it.
    ``fov`` spans the picture's height (``fov_axis = "y"``, the default) or its width ("x")."""

    fov: float = 45.0
    fov_axis: str = "y"
    azimuth: float = 0.0
    elevation: float = 20.0
    distance: float = 3.0
    target: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    views: Any = None  # None = one view; int N = N views spread over the sphere; [[daz, del], ...]


@dataclass
class FreeParamSpec:
    """A quantity the optimiser may change: its start (``init`` value, "random", or ``perturb``
    noise of that standard deviation around the truth) and optional lr / bounds / metric."""

    path: str
    init: Any = None
    perturb: float | None = None
    along: str | None = None  # "normal": smooth dents along the vertex normals (for vertices)
    lr: float | None = None
    lower: float | None = None
    upper: float | None = None
    metric: str | None = None


@dataclass
class LossSpec:
    name: str
    weight: float = 1.0
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class SceneSpec:
    name: str
    description: str = ""
    lesson: str = ""
    kind: str = "mesh"
    resolution: tuple[int, int] = (128, 128)
    shading: str = "lambert"
    background: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    antialias: bool = True
    visibility: str | None = None  # antialias | edge | soft | none; None: from ``antialias``
    steps: int = 300
    views_per_step: int = 1
    seed: int = 0
    restarts: int = 0
    lr_decay: float = 1.0
    group_lr: dict[str, float] = field(default_factory=dict)
    objects: list[ObjectSpec] = field(default_factory=list)
    primitives: list[PrimitiveSpec] = field(default_factory=list)
    ambient: list[float] = field(default_factory=lambda: [0.15, 0.15, 0.15])
    lights: list[LightSpec] = field(default_factory=list)
    sh: Any = None
    envmap: Any = None
    camera: CameraSpec = field(default_factory=CameraSpec)
    params: list[FreeParamSpec] = field(default_factory=list)
    losses: list[LossSpec] = field(default_factory=lambda: [LossSpec("l2")])
    extra: dict[str, Any] = field(default_factory=dict)
    base_dir: Path = field(default_factory=Path.cwd)
    source: str = "<memory>"


_TOP_KEYS = {"name", "description", "lesson", "kind", "render", "optimize", "camera", "object", "primitive",
             "lights", "param", "loss", "export", "sdf", "teaching", "shadows"}
_TABLES = {"render", "optimize", "camera", "lights", "export", "sdf", "teaching", "shadows"}
_ARRAYS = {"object", "primitive", "param", "loss"}
# Vectors with a fixed number of components: (spec class, field) -> length.
_LENGTHS = {("ObjectSpec", "position"): 3, ("ObjectSpec", "rotation"): 4, ("ObjectSpec", "albedo"): 3,
            ("PrimitiveSpec", "color"): 3, ("LightSpec", "direction"): 3, ("LightSpec", "color"): 3,
            ("CameraSpec", "target"): 3}


class _Lines:
    """Where each key of the TOML text is ("line 12" in messages): (table, entry, key) -> line,
    with ``entry`` counting the ``[[table]]`` entries from 0."""

    _HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?")
    _KEY = re.compile(r"^\s*(?:\"([^\"]+)\"|([A-Za-z0-9_-]+))\s*=")

    def __init__(self, text: str):
        self.lines: dict[tuple[str, int, str], int] = {}
        table, entry, counts = "", 0, {}
        for number, line in enumerate(text.splitlines(), 1):
            header = self._HEADER.match(line)
            if header:
                table = header.group(2)
                if header.group(1) == "[[":
                    counts[table] = counts.get(table, -1) + 1
                entry = counts.get(table, 0) if header.group(1) == "[[" else 0
                self.lines.setdefault((table, entry, ""), number)
                continue
            key = self._KEY.match(line)
            if key:
                self.lines.setdefault((table, entry, key.group(1) or key.group(2)), number)

    def at(self, table: str, key: str, entry: int = 0) -> str:
        """" line N" of ``key`` in ``table`` (its header's line for a key written elsewhere), or ""."""
        n = self.lines.get((table, entry, key)) or self.lines.get((table, entry, ""))
        return f" line {n}" if n else ""


def _kind(tp: Any) -> str:
    """A type hint in words, for messages."""
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_kind(a) for a in args if a is not type(None))
    if origin is list:
        return f"a list of {_kind(args[0]).removeprefix('a ').removeprefix('an ')}s" if args else "a list"
    if origin is dict:
        return "a table"
    if origin is tuple:
        return "a pair of whole numbers"
    return {float: "a number", int: "a whole number", bool: "true or false", str: "a string"}.get(tp, "a value")


def _conforms(value: Any, tp: Any) -> bool:
    origin, args = get_origin(tp), get_args(tp)
    if tp is Any:
        return True
    if origin in (Union, types.UnionType):
        return any(_conforms(value, a) for a in args)
    if tp is type(None):
        return value is None
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is list:
        return isinstance(value, list) and all(_conforms(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(_conforms(v, args[1]) for v in value.values())
    if origin is tuple:
        return False  # written as a number or a list in files; checked where it is read
    return isinstance(value, tp)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check(value: Any, tp: Any, source: str, where: str, key: str, line: str) -> Any:
    """``value`` if it is of type ``tp``, else one sentence naming the key and its line."""
    if not _conforms(value, tp):
        raise SceneError(f"{source}{line}: {key} in {where} must be {_kind(tp)}, got {_shown(value)}.")
    return value


def _build(cls, data: Any, where: str, source: str, lines: _Lines, table: str, entry: int = 0):
    """Instantiate a spec dataclass, rejecting unknown keys (with the list of known ones) and values
    of the wrong type (with the key and its line)."""
    if not isinstance(data, dict):
        raise SceneError(f"{source}{lines.at(table, '', entry)}: {where} must be a table of keys, got {_shown(data)}.")
    known = {f.name for f in fields(cls)}
    hints = get_type_hints(cls)
    renamed = {"class": "class_name"}
    kwargs = {}
    for key, value in data.items():
        name = renamed.get(key, key)
        line = lines.at(table, key, entry)
        if name not in known:
            allowed = ", ".join(sorted(renamed.get(k, k) if k != "class_name" else "class" for k in known))
            raise SceneError(f"{source}{line}: unknown key {key!r} in {where}; known keys are {allowed}.")
        _check(value, hints[name], source, where, key, line)
        length = _LENGTHS.get((cls.__name__, name))
        if length is not None and isinstance(value, list) and len(value) != length:
            raise SceneError(f"{source}{line}: {key} in {where} must have {length} numbers, got {len(value)}.")
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:
        missing = str(exc).split("argument")[-1].strip(": ")
        raise SceneError(f"{source}{lines.at(table, '', entry)}: {where} is missing {missing}.") from None


def _camera(data: Any, source: str, lines: _Lines) -> CameraSpec:
    """[camera] with its ranges: 0 < fov < 180 degrees, distance > 0, at least one view."""
    cam = _build(CameraSpec, data, "[camera]", source, lines, "camera")
    if not 0 < cam.fov < 180:
        raise SceneError(f"{source}{lines.at('camera', 'fov')}: fov in [camera] is the vertical field of view in "
                         f"degrees and must be between 0 and 180 (exclusive), got {cam.fov:g}.")
    if not cam.distance > 0:
        raise SceneError(f"{source}{lines.at('camera', 'distance')}: distance in [camera] must be above 0 scene "
                         f"units (the camera cannot sit on its target), got {cam.distance:g}.")
    v, line = cam.views, lines.at("camera", "views")
    if isinstance(v, bool) or (v is not None and not isinstance(v, (int, list))):
        raise SceneError(f"{source}{line}: views in [camera] must be a number of views or a list of [azimuth, "
                         f"elevation] offsets, got {_shown(v)}.")
    if isinstance(v, int) and v < 1:
        raise SceneError(f"{source}{line}: views in [camera] must be at least 1, got {v}.")
    if isinstance(v, list) and (not v or not all(_conforms(o, list[float]) and len(o) == 2 for o in v)):
        raise SceneError(f"{source}{line}: views in [camera] must list at least one [azimuth, elevation] pair of "
                         f"numbers, got {_shown(v)}.")
    return cam


def parse_scene(text: str, source: str = "<memory>", base_dir: Path | None = None) -> SceneSpec:
    """Parse TOML scene text into a :class:`SceneSpec`.

    Raises:
        SceneError: TOML syntax errors (with line and column), unknown keys, values of the wrong
            type or out of range (with the key and its line).
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SceneError(f"{source}: TOML syntax error: {exc}.") from None
    lines = _Lines(text)
    unknown = set(data) - _TOP_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise SceneError(f"{source}{lines.at('', key)}: unknown top-level key {key!r}; known keys are "
                         f"{', '.join(sorted(_TOP_KEYS))}.")
    if "name" not in data:
        raise SceneError(f"{source}: the scene needs a name (name = \"...\").")
    for key in ("name", "description", "lesson", "kind"):
        if key in data:
            _check(data[key], str, source, "the scene", key, lines.at("", key))
    for key in _TABLES & set(data):
        if not isinstance(data[key], dict):
            raise SceneError(f"{source}{lines.at('', key)}: {key} must be a table ([{key}]), got {_shown(data[key])}.")
    for key in _ARRAYS & set(data):
        if not isinstance(data[key], list):
            raise SceneError(f"{source}{lines.at('', key)}: {key} must be written as [[{key}]] tables, got "
                             f"{_shown(data[key])}.")

    render = dict(data.get("render", {}))
    optimize = dict(data.get("optimize", {}))
    lights = dict(data.get("lights", {}))
    spec = SceneSpec(name=data["name"], description=data.get("description", ""), lesson=data.get("lesson", ""),
                     kind=data.get("kind", "mesh"), base_dir=base_dir or Path.cwd(), source=source)
    for key, value in render.items():
        line = lines.at("render", key)
        if key == "resolution":
            if _conforms(value, int):
                spec.resolution = (value, value)
            elif _conforms(value, list[int]) and len(value) == 2:
                spec.resolution = (value[0], value[1])
            else:
                raise SceneError(f"{source}{line}: resolution in [render] must be a whole number of pixels or "
                                 f"[height, width], got {_shown(value)}.")
        elif key in ("shading", "background", "antialias"):
            setattr(spec, key, _check(value, get_type_hints(SceneSpec)[key], source, "[render]", key, line))
        elif key == "visibility":
            if value not in VISIBILITY_MODES:
                raise SceneError(f"{source}{line}: [render] visibility must be one of {', '.join(VISIBILITY_MODES)}, "
                                 f"got {_shown(value)}.")
            spec.visibility = value
        else:
            raise SceneError(f"{source}{line}: unknown key {key!r} in [render]; known keys are antialias, background, "
                             "resolution, shading, visibility.")
    for key, value in optimize.items():
        line = lines.at("optimize", key)
        if key == "lr":
            if not isinstance(value, dict) or set(value) - set(GROUPS):
                raise SceneError(f"{source}{line}: [optimize] lr must be a table with keys among {', '.join(GROUPS)}.")
            spec.group_lr = {k: float(_check(v, float, source, "[optimize] lr", k, line)) for k, v in value.items()}
        elif key in ("steps", "views_per_step", "seed", "restarts"):
            setattr(spec, key, _check(value, int, source, "[optimize]", key, line))
        elif key == "lr_decay":
            spec.lr_decay = float(_check(value, float, source, "[optimize]", key, line))
        else:
            raise SceneError(f"{source}{line}: unknown key {key!r} in [optimize]; known keys are lr, lr_decay, "
                             "restarts, seed, steps, views_per_step.")
    for key, value in lights.items():
        line = lines.at("lights", key)
        if key == "ambient":
            spec.ambient = list(_check(value, list[float], source, "[lights]", key, line))
        elif key == "directional":
            _check(value, list, source, "[lights]", key, line)
            spec.lights = [_build(LightSpec, d, f"[[lights.directional]] #{i + 1}", source, lines, "lights.directional",
                                  i) for i, d in enumerate(value)]
        elif key in ("sh", "envmap"):
            setattr(spec, key, value)
        else:
            raise SceneError(f"{source}{line}: unknown key {key!r} in [lights]; known keys are ambient, directional, "
                             "envmap, sh.")
    spec.camera = _camera(data.get("camera", {}), source, lines)
    spec.objects = [_build(ObjectSpec, o, f"[[object]] #{i + 1}", source, lines, "object", i)
                    for i, o in enumerate(data.get("object", []))]
    spec.primitives = [_build(PrimitiveSpec, p, f"[[primitive]] #{i + 1}", source, lines, "primitive", i)
                       for i, p in enumerate(data.get("primitive", []))]
    spec.params = [_build(FreeParamSpec, p, f"[[param]] #{i + 1}", source, lines, "param", i)
                   for i, p in enumerate(data.get("param", []))]
    if "loss" in data:
        spec.losses = []
        for i, entry in enumerate(data["loss"]):
            where = f"[[loss]] #{i + 1}"
            if not isinstance(entry, dict) or "name" not in entry:
                raise SceneError(f"{source}{lines.at('loss', '', i)}: {where} needs a name.")
            entry = dict(entry)
            name = _check(entry.pop("name"), str, source, where, "name", lines.at("loss", "name", i))
            for key, value in entry.items():
                if not _conforms(value, float):
                    what = "weight" if key == "weight" else f"parameter {key!r}"
                    raise SceneError(f"{source}{lines.at('loss', key, i)}: {what} of loss {name!r} must be a finite "
                                     f"number, got {_shown(value)}.")
            weight = float(entry.pop("weight", 1.0))
            spec.losses.append(LossSpec(name, weight, entry))
    spec.extra = {k: data[k] for k in ("export", "sdf", "teaching", "shadows") if k in data}
    _validate(spec)
    return spec


def _validate(spec: SceneSpec) -> None:
    src = spec.source
    if spec.kind not in ("mesh", "sdf"):
        raise SceneError(f"{src}: kind must be \"mesh\" or \"sdf\", got {spec.kind!r}.")
    if spec.shading not in SHADING:
        raise SceneError(f"{src}: [render] shading must be one of {', '.join(SHADING)}, got {spec.shading!r}.")
    h, w = spec.resolution
    if not (8 <= h <= 4096 and 8 <= w <= 4096):
        raise SceneError(f"{src}: [render] resolution must be between 8 and 4096 pixels, got {h}x{w}.")
    if spec.camera.fov_axis not in ("x", "y"):
        raise SceneError(f"{src}: [camera] fov_axis must be \"y\" (fov spans the height) or \"x\" (the width), "
                         f"got {spec.camera.fov_axis!r}.")
    if spec.steps < 0 or spec.views_per_step < 1:
        raise SceneError(f"{src}: [optimize] needs steps >= 0 and views_per_step >= 1.")
    if not 0 < spec.lr_decay <= 1:
        raise SceneError(f"{src}: [optimize] lr_decay must be in (0, 1], got {spec.lr_decay}.")
    if spec.kind == "mesh" and not spec.objects:
        raise SceneError(f"{src}: a mesh scene needs at least one [[object]] with a mesh.")
    if spec.kind == "sdf" and not spec.primitives:
        raise SceneError(f"{src}: an SDF scene needs at least one [[primitive]].")
    names = [o.name for o in spec.objects] + [p.name for p in spec.primitives]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise SceneError(f"{src}: object name {sorted(dupes)[0]!r} is used twice; names must be unique.")
    for p in spec.params:
        if p.init is not None and p.perturb is not None:
            raise SceneError(f"{src}: [[param]] {p.path} has both init and perturb; give one.")
        if p.along not in (None, "normal") or (p.along and not p.path.endswith(".vertices")):
            raise SceneError(f"{src}: [[param]] {p.path}: along = \"normal\" is the only option, for vertices.")


def load_scene_file(path: str | Path) -> SceneSpec:
    """Read and parse a scene file.

    Raises:
        SceneError: the file is missing or unreadable, or its content is invalid.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SceneError(f"scene file {path} does not exist; `studio scenes` lists the built-in scenes.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SceneError(f"scene file {path} cannot be read ({exc.__class__.__name__}); check that it is a UTF-8 TOML file.") from None
    return parse_scene(text, source=str(path), base_dir=path.parent)
