"""Mesh I/O, normalisation, normals, topology and regularisers (studio.scene.mesh)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from studio.render.topology import build_topology
from studio.scene.mesh import (
    Mesh,
    MeshError,
    MeshTopology,
    edge_length_loss,
    face_normals,
    laplacian_smoothness,
    load_mesh,
    normal_consistency,
    normalize_mesh,
    save_obj,
    unique_edges,
    vertex_neighbours,
    vertex_normals,
)
from studio.scene.procedural import icosphere, uv_sphere


def _reference_trimesh() -> trimesh.Trimesh:
    """An off-centre, anisotropic closed mesh, so that normalisation has work to do."""
    tm = trimesh.creation.icosphere(subdivisions=1)
    tm.apply_scale([2.0, 1.0, 0.5])
    tm.apply_translation([3.0, -1.0, 2.0])
    return tm


def _normalised(v: np.ndarray) -> np.ndarray:
    centre = (v.min(0) + v.max(0)) / 2
    return (v - centre) / np.linalg.norm(v - centre, axis=1).max()


def _canonical_faces(faces: np.ndarray) -> set[tuple[int, ...]]:
    """Triangles as tuples rotated to start at their smallest index (orientation kept)."""
    out = set()
    for f in faces.tolist():
        k = f.index(min(f))
        out.add(tuple(f[k:] + f[:k]))
    return out


def _assert_same_mesh(v: np.ndarray, f: np.ndarray, v_ref: np.ndarray, f_ref: np.ndarray, atol: float = 1e-5) -> None:
    """Same vertex set (matched by position) and same oriented triangles."""
    assert v.shape == v_ref.shape and f.shape == f_ref.shape
    dist = np.linalg.norm(v[:, None] - v_ref[None], axis=-1)
    match = dist.argmin(1)
    assert dist.min(1).max() < atol
    assert len(set(match.tolist())) == len(v_ref)
    assert _canonical_faces(match[f]) == _canonical_faces(f_ref)


def _corner_table(mesh: Mesh) -> np.ndarray:
    """[3T,5] (position, uv) of every triangle corner in face order."""
    pos = mesh.vertices[mesh.faces.long()].reshape(-1, 3)
    uv = mesh.uv[mesh.uv_faces.long()].reshape(-1, 2)
    return torch.cat([pos, uv], 1).double().numpy()


def _signed_volume(v: torch.Tensor, f: torch.Tensor) -> float:
    a, b, c = (v[f.long()[:, k]].double() for k in range(3))
    return float((a * torch.linalg.cross(b, c, dim=-1)).sum() / 6)


def _grid(n: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    """A flat n x n grid in the xy-plane (unit spacing), every quad split along the same diagonal."""
    y, x = torch.meshgrid(torch.arange(n, dtype=torch.float64), torch.arange(n, dtype=torch.float64), indexing="ij")
    v = torch.stack([x, y, torch.zeros_like(x)], -1).reshape(-1, 3)
    i, j = torch.meshgrid(torch.arange(n - 1), torch.arange(n - 1), indexing="ij")
    a = (i * n + j).reshape(-1)
    f = torch.cat([torch.stack([a, a + 1, a + n + 1], 1), torch.stack([a, a + n + 1, a + n], 1)])
    return v, f.int()


def _octahedron(dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """A small closed mesh, jittered so no symmetry hides a wrong gradient."""
    v = torch.tensor([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=dtype)
    f = torch.tensor([[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]],
                     dtype=torch.int32)
    return v + 0.1 * torch.randn(v.shape, dtype=dtype), f


# ------------------------------------------------------------------------------------- loading


@pytest.mark.parametrize("ext", ["obj", "ply", "stl", "off", "glb", "gltf"])
def test_every_format_round_trips(tmp_path, ext):
    tm = _reference_trimesh()
    path = tmp_path / f"ref.{ext}"
    tm.export(path)
    mesh = load_mesh(path)
    assert mesh.name == "ref"
    assert mesh.vertices.dtype == torch.float32 and mesh.faces.dtype == torch.int32
    _assert_same_mesh(mesh.vertices.numpy(), mesh.faces.numpy(), _normalised(np.asarray(tm.vertices)),
                      np.asarray(tm.faces))


def test_scene_geometries_are_concatenated_with_their_transforms(tmp_path):
    scene = trimesh.Scene()
    scene.add_geometry(trimesh.creation.box(), node_name="a", transform=trimesh.transformations.translation_matrix([2, 0, 0]))
    mirror = np.diag([-1.0, 1.0, 1.0, 1.0])  # flips winding: the loader must keep faces outward
    mirror[:3, 3] = [-2, 0, 0]
    scene.add_geometry(trimesh.creation.box(), node_name="b", transform=mirror)
    path = tmp_path / "two.glb"
    scene.export(path)
    mesh = load_mesh(path, normalize=False)
    assert (mesh.num_vertices, mesh.num_faces) == (16, 24)
    assert torch.allclose(mesh.vertices.amin(0), torch.tensor([-2.5, -0.5, -0.5]))
    assert torch.allclose(mesh.vertices.amax(0), torch.tensor([2.5, 0.5, 0.5]))
    for part in (mesh.faces[:12], mesh.faces[12:]):
        assert _signed_volume(mesh.vertices, part) == pytest.approx(1.0, rel=1e-5)


def test_triangle_soup_is_welded_into_shared_vertices(tmp_path):
    box = trimesh.creation.box()
    soup = trimesh.Trimesh(box.triangles.reshape(-1, 3), np.arange(36).reshape(12, 3), process=False)
    path = tmp_path / "soup.stl"
    soup.export(path)
    mesh = load_mesh(path, normalize=False)
    assert (mesh.num_vertices, mesh.num_faces) == (8, 12)
    topo = build_topology(mesh.faces)
    assert (topo.opposite != mesh.faces.long()).all(), "every edge should have a neighbour across it"
    assert _signed_volume(mesh.vertices, mesh.faces) == pytest.approx(1.0)


def test_uvs_survive_the_weld_with_v_flipped(tmp_path):
    box = trimesh.creation.box()
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in box.vertices]
    corners = []  # (position index, u, v as written in the file)
    for t, face in enumerate(box.faces):
        for k, vi in enumerate(face):
            corners.append((int(vi), (t + 0.25 * k) / 12, 0.1 + 0.2 * k + 0.01 * t))
    lines += [f"vt {u:.6f} {v:.6f}" for _, u, v in corners]
    lines += [f"f {corners[3 * t][0] + 1}/{3 * t + 1} {corners[3 * t + 1][0] + 1}/{3 * t + 2} "
              f"{corners[3 * t + 2][0] + 1}/{3 * t + 3}" for t in range(12)]
    path = tmp_path / "seams.obj"
    path.write_text("\n".join(lines) + "\n")

    mesh = load_mesh(path, normalize=False)
    assert (mesh.num_vertices, mesh.num_faces) == (8, 12)  # UV seams do not split positions
    assert mesh.uv.shape == (36, 2) and mesh.uv_faces.shape == (12, 3)
    got = _corner_table(mesh)
    want = np.array([[*box.vertices[vi], u, 1.0 - v] for vi, u, v in corners])
    assert np.allclose(got, want, atol=1e-6)


def test_vertex_colours_are_converted_to_linear(tmp_path):
    box = trimesh.creation.box()
    box.visual.vertex_colors = np.tile([255, 128, 0, 255], (8, 1)).astype(np.uint8)
    path = tmp_path / "col.ply"
    box.export(path)
    mesh = load_mesh(path)
    assert mesh.vertex_colors.dtype == torch.float32
    assert torch.allclose(mesh.vertex_colors, torch.tensor([1.0, 0.2158605, 0.0]).expand(8, 3), atol=1e-6)


def test_degenerate_triangles_and_unused_vertices_are_dropped(tmp_path):
    path = tmp_path / "dirty.obj"
    path.write_text(
        "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 9 9 9\nv 2 0 0\nv 1 0 0\n"
        "f 1 2 3\n"      # the one real triangle
        "f 1 1 2\n"      # repeated index
        "f 1 2 5\n"      # collinear: zero area
        "f 2 6 3\n"      # vertex 6 duplicates vertex 2: collapses after welding
    )
    mesh = load_mesh(path, normalize=False)
    assert mesh.num_faces == 1 and mesh.num_vertices == 3
    assert torch.equal(mesh.vertices, torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]]))


def test_normalize_mesh_centres_the_bounding_box_and_scales_to_the_unit_sphere(tmp_path):
    tm = _reference_trimesh()
    path = tmp_path / "ref.ply"
    tm.export(path)
    raw = load_mesh(path, normalize=False)
    assert torch.allclose(raw.vertices, torch.tensor(tm.vertices, dtype=torch.float32))
    for mesh in (normalize_mesh(raw), load_mesh(path)):
        v = mesh.vertices
        assert torch.allclose((v.amin(0) + v.amax(0)) / 2, torch.zeros(3), atol=1e-6)
        assert v.norm(dim=1).max().item() == pytest.approx(1.0, abs=1e-6)
        assert torch.equal(mesh.faces, raw.faces)


def _write(path, data: bytes | str) -> None:
    if isinstance(data, str):
        path.write_text(data)
    else:
        path.write_bytes(data)


@pytest.mark.parametrize("name, content, words", [
    ("missing.obj", None, "does not exist"),
    ("model.fbx", b"Kaydara FBX Binary", "unsupported extension"),
    ("noext", b"v 0 0 0\n", "unsupported extension"),
    ("corrupt.glb", b"glTF\x02\x00\x00\x00 not really", "could not be read"),
    ("truncated.ply", b"ply\nformat binary_little_endian 1.0\nelement vertex 100\nproperty float x\nend_header\n\x00\x01",
     "could not be read"),
    ("garbage.obj", bytes(range(256)) * 4, "could not be read"),
    ("empty.obj", "", "no triangles"),
    ("points.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\n", "no triangles"),
    ("lines.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nl 1 2\nl 2 3\n", "no triangles"),
    ("flat.obj", "v 0 0 0\nv 1 0 0\nv 2 0 0\nf 1 2 3\n", "degenerate"),
    ("nan.obj", "v nan 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n", "NaN or infinite"),
    ("inf.off", "OFF\n3 1 0\ninf 0 0\n1 0 0\n0 1 0\n3 0 1 2\n", "NaN or infinite"),
])
def test_bad_files_raise_one_clear_mesh_error(tmp_path, name, content, words):
    path = tmp_path / name
    if content is not None:
        _write(path, content)
    with pytest.raises(MeshError) as info:
        load_mesh(path)
    message = str(info.value)
    assert str(path) in message and words in message
    assert "\n" not in message and message.endswith(".")
    assert isinstance(info.value, ValueError)


def test_point_cloud_file_raises_mesh_error(tmp_path):
    path = tmp_path / "cloud.ply"
    trimesh.PointCloud(np.random.default_rng(0).random((10, 3))).export(path)
    with pytest.raises(MeshError, match="no triangles"):
        load_mesh(path)


def test_directory_is_not_a_mesh(tmp_path):
    with pytest.raises(MeshError, match="not a file"):
        load_mesh(tmp_path)


# ------------------------------------------------------------------------------------- saving


def test_save_obj_round_trips_positions_and_uvs(tmp_path):
    mesh = uv_sphere(6, 8)
    path = tmp_path / "sphere.obj"
    save_obj(mesh, path)
    text = path.read_text()
    assert "mtllib" not in text and "vt " in text
    back = load_mesh(path, normalize=False)
    assert (back.num_vertices, back.num_faces) == (mesh.num_vertices, mesh.num_faces)
    assert torch.allclose(back.vertices, mesh.vertices, atol=1e-6)
    assert torch.equal(back.faces, mesh.faces)
    assert np.allclose(_corner_table(back), _corner_table(mesh), atol=1e-6)


def test_save_obj_writes_vertex_colours(tmp_path):
    base = icosphere(1)
    colors = torch.rand(base.num_vertices, 3)
    mesh = Mesh(base.vertices, base.faces, vertex_colors=colors)
    path = tmp_path / "col.obj"
    save_obj(mesh, path)
    back = load_mesh(path, normalize=False)
    assert torch.allclose(back.vertex_colors, colors, atol=5e-3)  # 8-bit sRGB in the file


def test_save_obj_rejects_other_extensions_and_unwritable_paths(tmp_path):
    with pytest.raises(MeshError, match="ending in .obj"):
        save_obj(icosphere(0), tmp_path / "x.ply")
    with pytest.raises(MeshError, match="could not be written"):
        save_obj(icosphere(0), tmp_path / "no" / "such" / "dir.obj")


# ------------------------------------------------------------------------------------- the dataclass


def test_mesh_validates_its_fields():
    v, f = torch.zeros(3, 3), torch.tensor([[0, 1, 2]], dtype=torch.int32)
    mesh = Mesh(v, f)
    assert (mesh.num_vertices, mesh.num_faces) == (3, 1)
    assert mesh.to("cpu") is mesh
    with pytest.raises(MeshError, match="faces must be"):
        Mesh(v, f.long())
    with pytest.raises(MeshError, match="vertices must be"):
        Mesh(v.double(), f)
    with pytest.raises(MeshError, match="outside"):
        Mesh(v, f + 1)
    with pytest.raises(MeshError, match="both uv and uv_faces"):
        Mesh(v, f, uv=torch.zeros(3, 2))
    with pytest.raises(MeshError, match="uv_faces must be"):
        Mesh(v, f, uv=torch.zeros(3, 2), uv_faces=torch.zeros(2, 3, dtype=torch.int32))
    with pytest.raises(MeshError, match="vertex_colors must be"):
        Mesh(v, f, vertex_colors=torch.zeros(2, 3))


@pytest.mark.cuda
def test_mesh_and_topology_move_to_cuda():
    mesh = uv_sphere(4, 6).to("cuda")
    assert all(t.is_cuda for t in (mesh.vertices, mesh.faces, mesh.uv, mesh.uv_faces))
    topo = MeshTopology.from_faces(mesh.faces)
    assert topo.neighbours.is_cuda
    assert torch.isfinite(laplacian_smoothness(mesh.vertices, topo.to("cuda"))).item()


# ------------------------------------------------------------------------------------- geometry


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_normals_match_trimesh(dtype):
    sphere = icosphere(2)
    v = (sphere.vertices.double() * (1 + 0.05 * torch.randn(sphere.num_vertices, 1, dtype=torch.float64)))
    tm = trimesh.Trimesh(v.numpy(), sphere.faces.numpy(), process=False)
    fn = face_normals(v.to(dtype), sphere.faces)
    vn = vertex_normals(v.to(dtype), sphere.faces)
    assert fn.dtype == dtype and vn.dtype == dtype
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    assert torch.allclose(fn.double(), torch.tensor(tm.face_normals), atol=tol)
    area_weighted = trimesh.geometry.mean_vertex_normals(len(v), tm.faces, tm.face_normals * tm.area_faces[:, None])
    assert torch.allclose(vn.double(), torch.tensor(area_weighted), atol=tol)
    assert (vn * v.to(dtype)).sum(1).min() > 0, "outward on a sphere"


def test_normals_batch_and_degenerate_faces():
    v, f = _octahedron()
    batch = torch.stack([v, 2 * v])
    assert torch.allclose(vertex_normals(batch, f)[1], vertex_normals(v, f))
    flat = torch.zeros(3, 3, requires_grad=True)  # a collapsed triangle: zero normal, finite gradient
    n = vertex_normals(flat, torch.tensor([[0, 1, 2]]))
    n.sum().backward()
    assert torch.equal(n, torch.zeros(3, 3)) and torch.isfinite(flat.grad).all()


def test_gradients_match_finite_differences():
    v, f = _octahedron()
    v.requires_grad_(True)
    topo = MeshTopology.from_faces(f)
    w_face, w_vertex = torch.randn(8, 3, dtype=torch.float64), torch.randn(6, 3, dtype=torch.float64)
    checks = {
        "face_normals": lambda x: (face_normals(x, f) * w_face).sum(),
        "vertex_normals": lambda x: (vertex_normals(x, f) * w_vertex).sum(),
        "laplacian_smoothness": lambda x: laplacian_smoothness(x, topo),
        "edge_length_variance": lambda x: edge_length_loss(x, topo.edges),
        "edge_length_target": lambda x: edge_length_loss(x, topo, target=1.2),
        "normal_consistency": lambda x: normal_consistency(x, f),
    }
    for name, fn in checks.items():
        assert torch.autograd.gradcheck(fn, (v,), eps=1e-6, atol=1e-6), name


def test_unique_edges_of_closed_meshes():
    sphere = icosphere(2)
    e = unique_edges(sphere.faces)
    assert e.dtype == torch.int64 and (e[:, 0] < e[:, 1]).all()
    assert e.shape[0] == 3 * sphere.num_faces // 2
    assert sphere.num_vertices - e.shape[0] + sphere.num_faces == 2
    assert torch.unique(e, dim=0).shape == e.shape
    assert unique_edges(torch.tensor([[0, 1, 2], [2, 1, 3]])).tolist() == [[0, 1], [0, 2], [1, 2], [1, 3], [2, 3]]


def test_laplacian_matches_the_dense_definition():
    v, f = _octahedron()
    f = torch.cat([f, torch.tensor([[0, 2, 6]], dtype=torch.int32)])  # vertex 6 has 2 neighbours
    n = 8  # vertex 7 is isolated: its Laplacian row is zero
    adjacency = torch.zeros(n, n, dtype=torch.float64)
    for a, b, c in f.tolist():
        for i, j in ((a, b), (b, c), (c, a)):
            adjacency[i, j] = adjacency[j, i] = 1
    pairs, degree = vertex_neighbours(f, n)
    assert pairs.tolist() == adjacency.nonzero().t().tolist()
    assert degree.tolist() == adjacency.sum(1).long().tolist()
    deg = adjacency.sum(1, keepdim=True)
    dense = torch.where(deg > 0, torch.eye(n, dtype=torch.float64) - adjacency / deg.clamp(min=1), 0)
    x = torch.randn(n, 3, dtype=torch.float64)
    assert torch.allclose(MeshTopology.from_faces(f, n).laplacian(x), dense @ x, atol=1e-14)


def test_laplacian_smoothness_invariants():
    v, f = _grid(6)
    topo = MeshTopology.from_faces(f)
    interior = ((v[:, 0] > 0) & (v[:, 0] < 5) & (v[:, 1] > 0) & (v[:, 1] < 5))
    lv = topo.laplacian(v)
    assert lv[interior].abs().max() < 1e-12, "a regular flat grid is smooth inside"
    assert lv[~interior].norm(dim=1).min() > 0, "boundary vertices are off their one-ring centroid"

    noisy = v + 0.2 * torch.randn_like(v)
    before = laplacian_smoothness(noisy, topo)
    assert laplacian_smoothness(noisy + torch.tensor([3.0, -1.0, 2.0], dtype=torch.float64), topo) == pytest.approx(before.item())
    assert laplacian_smoothness(noisy - 0.5 * topo.laplacian(noisy), topo) < 0.5 * before
    assert laplacian_smoothness(noisy, f) == pytest.approx(before.item())
    assert laplacian_smoothness(noisy.float(), topo).dtype == torch.float32


def test_edge_length_loss():
    tetra = torch.tensor([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=torch.float64)
    f = torch.tensor([[0, 1, 2], [0, 2, 3], [0, 3, 1], [1, 3, 2]])
    edges = unique_edges(f)
    assert edge_length_loss(tetra, edges).item() == pytest.approx(0.0, abs=1e-12)
    stretched = tetra * torch.tensor([1.0, 1.0, 2.0], dtype=torch.float64)
    loss = edge_length_loss(stretched, edges)
    assert loss > 0 and edge_length_loss(5 * stretched, edges).item() == pytest.approx(loss.item())
    lengths = (stretched[edges[:, 0]] - stretched[edges[:, 1]]).norm(dim=1)
    assert edge_length_loss(stretched, edges, target=lengths).item() == pytest.approx(0.0, abs=1e-12)
    assert edge_length_loss(stretched, edges, target=0.0).item() == pytest.approx(lengths.pow(2).mean().item())
    with pytest.raises(ValueError, match=r"\[E,2\]"):
        edge_length_loss(tetra, f)


def test_normal_consistency():
    v, f = _grid(5)
    topo = MeshTopology.from_faces(f)
    assert topo.face_pairs.shape[0] == unique_edges(f).shape[0] - 4 * 4  # interior edges only
    assert normal_consistency(v, topo).item() == pytest.approx(0.0, abs=1e-12)
    folded = v.clone()
    folded[:, 2] = (folded[:, 0] - 2).abs()  # a crease along x = 2
    crease = normal_consistency(folded, topo)
    assert crease.item() == pytest.approx(4 / 40)  # 4 of 40 shared edges fold by 90 degrees
    flipped = f.clone()
    flipped[5] = flipped[5].flip(0)  # an interior triangle turned over: 3 neighbours at cos = -1
    assert normal_consistency(v, flipped).item() == pytest.approx(3 * 2 / 40)
    sphere = icosphere(3)
    smooth = normal_consistency(sphere.vertices, sphere.faces)
    assert 0 < smooth < 0.01
    bumpy = sphere.vertices * (1 + 0.05 * torch.randn(sphere.num_vertices, 1))
    assert normal_consistency(bumpy, sphere.faces) > 2 * smooth
    lone = torch.rand(3, 3, requires_grad=True)
    zero = normal_consistency(lone, torch.tensor([[0, 1, 2]]))
    zero.backward()
    assert zero.item() == 0.0 and torch.equal(lone.grad, torch.zeros(3, 3))


def test_topology_rejects_a_different_vertex_count():
    v, f = _octahedron()
    topo = MeshTopology.from_faces(f, 7)
    with pytest.raises(ValueError, match="7 vertices"):
        laplacian_smoothness(v, topo)
