"""Dataset export on Ray: tasks render chunks of image indices, the driver writes the pairs.

Workers call the same functions as a local export (``encode_pair(renderer.render(i))`` from
:mod:`studio.data`: image i of a config is the same PNG and label text in any process) and send the
encoded bytes back, so they need no file system shared with the driver; the driver is the only writer and uses
the local export's atomic :func:`~studio.data.export.write_pair`.  A task whose worker dies is run
again (``max_retries``); since a chunk is a pure function of its indices, the retry returns the
same bytes and the driver writes each pair exactly once.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import replace
from typing import Any

from ..data.config import DatasetError, ExportConfig, ProgressCallback
from ..data.export import (EncodedPair, ExportResult, begin_export, encode_pair, renderer_for, write_pair,
                           write_preview)
from ..data.render import DatasetRenderer, RenderedImage
from .cluster import MAX_RETRIES, cluster_info, ray_session, task_error

log = logging.getLogger("studio")
# Chunks queued per task slot: enough to keep workers busy, few enough that results do not pile up.
_QUEUE_PER_SLOT = 2

# The renderer of the last config this worker process rendered (scene building costs seconds).
_worker_renderer: tuple[ExportConfig, DatasetRenderer] | None = None


def render_options(config: ExportConfig) -> ExportConfig:
    """``config`` with the output options at their defaults: what the images depend on."""
    d = ExportConfig()
    return replace(config, out=d.out, shard=d.shard, overwrite=False, preview=0, resume=False)


def render_chunk(config: ExportConfig, indices: list[int], keep: frozenset[int],
                 threads: int) -> list[tuple[EncodedPair, RenderedImage | None]]:
    """The Ray task body: encoded pairs of ``indices``, with the rendered image for those in
    ``keep`` (the driver's preview sheet).  ``threads``: torch CPU threads of this task."""
    import torch

    global _worker_renderer
    torch.set_num_threads(threads)
    if _worker_renderer is None or _worker_renderer[0] != config:
        _worker_renderer = (config, DatasetRenderer(config))
    renderer = _worker_renderer[1]
    out = []
    for i in indices:
        img = renderer.render(i)
        out.append((encode_pair(img), img if i in keep else None))
    return out


def export_dataset_ray(config: ExportConfig, *, address: str | None = None, chunk: int | None = None,
                       cpus_per_task: int = 1, gpus_per_task: float = 0.0,
                       progress: ProgressCallback | None = None, cancel: threading.Event | None = None,
                       max_retries: int = MAX_RETRIES, renderer: DatasetRenderer | None = None,
                       max_parallel: int | None = None) -> ExportResult:
    """Render and write a YOLO dataset with Ray tasks; the same files as :func:`studio.data.export_dataset`.

    Args:
        config: what to export (``shard`` and ``resume`` work as locally).
        address: the cluster (see :mod:`studio.scale.cluster`; None: ``RAY_ADDRESS`` or a local instance).
        chunk: images per task (default: about four tasks per CPU slot, at most 16 images).
        cpus_per_task: CPU slots, and torch threads, of each task.
        gpus_per_task: GPUs of each task (0: tasks render on CPUs; > 0 needs GPU nodes, and tasks
            render on CUDA), unless ``config.device`` says where.
        progress: called as ``progress(done, planned)`` after each pair the driver writes.
        cancel: set it to stop: queued and running tasks are cancelled, written pairs stay complete.
        max_retries: re-runs of a task whose worker died.
        renderer: the driver's renderer for ``config`` (class names, previews), else one is built.
        max_parallel: at most this many tasks at a time (None: every task slot of the cluster,
            with as many chunks again queued).

    Returns:
        An :class:`ExportResult` (``seconds``: wall time from the first task submitted to the last pair).

    Raises:
        DatasetError: bad options or output folder (before anything is written) or a failing task's
            user error; ScaleError: Ray missing or unreachable.
    """
    if chunk is not None and chunk < 1:
        raise DatasetError(f"--chunk must be at least 1 image per task, got {chunk}.")
    if cpus_per_task < 1:
        raise DatasetError(f"--cpus-per-task must be at least 1, got {cpus_per_task}.")
    if gpus_per_task < 0:
        raise DatasetError(f"--gpus-per-task must be 0 or more, got {gpus_per_task}.")
    renderer = renderer_for(config, renderer)  # bad options and scenes fail here, before Ray starts
    firsts: dict[int, RenderedImage] = {}
    with ray_session(address) as ray:
        info = cluster_info(ray)
        if gpus_per_task > 0 and info.gpus == 0:
            raise DatasetError(f"--gpus-per-task {gpus_per_task:g} asks for GPUs and the Ray cluster has none "
                               f"({info}); leave it out to render on CPUs.")
        out, indices, result = begin_export(config, renderer.class_names)
        keep = frozenset(indices[:config.preview])
        slots = max(1, info.cpus // cpus_per_task)
        if gpus_per_task > 0:
            slots = min(slots, max(1, math.floor(info.gpus / gpus_per_task)))
        if max_parallel is not None:
            slots = min(slots, max(1, max_parallel))
        size = chunk or max(1, min(16, math.ceil(len(indices) / (4 * slots))))
        in_flight = slots if max_parallel is not None else _QUEUE_PER_SLOT * slots
        chunks = [indices[k:k + size] for k in range(0, len(indices), size)]
        task = ray.remote(render_chunk).options(num_cpus=cpus_per_task, num_gpus=gpus_per_task,
                                                 max_retries=max_retries, retry_exceptions=False)
        if gpus_per_task == 0 and info.gpus:
            log.info("the Ray cluster has %d GPUs; --gpus-per-task 0.25 (say) would render on them", info.gpus)
        # Tasks without a GPU of their own render on the CPU, even on a node that has one.
        device = config.device or ("cuda" if gpus_per_task > 0 else "cpu")
        cfg = ray.put(replace(render_options(config), device=device))
        queued: list[Any] = []
        t0 = time.perf_counter()
        try:
            while chunks or queued:
                while chunks and len(queued) < in_flight:
                    part = chunks.pop(0)
                    queued.append(task.remote(cfg, part, keep & frozenset(part), cpus_per_task))
                ready, queued = ray.wait(queued, num_returns=1, timeout=0.25)
                if cancel is not None and cancel.is_set():
                    result.cancelled = True
                    break
                for ref in ready:
                    try:
                        pairs = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:
                        raise task_error(ray, exc) from None
                    for pair, img in pairs:
                        write_pair(out, pair)
                        result.count(pair.split, renderer.class_names, pair.class_ids, pair.searched)
                        if img is not None:
                            firsts[pair.index] = img
                        if progress is not None:
                            progress(result.written, len(indices))
        finally:
            for ref in queued:
                ray.cancel(ref, force=True)
            result.seconds = time.perf_counter() - t0
            if device == "cpu":
                result.threads, result.threads_reason = cpus_per_task, "per Ray task, --cpus-per-task"
    if firsts and config.shard[0] == 0 and not result.cancelled:
        result.preview = write_preview(out, [firsts[i] for i in sorted(firsts)], renderer.class_names, config.task)
    return result
