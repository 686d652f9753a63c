"""studio make-capture: files on disk in both layouts, loadable, with a ground-truth mesh that
lines up with the masks."""

from __future__ import annotations

import torch
import trimesh

from studio.capture import load_capture
from studio.capture.synth import colmap_order
from studio.cli import main


def test_colmap_order_puts_held_out_views_at_every_kth_position():
    order, k = colmap_order(32, 8)
    assert k == 5 and sorted(order) == list(range(40))
    assert [order[i] for i in range(0, 40, 5)] == list(range(32, 40))
    assert colmap_order(5, 2) == ([0, 1, 2, 3, 4, 5, 6], None)


def test_make_capture_cli_both_layouts(tmp_path, capsys):
    for layout, extra in (("nerf", []), ("colmap", ["--colmap-binary"])):
        out = tmp_path / layout
        rc = main(["make-capture", "textured_critter:12", "--out", str(out), "--views", "6", "--test-views", "2",
                   "--res", "24", "--layout", layout, *extra])
        assert rc == 0
        assert (out / "gt_mesh.ply").is_file()
    assert (tmp_path / "nerf" / "transforms_test.json").is_file()
    assert (tmp_path / "colmap" / "sparse" / "0" / "images.bin").is_file()
    nerf = load_capture(tmp_path / "nerf")
    colmap = load_capture(tmp_path / "colmap", holdout=4)
    assert [v.name for v in colmap.test_views] == ["t_0", "t_1"] and len(colmap.views) == 6
    assert len(nerf.test_views) == 2 and colmap.points is not None and colmap.points.shape == (2000, 3)
    # The sparse points are samples of the true surface: inside the unit sphere after normalisation.
    assert float(colmap.points.norm(dim=1).max()) <= 1.0

    # Every vertex of the ground-truth mesh projects into (a pixel next to) the object's mask.
    gt = trimesh.load(tmp_path / "nerf" / "gt_mesh.ply")
    unit = nerf.normalisation.to_unit(torch.from_numpy(gt.vertices)).float()
    for v in nerf.views + nerf.test_views:
        clip = torch.cat([unit, torch.ones(len(unit), 1)], 1) @ v.world_to_clip().T
        col = ((clip[:, 0] / clip[:, 3] + 1) / 2 * 24).long().clamp(0, 23)
        row = ((1 - clip[:, 1] / clip[:, 3]) / 2 * 24).long().clamp(0, 23)
        near = torch.nn.functional.max_pool2d(v.mask[None, None], 3, 1, 1)[0, 0]
        assert float(near[row, col].min()) > 0.0


def test_scenes_as_sources():
    import pytest

    from studio.capture import CaptureError
    from studio.capture.synth import load_object

    textured = load_object("texture")  # one textured sphere
    assert textured.texture is not None and textured.mesh.uv is not None
    several = load_object("objects")  # three objects merged, their albedos as vertex colours
    assert several.texture is None and several.mesh.vertex_colors is not None
    assert float(several.mesh.vertices.norm(dim=1).max()) == pytest.approx(1.0, abs=1e-5)
    assert len(torch.unique(several.mesh.vertex_colors, dim=0)) >= 3
    with pytest.raises(CaptureError, match="no mesh objects"):
        load_object("sdf")
