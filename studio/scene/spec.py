"""Scene files: TOML in, a validated :class:`SceneSpec` out, or one sentence saying what is wrong.

A scene file describes the ground-truth scene (objects, camera rig, lights, render settings), which
of its quantities are free for the optimiser and how they start (``[[param]]``), the losses, and
the default budget.  Paths inside a file (meshes, images) are relative to the file.
See ``assets/scenes/*.toml`` for complete examples; the format is documented in the README.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

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
    roughness: float = 0.5  # shading = "pbr": GGX perceptual roughness in [0, 1]
    metallic: float = 0.0  # shading = "pbr": 0 dielectric, 1 metal
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
    """An orbit camera (degrees, scene units) and the rig of target views as offsets from it."""

    fov: float = 45.0
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


def _build(cls, data: dict, where: str, source: str):
    """Instantiate a spec dataclass, rejecting unknown keys with the list of known ones."""
    known = {f.name for f in fields(cls)}
    renamed = {"class": "class_name"}
    kwargs = {}
    for key, value in data.items():
        name = renamed.get(key, key)
        if name not in known:
            allowed = ", ".join(sorted(renamed.get(k, k) if k != "class_name" else "class" for k in known))
            raise SceneError(f"{source}: unknown key {key!r} in {where}; known keys are {allowed}.")
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:
        missing = str(exc).split("argument")[-1].strip(": ")
        raise SceneError(f"{source}: {where} is missing {missing}.") from None


def parse_scene(text: str, source: str = "<memory>", base_dir: Path | None = None) -> SceneSpec:
    """Parse TOML scene text into a :class:`SceneSpec`.

    Raises:
        SceneError: TOML syntax errors (with line and column), unknown keys, wrong types.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SceneError(f"{source}: TOML syntax error: {exc}.") from None
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise SceneError(f"{source}: unknown top-level key {sorted(unknown)[0]!r}; known keys are {', '.join(sorted(_TOP_KEYS))}.")
    if "name" not in data:
        raise SceneError(f"{source}: the scene needs a name (name = \"...\").")

    render = dict(data.get("render", {}))
    optimize = dict(data.get("optimize", {}))
    lights = dict(data.get("lights", {}))
    spec = SceneSpec(name=str(data["name"]), description=str(data.get("description", "")),
                     lesson=str(data.get("lesson", "")), kind=str(data.get("kind", "mesh")),
                     base_dir=base_dir or Path.cwd(), source=source)
    for key, value in render.items():
        if key == "resolution":
            spec.resolution = (int(value), int(value)) if isinstance(value, int) else (int(value[0]), int(value[1]))
        elif key in ("shading", "background", "antialias"):
            setattr(spec, key, value)
        else:
            raise SceneError(f"{source}: unknown key {key!r} in [render]; known keys are antialias, background, resolution, shading.")
    for key, value in optimize.items():
        if key == "lr":
            if not isinstance(value, dict) or set(value) - set(GROUPS):
                raise SceneError(f"{source}: [optimize] lr must be a table with keys among {', '.join(GROUPS)}.")
            spec.group_lr = {k: float(v) for k, v in value.items()}
        elif key in ("steps", "views_per_step", "seed", "restarts"):
            setattr(spec, key, int(value))
        elif key == "lr_decay":
            spec.lr_decay = float(value)
        else:
            raise SceneError(f"{source}: unknown key {key!r} in [optimize]; known keys are lr, lr_decay, restarts, "
                             "seed, steps, views_per_step.")
    for key, value in lights.items():
        if key == "ambient":
            spec.ambient = list(value)
        elif key == "directional":
            spec.lights = [_build(LightSpec, d, f"[[lights.directional]] #{i + 1}", source) for i, d in enumerate(value)]
        elif key in ("sh", "envmap"):
            setattr(spec, key, value)
        else:
            raise SceneError(f"{source}: unknown key {key!r} in [lights]; known keys are ambient, directional, envmap, sh.")
    spec.camera = _build(CameraSpec, data.get("camera", {}), "[camera]", source)
    spec.objects = [_build(ObjectSpec, o, f"[[object]] #{i + 1}", source) for i, o in enumerate(data.get("object", []))]
    spec.primitives = [_build(PrimitiveSpec, p, f"[[primitive]] #{i + 1}", source)
                       for i, p in enumerate(data.get("primitive", []))]
    spec.params = [_build(FreeParamSpec, p, f"[[param]] #{i + 1}", source) for i, p in enumerate(data.get("param", []))]
    if "loss" in data:
        spec.losses = []
        for i, entry in enumerate(data["loss"]):
            entry = dict(entry)
            if "name" not in entry:
                raise SceneError(f"{source}: [[loss]] #{i + 1} needs a name.")
            name = str(entry.pop("name"))
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
