"""Colour-correct targets and their aspect: 8/16-bit files are sRGB, float TIFF/EXR/NPY are linear,
``--target-colorspace`` overrides, non-square targets keep their shape (studio.images, studio.workspace)."""

from __future__ import annotations

import json

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from studio.cli import main
from studio.images import ImageError, linear_to_srgb, read_linear
from studio.workspace import build_scene, parse_resolution
from studio.scene.spec import SceneError, parse_scene

ALBEDO = [0.8, 0.45, 0.2]
SCENE = """
name = "albedo"
[render]
resolution = 32
shading = "lambert"
[optimize]
steps = 150
lr = {{ material = 0.03 }}
[camera]
distance = 3.0
{camera}
[[object]]
name = "ball"
mesh = "procedural:icosphere:2"
albedo = [0.8, 0.45, 0.2]
[lights]
ambient = [0.2, 0.2, 0.2]
[[lights.directional]]
name = "sun"
direction = [0.3, 0.6, 0.8]
intensity = 0.9
[[param]]
path = "ball.albedo"
init = [0.5, 0.5, 0.5]
"""


def _linear_ramp() -> np.ndarray:
    return np.linspace(0.0, 1.0, 4 * 6 * 3, dtype=np.float32).reshape(4, 6, 3)


def test_integer_files_are_srgb_and_float_files_linear(tmp_path):
    lin = _linear_ramp()
    enc = linear_to_srgb(lin)
    iio.imwrite(tmp_path / "a.png", (enc * 255 + 0.5).astype(np.uint8))
    iio.imwrite(tmp_path / "a16.tif", (enc * 65535 + 0.5).astype(np.uint16))
    iio.imwrite(tmp_path / "a.tif", lin)
    np.save(tmp_path / "a.npy", lin)
    assert np.abs(read_linear(tmp_path / "a.png") - lin).max() < 0.01  # 8-bit quantisation
    assert np.abs(read_linear(tmp_path / "a16.tif") - lin).max() < 1e-4
    assert np.abs(read_linear(tmp_path / "a.tif") - lin).max() < 1e-6
    assert np.abs(read_linear(tmp_path / "a.npy") - lin).max() < 1e-6
    # A PNG written without gamma is declared linear; a float file can be declared sRGB.
    iio.imwrite(tmp_path / "raw.png", (lin * 255 + 0.5).astype(np.uint8))
    assert np.abs(read_linear(tmp_path / "raw.png", "linear") - lin).max() < 0.01
    assert np.abs(read_linear(tmp_path / "a.tif", "srgb") - lin).max() > 0.1
    with pytest.raises(ImageError, match="colour space 'gamma' is unknown"):
        read_linear(tmp_path / "a.png", "gamma")


def test_an_exr_target_loads_with_the_extra(tmp_path):
    OpenEXR = pytest.importorskip("OpenEXR")
    lin = np.concatenate([_linear_ramp() * 3.0, np.full((4, 6, 1), 0.5, np.float32)], -1)  # HDR, with alpha
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    # The writer needs contiguous channel arrays.
    channels = {c: np.ascontiguousarray(lin[..., i]) for i, c in enumerate("RGBA")}
    channels["R"] = channels["R"].astype(np.float16)
    with OpenEXR.File(header, channels) as f:
        f.write(str(tmp_path / "t.exr"))
    img = read_linear(tmp_path / "t.exr")
    assert img.shape == (4, 6, 4) and img[..., :3].max() > 2.9, "EXR values are linear and may exceed 1"
    assert np.abs(img - lin).max() < 2e-3  # R is half precision


def test_an_exr_without_the_extra_is_one_sentence(tmp_path, monkeypatch):
    import builtins

    real = builtins.__import__
    monkeypatch.setattr(builtins, "__import__",
                        lambda name, *a, **k: (_ for _ in ()).throw(ImportError(name)) if name == "OpenEXR"
                        else real(name, *a, **k))
    (tmp_path / "t.exr").write_bytes(b"v/1\x01")
    with pytest.raises(ImageError, match=r"needs the OpenEXR package: pip install '.*\[exr\]'"):
        read_linear(tmp_path / "t.exr")


def _albedo_fit(tmp_path, capsys, *extra: str) -> np.ndarray:
    out = tmp_path / ("run" + "-".join(extra))
    code = main(["optimize", str(tmp_path / "albedo.toml"), "--target", str(tmp_path / "target.tif"),
                 "--backend", "torch", "--device", "cpu", "--threads", "1", "--no-video", "--out", str(out), *extra])
    assert code == 0, capsys.readouterr().err
    return np.array(json.loads((out / "params.json").read_text())["ball.albedo"])


def test_a_linear_float_tiff_render_gives_back_its_albedo(tmp_path, capsys):
    """The project renders a diffuse ball with a known albedo into a linear float TIFF; fitting that
    picture recovers the albedo, and decoding it as sRGB (the old behaviour) does not."""
    (tmp_path / "albedo.toml").write_text(SCENE.format(camera=""))
    spec = parse_scene(SCENE.format(camera=""))
    with torch.no_grad():
        target = build_scene(spec, "torch", "cpu").render([0], target=True).rgb[0].numpy()
    iio.imwrite(tmp_path / "target.tif", target.astype(np.float32))
    fitted = _albedo_fit(tmp_path, capsys)
    assert np.abs(fitted - ALBEDO).max() < 0.02, fitted
    wrong = _albedo_fit(tmp_path, capsys, "--target-colorspace", "srgb")
    assert np.abs(wrong - ALBEDO).max() > 0.1, wrong


def test_a_non_square_target_keeps_its_aspect(tmp_path, capsys):
    (tmp_path / "albedo.toml").write_text(SCENE.format(camera=""))
    iio.imwrite(tmp_path / "wide.png", np.full((24, 40, 3), 128, np.uint8))
    out = tmp_path / "wide"
    code = main(["optimize", str(tmp_path / "albedo.toml"), "--target", str(tmp_path / "wide.png"), "--steps", "1",
                 "--backend", "torch", "--device", "cpu", "--no-video", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    final = iio.imread(out / "final.png")
    assert final.shape[:2] == (32, 3 * 53), "32 rows (the scene's height) and the photo's 5:3 aspect"


def test_resolutions_are_a_size_h_w_or_hxw_everywhere(tmp_path, capsys):
    assert parse_resolution("64") == (64, 64)
    assert parse_resolution(["48", "80"]) == (48, 80) == parse_resolution("48x80")
    with pytest.raises(SceneError, match="--res must be"):
        parse_resolution(["48", "80", "2"])
    code = main(["render", "cube", "--res", "24x40", "--backend", "torch", "--device", "cpu",
                 "--out", str(tmp_path / "c.png")])
    assert code == 0 and iio.imread(tmp_path / "c.png").shape[:2] == (24, 40)
    assert main(["render", "cube", "--res", "24", "big", "--out", str(tmp_path / "d.png")]) == 2
    assert "--res must be" in capsys.readouterr().err
    spec = parse_scene(SCENE.format(camera="").replace("resolution = 32", "resolution = [16, 48]"))
    assert spec.resolution == (16, 48)


def test_fov_axis_says_which_side_the_field_of_view_spans():
    wide = SCENE.format(camera='fov = 90\nfov_axis = "x"').replace("resolution = 32", "resolution = [32, 64]")
    scene = build_scene(parse_scene(wide), "torch", "cpu")
    fov_y = float(scene.vertical_fov(scene.params.values()))
    assert fov_y == pytest.approx(2 * np.degrees(np.arctan(0.5)), rel=1e-5)  # tan(45°) * 32/64
    with pytest.raises(SceneError, match="fov_axis must be"):
        parse_scene(SCENE.format(camera='fov_axis = "z"'))
