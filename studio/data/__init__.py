"""Synthetic dataset export: randomised renders of a scene with occlusion-aware YOLO labels.

    from studio.data import ExportConfig, export_dataset

    result = export_dataset(ExportConfig(scene="objects", n=1000, out="data/objects"),
                            progress=lambda done, total: ..., cancel=threading.Event())

``studio export-dataset`` (:mod:`studio.data.cli`) is the command-line front end; a GUI dialog
fills an :class:`ExportConfig` the same way and runs :func:`export_dataset` on a worker thread.
:class:`DatasetRenderer` renders single images in memory (for previews) without writing files.
"""

from .config import DatasetError, ExportConfig, parse_shard
from .export import ExportResult, export_dataset
from .render import DatasetRenderer, RenderedImage

__all__ = ["DatasetError", "DatasetRenderer", "ExportConfig", "ExportResult", "RenderedImage", "export_dataset",
           "parse_shard"]
