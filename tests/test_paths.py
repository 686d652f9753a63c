"""Absolute, ``~`` and relative paths work in every dialog and command-line option (studio.paths)."""

from __future__ import annotations

from pathlib import Path

import pytest
import trimesh

from studio.cli import main
from studio.paths import user_path

SCENE = """
name = "file-ball"
[render]
resolution = 16
shading = "unlit"
[optimize]
steps = 2
[[object]]
name = "ball"
mesh = "{mesh}"
[[param]]
path = "ball.albedo"
init = [0.5, 0.5, 0.5]
"""


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fake home folder, and a working directory elsewhere."""
    home = tmp_path / "home"
    (home / "meshes").mkdir(parents=True)
    trimesh.creation.icosphere(subdivisions=1).export(home / "meshes" / "ball.obj")
    monkeypatch.setenv("HOME", str(home))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return home


def test_user_path_expands_home_and_joins_relative_paths(home):
    assert user_path("~/meshes/ball.obj") == home / "meshes" / "ball.obj"
    assert user_path("out/a.png") == Path.cwd() / "out" / "a.png"
    assert user_path("a.png", base="~/meshes") == home / "meshes" / "a.png"
    assert user_path(str(home / "x" / ".." / "meshes")) == home / "meshes"


@pytest.mark.parametrize("style", ["absolute", "home", "relative"])
def test_cli_scene_mesh_and_out_paths_in_every_style(home, capsys, style):
    mesh = {"absolute": str(home / "meshes" / "ball.obj"), "home": "~/meshes/ball.obj",
            "relative": "../home/meshes/ball.obj"}[style]
    scene = Path("scene.toml")
    # A relative mesh path inside a scene file is relative to the file, not to the working folder.
    scene.write_text(SCENE.format(mesh=mesh if style != "relative" else "../home/meshes/ball.obj"))
    scene_arg = {"absolute": str(scene.resolve()), "home": str(scene.resolve()), "relative": "scene.toml"}[style]
    out = {"absolute": str(Path.cwd() / "r1"), "home": "~/runs/r1", "relative": "runs/r1"}[style]
    code = main(["render", scene_arg, "--backend", "torch", "--device", "cpu", "--out", out + ".png"])
    assert code == 0, capsys.readouterr().err
    assert user_path(out + ".png").is_file()
    code = main(["optimize", scene_arg, "--backend", "torch", "--device", "cpu", "--out", out, "--no-video",
                 "--target", out + ".png"])
    assert code == 0, capsys.readouterr().err
    assert (user_path(out) / "summary.json").is_file()


def test_a_missing_file_names_the_absolute_path_tried(home, capsys):
    code = main(["optimize", "cube", "--target", "~/nope.png", "--out", "~/r", "--backend", "torch",
                 "--device", "cpu", "--steps", "1"])
    err = capsys.readouterr().err
    assert code == 2 and str(home / "nope.png") in err, err


def test_dialog_paths_typed_absolute_home_or_relative():
    pytest.importorskip("dearpygui")
    from studio.gui.dialogs import chosen_path

    shown = "/data/project"
    # Dear PyGui joins whatever was typed to the folder it shows.
    typed = lambda name: {"file_name": name, "current_path": shown, "file_path_name": f"{shown}/{name}",
                          "selections": {name: f"{shown}/{name}"}}
    assert chosen_path(typed("/tmp/x/torus.obj")) == Path("/tmp/x/torus.obj")
    assert chosen_path(typed("~/torus.obj")) == Path.home() / "torus.obj"
    assert chosen_path(typed("sub/torus.obj")) == Path(shown) / "sub" / "torus.obj"
    assert chosen_path(typed("session.*"), typed_only=True) == Path(shown) / "session"
    clicked = {"file_name": "", "current_path": shown, "file_path_name": shown + "/",
               "selections": {"a.obj": f"{shown}/a.obj"}}
    assert chosen_path(clicked) == Path(shown) / "a.obj"
    assert chosen_path({"file_name": "", "current_path": shown, "selections": {}}) is None
