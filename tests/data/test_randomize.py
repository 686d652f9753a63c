"""Per-image randomisation (studio.data.randomize) and the [export] section (studio.data.config)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from studio.data.config import DatasetError, parse_export_section, parse_shard
from studio.data.randomize import SceneInfo, plan_image, split_of

SECTION = {
    "camera": {"azimuth": [0, 360], "elevation": [10, 60], "distance": [4, 6], "fov": 40, "target_jitter": 0.2},
    "light": {"azimuth": [0, 360], "elevation": [20, 80], "intensity": [0.5, 1.5], "color_jitter": 0.1,
              "ambient": [0.1, 0.3]},
    "material": {"albedo_jitter": 0.2, "specular": [0, 0.5], "shininess": [8, 64]},
    "placement": {"x": [-1, 1], "y": 0.0, "z": [-1, 1], "yaw": [0, 360], "tilt": [0, 20], "scale": [0.8, 1.2],
                  "presence": 0.5, "separation": 1.0},
    "background": {"kinds": ["solid", "gradient", "noise"]},
}


def info() -> SceneInfo:
    base = {"camera.target": np.zeros(3), "light.sun.direction": np.array([0.0, 1.0, 0.0]),
            "light.sun.color": np.ones(3), "light.sun.intensity": np.ones(1), "light.ambient": np.full(3, 0.2)}
    for k in ("camera.azimuth", "camera.elevation", "camera.distance", "camera.fov"):
        base[k] = np.zeros(1)
    for name in ("a", "b", "c"):
        base.update({f"{name}.position": np.zeros(3), f"{name}.rotation": np.array([1.0, 0, 0, 0]),
                     f"{name}.scale": np.full(1, 0.5), f"{name}.specular": np.zeros(1),
                     f"{name}.shininess": np.full(1, 32.0)})
    return SceneInfo(["a", "b", "c"], ["sun"], base, [1.0, 1.0, 1.0])


def section():
    return parse_export_section(SECTION, "test.toml", Path("."))


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.2, 0.25, 1 / 3])
def test_split_is_exact_and_even_for_every_prefix(fraction):
    splits = [split_of(i, fraction) for i in range(300)]
    for n in (1, 7, 50, 300):
        assert splits[:n].count("val") == int(n * fraction + 1e-9)


def test_plan_is_a_pure_function_of_seed_and_index():
    s, inf = section(), info()
    a, b = plan_image(s, inf, 7, 12, 0.2), plan_image(s, inf, 7, 12, 0.2)
    assert a.values.keys() == b.values.keys()
    assert all(np.array_equal(a.values[k], b.values[k]) for k in a.values)
    assert a.background.kind == b.background.kind and np.array_equal(a.background.colors, b.background.colors)
    other = plan_image(s, inf, 7, 13, 0.2)
    assert not np.array_equal(a.values["camera.azimuth"], other.values["camera.azimuth"])
    assert not np.array_equal(a.values["camera.azimuth"], plan_image(s, inf, 8, 12, 0.2).values["camera.azimuth"])


def test_plans_respect_the_declared_ranges():
    s, inf = section(), info()
    for i in range(40):
        p = plan_image(s, inf, 0, i, 0.2)
        assert 0 <= p.values["camera.azimuth"][0] <= 360 and 4 <= p.values["camera.distance"][0] <= 6
        assert p.values["camera.fov"][0] == 40
        d = p.values["light.sun.direction"]
        assert np.isclose(np.linalg.norm(d), 1, atol=1e-6) and np.degrees(np.arcsin(d[1])) >= 20 - 1e-4
        for name in "abc":
            q = p.values[f"{name}.rotation"]
            assert np.isclose(np.linalg.norm(q), 1, atol=1e-6)
            scale = p.values[f"{name}.scale"][0]
            assert (scale == 0) == (name in p.absent)
            assert scale == 0 or 0.4 - 1e-6 <= scale <= 0.6 + 1e-6
            assert p.values[f"{name}.position"][1] == 0.0
        assert p.background.kind in ("solid", "gradient", "noise")
    assert any(plan_image(s, inf, 0, i, 0.2).absent for i in range(40))  # presence 0.5


def test_separation_keeps_present_objects_apart_when_possible():
    s, inf = section(), info()
    for i in range(20):
        p = plan_image(s, inf, 0, i, 0.0)
        present = [n for n in "abc" if n not in p.absent]
        for j, m in enumerate(present):
            for n in present[j + 1:]:
                gap = np.linalg.norm(p.values[f"{m}.position"] - p.values[f"{n}.position"])
                need = p.values[f"{m}.scale"][0] + p.values[f"{n}.scale"][0]
                assert gap >= need - 1e-5


@pytest.mark.parametrize("bad, words", [
    ({"camera": {"azimut": [0, 1]}}, "unknown key 'azimut' in [export.camera]"),
    ({"camera": {"distance": [5, 2]}}, "[export.camera] distance must be"),
    ({"placement": {"presence": 1.5}}, "presence must be a number between 0 and 1"),
    ({"background": {"kinds": ["plasma"]}}, "kinds must be a list of names among"),
    ({"background": {"kinds": ["image"]}}, "no images folder"),
    ({"hard_case": {"objective": "occlusion"}}, "needs objective"),
    ({"colour": 1}, "unknown key 'colour' in [export]"),
])
def test_bad_export_sections_are_one_sentence(bad, words):
    with pytest.raises(DatasetError) as exc:
        parse_export_section(bad, "scene.toml", Path("."))
    msg = str(exc.value)
    assert words in msg and msg.startswith("scene.toml: ") and msg.count("\n") == 0


def test_background_folder_must_hold_images(tmp_path):
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(DatasetError, match="has no PNG"):
        parse_export_section({"background": {"images": str(tmp_path)}}, "s.toml", Path("."))


def test_shard_syntax():
    assert parse_shard("1/4") == (1, 4)
    for bad in ("4/4", "1", "a/b", "-1/2"):
        with pytest.raises(DatasetError, match="I/K"):
            parse_shard(bad)
