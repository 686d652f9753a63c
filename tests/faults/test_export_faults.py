"""`export-dataset --overwrite` next to files it did not write (defect 8 of issue 17): each case ->
refused with its sentence and nothing deleted, or only the export's own files replaced.

Only the output-folder step (``prepare_output``) runs: what it deletes is decided there.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.data import DatasetError, ExportConfig
from studio.data.export import prepare_output

EXPORT_FILES = ["images/train/000000.png", "labels/train/000000.txt", "images/val/000001.png",
                "labels/val/000001.txt", "data.yaml", "preview.png", "images/train/.000002.png.tmp"]


def dataset(out: Path, *others: str) -> Path:
    for name in (*EXPORT_FILES, *others):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(name)
    return out


# (case, the user's files, the start of the sentence; None: allowed, and the files are kept)
USER_FILES = [
    ("a photo in a folder of its own under images/", ["images/holiday/beach.jpg"],
     "holds files that no dataset export wrote (images/holiday)"),
    ("a photo among the training images", ["images/train/cat.jpg"],
     "holds files that no dataset export wrote (images/train/cat.jpg)"),
    ("notes among the labels", ["labels/val/README.txt"],
     "holds files that no dataset export wrote (labels/val/README.txt)"),
    ("an unknown split", ["labels/test/000009.txt"], "holds files that no dataset export wrote (labels/test)"),
    ("many files", [f"images/train/img{i}.jpg" for i in range(5)], "(images/train/img0.jpg, images/train/img1.jpg, "
     "images/train/img2.jpg and 2 more)"),
    ("notes next to the dataset", ["notes.md"], None),
]


@pytest.mark.parametrize("case, others, sentence", USER_FILES, ids=[c[0] for c in USER_FILES])
def test_overwrite_removes_only_what_an_export_writes(tmp_path, case, others, sentence):
    out = dataset(tmp_path / "out", *others)
    config = ExportConfig(out=out, overwrite=True)
    if sentence is not None:
        with pytest.raises(DatasetError) as info:
            prepare_output(config)
        text = str(info.value)
        assert sentence in text and text.startswith(f"output folder {out.resolve()} ") and text.count(". ") == 0
        assert text.endswith("(--overwrite replaces only an export's own files).")
        assert all((out / name).exists() for name in (*EXPORT_FILES, *others)), "a refusal deletes nothing"
    else:
        prepare_output(config)
        assert not any((out / name).exists() for name in EXPORT_FILES)
        assert all((out / name).read_text() == name for name in others)
    for kind in ("images", "labels"):
        for split in ("train", "val"):
            assert (out / kind / split).is_dir()


def test_without_overwrite_an_existing_dataset_is_refused(tmp_path):
    out = dataset(tmp_path / "out")
    with pytest.raises(DatasetError, match="already holds files; choose an empty folder or pass --overwrite"):
        prepare_output(ExportConfig(out=out))
    assert all((out / name).exists() for name in EXPORT_FILES)
