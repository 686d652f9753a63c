"""Dataset export end to end (studio.data): labels against the id buffer, file layout, data.yaml,
reproducibility, shards, interruption and bad input."""

from __future__ import annotations

import argparse
import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from studio.data import DatasetError, DatasetRenderer, ExportConfig, export_dataset
from studio.data import cli as data_cli
from studio.data.config import HardCaseSpec
from studio.data.hard_case import HardCaseSearch
from studio.scene.spec import load_scene_file
from studio.workspace import build_scene

# Camera on +z looking at the origin.  A big box in front hides a small ball completely and a
# second ball partly; a fourth object sits above the frame.
KNOWN = """
name = "known"
[render]
resolution = 96
shading = "lambert"
background = [0.2, 0.3, 0.4]
[camera]
fov = 40
distance = 6
elevation = 0
azimuth = 0
[[object]]
name = "wall"
class = "box"
mesh = "procedural:cube"
position = [0.0, 0.0, 1.0]
scale = 1.4
[[object]]
name = "hidden"
class = "ball"
mesh = "procedural:icosphere:1"
position = [0.0, 0.0, -1.0]
scale = 0.3
[[object]]
name = "peek"
class = "ball"
mesh = "procedural:icosphere:2"
position = [1.1, 0.2, -0.5]
scale = 0.6
[[object]]
name = "away"
class = "box"
mesh = "procedural:cube"
position = [0.0, 4.5, 0.0]
scale = 0.3
[lights]
ambient = [0.3, 0.3, 0.3]
[[lights.directional]]
name = "sun"
direction = [0.3, 0.8, 0.5]
"""

# Three small objects and every kind of randomisation, plus a cheap hard-case search.
MINI = """
name = "mini"
[render]
resolution = 64
shading = "phong"
[camera]
fov = 45
distance = 5
[[object]]
name = "ball"
class = "ball"
mesh = "procedural:icosphere:2"
scale = 0.7
albedo = [0.8, 0.3, 0.2]
[[object]]
name = "peanut"
class = "peanut"
mesh = "procedural:peanut:2"
scale = 0.6
[[object]]
name = "box"
class = "box"
mesh = "procedural:cube"
scale = 0.5
albedo = "vertex"
[lights]
ambient = [0.2, 0.2, 0.2]
[[lights.directional]]
name = "sun"
direction = [0.3, 0.8, 0.5]
[export.camera]
azimuth = [0, 360]
elevation = [5, 60]
distance = [3.5, 6]
fov = [35, 50]
target_jitter = 0.3
[export.light]
azimuth = [0, 360]
elevation = [10, 80]
intensity = [0.5, 1.5]
color_jitter = 0.2
ambient = [0.05, 0.4]
[export.material]
albedo_jitter = 0.3
specular = [0, 0.5]
shininess = [8, 64]
[export.placement]
x = [-1.2, 1.2]
z = [-1.2, 1.2]
yaw = [0, 360]
tilt = [0, 40]
scale = [0.8, 1.2]
presence = 0.8
separation = 0.6
[export.background]
kinds = ["solid", "gradient", "noise"]
[export.hard_case]
objective = "occlusion"
params = ["*.position", "camera.azimuth"]
fraction = 0.5
steps = 2
lr_scale = 10
resolution = 32
"""


def write_scene(tmp_path: Path, text: str, name: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def config(scene: Path, out: Path, **kw) -> ExportConfig:
    base = dict(scene=scene, out=out, n=6, imgsz=64, backend="torch", device="cpu", val_fraction=0.34,
                min_visible_px=4, preview=4)
    base.update(kw)
    return ExportConfig(**base)


def read_yaml(path: Path) -> dict:
    """The small YAML subset data.yaml uses: comments, ``key: value`` and one nested map."""
    data: dict = {}
    current = None
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, _, value = line.strip().partition(": ") if ": " in line else (line.strip().rstrip(":"), "", "")
        parsed = json.loads(value) if value.startswith('"') else value
        if line.startswith("  "):
            current[int(key)] = parsed
        elif value:
            data[key] = parsed
        else:
            data[key] = current = {}
    return data


def boxes_from_ids(object_id: np.ndarray) -> dict[int, tuple[int, int, int, int, int]]:
    """Independent reference: object -> (x0, y0, x1, y1, pixels) of its visible pixels."""
    out = {}
    for k in np.unique(object_id[object_id >= 0]):
        ys, xs = np.nonzero(object_id == k)
        out[int(k)] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1, len(xs))
    return out


def parse_labels(path: Path) -> list[tuple[int, np.ndarray]]:
    rows = []
    for line in path.read_text().splitlines():
        cls, *values = line.split()
        rows.append((int(cls), np.array(values, dtype=float)))
    return rows


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.parts[len(root.parts)] in ("images", "labels")}


@pytest.fixture(scope="module")
def mini(tmp_path_factory) -> Path:
    return write_scene(tmp_path_factory.mktemp("scenes"), MINI, "mini")


def test_known_placement_boxes_equal_visible_pixels_and_hidden_objects_get_none(tmp_path):
    scene_path = write_scene(tmp_path, KNOWN, "known")
    result = export_dataset(config(scene_path, tmp_path / "out", n=1, imgsz=96, val_fraction=0.0))
    assert result.written == 1
    # Independent render of the same scene: the id buffer the labels must come from.
    spec = load_scene_file(scene_path)
    with torch.no_grad():
        ids = build_scene(spec, "torch", "cpu").render([0]).gbuffer.object_id[0].numpy()
    ref = boxes_from_ids(ids)
    assert set(ref) == {0, 2}, "test set-up: the wall hides 'hidden' and 'away' is outside the frame"
    rows = parse_labels(tmp_path / "out" / "labels" / "train" / "000000.txt")
    assert [cls for cls, _ in rows] == [0, 1]  # box (the wall), ball (peek); no line for 'hidden' or 'away'
    for (cls, (cx, cy, w, h)), k in zip(rows, (0, 2)):
        x0, y0, x1, y1, _ = ref[k]
        got = np.array([(cx - w / 2) * 96, (cy - h / 2) * 96, (cx + w / 2) * 96, (cy + h / 2) * 96])
        assert np.abs(got - [x0, y0, x1, y1]).max() <= 1.0
    # The peeking ball is cut by the wall: its box is narrower than its unoccluded projection.
    assert ref[2][4] < np.pi * (0.6 / (6 - 0.5) / np.tan(np.radians(20)) * 48) ** 2


@pytest.mark.parametrize("task", ["detect", "segment"])
def test_randomised_export_labels_files_and_yaml(mini, tmp_path, task):
    cfg = config(mini, tmp_path / "out", task=task)
    result = export_dataset(cfg)
    out = tmp_path / "out"
    assert result.written == 6 and result.splits == {"train": 4, "val": 2} and result.searched > 0
    data = read_yaml(out / "data.yaml")
    assert data["path"] == str(out.resolve()) and data["train"] == "images/train" and data["val"] == "images/val"
    assert data["names"] == {0: "ball", 1: "peanut", 2: "box"}
    for split in ("train", "val"):
        images = sorted(p.stem for p in (out / "images" / split).iterdir())
        labels = sorted(p.stem for p in (out / "labels" / split).iterdir())
        assert images == labels and all(len(s) == 6 and s.isdigit() for s in images)
    assert not list(out.rglob(".*"))  # no temporary files left
    renderer = DatasetRenderer(cfg)
    for i in range(6):
        img = renderer.render(i)
        png = np.asarray(Image.open(out / "images" / img.split / f"{img.name}.png"))
        np.testing.assert_array_equal(png, img.rgb)
        ref = boxes_from_ids(img.object_id)
        rows = parse_labels(out / "labels" / img.split / f"{img.name}.txt")
        expected = [k for k in sorted(ref) if ref[k][4] >= cfg.min_visible_px]
        assert [cls for cls, _ in rows] == [renderer.class_ids[k] for k in expected]
        for (cls, values), k in zip(rows, expected):
            assert ((values >= 0) & (values <= 1)).all()
            x0, y0, x1, y1, _ = ref[k]
            if task == "detect":
                cx, cy, w, h = values * 64
                assert np.abs(np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]) - [x0, y0, x1, y1]).max() <= 1
            else:
                xy = values.reshape(-1, 2) * 64
                assert len(xy) >= 3
                assert (xy[:, 0] >= x0 - 1e-6).all() and (xy[:, 0] <= x1 + 1e-6).all()
                assert (xy[:, 1] >= y0 - 1e-6).all() and (xy[:, 1] <= y1 + 1e-6).all()
                # Douglas-Peucker may cut a corner by at most one pixel.
                assert np.abs(np.r_[xy.min(0), xy.max(0)] - [x0, y0, x1, y1]).max() <= 1.0 + 1e-6
    sheet = Image.open(out / "preview.png")
    assert sheet.size == (4 * 256, 256)


def test_same_seed_same_bytes_other_seed_other_images(mini, tmp_path):
    export_dataset(config(mini, tmp_path / "a", n=4))
    export_dataset(config(mini, tmp_path / "b", n=4))
    export_dataset(config(mini, tmp_path / "c", n=4, seed=1))
    a, b, c = tree(tmp_path / "a"), tree(tmp_path / "b"), tree(tmp_path / "c")
    assert a == b
    assert a.keys() == c.keys() and all(a[k] != c[k] for k in a if k.endswith(".png"))


def test_shards_are_disjoint_and_merge_into_the_unsharded_export(mini, tmp_path):
    export_dataset(config(mini, tmp_path / "all", n=5))
    parts = []
    for i in range(2):
        r = export_dataset(config(mini, tmp_path / f"part{i}", n=5, shard=(i, 2)))
        assert r.written == (3 if i == 0 else 2)
        parts.append(tree(tmp_path / f"part{i}"))
    assert not set(parts[0]) & set(parts[1])
    assert {**parts[0], **parts[1]} == tree(tmp_path / "all")
    assert (tmp_path / "part0" / "preview.png").exists() and not (tmp_path / "part1" / "preview.png").exists()
    names = [read_yaml(tmp_path / d / "data.yaml")["names"] for d in ("all", "part0", "part1")]
    assert names[0] == names[1] == names[2]


def test_shards_may_share_one_folder(mini, tmp_path):
    out = tmp_path / "shared"
    export_dataset(config(mini, out, n=5, shard=(1, 2), hard_case=False))
    export_dataset(config(mini, out, n=5, shard=(0, 2), hard_case=False))
    assert len(list(out.glob("images/*/*.png"))) == 5
    with pytest.raises(DatasetError, match="already holds files of shard 0/2"):
        export_dataset(config(mini, out, n=5, shard=(0, 2), hard_case=False))


def assert_complete_pairs(out: Path) -> int:
    pairs = 0
    for split in ("train", "val"):
        images = {p.stem for p in (out / "images" / split).iterdir()}
        labels = {p.stem for p in (out / "labels" / split).iterdir()}
        assert images == labels
        pairs += len(images)
        for stem in images:
            Image.open(out / "images" / split / f"{stem}.png").load()  # a whole PNG
    return pairs


def test_cancel_event_stops_with_complete_pairs(mini, tmp_path):
    cancel = threading.Event()

    def progress(done: int, total: int) -> None:
        if done == 3:
            cancel.set()

    result = export_dataset(config(mini, tmp_path / "out", n=20, hard_case=False), progress=progress, cancel=cancel)
    assert result.cancelled and result.written == 3 and result.preview is None
    assert assert_complete_pairs(tmp_path / "out") == 3
    assert (tmp_path / "out" / "data.yaml").exists()


def test_exception_mid_run_leaves_complete_pairs_only(mini, tmp_path, monkeypatch):
    real = DatasetRenderer.render

    def flaky(self, index):
        if index == 4:
            raise RuntimeError("renderer crashed")
        return real(self, index)

    monkeypatch.setattr(DatasetRenderer, "render", flaky)
    with pytest.raises(RuntimeError, match="renderer crashed"):
        export_dataset(config(mini, tmp_path / "out", n=10, hard_case=False))
    assert assert_complete_pairs(tmp_path / "out") == 4
    assert not list((tmp_path / "out").rglob(".*"))


def test_write_failure_leaves_no_half_pair(mini, tmp_path, monkeypatch):
    real_write = Path.write_bytes
    pngs = []

    def failing_write(self, data):
        if self.name.endswith(".png.tmp"):
            pngs.append(self)
            if len(pngs) == 3:
                real_write(self, data[:100])
                raise OSError("disk full")
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", failing_write)
    with pytest.raises(OSError, match="disk full"):
        export_dataset(config(mini, tmp_path / "out", n=10, hard_case=False, preview=0))
    assert assert_complete_pairs(tmp_path / "out") == 2
    assert not list((tmp_path / "out").rglob(".*"))


def test_overwrite_replaces_the_dataset_and_keeps_other_files(mini, tmp_path):
    out = tmp_path / "out"
    export_dataset(config(mini, out, n=4, hard_case=False))
    (out / "notes.md").write_text("mine")
    with pytest.raises(DatasetError, match="already holds files"):
        export_dataset(config(mini, out, n=2, hard_case=False))
    export_dataset(config(mini, out, n=2, hard_case=False, overwrite=True))
    assert len(list(out.glob("images/*/*.png"))) == 2 and (out / "notes.md").read_text() == "mine"


def cli_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="studio")
    data_cli.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["export-dataset", *argv])


@pytest.mark.parametrize("case, words", [
    ("no-class", "object 'thing' has no class"),
    ("n0", "number of images must be a positive integer"),
    ("non-empty", "already holds files; choose an empty folder or pass --overwrite"),
    ("unwritable", "cannot write to output folder"),
    ("sdf", "renders mesh scenes"),
])
def test_bad_input_is_one_sentence_and_exit_code_2(mini, tmp_path, capsys, case, words):
    scene, n, out = str(mini), "3", tmp_path / "out"
    if case == "no-class":
        scene = str(write_scene(tmp_path, MINI.replace('class = "ball"', "").replace('name = "ball"', 'name = "thing"'),
                                "noclass"))
    elif case == "n0":
        n = "0"
    elif case == "non-empty":
        out.mkdir()
        (out / "old.txt").write_text("x")
    elif case == "unwritable":
        (tmp_path / "file").write_text("not a folder")
        out = tmp_path / "file" / "out"
    elif case == "sdf":
        scene = "sdf"
    code = data_cli.run(cli_args(scene, "--n", n, "--out", str(out), "--imgsz", "64", "--backend", "torch",
                                 "--device", "cpu"))
    err = capsys.readouterr().err
    assert code == data_cli.EXIT_BAD_INPUT
    assert err.startswith("studio: ") and words in err and err.strip().count("\n") == 0
    if case == "non-empty":
        assert sorted(p.name for p in out.iterdir()) == ["old.txt"]


def test_cli_writes_a_dataset_and_says_how_to_train(mini, tmp_path, capsys):
    out = tmp_path / "out"
    code = data_cli.run(cli_args(str(mini), "--n", "3", "--out", str(out), "--imgsz", "64", "--backend", "torch",
                                 "--device", "cpu", "--task", "segment", "--no-hard-case", "--shard", "0/1"))
    text = capsys.readouterr().out
    assert code == 0 and "wrote 3 images" in text and f'train(data="{out.resolve() / "data.yaml"}")' in text
    assert assert_complete_pairs(out) == 3


def test_hard_case_search_hides_the_focus_and_stays_in_bounds(tmp_path):
    scene_path = write_scene(tmp_path, KNOWN.replace("position = [1.1, 0.2, -0.5]", "position = [1.2, 0.2, -0.5]"),
                             "known")
    renderer = DatasetRenderer(config(scene_path, tmp_path / "out", imgsz=64, hard_case=False))
    spec = HardCaseSpec("occlusion", ("peek.position",), {"keep": 0.3}, steps=12, lr_scale=5, resolution=48,
                        focus="peek")
    search = HardCaseSearch(renderer.scene, spec, [True] * 4, [])
    values = renderer.values(renderer.plan(0))
    background = torch.zeros(64, 64, 3)

    def visible_share(v) -> float:
        with torch.no_grad():
            full = renderer.scene.render([0], v).gbuffer.object_id
            alone = dict(v)
            for name in ("wall", "hidden", "away"):
                alone[f"{name}.scale"] = torch.zeros(1)
            solo = renderer.scene.render([0], alone).gbuffer.object_id
        return float((full == 2).sum()) / float((solo == 2).sum())

    moved, focus = search.search(values, background, 0.0, frozenset())
    assert focus == 2
    before, after = visible_share(values), visible_share(moved)
    assert after < before - 0.1 and after > 0.1
    assert (moved["peek.position"].abs() <= 5).all()
    assert torch.equal(moved["wall.position"], values["wall.position"])


@pytest.mark.parametrize("hard_case, words", [
    ('objective = "nope"\nparams = ["*.position"]', "unknown hard-case objective 'nope'"),
    ('objective = "occlusion"\nparams = ["*.pos"]', "matches no parameter"),
    ('objective = "occlusion"\nparams = ["*.position"]\nobjective_params = { kep = 1 }', "has no parameter 'kep'"),
    ('objective = "occlusion"\nparams = ["*.position"]\nfocus = "ghost"', "focus must be"),
])
def test_bad_hard_case_sections(tmp_path, hard_case, words):
    text = MINI.split("[export.hard_case]")[0] + "[export.hard_case]\n" + hard_case + "\n"
    with pytest.raises(DatasetError, match=words):
        DatasetRenderer(config(write_scene(tmp_path, text, "bad"), tmp_path / "out"))


def test_builtin_objects_scene_exports(tmp_path):
    result = export_dataset(ExportConfig(scene="objects", out=tmp_path / "out", n=2, imgsz=64, backend="torch",
                                         device="cpu", min_visible_px=4, hard_case=False))
    assert list(result.labels) == ["critter", "ring", "box"] and result.written == 2
    spec = load_scene_file(Path(__file__).resolve().parents[2] / "assets" / "scenes" / "objects.toml")
    assert {"camera", "light", "material", "placement", "background", "hard_case"} <= set(spec.extra["export"])
