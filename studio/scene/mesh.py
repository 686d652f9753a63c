"""Triangle meshes: file I/O through trimesh, normalisation, topology, normals and regularisers.

Conventions:

- ``Mesh.vertices`` [V,3] float32 in scene units; ``Mesh.faces`` [T,3] int32, counter-clockwise
  seen from outside, so ``(v1 - v0) x (v2 - v0)`` points outwards.
- Vertices are shared: every position appears once and triangles index it.  Antialiasing finds
  silhouettes through shared edges, and the Laplacian, edge and normal regularisers need the same
  adjacency, so a UV seam must not split positions.  Texture coordinates therefore have their own
  index buffer ``uv_faces`` (as in nvdiffrast's samples): corner k of triangle t sits at
  ``vertices[faces[t, k]]`` with texture coordinate ``uv[uv_faces[t, k]]``.
- UVs follow nvdiffrast: u along the texture width, v along its height, texel row 0 at v = 0 (the
  top row of an image read from a file).  trimesh reports every format in the OBJ convention
  (v up, row 0 at v = 1; it already flips glTF's), so v is flipped on load and on save.
- Vertex colours are linear RGB float32; files store sRGB 8-bit.

The differentiable helpers accept vertices [V,3] or batched [...,V,3] of any floating dtype.
Whatever depends only on the faces is gathered once in :class:`MeshTopology`, so a regulariser
costs a few gathers and at most one ``index_add`` per step.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import trimesh

from ..images import linear_to_srgb, srgb_to_linear

log = logging.getLogger("studio.scene")

MESH_EXTENSIONS = (".obj", ".ply", ".stl", ".off", ".glb", ".gltf")
# Formats that are text only: a NUL byte means the file is something else.
_TEXT_FORMATS = (".obj", ".off")

# Positions closer than this fraction of the mesh's largest extent are merged: duplicates written by
# exporters are bit-identical, and transforms baked in float64 disturb them by far less.
_MERGE_TOLERANCE = 1e-6
# Normals of triangles whose doubled area is below this are treated as undefined (zero vector).
_NORMAL_EPS = 1e-12


class MeshError(ValueError):
    """A mesh the studio cannot use; the message is one sentence naming the file and what to do."""


@dataclass(frozen=True, eq=False)  # eq=False: tensors have no single truth value to compare by
class Mesh:
    """A triangle mesh with shared vertices, optional UVs (own index buffer) and vertex colours.

    Attributes:
        vertices: [V,3] float32 positions in scene units.
        faces: [T,3] int32 indices into ``vertices``, counter-clockwise seen from outside.
        uv: optional [Vt,2] float32 texture coordinates (nvdiffrast convention, see the module
            docstring); given together with ``uv_faces``.
        uv_faces: optional [T,3] int32 indices into ``uv``, one row per row of ``faces``.
        vertex_colors: optional [V,3] float32 linear RGB.
        name: label for messages and the GUI (the file stem for loaded meshes).

    Raises:
        MeshError: on construction, if a field has the wrong shape or dtype, indices are out of
            range, or only one of ``uv``/``uv_faces`` is given.
    """

    vertices: torch.Tensor
    faces: torch.Tensor
    uv: torch.Tensor | None = None
    uv_faces: torch.Tensor | None = None
    vertex_colors: torch.Tensor | None = None
    name: str = "mesh"

    def __post_init__(self) -> None:
        _check_field(self.name, "vertices", self.vertices, (-1, 3), torch.float32)
        _check_field(self.name, "faces", self.faces, (-1, 3), torch.int32)
        _check_indices(self.name, "faces", self.faces, self.num_vertices)
        if (self.uv is None) != (self.uv_faces is None):
            raise MeshError(f"mesh {self.name!r}: give both uv and uv_faces, or neither.")
        if self.uv is not None:
            _check_field(self.name, "uv", self.uv, (-1, 2), torch.float32)
            _check_field(self.name, "uv_faces", self.uv_faces, (self.num_faces, 3), torch.int32)
            _check_indices(self.name, "uv_faces", self.uv_faces, self.uv.shape[0])
        if self.vertex_colors is not None:
            _check_field(self.name, "vertex_colors", self.vertex_colors, (self.num_vertices, 3), torch.float32)

    @property
    def num_vertices(self) -> int:
        """Number of (shared) position vertices V."""
        return self.vertices.shape[0]

    @property
    def num_faces(self) -> int:
        """Number of triangles T."""
        return self.faces.shape[0]

    def to(self, device: torch.device | str) -> Mesh:
        """A copy with every tensor on ``device`` (the same object if nothing moves)."""
        moved = {
            name: tensor.to(device)
            for name in ("vertices", "faces", "uv", "uv_faces", "vertex_colors")
            if (tensor := getattr(self, name)) is not None
        }
        if all(t is getattr(self, name) for name, t in moved.items()):
            return self
        return replace(self, **moved)


def _check_field(mesh: str, field: str, t: object, shape: tuple[int, int], dtype: torch.dtype) -> None:
    if not isinstance(t, torch.Tensor):
        raise MeshError(f"mesh {mesh!r}: {field} must be a torch.Tensor, got {type(t).__name__}.")
    wrong_shape = t.dim() != 2 or any(want != -1 and want != got for want, got in zip(shape, t.shape))
    if wrong_shape or t.dtype != dtype:
        want = "x".join("N" if s == -1 else str(s) for s in shape)
        raise MeshError(f"mesh {mesh!r}: {field} must be [{want}] {dtype}, got {list(t.shape)} {t.dtype}.")


def _check_indices(mesh: str, field: str, idx: torch.Tensor, count: int) -> None:
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= count):
        raise MeshError(f"mesh {mesh!r}: {field} holds indices outside [0, {count}).")


# ------------------------------------------------------------------------------------ file I/O


def _head(path: Path, size: int = 1 << 16) -> bytes:
    with path.open("rb") as f:
        return f.read(size)


def load_mesh(path: str | Path, normalize: bool = True) -> Mesh:
    """Load a triangle mesh from OBJ, PLY, STL, OFF, GLB or glTF.

    Every triangle geometry of the file is used, moved by its scene-graph transform and
    concatenated (points and lines are ignored).  Positions closer than 1e-6 of the mesh's largest
    extent are merged, so a triangle soup such as an STL gets shared vertices; UVs survive the
    merge in ``uv_faces``.
    Triangles that collapse (a repeated vertex, or zero area) and vertices no triangle uses are
    dropped.  UVs and vertex colours are kept when every geometry has them; merged vertices take
    the mean of their linear colours.  Materials and texture images in the file are not read.

    Args:
        path: the mesh file.
        normalize: centre and scale into the unit sphere with :func:`normalize_mesh`.

    Returns:
        The mesh on the CPU, named after the file stem.

    Raises:
        MeshError: missing file, unsupported extension, a file trimesh cannot read, a file without
            triangles, or NaN/infinite coordinates.
    """
    path = Path(path)
    if not path.exists():
        raise MeshError(f"mesh file {path} does not exist; check the path.")
    if not path.is_file():
        raise MeshError(f"mesh path {path} is not a file; give the path of a mesh file.")
    ext = path.suffix.lower()
    if ext not in MESH_EXTENSIONS:
        raise MeshError(f"mesh file {path} has the unsupported extension {ext or '(none)'!r}; "
                        f"convert it to one of {', '.join(MESH_EXTENSIONS)}.")
    if ext in _TEXT_FORMATS and b"\x00" in _head(path):
        # trimesh decodes any bytes as text and finds no faces: say what is really wrong.
        raise MeshError(f"mesh file {path} could not be read: it holds binary data, not {ext[1:].upper()} text; "
                        "export the mesh again.")
    try:
        parts = [g for g in trimesh.load_scene(path, process=False).dump()
                 if isinstance(g, trimesh.Trimesh) and len(g.faces)]
    except Exception as exc:  # noqa: BLE001 - trimesh raises anything from KeyError to ModuleNotFoundError
        reason = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else "no details"
        raise MeshError(f"mesh file {path} could not be read ({type(exc).__name__}: {reason}); "
                        "it is probably corrupt or truncated, re-export it.") from exc
    if not parts:
        raise MeshError(f"mesh file {path} contains no triangles (it is empty or holds only points "
                        "or lines); export it as a triangle mesh.")
    vertices = np.concatenate([np.asarray(p.vertices, dtype=np.float64) for p in parts])
    if not np.isfinite(vertices).all():
        raise MeshError(f"mesh file {path} has NaN or infinite vertex coordinates; repair the mesh "
                        "or re-export it.")
    offsets = np.cumsum([0] + [len(p.vertices) for p in parts[:-1]])
    faces = np.concatenate([np.asarray(p.faces, dtype=np.int64) + o for p, o in zip(parts, offsets)])

    uvs = [_trimesh_uv(p) for p in parts]
    uv = np.concatenate(uvs) if all(u is not None for u in uvs) else None
    if uv is None and any(u is not None for u in uvs):
        log.warning("%s: some geometries have no UVs, so the UVs of the others are dropped.", path)
    colors = [p.visual.vertex_colors[:, :3] if p.visual.kind == "vertex" else None for p in parts]
    rgb = np.concatenate(colors) if all(c is not None for c in colors) else None
    if rgb is None and any(c is not None for c in colors):
        log.warning("%s: some geometries have no vertex colours, so those of the others are dropped.", path)

    mesh = _weld(vertices, faces, uv, rgb, path.stem)
    if mesh.num_faces == 0:
        raise MeshError(f"mesh file {path} contains only degenerate (zero-area) triangles; export a "
                        "mesh with real surface.")
    return normalize_mesh(mesh) if normalize else mesh


def _trimesh_uv(part: trimesh.Trimesh) -> np.ndarray | None:
    """[V,2] float64 per-vertex UVs in trimesh's (OBJ) convention, or None."""
    uv = getattr(part.visual, "uv", None)
    if part.visual.kind != "texture" or uv is None or len(uv) != len(part.vertices):
        return None
    return np.asarray(uv, dtype=np.float64)


def _unique_rows(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first [U], inverse [N]) of the distinct rows of ``keys`` numbered in order of first
    appearance, so welding keeps the file's vertex order."""
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return first[order], rank[inverse.reshape(-1)]


def _compact(faces: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(kept [K], faces renumbered): the rows ``faces`` uses, in their original order."""
    used = np.zeros(count, dtype=bool)
    used[faces.reshape(-1)] = True
    kept = np.flatnonzero(used)
    new_index = np.cumsum(used) - 1
    return kept, new_index[faces]


def _weld(vertices: np.ndarray, faces: np.ndarray, uv: np.ndarray | None, rgb: np.ndarray | None,
          name: str) -> Mesh:
    """Merge positions, drop collapsed triangles and unused vertices, flip v, linearise colours."""
    extent = float(np.ptp(vertices, axis=0).max()) if len(vertices) else 0.0
    tol = _MERGE_TOLERANCE * (extent if extent > 0 else 1.0)
    first, inverse = _unique_rows(np.round((vertices - vertices.min(0)) / tol).astype(np.int64))
    merged = vertices[first]
    pos_faces = inverse[faces]

    a, b, c = (merged[pos_faces[:, k]] for k in range(3))
    double_area = np.linalg.norm(np.cross(b - a, c - a), axis=1)
    # A triangle thinner than the merge tolerance has no usable normal either.
    keep = ((pos_faces[:, 0] != pos_faces[:, 1]) & (pos_faces[:, 1] != pos_faces[:, 2])
            & (pos_faces[:, 2] != pos_faces[:, 0]) & (double_area > tol * tol))
    kept, pos_faces = _compact(pos_faces[keep], len(merged))

    colors = None
    if rgb is not None:
        linear = srgb_to_linear(rgb.astype(np.float64) / 255.0)
        sums = np.zeros((len(merged), 3))
        np.add.at(sums, inverse, linear)
        counts = np.bincount(inverse, minlength=len(merged))[:, None]
        colors = torch.from_numpy((sums / counts)[kept]).float()

    uv_t = uv_faces_t = None
    if uv is not None:
        uv = np.stack([uv[:, 0], 1.0 - uv[:, 1]], 1)
        uv_first, uv_inverse = _unique_rows(uv)
        uv_kept, uv_faces = _compact(uv_inverse[faces][keep], len(uv_first))
        uv_t = torch.from_numpy(uv[uv_first][uv_kept]).float()
        uv_faces_t = torch.from_numpy(uv_faces).int()

    return Mesh(torch.from_numpy(merged[kept]).float(), torch.from_numpy(pos_faces).int(),
                uv_t, uv_faces_t, colors, name)


def normalize_mesh(mesh: Mesh) -> Mesh:
    """Centre ``mesh`` on its bounding-box centre and scale it so the farthest vertex is at
    distance 1 (the unit sphere).  Everything but the positions is kept.

    Raises:
        MeshError: the mesh has no vertices, or all of them coincide.
    """
    v = mesh.vertices.double()
    if v.shape[0] == 0:
        raise MeshError(f"mesh {mesh.name!r} has no vertices and cannot be normalised; load a non-empty mesh.")
    centre = (v.amin(0) + v.amax(0)) / 2
    radius = float((v - centre).norm(dim=1).max())
    if not radius > 0:
        raise MeshError(f"mesh {mesh.name!r} has all its vertices at one point and cannot be "
                        "normalised; load a mesh with extent.")
    return replace(mesh, vertices=((v - centre) / radius).float())


def save_obj(mesh: Mesh, path: str | Path) -> None:
    """Write ``mesh`` as a Wavefront OBJ through trimesh.

    Positions are written once per distinct (position, UV) corner, as OBJ readers expect;
    :func:`load_mesh` merges them again.  UVs are written with v flipped back to the OBJ
    convention.  Vertex colours are written (as sRGB ``v x y z r g b``) only for meshes without
    UVs, since trimesh's OBJ writer carries one or the other.  No material file is written.

    Raises:
        MeshError: ``path`` does not end in .obj, or the file cannot be written.
    """
    path = Path(path)
    if path.suffix.lower() != ".obj":
        raise MeshError(f"save_obj writes OBJ files but was given {path}; use a path ending in .obj.")
    v = mesh.vertices.detach().cpu().double().numpy()
    faces = mesh.faces.cpu().long().numpy()
    if mesh.uv is not None:
        corners = np.stack([faces.reshape(-1), mesh.uv_faces.cpu().long().numpy().reshape(-1)], 1)
        pairs, inverse = np.unique(corners, axis=0, return_inverse=True)
        uv = mesh.uv.detach().cpu().double().numpy()[pairs[:, 1]]
        uv[:, 1] = 1.0 - uv[:, 1]
        if mesh.vertex_colors is not None:
            log.warning("save_obj: %s keeps its UVs; vertex colours are not written.", path)
        tm = trimesh.Trimesh(v[pairs[:, 0]], inverse.reshape(-1, 3), process=False,
                             visual=trimesh.visual.TextureVisuals(uv=uv))
    else:
        tm = trimesh.Trimesh(v, faces, process=False)
        if mesh.vertex_colors is not None:
            srgb = linear_to_srgb(mesh.vertex_colors.detach().cpu().double().numpy())
            tm.visual.vertex_colors = np.round(srgb * 255).astype(np.uint8)
    text = trimesh.exchange.obj.export_obj(tm, include_normals=False, include_texture=mesh.uv is not None)
    # trimesh names a placeholder material for textured meshes; without its file it only confuses readers.
    text = "\n".join(line for line in text.splitlines() if not line.startswith(("mtllib ", "usemtl ")))
    try:
        path.write_text(text + "\n")
    except OSError as exc:
        raise MeshError(f"mesh file {path} could not be written ({exc.strerror or exc}); check that "
                        "the folder exists and is writable.") from exc


# ------------------------------------------------------------------------ differentiable geometry


def _corners(vertices: torch.Tensor, faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    f = faces.long()
    return vertices.index_select(-2, f[:, 0]), vertices.index_select(-2, f[:, 1]), vertices.index_select(-2, f[:, 2])


def _normalize(n: torch.Tensor) -> torch.Tensor:
    """Unit vectors along the last axis; zero vectors (degenerate triangles) stay zero with zero
    gradient instead of the 1/eps blow-up of ``F.normalize``."""
    norm = n.norm(dim=-1, keepdim=True)
    ok = norm > _NORMAL_EPS
    return torch.where(ok, n / torch.where(ok, norm, torch.ones_like(norm)), torch.zeros_like(n))


def face_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Unit face normals [...,T,3] of vertices [...,V,3] and faces [T,3] (any integer dtype).

    The normal is ``(v1 - v0) x (v2 - v0)`` normalised, outward for counter-clockwise faces;
    zero-area triangles get the zero vector.
    """
    v0, v1, v2 = _corners(vertices, faces)
    return _normalize(torch.linalg.cross(v1 - v0, v2 - v0, dim=-1))


def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Area-weighted unit vertex normals [...,V,3] of vertices [...,V,3] and faces [T,3].

    Each vertex sums the unnormalised cross products of its triangles (twice their area times
    their normal) and normalises; vertices no triangle uses get the zero vector.
    """
    v0, v1, v2 = _corners(vertices, faces)
    n = torch.linalg.cross(v1 - v0, v2 - v0, dim=-1)
    corner = faces.long().t().reshape(-1)
    summed = torch.zeros_like(vertices).index_add(-2, corner, torch.cat([n, n, n], -2))
    return _normalize(summed)


def unique_edges(faces: torch.Tensor) -> torch.Tensor:
    """Undirected edges [E,2] int64 of faces [T,3], each once with the lower index first, sorted
    lexicographically.  Edges of collapsed triangles that join a vertex to itself are left out."""
    f = faces.long()
    e = torch.cat([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]).sort(dim=1).values
    e = e[e[:, 0] != e[:, 1]]
    # One integer key per edge: 1-D unique is far faster than unique over rows.
    nv = _vertex_count(f, None)
    key = torch.unique(e[:, 0] * nv + e[:, 1])
    return torch.stack([key // max(nv, 1), key % max(nv, 1)], 1)


def vertex_neighbours(faces: torch.Tensor, num_vertices: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The one-rings of the mesh's edge graph.

    Args:
        faces: [T,3] integer vertex indices.
        num_vertices: V (default: largest index + 1).

    Returns:
        pairs [2,2E] int64 (i, j) for every vertex i and each neighbour j, sorted by i then j
        (every undirected edge appears once each way), and degree [V] int64, the neighbour count
        of each vertex (0 for vertices no triangle uses).
    """
    nv = _vertex_count(faces, num_vertices)
    edges = unique_edges(faces)
    pairs = torch.cat([edges, edges.flip(1)]).t()
    pairs = pairs[:, torch.argsort(pairs[0] * max(nv, 1) + pairs[1])]
    return pairs, torch.bincount(pairs[0], minlength=nv)


def _vertex_count(faces: torch.Tensor, num_vertices: int | None) -> int:
    if num_vertices is not None:
        return int(num_vertices)
    return int(faces.max()) + 1 if faces.numel() else 0


@dataclass(frozen=True, eq=False)
class MeshTopology:
    """Everything the regularisers need that depends only on the faces, built once.

    Attributes:
        faces: [T,3] int64.
        edges: [E,2] int64 undirected edges (:func:`unique_edges`).
        neighbours: [2,2E] int64 (vertex, neighbour) pairs and degree: [V] int64 neighbour
            counts (:func:`vertex_neighbours`), the uniform Laplacian in index form.
        face_pairs: [P,2] int64 triangles that share an edge; an edge with k > 2 triangles
            (non-manifold) contributes the k - 1 consecutive pairs of its sorted triangles.
        num_vertices: V.
    """

    faces: torch.Tensor
    edges: torch.Tensor
    neighbours: torch.Tensor
    degree: torch.Tensor
    face_pairs: torch.Tensor
    num_vertices: int

    @classmethod
    def from_faces(cls, faces: torch.Tensor, num_vertices: int | None = None) -> MeshTopology:
        """Build the topology of faces [T,3] (any integer dtype, any device) over V vertices
        (default: largest index + 1)."""
        f = faces.long()
        nv = _vertex_count(f, num_vertices)
        k = torch.arange(3, device=f.device)
        a, b = f[:, k].reshape(-1), f[:, (k + 1) % 3].reshape(-1)
        key = torch.where(a != b, torch.minimum(a, b) * nv + torch.maximum(a, b), -1)
        order = torch.argsort(key, stable=True)
        skey, owner = key[order], order // 3
        shared = (skey[:-1] == skey[1:]) & (skey[:-1] >= 0) & (owner[:-1] != owner[1:])
        pairs = torch.stack([owner[:-1][shared], owner[1:][shared]], 1)
        neighbours, degree = vertex_neighbours(f, nv)
        return cls(f, unique_edges(f), neighbours, degree, pairs, nv)

    def laplacian(self, vertices: torch.Tensor) -> torch.Tensor:
        """Uniform Laplacian L @ vertices, [...,V,C] -> [...,V,C] in the input's dtype.

        ``L = I - D^-1 A``: each vertex minus the mean of its neighbours, zero where a vertex sits
        at the centroid of its one-ring; rows of vertices without neighbours are zero.
        """
        i, j = self.neighbours
        summed = torch.zeros_like(vertices).index_add(-2, i, vertices.index_select(-2, j))
        deg = self.degree.to(vertices.dtype).unsqueeze(-1)
        return vertices * (deg > 0) - summed / deg.clamp(min=1)

    def to(self, device: torch.device | str) -> MeshTopology:
        """A copy with every tensor on ``device``."""
        return replace(self, **{name: getattr(self, name).to(device) for name in
                                ("faces", "edges", "neighbours", "degree", "face_pairs")})


def _topology(vertices: torch.Tensor, faces_or_topology: torch.Tensor | MeshTopology) -> MeshTopology:
    if isinstance(faces_or_topology, MeshTopology):
        topo = faces_or_topology
    else:
        topo = MeshTopology.from_faces(faces_or_topology.to(vertices.device), vertices.shape[-2])
    if topo.num_vertices != vertices.shape[-2]:
        raise ValueError(f"the topology is for {topo.num_vertices} vertices but {vertices.shape[-2]} were given.")
    return topo


# ------------------------------------------------------------------------------------ regularisers


def laplacian_smoothness(vertices: torch.Tensor, faces_or_topology: torch.Tensor | MeshTopology) -> torch.Tensor:
    """Mean squared norm of the uniform Laplacian, ``mean_i |v_i - mean of i's neighbours|^2``.

    Penalises each vertex's offset from the centroid of its one-ring: bumps, spikes and noise
    (high-frequency detail).  Translation-invariant, and zero at interior vertices of a flat,
    regular grid; it does not vanish on a sphere (every vertex is off its neighbours' plane), so
    used alone it also shrinks and flattens.

    Args:
        vertices: [...,V,3] positions.
        faces_or_topology: [T,3] faces, or a prebuilt :class:`MeshTopology` (cheaper per step).

    Returns:
        Scalar tensor in squared scene units, differentiable in ``vertices``.
    """
    return _topology(vertices, faces_or_topology).laplacian(vertices).pow(2).sum(-1).mean()


def edge_length_loss(vertices: torch.Tensor, edges: torch.Tensor | MeshTopology,
                     target: float | torch.Tensor | None = None) -> torch.Tensor:
    """Penalises uneven (or off-target) edge lengths.

    Without ``target``: the variance of the edge lengths divided by their squared mean,
    ``mean((l / mean(l) - 1)^2)``.  It is zero when all edges are equally long and does not
    change with the mesh's scale, so it keeps triangles evenly sized without pulling the mesh
    smaller (a plain variance would shrink it).  With ``target`` (a length or [E] rest lengths in
    scene units): ``mean((l - target)^2)``.

    Args:
        vertices: [...,V,3] positions.
        edges: [E,2] vertex index pairs (:func:`unique_edges`) or a :class:`MeshTopology`.
        target: optional target length(s).

    Returns:
        Scalar tensor (dimensionless without ``target``, squared scene units with it),
        differentiable in ``vertices``.
    """
    e = (edges.edges if isinstance(edges, MeshTopology) else edges).long()
    if e.dim() != 2 or e.shape[1] != 2:
        raise ValueError(f"edges must be [E,2] vertex pairs (see unique_edges), got {list(e.shape)}.")
    length = (vertices.index_select(-2, e[:, 0]) - vertices.index_select(-2, e[:, 1])).norm(dim=-1)
    if target is None:
        return (length / length.mean(-1, keepdim=True) - 1).pow(2).mean()
    return (length - torch.as_tensor(target, dtype=length.dtype, device=length.device)).pow(2).mean()


def normal_consistency(vertices: torch.Tensor, faces_or_topology: torch.Tensor | MeshTopology) -> torch.Tensor:
    """Mean of ``1 - cos`` of the angle between the normals of triangles that share an edge.

    Penalises creases, folds and flipped triangles (a flipped neighbour costs 2) while leaving
    smooth bending cheap; zero for a flat sheet.  Meshes without shared edges give 0 (still
    connected to the graph, so a sum of losses can backpropagate).

    Args:
        vertices: [...,V,3] positions.
        faces_or_topology: [T,3] faces, or a prebuilt :class:`MeshTopology`.

    Returns:
        Dimensionless scalar tensor in [0, 2], differentiable in ``vertices``.
    """
    topo = _topology(vertices, faces_or_topology)
    if topo.face_pairs.shape[0] == 0:
        return vertices.sum() * 0
    n = face_normals(vertices, topo.faces)
    cos = (n.index_select(-2, topo.face_pairs[:, 0]) * n.index_select(-2, topo.face_pairs[:, 1])).sum(-1)
    return (1 - cos).mean()
