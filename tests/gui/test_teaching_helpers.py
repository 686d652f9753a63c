"""The GUI's teaching and export helpers that need no window: which switches a scene gets, the
settings Compare starts from, which scenes can be exported, dashed curves and job progress."""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("dearpygui.dearpygui")

from studio.gui.compare_window import compare_words, lesson_switch  # noqa: E402
from studio.gui.export_dialog import exportable_scenarios, labelled  # noqa: E402
from studio.gui.jobs import Progress  # noqa: E402
from studio.gui.plots import DASH_MIN_POINTS, dash  # noqa: E402
from studio.gui.teaching_switches import switches_for  # noqa: E402
from studio.scenarios import load_spec  # noqa: E402
from studio.workspace import build_scene  # noqa: E402


@pytest.mark.parametrize("name, switches, lesson, words", [
    ("camera", ("visibility", "soft"), "visibility", ("none", "antialias")),
    ("texture", ("visibility", "soft", "mip"), "mip", ("off", "on")),
    ("pose", ("visibility", "soft", "restarts"), "restarts", ("0", "64")),
    ("sdf", ("sdf_alpha",), "sdf_alpha", ("200", "anneal")),  # fixed at the scene's final sharpness vs annealed
])
def test_each_scene_gets_the_switches_of_its_lesson(name, switches, lesson, words):
    scene = build_scene(load_spec(name), "torch", "cpu")
    assert switches_for(scene) == switches
    assert lesson_switch(list(switches)) == lesson
    assert compare_words(lesson, scene, {"restarts": 0}) == words


def test_visibility_compares_none_against_the_scenes_own_gradient():
    assert compare_words("visibility", None, {"visibility": "edge"}) == ("none", "edge")
    assert compare_words("visibility", None, {"visibility": "soft"}) == ("none", "antialias")


def test_soft_compares_the_current_sigma_against_the_hard_silhouette():
    assert compare_words("soft", None, {"soft_sigma": 2.5}) == ("off", "2.5")
    assert compare_words("soft", None, {}) == ("off", "1")


def test_only_scenes_whose_objects_all_have_classes_can_be_exported():
    names = exportable_scenarios()
    assert "objects" in names and "camera" in names
    assert "sdf" not in names and not labelled(load_spec("sdf-shadow"))


def test_dashes_leave_gaps_and_short_curves_stay_solid():
    y = [float(i) for i in range(20)]
    dashed = dash(y)
    gaps = [v != v for v in dashed]  # NaN
    assert gaps[:5] == [False, False, False, True, True] and sum(gaps) == 8
    assert dash(y[:DASH_MIN_POINTS - 1]) == y[:DASH_MIN_POINTS - 1]


def test_progress_is_written_by_a_job_and_read_by_the_window():
    progress = Progress()
    assert progress.fraction == 0.0
    worker = threading.Thread(target=lambda: progress.report(3, 4, "3/4 images"))
    worker.start()
    worker.join()
    assert progress.latest == (3, 4, "3/4 images") and progress.fraction == 0.75
    assert not progress.cancel.is_set()


def test_shadow_scenes_get_the_shadow_switch_and_compare_hard_against_soft():
    scene = build_scene(load_spec("mesh-shadow"), "torch", "cpu")
    switches = switches_for(scene)
    assert switches == ("visibility", "soft", "shadows")
    assert lesson_switch(list(switches)) == "shadows"
    assert compare_words("shadows", scene, dict(scene.options)) == ("hard", "soft")
