"""COLMAP's model files, text and binary, parsed into plain records (and written back).

Formats as documented by COLMAP ("Output format"):

- ``cameras``: CAMERA_ID MODEL WIDTH HEIGHT PARAMS[] (binary: int32 id, int32 model id,
  uint64 width, uint64 height, float64 params);
- ``images``: IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME, then a line of POINTS2D[] as
  (X, Y, POINT3D_ID) (binary: uint32 id, 7 float64, uint32 camera id, NUL-terminated name,
  uint64 count, count x (float64, float64, int64));
- ``points3D``: POINT3D_ID X Y Z R G B ERROR TRACK[] as (IMAGE_ID, POINT2D_IDX) (binary: uint64
  id, 3 float64, 3 uint8, float64 error, uint64 track length, length x (int32, int32)).

All binary values are little-endian.  The pose (q, t) maps world to camera in OpenCV axes.
"""

from __future__ import annotations

import struct
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import CaptureError

#: COLMAP's camera model ids: name and number of parameters.
CAMERA_MODELS: dict[int, tuple[str, int]] = {
    0: ("SIMPLE_PINHOLE", 3), 1: ("PINHOLE", 4), 2: ("SIMPLE_RADIAL", 4), 3: ("RADIAL", 5), 4: ("OPENCV", 8),
    5: ("OPENCV_FISHEYE", 8), 6: ("FULL_OPENCV", 12), 7: ("FOV", 5), 8: ("SIMPLE_RADIAL_FISHEYE", 4),
    9: ("RADIAL_FISHEYE", 5), 10: ("THIN_PRISM_FISHEYE", 12), 11: ("RAD_TAN_THIN_PRISM_FISHEYE", 16),
}
MODEL_IDS = {name: (i, n) for i, (name, n) in CAMERA_MODELS.items()}


@dataclass(frozen=True)
class ColmapCamera:
    id: int
    model: str
    width: int
    height: int
    params: tuple[float, ...]


@dataclass(frozen=True)
class ColmapImage:
    id: int
    qvec: np.ndarray  # [4] (w, x, y, z), world -> camera
    tvec: np.ndarray  # [3]
    camera_id: int
    name: str


@dataclass(frozen=True)
class ColmapModel:
    cameras: dict[int, ColmapCamera]
    images: list[ColmapImage]
    points: np.ndarray | None  # [P,3] float64
    colors: np.ndarray | None  # [P,3] uint8


def model_format(folder: Path) -> str | None:
    """"txt" or "bin" when ``folder`` holds a COLMAP model (cameras and images files), else None."""
    for ext in ("bin", "txt"):
        if (folder / f"cameras.{ext}").is_file() and (folder / f"images.{ext}").is_file():
            return ext
    return None


def read_model(folder: Path) -> ColmapModel:
    """The cameras, images and (if present) points of a COLMAP model folder.

    Raises:
        CaptureError: missing, truncated or malformed files, or an unknown camera model.
    """
    ext = model_format(folder)
    if ext is None:
        raise CaptureError(f"{folder} is not a COLMAP model (it needs cameras.txt and images.txt, or the .bin "
                           "files); point at the model folder, e.g. sparse/0.")
    readers = {"txt": (_cameras_txt, _images_txt, _points_txt), "bin": (_cameras_bin, _images_bin, _points_bin)}[ext]
    parsed = []
    for reader, stem in zip(readers, ("cameras", "images", "points3D")):
        path = folder / f"{stem}.{ext}"
        if stem == "points3D" and not path.is_file():
            parsed.append((None, None))
            continue
        try:
            parsed.append(reader(path))
        except CaptureError:
            raise
        except (ValueError, IndexError, struct.error, UnicodeDecodeError) as exc:
            kind = "truncated or corrupt" if ext == "bin" else "malformed"
            detail = "it ends in the middle of a record" if isinstance(exc, struct.error) else \
                textwrap.shorten(f"{exc.__class__.__name__}: {exc}", 90)
            raise CaptureError(f"COLMAP file {path} is {kind} ({detail}); export the model again "
                               "(colmap model_converter).") from None
        except OSError as exc:
            raise CaptureError(f"COLMAP file {path} cannot be read ({exc.strerror or exc}); check the file.") from None
    cameras, images, (points, colors) = parsed
    return ColmapModel(cameras, images, points, colors)


def _camera(path: Path, cam_id: int, model: str, width: int, height: int, params: list[float]) -> ColmapCamera:
    if model not in MODEL_IDS:
        raise CaptureError(f"COLMAP file {path}: camera {cam_id} has the unknown model {model!r}; "
                           "use PINHOLE or SIMPLE_PINHOLE (colmap image_undistorter writes those).")
    n = MODEL_IDS[model][1]
    if len(params) != n:
        raise CaptureError(f"COLMAP file {path}: camera {cam_id} ({model}) has {len(params)} parameters, not {n}; "
                           "export the model again.")
    return ColmapCamera(cam_id, model, width, height, tuple(params))


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _cameras_txt(path: Path) -> dict[int, ColmapCamera]:
    cams = {}
    for line in _lines(path):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        tok = line.split()
        cams[int(tok[0])] = _camera(path, int(tok[0]), tok[1], int(tok[2]), int(tok[3]), [float(t) for t in tok[4:]])
    return cams


def _images_txt(path: Path) -> list[ColmapImage]:
    images = []
    lines = _lines(path)
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        tok = line.split(maxsplit=9)
        if len(tok) < 10:
            raise ValueError(f"line {i} has {len(tok)} fields, expected IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME")
        images.append(ColmapImage(int(tok[0]), np.array([float(t) for t in tok[1:5]]),
                                  np.array([float(t) for t in tok[5:8]]), int(tok[8]), tok[9].strip()))
        i += 1  # the POINTS2D line that follows every image line (possibly empty)
    return images


def _points_txt(path: Path) -> tuple[np.ndarray, np.ndarray]:
    xyz, rgb = [], []
    for line in _lines(path):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        tok = line.split()
        xyz.append([float(t) for t in tok[1:4]])
        rgb.append([int(t) for t in tok[4:7]])
    return np.array(xyz, dtype=np.float64).reshape(-1, 3), np.array(rgb, dtype=np.uint8).reshape(-1, 3)


class _Cursor:
    """Little-endian reads from a byte buffer; running past the end raises struct.error."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def read(self, fmt: str) -> tuple:
        out = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return out

    def skip(self, n: int) -> None:
        if self.pos + n > len(self.data):
            raise struct.error(f"needs {n} more bytes at offset {self.pos}, the file ends at {len(self.data)}")
        self.pos += n

    def name(self) -> str:
        end = self.data.index(b"\0", self.pos)
        out = self.data[self.pos:end].decode("utf-8")
        self.pos = end + 1
        return out

    def done(self) -> None:
        if self.pos != len(self.data):
            raise ValueError(f"{len(self.data) - self.pos} bytes left over after the last record")


def _cameras_bin(path: Path) -> dict[int, ColmapCamera]:
    c = _Cursor(path.read_bytes())
    cams = {}
    for _ in range(c.read("Q")[0]):
        cam_id, model_id, width, height = c.read("iiQQ")
        if model_id not in CAMERA_MODELS:
            raise CaptureError(f"COLMAP file {path}: camera {cam_id} has the unknown model id {model_id}; "
                               "use PINHOLE or SIMPLE_PINHOLE (colmap image_undistorter writes those).")
        name, n = CAMERA_MODELS[model_id]
        cams[cam_id] = _camera(path, cam_id, name, width, height, list(c.read(f"{n}d")))
    c.done()
    return cams


def _images_bin(path: Path) -> list[ColmapImage]:
    c = _Cursor(path.read_bytes())
    images = []
    for _ in range(c.read("Q")[0]):
        image_id, *pose, cam_id = c.read("I7dI")
        name = c.name()
        c.skip(24 * c.read("Q")[0])  # 2D points: x, y (float64) and point3D id (int64)
        images.append(ColmapImage(image_id, np.array(pose[:4]), np.array(pose[4:]), cam_id, name))
    c.done()
    return images


def _points_bin(path: Path) -> tuple[np.ndarray, np.ndarray]:
    c = _Cursor(path.read_bytes())
    xyz, rgb = [], []
    for _ in range(c.read("Q")[0]):
        _, x, y, z, r, g, b, _err = c.read("Q3d3Bd")
        xyz.append((x, y, z))
        rgb.append((r, g, b))
        c.skip(8 * c.read("Q")[0])  # track: image id, point2D index (int32 each)
    c.done()
    return np.array(xyz, dtype=np.float64).reshape(-1, 3), np.array(rgb, dtype=np.uint8).reshape(-1, 3)


# ------------------------------------------------------------------------------------ writing


def write_model(folder: Path, model: ColmapModel, binary: bool = False) -> None:
    """Write ``model`` as cameras/images/points3D ``.txt`` (or ``.bin``) files in ``folder``.
    Images get no 2D points and points no tracks (valid COLMAP, as after a triangulation-free export)."""
    folder.mkdir(parents=True, exist_ok=True)
    points = np.zeros((0, 3)) if model.points is None else model.points
    colors = np.full((len(points), 3), 128, np.uint8) if model.colors is None else model.colors
    if binary:
        cams = [struct.pack("<Q", len(model.cameras))]
        for cam in model.cameras.values():
            cams.append(struct.pack(f"<iiQQ{len(cam.params)}d", cam.id, MODEL_IDS[cam.model][0], cam.width,
                                    cam.height, *cam.params))
        imgs = [struct.pack("<Q", len(model.images))]
        for im in model.images:
            imgs.append(struct.pack("<I7dI", im.id, *im.qvec, *im.tvec, im.camera_id) + im.name.encode() + b"\0"
                        + struct.pack("<Q", 0))
        pts = [struct.pack("<Q", len(points))]
        for k, (p, col) in enumerate(zip(points, colors)):
            pts.append(struct.pack("<Q3d3BdQ", k + 1, *p, *(int(x) for x in col), 0.0, 0))
        for stem, parts in (("cameras", cams), ("images", imgs), ("points3D", pts)):
            (folder / f"{stem}.bin").write_bytes(b"".join(parts))
        return
    cam_lines = ["# Camera list with one line of data per camera:", "#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]"]
    cam_lines += [f"{c.id} {c.model} {c.width} {c.height} " + " ".join(repr(float(p)) for p in c.params)
                  for c in model.cameras.values()]
    img_lines = ["# Image list with two lines of data per image:",
                 "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME", "#   POINTS2D[] as (X, Y, POINT3D_ID)"]
    for im in model.images:
        img_lines += [" ".join([str(im.id), *(repr(float(x)) for x in (*im.qvec, *im.tvec)), str(im.camera_id),
                                im.name]), ""]
    pt_lines = ["# 3D point list with one line of data per point:",
                "#   POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)"]
    pt_lines += [f"{k + 1} {p[0]!r} {p[1]!r} {p[2]!r} {col[0]} {col[1]} {col[2]} 0.0"
                 for k, (p, col) in enumerate(zip(points.tolist(), colors.tolist()))]
    for stem, lines in (("cameras", cam_lines), ("images", img_lines), ("points3D", pt_lines)):
        (folder / f"{stem}.txt").write_text("\n".join(lines) + "\n")
