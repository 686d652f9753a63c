"""Camera conventions of capture files, converted in one place (readers and writers share it).

- OpenGL camera axes (studio, NeRF ``transform_matrix``): x right, y up, looking down -z.
- OpenCV camera axes (COLMAP): x right, y down, looking down +z.  The two differ by negating the
  camera's y and z axes, i.e. ``R_gl = R_cv @ diag(1, -1, -1)`` for the camera-to-world rotation.
- COLMAP stores world-to-camera poses as a unit quaternion (qw, qx, qy, qz) and a translation t:
  ``x_cam = R(q) @ x_world + t``.
- Pixels: the centre of the top-left pixel is at (0.5, 0.5) (COLMAP's and the studio's
  convention), so a principal point of (W/2, H/2) is the image centre.

Everything here is float64 numpy: the conversions are exact bookkeeping, done once at the edge.
"""

from __future__ import annotations

import math

import numpy as np

#: Multiplying a camera-to-world matrix on the right by this swaps OpenGL and OpenCV camera axes.
GL_FROM_CV = np.diag([1.0, -1.0, -1.0, 1.0])


def opencv_to_opengl_c2w(world_to_cam_cv: np.ndarray) -> np.ndarray:
    """[4,4] world-to-camera pose in OpenCV axes -> [4,4] camera-to-world in OpenGL axes."""
    return np.linalg.inv(np.asarray(world_to_cam_cv, dtype=np.float64)) @ GL_FROM_CV


def opengl_c2w_to_opencv(cam_to_world_gl: np.ndarray) -> np.ndarray:
    """[4,4] camera-to-world in OpenGL axes -> [4,4] world-to-camera pose in OpenCV axes."""
    return np.linalg.inv(np.asarray(cam_to_world_gl, dtype=np.float64) @ GL_FROM_CV)


def qvec_to_rotation(q: np.ndarray) -> np.ndarray:
    """[3,3] rotation matrix of the quaternion (w, x, y, z) (normalised first)."""
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def rotation_to_qvec(r: np.ndarray) -> np.ndarray:
    """Unit quaternion (w, x, y, z) [4] of a [3,3] rotation, with w >= 0 (Shepperd's method:
    the largest of the four squared components is taken from the diagonal, which keeps it stable)."""
    r = np.asarray(r, dtype=np.float64)
    t = np.trace(r)
    diag = (t, r[0, 0], r[1, 1], r[2, 2])
    k = int(np.argmax(diag))
    if k == 0:
        s = 2.0 * math.sqrt(1.0 + t)
        q = [s / 4, (r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s]
    elif k == 1:
        s = 2.0 * math.sqrt(1.0 + r[0, 0] - r[1, 1] - r[2, 2])
        q = [(r[2, 1] - r[1, 2]) / s, s / 4, (r[0, 1] + r[1, 0]) / s, (r[0, 2] + r[2, 0]) / s]
    elif k == 2:
        s = 2.0 * math.sqrt(1.0 - r[0, 0] + r[1, 1] - r[2, 2])
        q = [(r[0, 2] - r[2, 0]) / s, (r[0, 1] + r[1, 0]) / s, s / 4, (r[1, 2] + r[2, 1]) / s]
    else:
        s = 2.0 * math.sqrt(1.0 - r[0, 0] - r[1, 1] + r[2, 2])
        q = [(r[1, 0] - r[0, 1]) / s, (r[0, 2] + r[2, 0]) / s, (r[1, 2] + r[2, 1]) / s, s / 4]
    q = np.asarray(q)
    return q if q[0] >= 0 else -q


def colmap_pose_to_c2w(qvec: np.ndarray, tvec: np.ndarray) -> np.ndarray:
    """COLMAP's world-to-camera (qvec (w,x,y,z), tvec [3]) -> [4,4] OpenGL camera-to-world."""
    w2c = np.eye(4)
    w2c[:3, :3] = qvec_to_rotation(qvec)
    w2c[:3, 3] = tvec
    return opencv_to_opengl_c2w(w2c)


def c2w_to_colmap_pose(cam_to_world_gl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[4,4] OpenGL camera-to-world -> COLMAP's (qvec (w,x,y,z) [4], tvec [3])."""
    w2c = opengl_c2w_to_opencv(cam_to_world_gl)
    return rotation_to_qvec(w2c[:3, :3]), w2c[:3, 3].copy()


def focal_from_fov(fov_rad: float, size: float) -> float:
    """Focal length in pixels of a field of view ``fov_rad`` across ``size`` pixels."""
    return 0.5 * size / math.tan(0.5 * fov_rad)


def fov_from_focal(focal: float, size: float) -> float:
    """Field of view in radians across ``size`` pixels for a focal length in pixels."""
    return 2.0 * math.atan(0.5 * size / focal)
