"""The visibility render option: scene files, the aliases antialias / soft_sigma, CLI and compare."""

from __future__ import annotations

import pytest

from studio.cli import _render_options, build_parser
from studio.optim.compare import SWITCHES, CompareError, compare_runs
from studio.scene.render_options import RenderOptions
from studio.scene.spec import SceneError, parse_scene


SCENE = 'name = "x"\n[[object]]\nname = "o"\nmesh = "procedural:cube"\n'


def test_the_scene_file_chooses_the_visibility_gradient():
    assert parse_scene(SCENE + '[render]\nvisibility = "edge"\n').visibility == "edge"
    assert parse_scene(SCENE).visibility is None
    with pytest.raises(SceneError, match="visibility must be one of antialias, edge, soft, none"):
        parse_scene(SCENE + '[render]\nvisibility = "fast"\n')


def test_antialias_and_soft_sigma_are_aliases_onto_visibility():
    o = RenderOptions("edge")
    assert (o["visibility"], o["antialias"], o["soft_sigma"]) == ("edge", False, None)
    o["soft_sigma"] = 2.0
    assert (o["visibility"], o["soft_sigma"]) == ("soft", 2.0)
    o["soft_sigma"] = None  # back to the mode used before soft rasterization
    assert (o["visibility"], o["soft_sigma"]) == ("edge", None)
    o.update({"antialias": False, "filter_mode": "linear"})
    assert (o["visibility"], o["antialias"], o["filter_mode"]) == ("none", False, "linear")
    o["antialias"] = True
    assert (o["visibility"], o["antialias"]) == ("antialias", True)
    with pytest.raises(SceneError, match="visibility must be one of"):
        o["visibility"] = "fast"
    with pytest.raises(SceneError, match="soft_sigma must be a number"):
        o["soft_sigma"] = "wide"


def test_the_command_line_option_wins_over_its_aliases():
    args = build_parser().parse_args(["optimize", "camera", "--out", "x", "--antialias", "off", "--visibility", "edge"])
    o = RenderOptions("antialias", **_render_options(args))
    assert o["visibility"] == "edge"
    args = build_parser().parse_args(["optimize", "camera", "--out", "x", "--soft", "1.5"])
    assert RenderOptions("edge", **_render_options(args))["visibility"] == "soft"
    assert build_parser().parse_args(["gui", "camera", "--visibility", "none"]).visibility == "none"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["optimize", "camera", "--out", "x", "--visibility", "fast"])


def test_compare_takes_two_visibility_modes():
    assert SWITCHES["visibility"]("Edge") == "edge"
    with pytest.raises(CompareError, match="visibility cannot be set to 'fast'"):
        compare_runs("camera", "visibility", ("antialias", "fast"), steps=0)
