"""Labels from an id buffer (studio.data.labels): boxes, thresholds, YOLO lines."""

from __future__ import annotations

import numpy as np

from studio.data.labels import visible_objects, yolo_lines


def id_buffer() -> np.ndarray:
    ids = np.full((40, 60), -1, dtype=np.int32)
    ids[5:15, 10:30] = 0  # 200 px
    ids[20:22, 40:45] = 1  # 10 px: below a 20 px threshold
    ids[30:40, 50:60] = 2  # touches the bottom-right corner
    ids[8:12, 20:25] = 2  # a second, separate part of object 2 (in front of object 0)
    return ids


def test_boxes_counts_and_threshold():
    labels = visible_objects(id_buffer(), [0, 1, 1], min_pixels=20)
    assert [lab.object_index for lab in labels] == [0, 2]
    a, c = labels
    assert a.box == (10, 5, 30, 15) and a.pixels == 200 - 20
    assert c.box == (20, 8, 60, 40) and c.pixels == 100 + 20 and c.class_id == 1


def test_unlabelled_scenery_gets_no_line_and_hidden_objects_none():
    labels = visible_objects(id_buffer(), [None, 0, 1, 0], min_pixels=1)
    assert [lab.object_index for lab in labels] == [1, 2]  # object 3 has no pixel at all


def test_detect_lines_are_normalised_boxes():
    ids = id_buffer()
    lines = yolo_lines(visible_objects(ids, [0, 1, 2], 20), 60, 40, "detect")
    assert lines[0] == "0 0.333333 0.250000 0.333333 0.250000"
    for line in lines:
        values = [float(v) for v in line.split()[1:]]
        assert len(values) == 4 and all(0.0 <= v <= 1.0 for v in values)


def test_segment_lines_hold_one_polygon_inside_the_box():
    ids = id_buffer()
    labels = visible_objects(ids, [0, 1, 2], 20, polygons=True)
    for lab, line in zip(labels, yolo_lines(labels, 60, 40, "segment")):
        cls, *coords = line.split()
        xy = np.array(coords, dtype=float).reshape(-1, 2)
        assert int(cls) == lab.class_id and len(xy) >= 3
        x0, y0, x1, y1 = lab.box
        assert (xy[:, 0] >= x0 / 60 - 1e-6).all() and (xy[:, 0] <= x1 / 60 + 1e-6).all()
        assert (xy[:, 1] >= y0 / 40 - 1e-6).all() and (xy[:, 1] <= y1 / 40 + 1e-6).all()
