"""Write a YOLO dataset: images, labels, ``data.yaml`` and a preview, safely and in shards.

Layout of ``out`` (Ultralytics' format; ``model.train(data="out/data.yaml")``)::

    images/train/000000.png  labels/train/000000.txt   one label line per visible object
    images/val/000004.png    labels/val/000004.txt     (empty file: nothing labelled in view)
    data.yaml                path, train, val, names (index -> class name)
    preview.png              contact sheet of the first images with their labels drawn

Every image and its label are written under temporary names and renamed, label first: a run that
is cancelled, fails or is killed leaves only complete pairs (at worst, after a hard kill, one label
without its image, which Ultralytics ignores).  File names are the global image index, so shards
(``shard=(I, K)``: images i with i % K == I) never collide and merge by copying folders, and
``resume`` renders only the indices whose pair is not complete yet.

Image i, encoded, is a pure function of the render options and i (``encode_pair(renderer.render(i))``:
PNG bytes and label text) and :func:`write_pair` is the one atomic writer.  This module's loop
(encoding and writing on a background thread) and the Ray driver (:mod:`studio.scale.export`:
workers encode, the driver writes) both call them, so their datasets agree file by file.
"""

from __future__ import annotations

import io
import json
import os
import re
import tempfile
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

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
_OUTPUT_OPTIONS = ("out", "shard", "overwrite", "preview", "resume")
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

    def count(self, split: str, class_names: list[str], class_ids: Sequence[int], searched: bool) -> None:
        """Add one written image (its split, its labels' class indices, whether it was searched)."""
        self.written += 1
        self.splits[split] += 1
        for c in class_ids:
            self.labels[class_names[c]] = self.labels.get(class_names[c], 0) + 1
        self.empty += not class_ids
        self.searched += searched


@dataclass(frozen=True)
class EncodedPair:
    """One dataset image as the two files it becomes (what a remote worker sends back).

    Attributes:
        index: global image index.
        name: file stem, unique over the dataset.
        split: "train" or "val".
        png: the PNG file's bytes (sRGB, top row first).
        label: the label file's text (one YOLO line per visible object, each ending in a newline).
        class_ids: class index of each label line.
        searched: the image went through the hard-case search.
    """

    index: int
    name: str
    split: str
    png: bytes
    label: str
    class_ids: tuple[int, ...]
    searched: bool


def encode_pair(img: RenderedImage) -> EncodedPair:
    """The files of a rendered image: PNG bytes (zlib level ``PNG_COMPRESS_LEVEL``) and label text.

    ``encode_pair(DatasetRenderer(config).render(i))`` is a pure function of the render options
    and ``i``: every process that builds a renderer from the same config returns the same pair.
    """
    buf = io.BytesIO()
    Image.fromarray(img.rgb).save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return EncodedPair(img.index, img.name, img.split, buf.getvalue(), "".join(line + "\n" for line in img.lines),
                       tuple(lab.class_id for lab in img.labels), img.focus is not None)


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


def write_pair(out: Path, pair: EncodedPair) -> None:
    """Write one pair into the dataset folder ``out``: label, then image, each under a temporary
    name first (see the module docstring)."""
    label = out / "labels" / pair.split / f"{pair.name}.txt"
    image = out / "images" / pair.split / f"{pair.name}.png"
    tmp_label = label.with_name(f".{label.name}.tmp")
    tmp_image = image.with_name(f".{image.name}.tmp")
    try:
        tmp_label.write_bytes(pair.label.encode())
        tmp_image.write_bytes(pair.png)
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
    what other shards of the same dataset wrote; ``overwrite`` deletes only this shard's files.  With
    ``resume`` the folder may hold this export's own files (an interrupted run's pairs).

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
    if (ours or others) and not config.overwrite and not (config.resume and not others):
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


def pending_indices(out: Path, config: ExportConfig) -> list[int]:
    """Image indices this run renders: this shard's, less (with ``resume``) those whose image and
    label are both in ``out`` already (the image is renamed last, so its presence means the pair
    is complete)."""
    shard, shards = config.shard
    indices = range(shard, config.n, shards)
    if not config.resume:
        return list(indices)
    done = {int(p.stem) for split in SPLITS for p in (out / "images" / split).glob("*.png")
            if p.stem.isdigit() and len(p.stem) == config.name_width
            and (out / "labels" / split / f"{p.stem}.txt").exists()}
    return [i for i in indices if i not in done]


def renderer_for(config: ExportConfig, renderer: DatasetRenderer | None = None) -> DatasetRenderer:
    """``renderer`` after checking it was built for ``config``'s render options, else a new one."""
    if renderer is None:
        return DatasetRenderer(config)
    same_output = {f: getattr(config, f) for f in _OUTPUT_OPTIONS}
    if replace(renderer.config, **same_output) != config:
        raise ValueError("export_dataset was given a renderer built for other render options.")
    return renderer


def begin_export(config: ExportConfig, class_names: list[str]) -> tuple[Path, list[int], ExportResult]:
    """Prepare the output folder, write ``data.yaml`` and list the indices to render.

    Returns:
        (output folder, image indices this run renders, an empty :class:`ExportResult` for them).

    Raises:
        DatasetError: see :func:`prepare_output`.
    """
    out = prepare_output(config)
    indices = pending_indices(out, config)
    data_yaml = out / "data.yaml"
    _atomic_write(data_yaml, data_yaml_text(out, class_names).encode())
    return out, indices, ExportResult(out, 0, len(indices), False, 0.0, labels=dict.fromkeys(class_names, 0),
                                      data_yaml=data_yaml)


def write_preview(out: Path, images: list[RenderedImage], class_names: list[str], task: str) -> Path:
    """``preview.png``: the contact sheet of ``images``, written atomically."""
    path = out / "preview.png"
    tmp = out / ".preview.png.tmp"
    Image.fromarray(contact_sheet(images, class_names, task)).save(tmp, format="PNG")
    os.replace(tmp, path)
    return path


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
            write_pair(self.out, encode_pair(img))
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
    renderer = renderer_for(config, renderer)
    out, indices, result = begin_export(config, renderer.class_names)
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
            result.count(img.split, renderer.class_names, [lab.class_id for lab in img.labels], img.focus is not None)
            if len(firsts) < config.preview:
                firsts.append(img)
            if progress is not None:
                progress(result.written, len(indices))
    finally:
        writer.finish()
        result.seconds = time.perf_counter() - t0
        result.threads = tuner.threads
        result.threads_reason = tuner.reason or ("still measuring" if tuner.measuring else "")
    # Shard 0 holds image 0: its sheet is the first images of the merged set, and other shards
    # writing into the same folder do not fight over the file.
    if firsts and config.shard[0] == 0 and not result.cancelled:
        result.preview = write_preview(out, firsts, renderer.class_names, config.task)
    return result
