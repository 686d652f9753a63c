"""Plugin losses: discovery (--plugins, STUDIO_PLUGINS, entry points), isolation of broken plugins,
hot reload, the CLI, and the example plugins shipped in plugins/."""

from __future__ import annotations

import json
import logging
import os
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.cli import EXIT_BAD_INPUT, main
from studio.optim.engine import Engine, EngineConfig, Targets
from studio.optim.losses import REGISTRY, LossContext
from studio.optim.plugins import ENV_VAR, MANAGER, PROJECT_PLUGINS, PluginManager, discover_plugins, reload_plugins
from studio.render import get_backend
from studio.scene.mesh import MeshTopology, laplacian_smoothness
from studio.scene.scene import Scene
from studio.scene.spec import parse_scene

from .test_engine import run_to_end

# The README's example, verbatim.
RED_ONLY = '''
from studio.plugins import loss, Param

@loss(name="red_only", weight=1.0, description="L2 on the red channel only",
      params={"power": Param(2.0, min=1.0, max=4.0)})
def red_only(render, target, ctx):
    return ((render[..., 0] - target[..., 0]).abs() ** ctx.params["power"]).mean()
'''

# One unlit cube whose uniform colour is fitted: fast, and each channel's fate is easy to read.
ALBEDO_CUBE = """
name = "albedo-cube"
[render]
resolution = 16
shading = "unlit"
[optimize]
steps = 60
lr = { material = 0.05 }
lr_decay = 0.1
[camera]
distance = 3.6
[[object]]
name = "cube"
mesh = "procedural:cube"
albedo = [0.8, 0.3, 0.5]
[[param]]
path = "cube.albedo"
init = [0.2, 0.6, 0.1]
"""
TRUTH, INIT = [0.8, 0.3, 0.5], [0.2, 0.6, 0.1]


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def line_of(path: Path, marker: str) -> int:
    """1-based line of the first line of ``path`` containing ``marker``."""
    return next(i for i, text in enumerate(path.read_text().splitlines(), 1) if marker in text)


def make_engine(losses, steps: int = 10) -> Engine:
    spec = parse_scene(ALBEDO_CUBE)
    scene = Scene(spec, get_backend("torch", "cpu"))
    gt = scene.render_targets()
    return Engine(scene, Targets(gt.rgb, gt.alpha), list(losses),
                  EngineConfig(steps=steps, group_lr=spec.group_lr, lr_decay=spec.lr_decay))


@pytest.fixture(autouse=True)
def _no_outside_plugins(monkeypatch):
    """Tests see only the plugins they write, and leave the global manager as they found it."""
    monkeypatch.delenv(ENV_VAR, raising=False)
    yield
    MANAGER.unload()


@pytest.fixture
def manager():
    m = PluginManager(project_dir=None)
    yield m
    m.unload()


# ---------------------------------------------------------------------- discovery and use


def test_a_plugin_from_plugins_dir_fits_only_the_red_channel(tmp_path, capsys):
    plugins = tmp_path / "plugins"
    write(plugins, "red.py", RED_ONLY)
    broken = write(plugins, "broken.py", "import torch\n\ndef broken(:\n    pass\n")
    scene = write(tmp_path, "scene.toml", ALBEDO_CUBE + '[[loss]]\nname = "red_only"\nweight = 0.5\npower = 2.5\n')
    out = tmp_path / "out"
    rc = main(["optimize", str(scene), "--plugins", str(plugins), "--backend", "torch", "--device", "cpu",
               "--out", str(out), "--no-video"])
    err = capsys.readouterr().err
    assert rc == 0, err
    # The broken neighbour is reported in one sentence and does not stop the run.
    assert f"plugin file {broken.resolve()} line 3 failed to import (SyntaxError: invalid syntax)" in err
    albedo = json.loads((out / "params.json").read_text())["cube.albedo"]
    assert abs(albedo[0] - TRUTH[0]) < 0.03, albedo  # red converges to the truth...
    assert albedo[1:] == pytest.approx(INIT[1:], abs=1e-6), albedo  # ...green and blue never move
    assert REGISTRY.get("red_only").params["power"].max == 4.0


def test_loss_on_the_command_line_replaces_the_scenes_losses(tmp_path, capsys):
    write(tmp_path / "plugins", "red.py", RED_ONLY)
    scene = write(tmp_path, "scene.toml", ALBEDO_CUBE + '[[loss]]\nname = "red_only"\n')
    rc = main(["optimize", str(scene), "--plugins", str(tmp_path / "plugins"), "--loss", "l2=1", "--steps", "20",
               "--backend", "torch", "--device", "cpu", "--out", str(tmp_path / "out"), "--no-video"])
    assert rc == 0, capsys.readouterr().err
    albedo = json.loads((tmp_path / "out" / "params.json").read_text())["cube.albedo"]
    assert albedo[1] != pytest.approx(INIT[1], abs=1e-3) and albedo[2] != pytest.approx(INIT[2], abs=1e-3)


def test_an_installed_entry_point_is_discovered(tmp_path, monkeypatch, manager):
    site = tmp_path / "site"
    write(site, "studio_ep_demo.py", '''
        from studio.plugins import loss

        @loss("green_only", description="L2 on the green channel")
        def green_only(render, target, ctx):
            return (render[..., 1] - target[..., 1]).square().mean()

        def blue_only(render, target, ctx):
            """L2 on the blue channel (a plain function: the entry point's name becomes the loss's)."""
            return (render[..., 2] - target[..., 2]).square().mean()
    ''')
    write(site / "studio_ep_demo-0.1.dist-info", "METADATA", "Metadata-Version: 2.1\nName: studio-ep-demo\nVersion: 0.1\n")
    write(site / "studio_ep_demo-0.1.dist-info", "entry_points.txt",
          "[studio.losses]\ngreens = studio_ep_demo\nblue = studio_ep_demo:blue_only\n")
    monkeypatch.syspath_prepend(str(site))
    try:
        assert manager.discover() == []
        green, blue = REGISTRY.get("green_only"), REGISTRY.get("blue")
        assert "entry point greens" in manager.source_of(green) and "studio_ep_demo.py" in manager.source_of(green)
        assert blue.description.startswith("L2 on the blue channel")
        e = make_engine([("green_only", 1.0, {})], steps=60)
        run_to_end(e, 60)
        e.stop()
        albedo = e.params["cube.albedo"].value.detach().tolist()
        assert abs(albedo[1] - TRUTH[1]) < 0.03 and albedo[0] == pytest.approx(INIT[0]) and albedo[2] == pytest.approx(INIT[2])
    finally:
        manager.unload()
        sys.modules.pop("studio_ep_demo", None)
    assert "green_only" not in REGISTRY and "blue" not in REGISTRY


def test_studio_plugins_environment_variable(tmp_path, monkeypatch, manager):
    write(tmp_path / "a", "one.py", RED_ONLY)
    write(tmp_path / "b", "two.py", RED_ONLY.replace("red_only", "red_again"))
    missing = tmp_path / "missing"
    monkeypatch.setenv(ENV_VAR, os.pathsep.join([str(tmp_path / "a"), str(missing), str(tmp_path / "b")]))
    problems = manager.discover()
    assert "red_only" in REGISTRY and "red_again" in REGISTRY
    assert problems == [f"plugin folder {missing} (from {ENV_VAR}) does not exist or is not a folder of .py files; "
                        f"fix {ENV_VAR} or create it, then reload plugins."]


def test_discovery_is_idempotent_and_skips_helpers(tmp_path, manager):
    write(tmp_path, "red.py", RED_ONLY)
    write(tmp_path, "_helper.py", "raise RuntimeError('helpers are not plugins')\n")
    assert manager.discover([tmp_path]) == []
    first = REGISTRY.get("red_only")
    module = sys.modules[first.fn.__module__]
    assert manager.discover([tmp_path]) == [] and manager.discover() == []
    assert REGISTRY.get("red_only") is first and sys.modules[first.fn.__module__] is module
    assert manager.dirs == [tmp_path.resolve()]


def test_builtins_are_protected_unless_overridden_deliberately(tmp_path, manager, caplog):
    path = write(tmp_path, "mine.py", '''
        from studio.plugins import loss

        @loss("l2")
        def my_l2(render, target, ctx):
            return render.sum()
    ''')
    builtin = REGISTRY.get("l2")
    problems = manager.discover([tmp_path])
    assert problems == [f"loss 'l2' in {path.resolve()} line 4 has the name of a built-in loss; rename it, or pass "
                        f"override=True to @loss to replace the built-in deliberately, then reload plugins."]
    assert REGISTRY.get("l2") is builtin
    path.write_text(path.read_text().replace('@loss("l2")', '@loss("l2", override=True)'))
    with caplog.at_level(logging.WARNING, logger="studio.plugins"):
        assert manager.reload() == []
    assert REGISTRY.get("l2").fn.__name__ == "my_l2" and not REGISTRY.get("l2").builtin
    assert "replaces the built-in one" in caplog.text
    manager.unload()
    assert REGISTRY.get("l2") is builtin


def test_two_files_defining_one_name_keep_the_first(tmp_path, manager):
    first = write(tmp_path, "a.py", RED_ONLY)
    second = write(tmp_path, "b.py", RED_ONLY)
    problems = manager.discover([tmp_path])
    assert problems == [f"loss 'red_only' in {second.resolve()} line 4 is already defined by {first.resolve()}; "
                        f"rename one of them, then reload plugins."]
    assert REGISTRY.get("red_only").source == str(first.resolve())


# ---------------------------------------------------------------------- isolation


@pytest.mark.parametrize("body, line_marker, error", [
    ("import torch\n\ndef oops(:\n    pass\n", "def oops", "SyntaxError: invalid syntax"),
    ("import torch\n\nSCALE = 1 / 0\n", "SCALE", "ZeroDivisionError: division by zero"),
    ("import torch\nimport no_such_package_xyz\n", "no_such", "ModuleNotFoundError: No module named 'no_such_package_xyz'"),
    ('from studio.plugins import loss, Param\n\n@loss("p", params={"k": Param(9.0, min=0.0, max=1.0)})\n'
     'def p(render, target, ctx):\n    return render.mean()\n', "Param(9.0", "LossError: Param default 9.0 must lie"),
], ids=["syntax", "raises", "missing-module", "bad-param"])
def test_a_plugin_that_fails_to_import_is_reported_and_the_others_load(tmp_path, manager, body, line_marker, error):
    write(tmp_path, "good.py", RED_ONLY)
    bad = write(tmp_path, "bad.py", body)
    problems = manager.discover([tmp_path])
    assert len(problems) == 1, problems
    sentence = problems[0]
    assert sentence.startswith(f"plugin file {bad.resolve()} line {line_of(bad, line_marker)} failed to import ({error}")
    assert sentence.endswith("then reload plugins.") and "\n" not in sentence
    assert "Traceback" in sentence.details
    if error.startswith("ModuleNotFoundError"):
        assert "install the package that provides 'no_such_package_xyz'" in sentence
    assert "red_only" in REGISTRY and "p" not in REGISTRY


def test_each_failure_during_a_step_disables_that_plugin_and_the_run_goes_on(tmp_path, manager):
    bad = write(tmp_path, "bad.py", '''
        import numpy as np
        import torch
        from studio.plugins import loss

        @loss("bad_nonscalar")
        def bad_nonscalar(render, target, ctx):
            return (render - target).abs()

        @loss("bad_detached")
        def bad_detached(render, target, ctx):
            return torch.tensor(float(np.abs(render.detach().numpy()).mean()))

        @loss("bad_nan")
        def bad_nan(render, target, ctx):
            return render.mean() * float("nan")

        @loss("bad_raises")
        def bad_raises(render, target, ctx):
            return render.mean() + ctx.params["no_such_param"]
    ''')
    assert manager.discover([tmp_path]) == []
    names = ["bad_nonscalar", "bad_detached", "bad_nan", "bad_raises"]
    e = make_engine([("l2", 1.0, {})] + [(n, 1.0, {}) for n in names], steps=5)
    snap = run_to_end(e, 5)
    e.stop()
    assert snap.step == 5 and snap.skipped_steps == 0
    assert {n: on for n, _, on, _ in snap.losses} == {"l2": True, **{n: False for n in names}}
    assert e.params["cube.albedo"].value.detach().tolist() != pytest.approx(INIT)  # l2 went on fitting
    expected = {  # the definition's line, or for a raise the line that raised
        "bad_nonscalar": ('@loss("bad_nonscalar")', "returned a tensor of shape [1, 16, 16, 4], not a scalar"),
        "bad_detached": ('@loss("bad_detached")', "returned a tensor with no gradient path"),
        "bad_nan": ('@loss("bad_nan")', "returned NaN or Inf"),
        "bad_raises": ("no_such_param", "raised KeyError: 'no_such_param'"),
    }
    for name, (marker, what) in expected.items():
        hits = [ev for ev in snap.events if f"loss plugin {name!r} (bad.py:{line_of(bad, marker)}) {what}" in ev]
        assert len(hits) == 1, (name, snap.events)
        sentence = hits[0].splitlines()[0]
        assert "was disabled; the run continues with l2" in sentence and sentence.endswith(".")
    assert "Traceback" in next(ev for ev in snap.events if ev.startswith("loss plugin 'bad_raises'"))


# ---------------------------------------------------------------------- hot reload


def test_reload_picks_up_edits_renames_new_and_removed_files_without_losing_the_run(tmp_path, manager):
    a = write(tmp_path, "a.py", '''
        from studio.plugins import loss

        @loss("knob")
        def knob(render, target, ctx):
            return (render[..., :3] * 0).mean() + 1.0

        @loss("extra")
        def extra(render, target, ctx):
            return (render[..., :3] - target[..., :3]).abs().mean()
    ''')
    write(tmp_path, "keep.py", RED_ONLY)
    assert manager.discover([tmp_path]) == []
    kept = REGISTRY.get("red_only")
    e = make_engine([("l2", 1.0, {}), ("knob", 1.0, {}), ("extra", 0.5, {}), ("red_only", 1.0, {})], steps=100)
    e.set_loss_weight("knob", 2.0)
    e.set_loss_enabled("red_only", False)  # the user's choice, which a reload must respect
    snap = run_to_end(e, 3)
    assert snap.loss_terms["knob"] == pytest.approx(1.0)
    albedo = e.params["cube.albedo"].value.detach().clone()

    a.write_text(a.read_text().replace("+ 1.0", "+ 7.0").replace('"extra"', '"extra_renamed"'))
    write(tmp_path, "fresh.py", RED_ONLY.replace("red_only", "fresh"))
    e.reload_losses(manager.reload)
    snap = e.wait_snapshot(snap.stamp, predicate=lambda s: "extra" not in [n for n, *_ in s.losses], timeout=10)
    assert snap is not None and snap.step == 3  # the run is kept...
    assert torch.equal(e.params["cube.albedo"].value.detach(), albedo)  # ...and so are its parameters
    assert [(n, w, on) for n, w, on, _ in snap.losses] == [("l2", 1.0, True), ("knob", 2.0, True), ("red_only", 1.0, False)]
    assert any("'extra' is no longer registered" in ev for ev in snap.events)
    assert {"extra_renamed", "fresh"} <= set(REGISTRY.names()) and "extra" not in REGISTRY
    assert REGISTRY.get("red_only") is kept  # an unchanged file is not re-imported
    snap = run_to_end(e, 5)
    e.stop()
    assert snap.loss_terms["knob"] == pytest.approx(7.0) and snap.step == 5

    (tmp_path / "fresh.py").unlink()
    assert manager.reload() == [] and "fresh" not in REGISTRY


def test_a_broken_edit_keeps_the_last_good_version_until_fixed(tmp_path, manager):
    path = write(tmp_path, "knob.py", '''
        from studio.plugins import loss

        @loss("knob")
        def knob(render, target, ctx):
            return (render[..., :3] * 0).mean() + 1.0
    ''')
    assert manager.discover([tmp_path]) == []
    good = REGISTRY.get("knob")
    path.write_text(path.read_text().replace("+ 1.0", "+ (2.0"))
    problems = manager.reload()
    assert len(problems) == 1 and f"plugin file {path.resolve()} line 6 failed to import (SyntaxError" in problems[0]
    assert "until then 'knob' keeps the previously loaded version" in problems[0]
    assert REGISTRY.get("knob") is good
    assert manager.reload() == problems  # still broken: still said, not re-imported
    path.write_text(path.read_text().replace("+ (2.0", "+ 2.0"))
    assert manager.reload() == []
    assert REGISTRY.get("knob") is not good


def test_a_plugin_disabled_by_a_failure_is_retried_after_its_file_is_fixed(tmp_path, manager):
    path = write(tmp_path, "flaky.py", '''
        from studio.plugins import loss

        @loss("flaky")
        def flaky(render, target, ctx):
            return render[..., :3].mean() * float("nan")
    ''')
    manager.discover([tmp_path])
    e = make_engine([("l2", 1.0, {}), ("flaky", 1.0, {})], steps=100)
    snap = run_to_end(e, 2)
    assert dict((n, on) for n, _, on, _ in snap.losses)["flaky"] is False
    e.reload_losses(manager.reload)  # unchanged file: stays off
    snap = e.wait_snapshot(snap.stamp, timeout=10)
    assert dict((n, on) for n, _, on, _ in snap.losses)["flaky"] is False
    path.write_text(path.read_text().replace(' * float("nan")', ""))
    e.reload_losses(manager.reload)
    snap = e.wait_snapshot(snap.stamp, predicate=lambda s: dict((n, on) for n, _, on, _ in s.losses)["flaky"], timeout=10)
    assert snap is not None
    snap = run_to_end(e, 4)
    e.stop()
    assert np.isfinite(snap.loss_terms["flaky"])


def test_the_module_level_reload_plugins_uses_the_remembered_folders(tmp_path):
    path = write(tmp_path, "red.py", RED_ONLY)
    assert discover_plugins([tmp_path]) == []
    assert REGISTRY.get("red_only").weight == 1.0
    path.write_text(RED_ONLY.replace("weight=1.0", "weight=0.25"))
    problems = reload_plugins()
    assert problems == [] and isinstance(problems, list)
    assert REGISTRY.get("red_only").weight == 0.25


# ---------------------------------------------------------------------- the command line


def test_studio_losses_lists_builtins_and_plugins(tmp_path, capsys):
    path = write(tmp_path, "red.py", RED_ONLY)
    assert main(["losses", "--plugins", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"red_only  (weight 1)  {path.resolve()}:4\n    L2 on the red channel only\n    param power = 2 in [1, 4]\n" in out
    assert "l2  (weight 1)  built-in\n" in out and "mask_iou  (weight 1)  built-in\n" in out
    assert "ssim  (weight 1)" in out  # the shipped examples


@pytest.mark.parametrize("args, scene_losses, message", [
    (["--loss", "nope=1"], "", "studio: unknown loss 'nope'; the available losses are "),
    (["--loss", "broken_loss=1"], "", "perhaps the cause: plugin file "),
    ([], '[[loss]]\nname = "huber"\ndelta = "big"\n', "parameter 'delta' of loss 'huber' must be a finite number"),
    (["--plugins", "/no/such/folder"], "", "studio: --plugins /no/such/folder does not exist; give a folder"),
])
def test_bad_losses_and_plugin_folders_end_with_one_sentence_and_exit_2(tmp_path, capsys, args, scene_losses, message):
    write(tmp_path / "plugins", "broken.py", "raise RuntimeError('broken on purpose')\n")
    scene = write(tmp_path, "scene.toml", ALBEDO_CUBE + scene_losses)
    argv = ["optimize", str(scene), "--plugins", str(tmp_path / "plugins"), "--out", str(tmp_path / "out"), *args]
    assert main(argv) == EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("studio: ") and message in err[-1] and "Traceback" not in "\n".join(err)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("weight", ["abc", "nan", ""])
def test_a_malformed_loss_option_is_a_usage_error(capsys, weight):
    with pytest.raises(SystemExit) as exit_info:
        main(["optimize", "cube", "--out", "x", "--loss", f"l1={weight}" if weight else "=1"])
    assert exit_info.value.code == EXIT_BAD_INPUT
    assert "--loss must look like NAME=WEIGHT with a finite weight" in capsys.readouterr().err


# ---------------------------------------------------------------------- the shipped examples


EXAMPLES = ["ssim", "image_gradient", "cot_laplacian", "silhouette_dice", "delta_e"]


@pytest.fixture
def examples():
    m = PluginManager(project_dir=PROJECT_PLUGINS)
    assert m.discover() == []
    yield {n: REGISTRY.get(n) for n in EXAMPLES}
    m.unload()


def fake_ctx(params, mask=None, alpha=None, meshes=()):
    class FakeScene:
        def fitted_meshes(self):
            return list(meshes)
    ones = torch.ones(1, 8, 8, 1)
    return LossContext(params=params, mask=ones if mask is None else mask, render_alpha=ones if alpha is None else alpha,
                       parameters=None, scene=FakeScene(), gbuffer=None, iteration=0, device=torch.device("cpu"))


def test_every_example_runs_in_an_optimisation_of_geometry_and_colour(examples):
    from tests.optim.test_engine import make_engine as make_cube_engine

    e = make_cube_engine(losses=[(n, d.weight, {}) for n, d in examples.items()], steps=4)
    snap = run_to_end(e, 4)
    e.stop()
    assert snap.step == 4 and snap.message is None, snap.message
    assert all(on for _, _, on, _ in snap.losses)
    assert set(snap.loss_terms) == set(EXAMPLES) and all(np.isfinite(v) for v in snap.loss_terms.values())


def test_ssim_matches_an_independent_reference(examples):
    ssim = examples["ssim"].fn.__globals__["ssim"]
    rng = np.random.default_rng(0)
    x = rng.random((3, 24, 30))
    y = np.clip(x + 0.2 * rng.standard_normal(x.shape), 0, 1)
    g = np.exp(-0.5 * (np.arange(-5, 6) / 1.5) ** 2)  # scikit-image's window: sigma 1.5, cut at 3.5 sigma
    g /= g.sum()

    def blur(a):  # numpy, one pixel at a time along each axis, borders dropped ('valid')
        a = np.apply_along_axis(lambda r: np.convolve(r, g, mode="valid"), 2, a)
        return np.apply_along_axis(lambda c: np.convolve(c, g, mode="valid"), 1, a)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx ** 2, blur(y * y) - my ** 2, blur(x * y) - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    expected = (((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))).mean()
    got = ssim(torch.from_numpy(x)[None], torch.from_numpy(y)[None])
    assert float(got) == pytest.approx(expected, abs=1e-6)
    assert float(ssim(torch.from_numpy(x)[None], torch.from_numpy(x)[None])) == pytest.approx(1.0)


def test_delta_e_matches_published_values(examples):
    g = examples["delta_e"].fn.__globals__
    lab = g["linear_rgb_to_lab"](torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]], dtype=torch.float64))
    assert lab.tolist() == [pytest.approx([100.0, 0.0, 0.0], abs=1e-3), pytest.approx([53.2408, 80.0925, 67.2032], abs=1e-3)]
    # Sharma, Wu & Dalal's first test pair; its CIE94 (graphic arts) difference is 1.3950.
    de = g["delta_e94"](torch.tensor([50.0, 2.6772, -79.7751], dtype=torch.float64),
                        torch.tensor([50.0, 0.0, -82.7485], dtype=torch.float64))
    assert float(de) == pytest.approx(1.3950, abs=1e-4)


def test_image_gradient_ignores_a_brightness_offset_that_l1_sees(examples):
    target = torch.rand(1, 16, 16, 4)
    render = target + torch.tensor([0.1, 0.1, 0.1, 0.0])
    ctx = fake_ctx({"levels": 3.0})
    assert float(examples["image_gradient"].fn(render, target, ctx)) == pytest.approx(0.0, abs=1e-6)
    assert float(REGISTRY.get("l1").fn(render, target, ctx)) == pytest.approx(0.1)
    assert float(examples["image_gradient"].fn(target.flip(1), target, ctx)) > 0.05


def test_cotangent_laplacian_is_zero_on_a_flat_irregular_mesh_unlike_the_uniform_one(examples):
    n = 6
    u, v = torch.meshgrid(torch.linspace(0, 1, n), torch.linspace(0, 1, n), indexing="ij")
    u = u + 0.05 * torch.sin(7 * v) * (u > 0) * (u < 1)  # irregular spacing inside the plane z = 0
    flat = torch.stack([u, v, torch.zeros_like(u)], -1).reshape(-1, 3)
    idx = torch.arange(n * n).reshape(n, n)
    a, b, c, d = idx[:-1, :-1].reshape(-1), idx[1:, :-1].reshape(-1), idx[:-1, 1:].reshape(-1), idx[1:, 1:].reshape(-1)
    faces = torch.cat([torch.stack([a, b, d], 1), torch.stack([a, d, c], 1)])
    topo = MeshTopology.from_faces(faces, n * n)
    interior = idx[1:-1, 1:-1].reshape(-1)
    lv, _ = examples["cot_laplacian"].fn.__globals__["cotangent_laplacian"](flat, faces)
    assert lv[interior].abs().max() < 1e-5  # flat: no bending, however the triangles lie
    assert float(topo.laplacian(flat)[interior].norm(dim=-1).max()) > 1e-2  # the uniform one still pulls
    bumpy = flat.clone()
    bumpy[interior, 2] = 0.1 * torch.rand(len(interior))
    bumpy.requires_grad_(True)
    value = examples["cot_laplacian"].fn(torch.zeros(1), None, fake_ctx({}, meshes=[(bumpy, topo)]))
    value.backward()
    assert float(value.detach()) > 0 and bumpy.grad[interior].abs().sum() > 0
    assert laplacian_smoothness(flat, topo) > 0


def test_silhouette_dice_forgives_errors_within_the_tolerance_band(examples):
    mask = torch.zeros(1, 24, 24, 1)
    mask[:, 6:18, 6:18] = 1
    shifted = mask.roll(1, dims=2)  # the render's silhouette is one pixel off
    render = torch.zeros(1, 24, 24, 4)
    dice = examples["silhouette_dice"].fn
    assert float(dice(render, render, fake_ctx({"tolerance": 2.0}, mask=mask, alpha=shifted))) == pytest.approx(0.0, abs=1e-6)
    assert float(dice(render, render, fake_ctx({"tolerance": 0.0}, mask=mask, alpha=shifted))) > 0.05
    half = mask.clone()
    half[:, 6:12] = 0  # a whole missing half still costs, band or not
    assert float(dice(render, render, fake_ctx({"tolerance": 2.0}, mask=mask, alpha=half))) > 0.2
