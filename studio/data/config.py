"""What a dataset export is asked to do: the run's options (:class:`ExportConfig`) and the scene's
declared randomisation (:class:`ExportSection`, parsed from the scene file's ``[export]`` section).

Scene file format (every key optional; a number instead of ``[lo, hi]`` fixes the value; angles in
degrees, lengths in scene units; anything not declared keeps the scene's own value)::

    [export]
    unlabelled = ["ground"]          # objects without a class that may appear as scenery

    [export.camera]                  # the orbit camera looking at camera.target
    azimuth = [0, 360]
    elevation = [10, 60]
    distance = [4, 7]
    fov = [35, 50]
    target_jitter = 0.3              # target moves uniformly within +-0.3 on each axis

    [export.light]                   # every directional light, independently
    azimuth = [0, 360]               # direction towards the light, same angles as the camera
    elevation = [20, 80]
    intensity = [0.6, 1.4]
    color_jitter = 0.15              # each channel times 1 + U(-0.15, 0.15)
    ambient = [0.05, 0.3]            # grey ambient light

    [export.material]                # every object, independently
    albedo_jitter = 0.2              # each channel times 1 + U(-0.2, 0.2)
    specular = [0.0, 0.6]
    shininess = [8, 96]

    [export.placement]               # every object, independently
    x = [-1.5, 1.5]                  # world position of its centre
    y = 0.0
    z = [-1.5, 1.5]
    yaw = [0, 360]                   # turn about +y, after the object's own rotation
    tilt = [0, 25]                   # then tip over a random horizontal axis
    scale = [0.8, 1.2]               # times the object's own scale
    presence = 0.9                   # probability that the object is in the picture
    separation = 1.0                 # centres at least this times the sum of bounding radii apart

    [export.background]
    kinds = ["solid", "gradient", "noise", "image"]   # one drawn per image
    images = "backgrounds/"          # folder of photos (relative to the scene file), for "image"

    [export.hard_case]               # edge-case search before rendering (see studio.data.hard_case)
    objective = "occlusion"          # a hard-case objective or any registered (plugin) loss
    objective_params = { keep = 0.3 }            # the objective's declared parameters
    params = ["*.position", "camera.azimuth"]   # parameter names or globs the search may move
    fraction = 0.25                  # share of images that are searched (default 1)
    steps = 8                        # Adam steps per searched image (default 8)
    lr_scale = 10.0                  # times each parameter's own learning rate (default 1)
    resolution = 160                 # pixels of the search renders (default 160)
    focus = "random"                 # or an object name: whose visibility the objective judges
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

#: Output tasks and the label line each writes.
TASKS = ("detect", "segment")
BACKGROUND_KINDS = ("solid", "gradient", "noise", "image")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

Range = tuple[float, float]
#: ``progress(done, total)`` after every image this process writes.
ProgressCallback = Callable[[int, int], None]


class DatasetError(ValueError):
    """An export the studio cannot do as asked; the message is one sentence saying what to change."""


@dataclass
class ExportConfig:
    """Options of one export run (the CLI flags; the GUI dialog fills the same fields).

    Attributes:
        scene: built-in scenario name or path of a scene ``.toml``.
        out: output folder (created; must be empty unless ``overwrite``).
        n: total number of images of the dataset (over all shards).
        task: "detect" (boxes) or "segment" (polygons).
        imgsz: image width and height in pixels.
        val_fraction: share of images in the validation split, in [0, 1).
        seed: dataset seed (>= 0); image i is drawn from the generator of (seed, i).
        min_visible_px: objects showing fewer pixels get no label.
        backend, device: renderer choice, as for ``studio render``.
        shard: (I, K): write only the images i with i % K == I (0 <= I < K).
        overwrite: replace an existing dataset in ``out`` (only this shard's files when sharded).
        hard_case: run the scene's ``[export.hard_case]`` search (if it declares one).
        preview: number of images on the contact sheet ``preview.png`` (0: none).
        plugin_dirs: extra plugin folders searched for the hard-case objective.
        resume: keep the complete pairs an earlier (interrupted) run of the same export left in
            ``out`` and render only the missing ones.
    """

    scene: str | Path = "objects"
    out: str | Path = "dataset"
    n: int = 100
    task: str = "detect"
    imgsz: int = 640
    val_fraction: float = 0.2
    seed: int = 0
    min_visible_px: int = 20
    backend: str = "auto"
    device: str | None = None
    shard: tuple[int, int] = (0, 1)
    overwrite: bool = False
    hard_case: bool = True
    preview: int = 16
    plugin_dirs: list[str] = field(default_factory=list)
    resume: bool = False

    @property
    def name_width(self) -> int:
        """Digits of the zero-padded image file names (at least 6)."""
        return max(6, len(str(self.n - 1)))

    def validate(self) -> None:
        """Raise :class:`DatasetError` naming the first unusable option."""
        if not isinstance(self.n, int) or self.n <= 0:
            raise DatasetError(f"the number of images must be a positive integer, got {self.n}.")
        if self.task not in TASKS:
            raise DatasetError(f"task must be one of {', '.join(TASKS)}, got {self.task!r}.")
        if not 32 <= self.imgsz <= 4096:
            raise DatasetError(f"imgsz must be between 32 and 4096 pixels, got {self.imgsz}.")
        if not 0.0 <= self.val_fraction < 1.0:
            raise DatasetError(f"val-fraction must be in [0, 1), got {self.val_fraction}.")
        if self.seed < 0:
            raise DatasetError(f"seed must be 0 or more, got {self.seed}.")
        if self.min_visible_px < 1:
            raise DatasetError(f"min-visible-px must be at least 1, got {self.min_visible_px}.")
        i, k = self.shard
        if not (k >= 1 and 0 <= i < k):
            raise DatasetError(f"shard must be I/K with 0 <= I < K, got {i}/{k}.")
        if self.resume and self.overwrite:
            raise DatasetError("resume keeps the pairs already in the output folder and overwrite deletes them; "
                               "pass only one of them.")
        if self.preview < 0:
            raise DatasetError(f"preview must be 0 or more images, got {self.preview}.")


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/K"`` -> (I, K), e.g. ``"0/4"`` for the first of four shards."""
    try:
        i, k = (int(p) for p in text.split("/"))
    except ValueError:
        raise DatasetError(f"--shard must look like I/K (e.g. 0/4 for the first of four), got {text!r}.") from None
    if not (k >= 1 and 0 <= i < k):
        raise DatasetError(f"--shard I/K needs 0 <= I < K (the first of four is 0/4), got {text!r}.")
    return i, k


@dataclass(frozen=True)
class CameraRanges:
    azimuth: Range | None = None
    elevation: Range | None = None
    distance: Range | None = None
    fov: Range | None = None
    target_jitter: float = 0.0


@dataclass(frozen=True)
class LightRanges:
    azimuth: Range | None = None
    elevation: Range | None = None
    intensity: Range | None = None
    color_jitter: float = 0.0
    ambient: Range | None = None


@dataclass(frozen=True)
class MaterialRanges:
    albedo_jitter: float = 0.0
    specular: Range | None = None
    shininess: Range | None = None


@dataclass(frozen=True)
class PlacementRanges:
    x: Range | None = None
    y: Range | None = None
    z: Range | None = None
    yaw: Range | None = None
    tilt: Range | None = None
    scale: Range | None = None
    presence: float = 1.0
    separation: float = 0.0


@dataclass(frozen=True)
class BackgroundSpec:
    """``kinds`` empty: the scene's own ``[render] background`` colour on every image."""

    kinds: tuple[str, ...] = ()
    images: tuple[Path, ...] = ()


@dataclass(frozen=True)
class HardCaseSpec:
    objective: str
    params: tuple[str, ...]
    objective_params: dict[str, float] = field(default_factory=dict)
    fraction: float = 1.0
    steps: int = 8
    lr_scale: float = 1.0
    resolution: int = 160
    focus: str = "random"


@dataclass(frozen=True)
class ExportSection:
    """The scene file's ``[export]`` section, validated (see the module docstring)."""

    camera: CameraRanges = CameraRanges()
    light: LightRanges = LightRanges()
    material: MaterialRanges = MaterialRanges()
    placement: PlacementRanges = PlacementRanges()
    background: BackgroundSpec = BackgroundSpec()
    hard_case: HardCaseSpec | None = None
    unlabelled: tuple[str, ...] = ()

    @property
    def randomises(self) -> bool:
        """Whether images differ at all (else every image is the scene as its file describes it)."""
        return (self.camera, self.light, self.material, self.placement, self.background) != (
            CameraRanges(), LightRanges(), MaterialRanges(), PlacementRanges(), BackgroundSpec())


class _Reader:
    """Typed access to one TOML table with one-sentence errors naming the file and the table."""

    def __init__(self, data: Any, where: str, source: str):
        if not isinstance(data, dict):
            raise DatasetError(f"{source}: {where} must be a table.")
        self.data, self.where, self.source = data, where, source

    def fail(self, key: str, what: str) -> DatasetError:
        return DatasetError(f"{self.source}: {self.where} {key} must be {what}, got {self.data[key]!r}.")

    def check_keys(self, known: tuple[str, ...]) -> None:
        for key in self.data:
            if key not in known:
                raise DatasetError(f"{self.source}: unknown key {key!r} in {self.where}; known keys are "
                                   f"{', '.join(known)}.")

    def number(self, key: str, default: float, lo: float = -math.inf, hi: float = math.inf) -> float:
        if key not in self.data:
            return default
        v = self.data[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
            raise self.fail(key, f"a number between {lo:g} and {hi:g}")
        return float(v)

    def range(self, key: str, lo: float = -math.inf, hi: float = math.inf) -> Range | None:
        """A number (fixed value) or [lo, hi] (uniform), within [lo, hi]."""
        if key not in self.data:
            return None
        v = self.data[key]
        pair = [v, v] if isinstance(v, (int, float)) and not isinstance(v, bool) else v
        if (not isinstance(pair, list) or len(pair) != 2
                or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in pair)
                or not lo <= pair[0] <= pair[1] <= hi):
            raise self.fail(key, f"a number or [low, high] with {lo:g} <= low <= high <= {hi:g}")
        return float(pair[0]), float(pair[1])

    def strings(self, key: str, allowed: tuple[str, ...] | None = None) -> tuple[str, ...] | None:
        if key not in self.data:
            return None
        v = self.data[key]
        v = [v] if isinstance(v, str) else v
        if not isinstance(v, list) or not all(isinstance(s, str) for s in v) or (
                allowed is not None and not set(v) <= set(allowed)):
            extra = f" among {', '.join(allowed)}" if allowed else ""
            raise self.fail(key, f"a list of names{extra}")
        return tuple(v)

    def table(self, key: str) -> "_Reader":
        return _Reader(self.data.get(key, {}), f"[{self.where.strip('[]')}.{key}]", self.source)


def _ranges(r: _Reader, cls: type, spec: dict[str, tuple[float, float]],
            numbers: dict[str, tuple[float, float, float]]) -> Any:
    """Build ``cls`` from range keys (``spec``: key -> bounds) and number keys (key -> default,
    bounds)."""
    r.check_keys(tuple(spec) + tuple(numbers))
    kwargs: dict[str, Any] = {k: r.range(k, lo, hi) for k, (lo, hi) in spec.items()}
    kwargs.update({k: r.number(k, d, lo, hi) for k, (d, lo, hi) in numbers.items()})
    return cls(**kwargs)


def parse_export_section(data: dict[str, Any], source: str, base_dir: Path) -> ExportSection:
    """Validate a scene file's raw ``[export]`` table.

    Raises:
        DatasetError: unknown keys, values out of range, a background folder without images.
    """
    top = _Reader(data, "[export]", source)
    top.check_keys(("unlabelled", "camera", "light", "material", "placement", "background", "hard_case"))
    camera = _ranges(top.table("camera"), CameraRanges,
                     {"azimuth": (-360, 720), "elevation": (-85, 85), "distance": (0.5, 20), "fov": (10, 120)},
                     {"target_jitter": (0.0, 0.0, 5.0)})
    light = _ranges(top.table("light"), LightRanges,
                    {"azimuth": (-360, 720), "elevation": (-90, 90), "intensity": (0, 10), "ambient": (0, 2)},
                    {"color_jitter": (0.0, 0.0, 1.0)})
    material = _ranges(top.table("material"), MaterialRanges, {"specular": (0, 2), "shininess": (1, 256)},
                       {"albedo_jitter": (0.0, 0.0, 1.0)})
    placement = _ranges(top.table("placement"), PlacementRanges,
                        {"x": (-5, 5), "y": (-5, 5), "z": (-5, 5), "yaw": (-360, 720), "tilt": (0, 180),
                         "scale": (0.05, 5)},
                        {"presence": (1.0, 0.0, 1.0), "separation": (0.0, 0.0, 2.0)})
    return ExportSection(camera, light, material, placement, _background(top.table("background"), base_dir),
                         _hard_case(top.table("hard_case")) if "hard_case" in data else None,
                         top.strings("unlabelled") or ())


def _background(r: _Reader, base_dir: Path) -> BackgroundSpec:
    r.check_keys(("kinds", "images"))
    kinds = r.strings("kinds", BACKGROUND_KINDS)
    folder = r.data.get("images")
    if folder is None:
        if kinds and "image" in kinds:
            raise DatasetError(f"{r.source}: {r.where} kinds has \"image\" but no images folder is given; "
                               "add images = \"FOLDER\".")
        return BackgroundSpec(kinds or ())
    if not isinstance(folder, str):
        raise r.fail("images", "a folder path")
    path = Path(folder) if Path(folder).is_absolute() else base_dir / folder
    files = tuple(sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)) if path.is_dir() else ()
    if not files:
        raise DatasetError(f"{r.source}: {r.where} images folder {path} has no PNG/JPEG/BMP/TIFF/WebP images.")
    kinds = kinds or ("image",)
    if "image" not in kinds:
        raise DatasetError(f"{r.source}: {r.where} gives an images folder but kinds has no \"image\".")
    return BackgroundSpec(kinds, files)


def _hard_case(r: _Reader) -> HardCaseSpec:
    r.check_keys(("objective", "objective_params", "params", "fraction", "steps", "lr_scale", "resolution", "focus"))
    objective = r.data.get("objective")
    params = r.strings("params")
    if not isinstance(objective, str) or not params:
        raise DatasetError(f"{r.source}: {r.where} needs objective = \"NAME\" and params = [\"PATTERN\", ...].")
    extra = r.data.get("objective_params", {})
    if not isinstance(extra, dict) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                              for v in extra.values()):
        raise r.fail("objective_params", "a table of numbers, e.g. { keep = 0.3 }")
    focus = r.data.get("focus", "random")
    if not isinstance(focus, str):
        raise r.fail("focus", "\"random\" or an object name")
    return HardCaseSpec(objective, params, {k: float(v) for k, v in extra.items()},
                        fraction=r.number("fraction", 1.0, 0.0, 1.0), steps=int(r.number("steps", 8, 1, 1000)),
                        lr_scale=r.number("lr_scale", 1.0, 0.0, 1e4),
                        resolution=int(r.number("resolution", 160, 16, 4096)), focus=focus)

