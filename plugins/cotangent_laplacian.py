"""Cotangent Laplacian regulariser: bending energy of the optimised meshes (mean curvature squared).

What it measures: the cotangent Laplacian of a triangle mesh approximates the mean-curvature
normal, Delta x = -2 H n.  This loss is its area-weighted mean squared norm,
``sum_i A_i |Delta x_i|^2 / sum_i A_i`` (1/scene units^2): bumps, dents and noise cost a lot,
while a flat region costs nothing *however its triangles are laid out*.

How it differs from the built-in ``laplacian``: the built-in one is the uniform ("umbrella")
Laplacian, each vertex's offset from the plain mean of its neighbours.  That offset is not zero
on a flat but irregular patch, so the built-in one also slides vertices within the surface
towards a regular layout, and it depends on how the mesh happens to be tessellated.  The
cotangent weights measure the surface rather than the graph.

When to prefer it: irregular meshes (scans, decimated or remeshed models, long thin triangles)
where you want smoothness without the vertices drifting, and when comparing fits across
different tessellations.  Prefer the built-in one when you also want evenly spaced vertices
(pair it with ``edge_length``): on the ``deform`` scenario (a regular icosphere) the built-in
one at weight 5 fits better, because its pull is mostly tangential and keeps the triangles
healthy, whereas this one acts on the shape alone.  Like any bending energy it is not zero on a
sphere (about 4 for a unit sphere), so keep its weight small: on ``deform``, 1e-5 (the default)
fits slightly better than no smoothing at all, while 1e-3 already rounds the target's lobes off.

How a regulariser is written: it takes the same arguments as an image loss but reads
``ctx.meshes()``, the (vertices [V,3], topology) of every object whose vertices are optimised.
"""

import torch

from studio.plugins import loss


def cotangent_laplacian(v: torch.Tensor, faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cotangent Laplacian of vertex positions v [V,3] over faces [T,3].

    Returns:
        (L v [V,3], the sum over neighbours j of (cot a + cot b) / 2 (x_j - x_i), in scene units;
        barycentric vertex areas A [V], a third of each incident triangle, in scene units^2).
        Delta x_i = (L v)_i / A_i, in 1/scene units.  The weights and areas are computed without gradient: as in
        PyTorch3D's "cot" smoothing, differentiating them is unstable on thin triangles and not
        needed to smooth; they follow the mesh every step anyway.
    """
    i, j, k = faces.long().unbind(1)
    with torch.no_grad():
        a, b, c = v[i], v[j], v[k]

        def cot(p: torch.Tensor, q: torch.Tensor, r: torch.Tensor) -> torch.Tensor:  # of the angle at p
            u, w = q - p, r - p
            value = (u * w).sum(-1) / torch.linalg.cross(u, w).norm(dim=-1).clamp(min=1e-12)
            return value.clamp(-100.0, 100.0)  # angles under ~0.6 degrees (slivers) would dominate

        cot_i, cot_j, cot_k = cot(a, b, c), cot(b, c, a), cot(c, a, b)  # opposite edges jk, ki, ij
        tri_area = 0.5 * torch.linalg.cross(b - a, c - a).norm(dim=-1)
        area = torch.zeros(v.shape[0], dtype=v.dtype, device=v.device).index_add(
            0, faces.long().reshape(-1), (tri_area / 3).repeat_interleave(3))
    # Each directed edge (row -> col) with half the cotangent of the angle opposite it.
    rows = torch.cat([j, k, k, i, i, j])
    cols = torch.cat([k, j, i, k, j, i])
    w = 0.5 * torch.cat([cot_i, cot_i, cot_j, cot_j, cot_k, cot_k])
    lv = torch.zeros_like(v).index_add(0, rows, w.unsqueeze(-1) * (v[cols] - v[rows]))
    return lv, area


@loss("cot_laplacian", weight=1e-5, description="Cotangent-Laplacian bending energy of the optimised meshes "
      "(smooths without sliding vertices, unlike the uniform 'laplacian')")
def cot_laplacian(render: torch.Tensor, target: torch.Tensor, ctx) -> torch.Tensor:
    """Area-weighted mean of |Delta x|^2 over all optimised meshes (1/scene units^2); 0 without meshes."""
    # A zero still tied to the render, so that a scene without fitted geometry shows a flat curve
    # instead of the engine disabling the loss for having no gradient path.
    total = render.sum() * 0
    for vertices, topology in ctx.meshes():
        lv, area = cotangent_laplacian(vertices, topology.faces)
        total = total + (lv.pow(2).sum(-1) / area.clamp(min=1e-12)).sum() / area.sum().clamp(min=1e-12)
    return total
