"""Labels from what is visible: per-object pixel counts, boxes and polygons from an object-id buffer,
and their YOLO text lines.

The id buffer is the renderer's ``gbuffer.object_id`` of one image ([H,W], index into the scene's
objects, -1 for background, top row first), so an object hidden behind another, or outside the
frame, has no pixels and gets no label.  Boxes and polygons are in pixel-corner coordinates (pixel
(r, c) covers [c, c+1] x [r, r+1]); YOLO lines divide them by the image width and height.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .contours import mask_polygon

#: Douglas-Peucker tolerance of segmentation polygons, pixels: keeps the outline within one pixel
#: of the mask while dropping the staircase points of slanted edges.
POLYGON_EPSILON = 1.0


@dataclass(frozen=True)
class ObjectLabel:
    """One visible object in one image.

    Attributes:
        object_index: index into the scene's objects.
        class_id: YOLO class index (position of the class name in the dataset's names).
        pixels: number of pixels showing the object.
        box: (x0, y0, x1, y1) pixel edges of its visible pixels, x1 and y1 exclusive.
        polygon: [N,2] (x, y) pixel-corner outline of its visible pixels (segment task), else None.
    """

    object_index: int
    class_id: int
    pixels: int
    box: tuple[int, int, int, int]
    polygon: np.ndarray | None = None


def visible_objects(object_id: np.ndarray, class_ids: list[int | None], min_pixels: int,
                    polygons: bool = False) -> list[ObjectLabel]:
    """Labels of the objects with at least ``min_pixels`` visible pixels, in object order.

    Args:
        object_id: [H,W] integer object index per pixel, -1 for background.
        class_ids: class index of every scene object, None for unlabelled scenery.
        min_pixels: objects showing fewer pixels get no label.
        polygons: also trace each object's outline (for the segment task).
    """
    counts = np.bincount(object_id[object_id >= 0].ravel(), minlength=len(class_ids))
    labels = []
    for k, cls in enumerate(class_ids):
        if cls is None or counts[k] < max(min_pixels, 1):
            continue
        mask = object_id == k
        rows = np.flatnonzero(mask.any(1))
        cols = np.flatnonzero(mask.any(0))
        box = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
        poly = mask_polygon(mask, POLYGON_EPSILON) if polygons else None
        labels.append(ObjectLabel(k, cls, int(counts[k]), box, poly))
    return labels


def yolo_lines(labels: list[ObjectLabel], width: int, height: int, task: str) -> list[str]:
    """YOLO label lines, coordinates normalised to [0, 1] with 6 decimals.

    ``detect``: ``class cx cy w h``; ``segment``: ``class x1 y1 x2 y2 ...`` (one polygon per
    object, every visible part joined, see :func:`studio.data.contours.merge_rings`).
    """
    lines = []
    for lab in labels:
        if task == "segment":
            xy = lab.polygon / np.array([width, height], dtype=np.float64)
            lines.append(f"{lab.class_id} " + " ".join(f"{v:.6f}" for v in xy.ravel()))
        else:
            x0, y0, x1, y1 = lab.box
            lines.append(f"{lab.class_id} {(x0 + x1) / 2 / width:.6f} {(y0 + y1) / 2 / height:.6f} "
                         f"{(x1 - x0) / width:.6f} {(y1 - y0) / height:.6f}")
    return lines
