"""Camera maths: OpenGL-style projection, look-at / orbit / quaternion poses, clip transforms.

Conventions: right-handed world, camera looks down its -z axis with +y up (OpenGL).  Matrices
act on column vectors (``clip = P @ V @ M @ [x, y, z, 1]``).  Angles are in degrees at the public
API, quaternions are (w, x, y, z).  Everything is differentiable torch arithmetic, so camera
parameters can be optimised.
"""

from __future__ import annotations

import math

import torch


def perspective(fov_y_deg: float | torch.Tensor, aspect: float = 1.0, near: float = 0.1, far: float = 100.0,
                *, device: torch.device | str | None = None) -> torch.Tensor:
    """OpenGL perspective projection [4,4]: eye space -> clip space, depth mapped to [-1, 1].

    Args:
        fov_y_deg: vertical field of view in degrees (a tensor keeps it differentiable).
        aspect: width / height.
        near, far: positive clip distances in scene units.
    """
    fov = torch.as_tensor(fov_y_deg, dtype=torch.float32, device=device)
    f = 1.0 / torch.tan(torch.deg2rad(fov) / 2)
    zero = torch.zeros_like(f)
    one = torch.ones_like(f)
    a = -(far + near) / (far - near)
    b = -2.0 * far * near / (far - near)
    rows = [
        torch.stack([f / aspect, zero, zero, zero]),
        torch.stack([zero, f, zero, zero]),
        torch.stack([zero, zero, a * one, b * one]),
        torch.stack([zero, zero, -one, zero]),
    ]
    return torch.stack(rows)


def look_at(eye: torch.Tensor, target: torch.Tensor | None = None, up: torch.Tensor | None = None) -> torch.Tensor:
    """World-to-camera (view) matrix [4,4] for a camera at ``eye`` looking at ``target``.

    Args:
        eye: [3] camera position in world units.
        target: [3] point looked at (default origin).
        up: [3] approximate up direction (default +y); must not be parallel to the view axis.
    """
    eye = torch.as_tensor(eye, dtype=torch.float32)
    target = torch.zeros(3, dtype=eye.dtype, device=eye.device) if target is None else torch.as_tensor(target, dtype=eye.dtype, device=eye.device)
    up = torch.tensor([0.0, 1.0, 0.0], dtype=eye.dtype, device=eye.device) if up is None else torch.as_tensor(up, dtype=eye.dtype, device=eye.device)
    back = eye - target
    back = back / back.norm()
    right = torch.linalg.cross(up, back)
    right = right / right.norm().clamp(min=1e-12)
    true_up = torch.linalg.cross(back, right)
    rot = torch.stack([right, true_up, back])  # rows: camera axes in world coordinates
    trans = -(rot @ eye)
    top = torch.cat([rot, trans.unsqueeze(1)], 1)
    bottom = torch.tensor([[0.0, 0.0, 0.0, 1.0]], dtype=eye.dtype, device=eye.device)
    return torch.cat([top, bottom], 0)


def orbit_eye(azimuth_deg: float | torch.Tensor, elevation_deg: float | torch.Tensor,
              distance: float | torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
    """Camera position [3] on a sphere around ``target``.

    Azimuth 0 looks from +z towards the origin, positive azimuth turns towards +x; elevation is
    the angle above the xz-plane.
    """
    az = torch.deg2rad(torch.as_tensor(azimuth_deg, dtype=torch.float32))
    el = torch.deg2rad(torch.as_tensor(elevation_deg, dtype=torch.float32))
    d = torch.as_tensor(distance, dtype=torch.float32)
    eye = d * torch.stack([torch.cos(el) * torch.sin(az), torch.sin(el), torch.cos(el) * torch.cos(az)])
    return eye if target is None else eye + torch.as_tensor(target, dtype=eye.dtype)


def quaternion_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """Rotation matrices [...,3,3] from quaternions [...,4] = (w, x, y, z); normalised first."""
    q = q / q.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    w, x, y, z = q.unbind(-1)
    m = torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], -1)
    return m.reshape(q.shape[:-1] + (3, 3))


def rotation_angle_deg(r_a: torch.Tensor, r_b: torch.Tensor) -> torch.Tensor:
    """Angle in degrees of the relative rotation between [...,3,3] rotation matrices."""
    rel = r_a.double().transpose(-1, -2) @ r_b.double()
    cos = ((rel.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1.0, 1.0)
    return torch.rad2deg(torch.acos(cos))


def axis_angle_to_quaternion(axis: torch.Tensor, angle_deg: float | torch.Tensor) -> torch.Tensor:
    """Quaternion (w, x, y, z) [4] for a rotation of ``angle_deg`` about ``axis`` [3]."""
    axis = torch.as_tensor(axis, dtype=torch.float32)
    axis = axis / axis.norm()
    half = math.pi / 360.0 * torch.as_tensor(angle_deg, dtype=torch.float32)
    return torch.cat([torch.cos(half).reshape(1), torch.sin(half) * axis])


def to_clip(points: torch.Tensor, mvp: torch.Tensor) -> torch.Tensor:
    """Transform [V,3] points by [4,4] or [B,4,4] matrices into clip space [B,V,4] (B=1 for [4,4])."""
    ph = torch.cat([points, torch.ones_like(points[:, :1])], 1)
    if mvp.dim() == 2:
        mvp = mvp.unsqueeze(0)
    return ph.unsqueeze(0) @ mvp.transpose(-1, -2)
