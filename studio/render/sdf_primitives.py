"""Signed distance functions with torch parameters, smooth CSG, and the model that evaluates them.

A model is a small tree: primitives (sphere, box, rounded box, torus, capsule, cylinder, plane,
optionally a neural SDF) combined by :class:`Union`, :class:`Intersection` and
:class:`Subtraction`, each with a smoothness ``k`` (scene units; ``k = 0`` is the hard operation).
:class:`SDFModel` wraps the tree and evaluates, for points [N,3] in one vectorised pass per
primitive:

- the signed distance f(x) [N] (negative inside),
- the surface colour [N,3] (per-primitive colours blended with the same weights as the smooth
  min/max),
- the dominant primitive's index [N] (int64, depth-first order of the tree).

Parameters are held by reference, so a tensor created with ``requires_grad=True`` and given to a
primitive receives gradients from everything rendered with it.  Numbers and sequences are turned
into float32 tensors.  Internally points are three separate [N] tensors (x, y, z): every op runs
over contiguous memory, and autograd never scatters gradients of row selections back into [3,N]
buffers.  The public methods take [N,3]; frozen (no-grad) parameters are 0-dim tensors of the
rays' dtype, so the tracer's ops are plain kernels without scalar conversions.

Distance functions follow the well-known exact formulas (Inigo Quilez's catalogue of distance
functions); the smooth min is the polynomial one, written in a form that has no division by zero
at ``k = 0``.
"""

from __future__ import annotations

import math
from typing import Iterable, Iterator, Sequence

import torch

from .backend import RenderInputError

Tensor = torch.Tensor
# Smallest k used as a divisor; below it the operations are the hard ones (selected by torch.where,
# so the unused branch contributes exact zeros to gradients).
_K_TINY = 1e-12

DEFAULT_COLOUR = (0.8, 0.8, 0.8)


# --------------------------------------------------------------------------------------------- utils


def _as_param(owner: str, name: str, value: object, shape: tuple[int, ...]) -> Tensor:
    """A tensor parameter of the given shape (scalars may be 0-dim or [1]); kept by reference."""
    if isinstance(value, torch.Tensor):
        t = value
        if not t.is_floating_point():
            raise RenderInputError(f"{owner} {name} must be a floating-point tensor, got dtype {t.dtype}.")
    else:
        try:
            t = torch.tensor(value, dtype=torch.float32)
        except (TypeError, ValueError, RuntimeError):
            raise RenderInputError(f"{owner} {name} must be a number or a tensor of shape {list(shape)}, "
                                   f"got {value!r}.") from None
    ok = tuple(t.shape) == shape or (shape == () and tuple(t.shape) == (1,))
    if not ok:
        want = "a scalar" if shape == () else f"shape {list(shape)}"
        raise RenderInputError(f"{owner} {name} must be {want}, got shape {list(t.shape)}.")
    return t


def _scalar(t: Tensor) -> Tensor:
    return t.reshape(())


Vec = tuple  # three [N] tensors (x, y, z): points are passed as components, never as [3,N] rows
Num = "float | Tensor"


def quaternion_matrix(q: Tensor) -> Tensor:
    """Rotation matrix [3,3] from a quaternion [4] = (w, x, y, z) (normalised first)."""
    q = q / q.norm().clamp_min(1e-12)
    w, x, y, z = q.unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ]).reshape(3, 3)


def _length(*comps: Tensor) -> Tensor:
    """Euclidean length of 2 or 3 components [N].

    Without autograd (the tracer) it is a hypot chain, the fewest kernels.  With autograd it is
    sqrt(sum of squares + tiny): finite first and second derivatives even at zero (a point on a box
    face has a zero "outside" vector), where hypot and vector norms give NaN or slow kernels.
    """
    if not torch.is_grad_enabled():
        out = torch.hypot(comps[0], comps[1])
        return out if len(comps) == 2 else torch.hypot(out, comps[2])
    s = comps[0] * comps[0]
    for c in comps[1:]:
        s = s + c * c
    return (s + 1e-30).sqrt()


def _axpy(x: Tensor, y: Tensor, a: Num) -> Tensor:
    """x + a·y for a 0-dim tensor (or a Python float) a."""
    return torch.add(x, y, alpha=a) if isinstance(a, float) else torch.addcmul(x, y, a)


def _dot(v: tuple, p: Vec) -> Tensor:
    """v · p for a constant 3-vector v (floats or 0-dim tensors) and points p."""
    return _axpy(_axpy(p[0] * v[0], p[1], v[1]), p[2], v[2])


def _vec(v: "Tensor | tuple") -> tuple:
    """Components of a parameter vector: frozen ones are tuples already."""
    return v if isinstance(v, tuple) else v.unbind(0)


def _num(v: "Tensor | float") -> Num:
    return v if isinstance(v, float) else v.reshape(())


# ---------------------------------------------------------------------------------------- primitives


class Node:
    """Base of the model tree (a primitive or an operation)."""

    def children(self) -> Sequence["Node"]:
        return ()

    def tensors(self) -> dict[str, Tensor]:
        """This node's own parameter tensors by name (not its children's)."""
        return {}

    def _freeze(self, dtype: torch.dtype, device: torch.device) -> dict:
        """Parameters for the no-grad tracer: detached 0-dim tensors (tuples of them for vectors)
        of the rays' dtype, so that every op is a plain tensor-scalar kernel with no conversion."""
        return {k: _consts(v, dtype, device) for k, v in self.tensors().items()}

    def _live(self) -> dict:
        return dict(self.tensors())


def _consts(v: Tensor, dtype: torch.dtype, device: torch.device) -> "Tensor | tuple":
    v = v.detach().to(device=device, dtype=dtype)
    if v.numel() == 1:
        return v.reshape(())
    return tuple(v.reshape(-1).unbind(0))


class Primitive(Node):
    """A shape with a signed distance function.

    Args (common to all primitives):
        colour: [3] linear RGB albedo (default light grey).
        rotation: optional quaternion [4] (w, x, y, z) or matrix [3,3] rotating the shape about
            its centre (world = R @ local).
        object_id: index reported in ``GBuffer.object_id`` (default: the primitive's index).
        name: label used in error messages.
    """

    kind = "primitive"
    rotatable = True

    def __init__(self, colour: object = None, rotation: object = None, object_id: int | None = None,
                 name: str | None = None):
        self.name = name
        self.colour = _as_param(self.label, "colour", DEFAULT_COLOUR if colour is None else colour, (3,))
        if rotation is not None:
            if not self.rotatable:
                raise RenderInputError(f"{self.label} has no rotation parameter; its endpoints set its orientation.")
            shp = tuple(rotation.shape) if isinstance(rotation, torch.Tensor) else tuple(torch.tensor(rotation).shape)
            rotation = _as_param(self.label, "rotation", rotation, (3, 3) if shp == (3, 3) else (4,))
        self.rotation = rotation
        self.object_id = object_id

    @property
    def label(self) -> str:
        return self.name or self.kind

    # Subclasses implement these three.
    def _shape_tensors(self) -> dict[str, Tensor]:
        raise NotImplementedError

    def _sdf(self, q: Vec, prm: dict) -> Tensor:
        """Distance [N] for points ``q`` already in the primitive's local frame (see _local)."""
        raise NotImplementedError

    def _bound(self) -> tuple[list[float], float] | None:
        """(centre, radius) of a sphere containing the shape, or None when unbounded."""
        raise NotImplementedError

    def tensors(self) -> dict[str, Tensor]:
        out = dict(self._shape_tensors())
        out["colour"] = self.colour
        if self.rotation is not None:
            out["rotation"] = self.rotation
        return out

    @staticmethod
    def _matrix(r: Tensor) -> Tensor:
        return r if r.shape == (3, 3) else quaternion_matrix(r)

    def _freeze(self, dtype: torch.dtype, device: torch.device) -> dict:
        prm = {k: _consts(v, dtype, device) for k, v in self._shape_tensors().items()}
        prm["colour"] = self.colour.detach().to(device=device, dtype=dtype)
        if self.rotation is not None:
            prm["rotation"] = _consts(self._matrix(self.rotation.detach().double()), dtype, device)
        return prm

    def _local(self, p: Vec, prm: dict) -> Vec:
        """World points -> local frame: R^T (p - centre)."""
        c = _vec(prm["centre"])
        q = (p[0] - c[0], p[1] - c[1], p[2] - c[2])
        r = prm.get("rotation")
        if r is None:
            return q
        r = r if isinstance(r, tuple) else self._matrix(r).reshape(9).unbind(0)
        return (_dot((r[0], r[3], r[6]), q), _dot((r[1], r[4], r[7]), q), _dot((r[2], r[5], r[8]), q))

    def distance(self, p: Vec, prm: dict) -> Tensor:
        return self._sdf(self._local(p, prm), prm)


class Sphere(Primitive):
    """Sphere: |x - centre| - radius."""

    kind = "sphere"
    rotatable = False

    def __init__(self, centre: object, radius: object, **kw):
        super().__init__(**kw)
        self.centre = _as_param(self.label, "centre", centre, (3,))
        self.radius = _as_param(self.label, "radius", radius, ())

    def _shape_tensors(self):
        return {"centre": self.centre, "radius": self.radius}

    def _sdf(self, q, prm):
        return _length(*q) - _num(prm["radius"])

    def _bound(self):
        return self.centre.detach().tolist(), abs(float(self.radius.detach().reshape(())))


class Box(Primitive):
    """Box of the given half extents [3] around ``centre`` (exact distance, also inside)."""

    kind = "box"

    def __init__(self, centre: object, half_extents: object, **kw):
        super().__init__(**kw)
        self.centre = _as_param(self.label, "centre", centre, (3,))
        self.half_extents = _as_param(self.label, "half_extents", half_extents, (3,))

    def _shape_tensors(self):
        return {"centre": self.centre, "half_extents": self.half_extents}

    @staticmethod
    def _box(q: Vec, h: tuple) -> Tensor:
        d = (q[0].abs() - h[0], q[1].abs() - h[1], q[2].abs() - h[2])
        outside = _length(d[0].clamp_min(0), d[1].clamp_min(0), d[2].clamp_min(0))
        return outside + torch.maximum(torch.maximum(d[0], d[1]), d[2]).clamp_max(0)

    def _sdf(self, q, prm):
        return self._box(q, _vec(prm["half_extents"]))

    def _bound(self):
        return self.centre.detach().tolist(), float(self.half_extents.detach().norm())


class RoundedBox(Box):
    """Box with edges rounded by ``rounding``; ``half_extents`` is the overall size."""

    kind = "rounded box"

    def __init__(self, centre: object, half_extents: object, rounding: object, **kw):
        super().__init__(centre, half_extents, **kw)
        self.rounding = _as_param(self.label, "rounding", rounding, ())

    def _shape_tensors(self):
        return {"centre": self.centre, "half_extents": self.half_extents, "rounding": self.rounding}

    def _sdf(self, q, prm):
        r = _num(prm["rounding"])
        h = _vec(prm["half_extents"])
        return self._box(q, (h[0] - r, h[1] - r, h[2] - r)) - r


class Torus(Primitive):
    """Torus around the local y axis: ring radius ``major`` (R), tube radius ``minor`` (r)."""

    kind = "torus"

    def __init__(self, centre: object, major: object, minor: object, **kw):
        super().__init__(**kw)
        self.centre = _as_param(self.label, "centre", centre, (3,))
        self.major = _as_param(self.label, "major", major, ())
        self.minor = _as_param(self.label, "minor", minor, ())

    def _shape_tensors(self):
        return {"centre": self.centre, "major": self.major, "minor": self.minor}

    def _sdf(self, q, prm):
        ring = _length(q[0], q[2]) - _num(prm["major"])
        return _length(ring, q[1]) - _num(prm["minor"])

    def _bound(self):
        return self.centre.detach().tolist(), abs(float(self.major.detach().reshape(()))) + abs(
            float(self.minor.detach().reshape(())))


class Capsule(Primitive):
    """Capsule: points within ``radius`` of the segment a-b."""

    kind = "capsule"
    rotatable = False

    def __init__(self, a: object, b: object, radius: object, **kw):
        super().__init__(**kw)
        self.a = _as_param(self.label, "a", a, (3,))
        self.b = _as_param(self.label, "b", b, (3,))
        self.radius = _as_param(self.label, "radius", radius, ())

    def _shape_tensors(self):
        return {"a": self.a, "b": self.b, "radius": self.radius}

    def distance(self, p, prm):
        a, b = _vec(prm["a"]), _vec(prm["b"])
        ba = (b[0] - a[0], b[1] - a[1], b[2] - a[2])
        pa = (p[0] - a[0], p[1] - a[1], p[2] - a[2])
        inv = 1.0 / (ba[0] * ba[0] + ba[1] * ba[1] + ba[2] * ba[2]).clamp_min(1e-30)
        h = (_dot(ba, pa) * inv).clamp(0, 1)
        return _length(_axpy(pa[0], h, -ba[0]), _axpy(pa[1], h, -ba[1]), _axpy(pa[2], h, -ba[2])) \
            - _num(prm["radius"])

    def _bound(self):
        a, b = self.a.detach(), self.b.detach()
        return ((a + b) / 2).tolist(), float((b - a).norm()) / 2 + abs(float(self.radius.detach().reshape(())))


class Cylinder(Primitive):
    """Capped cylinder around the local y axis, from -half_height to +half_height."""

    kind = "cylinder"

    def __init__(self, centre: object, radius: object, half_height: object, **kw):
        super().__init__(**kw)
        self.centre = _as_param(self.label, "centre", centre, (3,))
        self.radius = _as_param(self.label, "radius", radius, ())
        self.half_height = _as_param(self.label, "half_height", half_height, ())

    def _shape_tensors(self):
        return {"centre": self.centre, "radius": self.radius, "half_height": self.half_height}

    def _sdf(self, q, prm):
        dr = _length(q[0], q[2]) - _num(prm["radius"])
        dy = q[1].abs() - _num(prm["half_height"])
        inside = torch.maximum(dr, dy).clamp_max(0)
        return inside + _length(dr.clamp_min(0), dy.clamp_min(0))

    def _bound(self):
        return self.centre.detach().tolist(), math.hypot(float(self.radius.detach().reshape(())),
                                                         float(self.half_height.detach().reshape(())))


class Plane(Primitive):
    """Half-space below the plane n·x = offset (n normalised): f(x) = n̂·x - offset."""

    kind = "plane"
    rotatable = False

    def __init__(self, normal: object, offset: object, **kw):
        super().__init__(**kw)
        self.normal = _as_param(self.label, "normal", normal, (3,))
        self.offset = _as_param(self.label, "offset", offset, ())

    def _shape_tensors(self):
        return {"normal": self.normal, "offset": self.offset}

    def _freeze(self, dtype, device):
        prm = super()._freeze(dtype, device)
        n = self.normal.detach().double()
        prm["normal"] = _consts(n / n.norm().clamp_min(1e-30), dtype, device)
        return prm

    def distance(self, p, prm):
        n = prm["normal"]
        if not isinstance(n, tuple):
            n = (n / n.norm().clamp_min(1e-30)).unbind(0)
        return _dot(n, p) - _num(prm["offset"])

    def _bound(self):
        return None


# ----------------------------------------------------------------------------------- smooth CSG maths


def smooth_min(a: Tensor, b: Tensor, k: Tensor | float) -> Tensor:
    """Polynomial smooth minimum: min(a, b) - max(k - |a - b|, 0)^2 / (4k); exactly min at k = 0.

    Never larger than min(a, b) (so sphere tracing stays safe) and at most k/4 below it.
    """
    if not isinstance(k, torch.Tensor):
        if k <= 0:
            return torch.minimum(a, b)
        m = (k - (a - b).abs()).clamp_min(0)
        return torch.minimum(a, b) - m * m * (0.25 / k)
    m = (k - (a - b).abs()).clamp_min(0)
    return torch.minimum(a, b) - m * m / (4 * k.clamp_min(_K_TINY))


def smooth_max(a: Tensor, b: Tensor, k: Tensor | float) -> Tensor:
    """Polynomial smooth maximum, -smooth_min(-a, -b, k)."""
    return -smooth_min(-a, -b, k)


def blend_weight(a: Tensor, b: Tensor, k: Tensor | float) -> Tensor:
    """Weight of ``a`` in smooth_min(a, b, k) = mix(b, a, w) - k w (1 - w).

    1 where a is clearly smaller, 0 where b is, linear in between; at k = 0 it is the step
    (0.5 at exact ties), with zero gradient.
    """
    hard = (a < b).to(a.dtype) + 0.5 * (a == b).to(a.dtype)
    if not isinstance(k, torch.Tensor):
        if k <= 0:
            return hard
        return (0.5 + (0.5 / k) * (b - a)).clamp(0, 1)
    soft = (0.5 + 0.5 * (b - a) / k.clamp_min(_K_TINY)).clamp(0, 1)
    return torch.where(k > 0, soft, hard)


# ---------------------------------------------------------------------------------------- operations


class _Op(Node):
    kind = "op"

    def __init__(self, children: Sequence[Node], k: object = 0.0):
        if len(children) < 2:
            raise RenderInputError(f"{self.kind} needs at least two shapes, got {len(children)}.")
        for c in children:
            if not isinstance(c, Node):
                raise RenderInputError(f"{self.kind} takes primitives or operations, got {type(c).__name__}.")
        self._children = list(children)
        self.k = _as_param(self.kind, "k", k, ())

    def children(self):
        return self._children

    def tensors(self):
        return {"k": self.k}

    def _freeze(self, dtype, device):
        return {"k": float(self.k.detach().reshape(()))}

    def _live(self):
        k = self.k
        return {"k": _scalar(k) if k.requires_grad else float(k.detach().reshape(()))}

    # (distance, weight of a) of combining a with b
    def _combine(self, a: Tensor, b: Tensor, k) -> tuple[Tensor, Tensor | None]:
        raise NotImplementedError


class Union(_Op):
    """Smooth union of two or more shapes (folded left to right)."""

    kind = "union"

    def __init__(self, *children: Node, k: object = 0.0):
        super().__init__(children, k)

    def _combine(self, a, b, k, need_w):
        return smooth_min(a, b, k), (blend_weight(a, b, k) if need_w else None)


class Intersection(_Op):
    """Smooth intersection of two or more shapes."""

    kind = "intersection"

    def __init__(self, *children: Node, k: object = 0.0):
        super().__init__(children, k)

    def _combine(self, a, b, k, need_w):
        return smooth_max(a, b, k), (blend_weight(-a, -b, k) if need_w else None)


class Subtraction(_Op):
    """``base`` minus ``cutter`` (smooth); the carved surface takes the cutter's colour."""

    kind = "subtraction"

    def __init__(self, base: Node, cutter: Node, k: object = 0.0):
        super().__init__([base, cutter], k)

    def _combine(self, a, b, k, need_w):
        return smooth_max(a, -b, k), (blend_weight(-a, b, k) if need_w else None)


# --------------------------------------------------------------------------------------------- model


class SDFModel:
    """A tree of primitives and smooth operations, evaluated on points [N,3].

    Args:
        root: the tree's root node, or a list of nodes (their hard union, or smooth with ``k``).
        k: smoothness of the union when ``root`` is a list.

    Attributes:
        primitives: the primitives in depth-first order; ``GBuffer.tri_id`` indexes this list.
    """

    def __init__(self, root: Node | Iterable[Node], k: object = 0.0):
        if not isinstance(root, Node):
            nodes = list(root)
            if not nodes:
                raise RenderInputError("an SDF model needs at least one primitive, got an empty list.")
            root = nodes[0] if len(nodes) == 1 else Union(*nodes, k=k)
        self.root = root
        self.primitives: list[Primitive] = [n for n in self._walk(root) if isinstance(n, Primitive)]
        if len(set(map(id, self.primitives))) != len(self.primitives):
            raise RenderInputError("a primitive appears twice in the SDF model; create a separate one per use.")
        self._index = {id(p): i for i, p in enumerate(self.primitives)}
        self.object_ids = torch.tensor(
            [i if p.object_id is None else int(p.object_id) for i, p in enumerate(self.primitives)], dtype=torch.int64)

    @classmethod
    def fold(cls, items: Sequence[tuple[Node, str, object]]) -> "SDFModel":
        """Build a model from a list of (shape, op, k) applied left to right, as scene files list
        primitives: ``((s0, *, *), (s1, "union", k1), (s2, "subtract", k2))`` is
        ``Subtraction(Union(s0, s1, k=k1), s2, k=k2)``; the first op is ignored.

        Ops: "union", "intersection" (or "intersect"), "subtraction" (or "subtract").
        """
        if not items:
            raise RenderInputError("an SDF model needs at least one primitive, got an empty list.")
        ops = {"union": Union, "intersection": Intersection, "intersect": Intersection,
               "subtraction": Subtraction, "subtract": Subtraction}
        root = items[0][0]
        for node, op, k in items[1:]:
            if op not in ops:
                raise RenderInputError(f"op must be one of {', '.join(ops)}, got {op!r}.")
            root = ops[op](root, node, k=k)
        return cls(root)

    @staticmethod
    def _walk(node: Node) -> Iterator[Node]:
        yield node
        for c in node.children():
            yield from SDFModel._walk(c)

    def nodes(self) -> Iterator[Node]:
        return self._walk(self.root)

    def parameters(self) -> dict[str, Tensor]:
        """Every parameter tensor by a readable name, e.g. ``"0:sphere.radius"``, ``"union.k"``."""
        out: dict[str, Tensor] = {}
        for j, n in enumerate(self.nodes()):
            tag = f"{self._index[id(n)]}:{n.label}" if isinstance(n, Primitive) else f"{j}:{n.kind}"
            for k, v in n.tensors().items():
                out[f"{tag}.{k}"] = v
        return out

    def requires_grad(self) -> bool:
        return any(t.requires_grad for n in self.nodes() for t in n.tensors().values())

    def check(self, device: torch.device | None = None) -> None:
        """Raise RenderInputError naming the first parameter that is NaN/Inf or on another device."""
        for name, t in self.parameters().items():
            if device is not None and t.device.type != device.type:
                raise RenderInputError(f"SDF parameter {name} is on {t.device} but the rays are on {device}; "
                                       f"move it with .to({str(device)!r}).")
            if not bool(torch.isfinite(t.detach()).all()):
                raise RenderInputError(f"SDF parameter {name} contains NaN/Inf; check the optimiser step "
                                       f"or the value that produced it.")

    # ------------------------------------------------------------------ evaluation

    def freeze(self, dtype: torch.dtype, device: torch.device | str) -> dict[int, dict]:
        """Detached, cast parameters for fast no-grad evaluation (pass to ``distance_t``)."""
        device = torch.device(device)
        return {id(n): n._freeze(dtype, device) for n in self.nodes()}

    def _params(self, frozen: dict | None) -> dict[int, dict]:
        return frozen if frozen is not None else {id(n): n._live() for n in self.nodes()}

    def _dist(self, node: Node, p: Vec, prm: dict) -> Tensor:
        if isinstance(node, Primitive):
            return node.distance(p, prm[id(node)])
        ch = node.children()
        k = prm[id(node)]["k"]
        d = self._dist(ch[0], p, prm)
        for c in ch[1:]:
            d, _ = node._combine(d, self._dist(c, p, prm), k, False)
        return d

    def _full(self, node: Node, p: Vec, prm: dict) -> tuple[Tensor, Tensor, Tensor]:
        if isinstance(node, Primitive):
            pp = prm[id(node)]
            return (node.distance(p, pp), pp["colour"].to(p[0].dtype),
                    torch.tensor(self._index[id(node)], device=p[0].device))
        ch = node.children()
        k = prm[id(node)]["k"]
        d, col, pid = self._full(ch[0], p, prm)
        for c in ch[1:]:
            d2, col2, pid2 = self._full(c, p, prm)
            d, w = node._combine(d, d2, k, True)
            col = torch.lerp(col2, col, w[:, None])
            pid = torch.where(w >= 0.5, pid, pid2)
        return d, col, pid

    def distance_t(self, p: "Tensor | Vec", frozen: dict | None = None) -> Tensor:
        """Signed distance [N] at points given component-major: [3,N] or a tuple (x, y, z) of [N]
        (``frozen`` from :meth:`freeze` for fast no-grad evaluation)."""
        return self._dist(self.root, _split(p), self._params(frozen))

    def evaluate_t(self, p: "Tensor | Vec", frozen: dict | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """(distance [N], colour [N,3], primitive index [N] int64) at component-major points."""
        p = _split(p)
        d, col, pid = self._full(self.root, p, self._params(frozen))
        n = p[0].shape[0]
        return d, col.expand(n, 3), pid.expand(n)

    def distance(self, x: Tensor) -> Tensor:
        """Signed distance [N] at points ``x`` [N,3] (differentiable w.r.t. x and the parameters)."""
        return self.distance_t(x.unbind(-1))

    def evaluate(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(distance [N], colour [N,3], dominant primitive index [N]) at points ``x`` [N,3]."""
        return self.evaluate_t(x.unbind(-1))

    def colour(self, x: Tensor) -> Tensor:
        """Blended surface colour [N,3] at points ``x`` [N,3]."""
        return self.evaluate(x)[1]

    def split_planes(self) -> tuple[list["Plane"], list[Node]]:
        """(planes, others) such that the model is the hard union (min) of both lists, with as
        many planes as possible pulled out of nested hard unions, so a tracer can intersect the
        planes analytically and march only the others.  ([], [root]) when there is no such plane.
        The current value of k decides (a trainable k that is 0 now is a hard union now).
        """
        def hard_union(n: Node) -> bool:
            return isinstance(n, Union) and float(n.k.detach().reshape(())) == 0.0

        def flatten(n: Node) -> list[Node]:
            return [x for c in n.children() for x in flatten(c)] if hard_union(n) else [n]

        parts = flatten(self.root)
        planes = [n for n in parts if isinstance(n, Plane)]
        if not planes:
            return [], [self.root]
        return planes, [n for n in parts if not isinstance(n, Plane)]

    def union_distance_t(self, nodes: Sequence[Node], p: "Tensor | Vec", frozen: dict | None = None) -> Tensor:
        """Hard union (min) of the distances of ``nodes`` at component-major points."""
        prm = self._params(frozen)
        p = _split(p)
        d = self._dist(nodes[0], p, prm)
        for n in nodes[1:]:
            d = torch.minimum(d, self._dist(n, p, prm))
        return d

    def nodes_bound(self, nodes: Sequence[Node], finite_only: bool = False) -> tuple[list[float], float] | None:
        """Bounding sphere of the hard union of ``nodes`` (see :meth:`bounding_sphere`)."""
        bs = [self._bound(n, finite_only) for n in nodes]
        if any(b is None for b in bs) and not finite_only:
            return None
        bs = [b for b in bs if b is not None]
        return _enclose(bs, margin=0.0) if bs else None

    # ------------------------------------------------------------------ bounds

    def bounding_sphere(self, finite_only: bool = False) -> tuple[list[float], float] | None:
        """(centre, radius) of a sphere containing the surface, or None if it is unbounded.

        With ``finite_only`` unbounded primitives (planes) are left out of unions, giving a sphere
        around everything else (None if nothing is bounded).
        """
        return self._bound(self.root, finite_only)

    def _bound(self, node: Node, finite_only: bool):
        if isinstance(node, Primitive):
            return node._bound()
        bs = [self._bound(c, finite_only) for c in node.children()]
        k = abs(float(node.k.detach().reshape(())))
        if isinstance(node, Union):
            if any(b is None for b in bs) and not finite_only:
                return None
            bs = [b for b in bs if b is not None]
            if not bs:
                return None
            return _enclose(bs, margin=k / 4)
        if isinstance(node, Intersection):
            bs = [b for b in bs if b is not None]
            return min(bs, key=lambda b: b[1]) if bs else None
        return bs[0]  # subtraction: inside the base


def _split(p: "Tensor | Vec") -> Vec:
    return tuple(p) if isinstance(p, (tuple, list)) else p.unbind(0)


def _enclose(spheres: list[tuple[list[float], float]], margin: float) -> tuple[list[float], float]:
    lo = [min(c[i] - r for c, r in spheres) for i in range(3)]
    hi = [max(c[i] + r for c, r in spheres) for i in range(3)]
    centre = [(a + b) / 2 for a, b in zip(lo, hi)]
    radius = max(math.dist(c, centre) + r for c, r in spheres)
    return centre, radius + margin
