"""Render modes: every mode turns a real render into a display image, and the gradient mode shows
where the loss pulls."""

from __future__ import annotations

import pytest
import torch

from studio.render import get_backend, modes
from studio.scene.scene import Scene
from studio.scene.spec import parse_scene

CUBE = """
name = "mode-cube"
[render]
resolution = 32
shading = "lambert"
[camera]
distance = 3.6
elevation = 25
azimuth = 30
[[object]]
name = "cube"
mesh = "procedural:cube"
albedo = [0.8, 0.4, 0.2]
[[lights.directional]]
name = "sun"
direction = [0.3, 1.0, 0.5]
"""


@pytest.fixture(scope="module")
def out():
    scene = Scene(parse_scene(CUBE), get_backend("torch", "cpu"))
    with torch.no_grad():
        return scene.render([0])


def test_every_mode_gives_a_display_image_in_range(out):
    for mode in modes.MODES:
        loss = (lambda rgb, alpha: rgb.square().mean()) if mode == modes.LOSS_GRADIENT else None
        img = modes.display_image(mode, out, loss)
        assert img.shape == (1, 32, 32, 3), mode
        assert float(img.min()) >= 0.0 and float(img.max()) <= 1.0, mode
        assert float(img.std()) > 0.01, f"{mode} is flat"


def test_background_is_black_in_geometric_modes(out):
    empty = out.gbuffer.mask[..., 0] < 0.5
    assert empty.any()
    for mode in (modes.NORMALS, modes.DEPTH, modes.TRIANGLE_ID):
        img = modes.display_image(mode, out)
        assert float(img[empty].abs().max()) == 0.0, mode


def test_depth_is_brighter_nearer_and_ids_are_distinct_colours(out):
    gb = out.gbuffer
    grey = modes.depth(gb)[..., 0]
    covered = gb.mask[..., 0] > 0.5
    d = gb.depth[..., 0][covered]
    g = grey[covered]
    assert float(g[d.argmin()]) == pytest.approx(1.0) and float(g[d.argmax()]) == pytest.approx(0.15, abs=1e-5)
    ids = modes.triangle_id(torch.tensor([[[0, 1, 2, -1]]]))
    assert len({tuple(c.tolist()) for c in ids[0, 0, :3]}) == 3 and ids[0, 0, 3].abs().sum() == 0


def test_pixel_loss_gradient_is_where_render_and_target_differ(out):
    target = out.rgb.clone()
    target[:, :, :16] = 0.0  # the target differs only in the left half
    grad = modes.pixel_loss_gradient(lambda rgb, alpha: (rgb - target).square().mean(), out.rgb, out.alpha)
    assert grad.shape == (1, 32, 32)
    assert float(grad[:, :, 16:].abs().max()) == 0.0
    assert float(grad[:, :, :16].max()) > 0.0
    none = modes.pixel_loss_gradient(lambda rgb, alpha: torch.zeros(()), out.rgb, out.alpha)
    assert float(none.abs().max()) == 0.0


def test_unknown_mode_and_missing_loss_are_one_sentence_errors(out):
    with pytest.raises(ValueError, match="render mode must be one of"):
        modes.display_image("x-ray", out)
    with pytest.raises(ValueError, match="needs the loss"):
        modes.display_image(modes.LOSS_GRADIENT, out)
