"""Built-in teaching scenarios: TOML scene files shipped in ``assets/scenes``.

``studio scenes`` lists them; any command that takes a SCENE accepts a built-in name or a path to
a scene file of your own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..paths import user_path
from ..scene.spec import SceneError, SceneSpec, load_scene_file

ASSETS_DIR = Path(__file__).resolve().parents[2] / "assets"
SCENES_DIR = ASSETS_DIR / "scenes"
DEFAULT_SCENARIO = "joint"


@dataclass(frozen=True)
class ScenarioInfo:
    name: str
    description: str
    path: Path


def list_scenarios() -> list[ScenarioInfo]:
    """Every built-in scenario with its one-line description, in a stable teaching order."""
    order = ["cube", "pose", "texture", "lighting", "camera", "deform", "joint", "sdf", "sdf-shadow", "mesh-shadow", "materials", "objects"]
    infos = []
    for path in sorted(SCENES_DIR.glob("*.toml")):
        spec = load_scene_file(path)
        infos.append(ScenarioInfo(spec.name, spec.description, path))
    return sorted(infos, key=lambda i: (order.index(i.name) if i.name in order else len(order), i.name))


def scenario_path(name_or_path: str | Path) -> Path:
    """The scene file for a built-in name or a path.

    Raises:
        SceneError: neither a built-in scenario nor an existing file (with the list of names).
    """
    p = user_path(name_or_path)
    if p.suffix == ".toml" or p.is_file():
        if not p.exists():
            raise SceneError(f"scene file {p} does not exist.")
        return p
    builtin = SCENES_DIR / f"{name_or_path}.toml"
    if builtin.exists():
        return builtin
    names = ", ".join(i.name for i in list_scenarios())
    raise SceneError(f"unknown scenario {str(name_or_path)!r}; built-in scenarios are {names} (or give a .toml path).")


def load_spec(name_or_path: str | Path) -> SceneSpec:
    """Parse a built-in scenario or a scene file."""
    return load_scene_file(scenario_path(name_or_path))
