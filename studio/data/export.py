"""Write a YOLO dataset: images, labels, ``data.yaml`` and a preview, safely and in shards.

Layout of ``out`` (Ultralytics' format; ``model.train(data="out/data.yaml")``)::

    images/train/000000.png  labels/train/000000.txt   one label line per visible object
    images/val/000004.png    labels/val/000004.txt     (empty file: nothing labelled in view)
    data.yaml                path, train, val, names (index -> class name)
    preview.png              contact sheet of the first images with their labels drawn

Every image and its label are written under temporary names and renamed, label first: a run that
is cancelled, fails or is killed leaves only complete pairs (at worst, after a hard kill, one label
without its image, which Ultralytics ignores).  File names are the global image index, so shards
(``shard=(I, K)``: images i with i % K == I) never collide and merge by copying folders.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
import time
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from PIL import Image

from ..optim.threads import ThreadTuner
from .config import DatasetError, ExportConfig, ProgressCallback
from .preview import contact_sheet
from .render import DatasetRenderer, RenderedImage

SPLITS = ("train", "val")
# zlib level of the PNGs: level 1 writes 640x640 renders about twice as fast as the default 6 and
# the files are only slightly larger (smooth shading and backgrounds compress well either way).
PNG_COMPRESS_LEVEL = 1
# Images rendered ahead of the writer thread (bounds memory if the disk is slow).
_MAX_PENDING = 4
# ExportConfig fields that change where and what is written, not what is rendered.
_OUTPUT_OPTIONS = ("out", "shard", "overwrite", "preview")
_DATASET_FILE = re.compile(r"^\.?(\d+)\.(png|txt)(\.tmp)?$")


@dataclass
class ExportResult:
    """What an export wrote.

    Attributes:
        out: the output folder.
        written: images (with their labels) written by this run.
        splits: of those, how many per split ("train", "val").
        planned: images this run (this shard) was asked for.
        cancelled: stopped early by the cancel event.
        seconds: wall time of the rendering loop.
        labels: visible labelled objects per class name.
        empty: images without any label (pure background for the detector).
        searched: images that went through the hard-case search.
        data_yaml: path of ``data.yaml``.
        preview: path of ``preview.png``, or None when none was written.
        threads: CPU threads the images were rendered with (timed on the first images and
            re-checked as the run goes, see :mod:`studio.optim.threads`); None on a GPU.
        threads_reason: how that count was chosen (median time per image of each count).
    """

    out: Path
    written: int
    planned: int
    cancelled: bool
    seconds: float
    splits: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    labels: dict[str, int] = field(default_factory=dict)
    empty: int = 0
    searched: int = 0
    data_yaml: Path | None = None
    preview: Path | None = None
    threads: int | None = None
    threads_reason: str = ""

    @property
    def images_per_second(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0


def data_yaml_text(root: Path, names: list[str]) -> str:
    """``data.yaml`` for Ultralytics: absolute ``path``, splits relative to it, ``names`` as an
    index -> name map.  Strings are JSON-quoted, which YAML reads as double-quoted scalars."""
    lines = ["# YOLO dataset written by `studio export-dataset`; train with",
             "# YOLO(...).train(data=\"<this file>\").",
             f"path: {json.dumps(str(root))}",
             "train: images/train",
             "val: images/val",
             "names:"]
    lines += [f"  {i}: {json.dumps(name)}" for i, name in enumerate(names)]
    return "\n".join(lines) + "\n"


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_pair(out: Path, img: RenderedImage) -> None:
    """Label, then image, each under a temporary name first (see the module docstring)."""
    label = out / "labels" / img.split / f"{img.name}.txt"
    image = out / "images" / img.split / f"{img.name}.png"
    tmp_label = label.with_name(f".{label.name}.tmp")
    tmp_image = image.with_name(f".{image.name}.tmp")
    try:
        tmp_label.write_text("".join(line + "\n" for line in img.lines))
        Image.fromarray(img.rgb).save(tmp_image, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
        os.replace(tmp_label, label)
        try:
            os.replace(tmp_image, image)
        except BaseException:
            label.unlink(missing_ok=True)
            raise
    finally:
        tmp_label.unlink(missing_ok=True)
        tmp_image.unlink(missing_ok=True)


def _dataset_files(out: Path) -> tuple[list[Path], list[Path], list[Path]]:
    """(files an export writes, other entries under images/ and labels/, other entries of ``out``)."""
    ours, inside, others = [], [], []
    for entry in out.iterdir():
        if entry.name in ("data.yaml", "preview.png", ".data.yaml.tmp", ".preview.png.tmp"):
            ours.append(entry)
        elif entry.name in ("images", "labels") and entry.is_dir():
            for split in entry.iterdir():
                if split.name in SPLITS and split.is_dir():
                    for f in split.iterdir():
                        (ours if _DATASET_FILE.match(f.name) and f.is_file() else inside).append(f)
                else:
                    inside.append(split)
        else:
            others.append(entry)
    return ours, inside, others


def prepare_output(config: ExportConfig) -> Path:
    """Create ``config.out`` with its split folders, refusing to mix with existing files.

    Unsharded, the folder must be empty; ``overwrite`` deletes exactly the files an export writes
    (``images/{train,val}/NNNNNN.png``, ``labels/{train,val}/NNNNNN.txt``, ``data.yaml``,
    ``preview.png``) and leaves other files next to them alone.  Anything else under ``images/``
    or ``labels/`` (a user's ``images/holiday/beach.jpg``) is refused, even with ``overwrite``: a
    dataset folder holding it would be a different dataset.  Sharded, the folder may already hold
    what other shards of the same dataset wrote; ``overwrite`` deletes only this shard's files.

    Raises:
        DatasetError: the folder cannot be created or written, or holds files in the way.
    """
    out = Path(config.out).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise DatasetError(f"output path {out} is a file; give a folder for the dataset.")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise DatasetError(f"cannot write to output folder {out} ({exc.strerror or exc}); choose a folder you "
                           "can write to.") from None
    shard, shards = config.shard
    ours, inside, others = _dataset_files(out)
    if inside:
        names = ", ".join(str(f.relative_to(out)) for f in sorted(inside)[:3])
        more = f" and {len(inside) - 3} more" if len(inside) > 3 else ""
        raise DatasetError(f"output folder {out} holds files that no dataset export wrote ({names}{more}); move them "
                           "away or choose another folder (--overwrite replaces only an export's own files).")
    if shards > 1:
        ours = [f for f in ours if (m := _DATASET_FILE.match(f.name)) and int(m.group(1)) % shards == shard]
    if (ours or others) and not config.overwrite:
        what = f"files of shard {shard}/{shards}" if shards > 1 and not others else "files"
        raise DatasetError(f"output folder {out} already holds {what}; choose an empty folder or pass --overwrite "
                           "to replace the dataset in it.")
    if config.overwrite:
        for f in ours:
            f.unlink(missing_ok=True)
    for kind in ("images", "labels"):
        for split in SPLITS:
            (out / kind / split).mkdir(parents=True, exist_ok=True)
    return out


class _PairWriter:
    """Writes image/label pairs on one background thread, so PNG encoding overlaps rendering.

    After a failed write it writes nothing more: the error surfaces on the next ``submit`` or in
    ``finish``, and the folder keeps only the pairs before it.
    """

    def __init__(self, out: Path):
        self.out = out
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="studio-export-writer")
        self.pending: deque[Future] = deque()
        self.failed = threading.Event()

    def _write(self, img: RenderedImage) -> None:
        if self.failed.is_set():
            return
        try:
            _write_pair(self.out, img)
        except BaseException:
            self.failed.set()
            raise

    def submit(self, img: RenderedImage) -> None:
        self.pending.append(self.pool.submit(self._write, img))
        while self.pending and (len(self.pending) > _MAX_PENDING or self.pending[0].done()):
            self.pending.popleft().result()

    def finish(self) -> None:
        """Wait for every queued pair; re-raises the first write error."""
        try:
            while self.pending:
                self.pending.popleft().result()
        finally:
            self.pool.shutdown(wait=True)


def export_dataset(config: ExportConfig, progress: ProgressCallback | None = None,
                   cancel: threading.Event | None = None, renderer: DatasetRenderer | None = None) -> ExportResult:
    """Render and write a YOLO dataset (see the module docstring for the layout).

    Args:
        config: what to export.
        progress: called as ``progress(done, planned)`` after each image of this run.
        cancel: set it (from any thread) to stop after the current image; the pairs written so
            far stay, complete, and ``data.yaml`` already points at them.
        renderer: a :class:`DatasetRenderer` built for ``config`` up to the output options
            (``out``, ``shard``, ``overwrite``, ``preview``), e.g. one that rendered previews in a
            dialog; else one is built.

    Returns:
        An :class:`ExportResult`.

    Raises:
        DatasetError: bad options or output folder (before anything is written), or a failing
            hard-case objective.
        SceneError, MeshError, ImageError, BackendUnavailableError: the scene cannot be used.
    """
    if renderer is not None:
        same_output = {f: getattr(config, f) for f in _OUTPUT_OPTIONS}
        if replace(renderer.config, **same_output) != config:
            raise ValueError("export_dataset was given a renderer built for other render options.")
    renderer = renderer or DatasetRenderer(config)
    out = prepare_output(config)
    shard, shards = config.shard
    indices = range(shard, config.n, shards)
    data_yaml = out / "data.yaml"
    _atomic_write(data_yaml, data_yaml_text(out, renderer.class_names).encode())
    counts: Counter[str] = Counter()
    result = ExportResult(out, 0, len(indices), False, 0.0, data_yaml=data_yaml)
    firsts: list[RenderedImage] = []
    writer = _PairWriter(out)
    tuner = ThreadTuner(None, renderer.scene.device)
    t0 = time.perf_counter()
    try:
        for i in indices:
            if cancel is not None and cancel.is_set():
                result.cancelled = True
                break
            tuner.before_step()
            t_img = time.perf_counter()
            img = renderer.render(i)
            tuner.after_step(time.perf_counter() - t_img)
            writer.submit(img)
            result.written += 1
            result.splits[img.split] += 1
            counts.update(renderer.class_names[lab.class_id] for lab in img.labels)
            result.empty += not img.labels
            result.searched += img.focus is not None
            if len(firsts) < config.preview:
                firsts.append(img)
            if progress is not None:
                progress(result.written, len(indices))
    finally:
        writer.finish()
        result.seconds = time.perf_counter() - t0
        result.threads = tuner.threads
        result.threads_reason = tuner.reason or ("still measuring" if tuner.measuring else "")
    result.labels = {name: counts[name] for name in renderer.class_names}
    # Shard 0 holds image 0: its sheet is the first images of the merged set, and other shards
    # writing into the same folder do not fight over the file.
    if firsts and shard == 0 and not result.cancelled:
        result.preview = out / "preview.png"
        sheet = contact_sheet(firsts, renderer.class_names, config.task)
        tmp = out / ".preview.png.tmp"
        Image.fromarray(sheet).save(tmp, format="PNG")
        os.replace(tmp, result.preview)
    return result
