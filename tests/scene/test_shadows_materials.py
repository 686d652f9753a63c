"""Mesh scenes with shadows and PBR materials: the G-buffer's shadow field, the targets' mode,
the [shadows] section's errors, the PBR parameters and their metric, and the CLI switch."""

from __future__ import annotations

import pytest
import torch

from studio.cli import main
from studio.optim.compare import CompareError, compare_runs
from studio.scenarios import load_spec
from studio.scene.spec import SceneError, parse_scene
from studio.workspace import build_scene

SMALL = """
name = "tiny"
[render]
resolution = 32
shading = "{shading}"
{shadows}
[lights]
ambient = [0.1, 0.1, 0.1]
[[lights.directional]]
name = "sun"
direction = [0.3, 1.0, 0.2]
penumbra = 4.0
[[object]]
name = "ground"
mesh = "procedural:ground:2"
normalize = false
position = [0.0, -0.5, 0.0]
[[object]]
name = "ball"
mesh = "procedural:icosphere:2"
scale = 0.4
roughness = 0.3
metallic = 1.0
"""


def _scene(shading: str = "lambert", section: str = '[shadows]\nmode = "soft"\nresolution = 64', **options):
    return build_scene(parse_scene(SMALL.format(shading=shading, shadows=section)), "torch", "cpu", **options)


def test_soft_shadows_fill_the_gbuffer_and_darken_the_ground_under_the_ball():
    scene = _scene()
    lit = scene.render()
    assert lit.gbuffer.shadow is not None and lit.gbuffer.shadow.shape == (1, 32, 32, 1)
    shadow = lit.gbuffer.shadow[0, ..., 0]
    ground = lit.gbuffer.object_id[0] == 0
    assert shadow[ground].min() < 0.2 and shadow[ground].max() > 0.99
    scene.options["shadows"] = "off"
    unshadowed = scene.render()
    assert unshadowed.gbuffer.shadow is None
    assert (unshadowed.rgb - lit.rgb).min() >= -1e-5 and (unshadowed.rgb - lit.rgb).max() > 0.1


def test_the_fit_follows_the_switch_but_the_targets_keep_the_scene_files_mode():
    scene = _scene(shadows="hard")
    gt = scene.render(target=True)
    hard = scene.render()
    assert gt.gbuffer.shadow is not None and not gt.gbuffer.shadow.requires_grad
    assert set(hard.gbuffer.shadow.unique().tolist()) <= {0.0, 1.0}
    assert {"shadow.bias", "light.sun.penumbra"} <= set(scene.params.names())
    assert scene.params["light.sun.penumbra"].slider is not None and scene.params["shadow.bias"].slider is not None


@pytest.mark.parametrize("section, message", [
    ('[shadows]\nmode = "blurry"', "mode must be one of off, hard, soft"),
    ("[shadows]\nresolution = 3", "resolution must be a whole number of texels"),
    ("[shadows]\nbias = -1.0", "bias must be a positive distance"),
    ("[shadows]\nsoftness = 2", "unknown key 'softness' in [shadows]"),
])
def test_bad_shadow_sections_are_one_sentence(section, message):
    with pytest.raises(SceneError, match=message.replace("[", r"\[").replace("]", r"\]")):
        _scene(section=section)


def test_scenes_without_a_shadow_section_refuse_shadows():
    scene = _scene(section="")
    scene.options["shadows"] = "soft"
    with pytest.raises(SceneError, match=r"need a \[shadows\] section"):
        scene.render()


def test_pbr_objects_get_roughness_and_metallic_and_the_material_error_counts_them():
    scene = _scene("pbr")
    assert scene.params["ball.roughness"].value.item() == pytest.approx(0.3)
    assert scene.params["ball.metallic"].value.item() == 1.0
    out = scene.render()
    assert torch.isfinite(out.rgb).all() and out.rgb.max() > 0.05
    spec = load_spec("materials")
    mats = build_scene(spec, "torch", "cpu")
    errs = [mats.params[n].error() for n in mats.params.names() if mats.params[n].trainable]
    group = mats.params.group_errors()["material"]
    assert group.value == pytest.approx(sum(errs) / len(errs)) and group.value > 0.1
    with torch.no_grad():
        values = mats.params.values()
        values["gold.roughness"].fill_(0.3)  # the truth for one parameter lowers the group's error
    assert mats.params.group_errors()["material"].value < group.value


def test_cli_shadow_switch_on_a_scene_without_shadows_exits_2(capsys, tmp_path):
    code = main(["optimize", "lighting", "--steps", "1", "--res", "16", "--backend", "torch", "--shadows", "soft",
                 "--no-video", "--out", str(tmp_path / "o")])
    assert code == 2 and "[shadows] section" in capsys.readouterr().err


def test_compare_rejects_an_unknown_shadow_mode():
    with pytest.raises(CompareError, match="shadows cannot be set to 'blurry'"):
        compare_runs("mesh-shadow", "shadows", ("hard", "blurry"), steps=0)


def test_a_shadow_section_means_soft_shadows_and_none_means_off():
    assert _scene(section="[shadows]\nresolution = 64").options["shadows"] == "soft"
    assert _scene(section="").options["shadows"] == "off"


def test_roughness_and_metallic_can_be_textures():
    text = (SMALL.format(shading="pbr", shadows="")
            .replace('mesh = "procedural:icosphere:2"', 'mesh = "procedural:uv_sphere:16"')
            .replace("roughness = 0.3", 'roughness = "texture:checkerboard:16"'))
    scene = build_scene(parse_scene(text), "torch", "cpu")
    tex = scene.params["ball.roughness"]
    assert tex.value.shape == (16, 16, 1) and not tex.is_small
    tex.value.requires_grad_(True)
    out = scene.render()
    rough, metal = scene.pbr_maps(out.gbuffer, scene.params.values())
    ball = out.gbuffer.object_id == 1
    assert rough[ball].unique().numel() > 2 and metal[ball].unique().tolist() == [1.0]
    out.rgb.sum().backward()
    assert tex.value.grad.abs().sum() > 0
    with pytest.raises(SceneError, match="has a roughness texture but its mesh has no UVs"):
        build_scene(parse_scene(text.replace("uv_sphere:16", "icosphere:2")), "torch", "cpu")
    with pytest.raises(SceneError, match="metallic must be a number"):
        build_scene(parse_scene(text.replace("metallic = 1.0", 'metallic = "shiny"')), "torch", "cpu")
