"""Edge adjacency of a triangle mesh, the topology that silhouette antialiasing needs.

For triangle t and its edge k (the edge opposite vertex k, i.e. vertices k+1 and k+2), we store
the vertex of the neighbouring triangle that lies opposite the same edge.  An edge nobody else
shares stores t's own vertex k: then the "does the neighbour fold back?" test in antialias says
yes, which is exactly right for a boundary edge (it is always a silhouette).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Topology:
    """Cached adjacency for one ``tri`` tensor.

    Attributes:
        tri: [T,3] int64 copy of the triangles it was built from (checked on reuse).
        opposite: [T,3] int64 vertex index opposite edge k across the neighbouring triangle,
            or the triangle's own vertex k for boundary (and degenerate-neighbour) edges.
    """

    tri: torch.Tensor
    opposite: torch.Tensor

    def matches(self, tri: torch.Tensor) -> bool:
        return self.tri.shape == tri.shape and self.tri.device == tri.device and torch.equal(self.tri, tri.long())


def build_topology(tri: torch.Tensor) -> Topology:
    """Find, for every triangle edge, the opposite vertex across it.

    Edges shared by more than two triangles (non-manifold) pair each triangle with the next one
    in sorted order; degenerate triangles (a repeated vertex) take part in nothing.

    Args:
        tri: [T,3] integer vertex indices.
    """
    t = tri.long()
    T = t.shape[0]
    device = t.device
    own = t.clone()
    if T == 0:
        return Topology(t.clone(), own)
    k = torch.arange(3, device=device)
    a = t[:, (k + 1) % 3]  # [T,3] first vertex of edge k
    b = t[:, (k + 2) % 3]
    lo = torch.minimum(a, b).reshape(-1)
    hi = torch.maximum(a, b).reshape(-1)
    degenerate = ((t[:, 0] == t[:, 1]) | (t[:, 1] == t[:, 2]) | (t[:, 2] == t[:, 0])).repeat_interleave(3)
    nv = int(t.max()) + 1
    key = lo * nv + hi
    key = torch.where(degenerate, torch.full_like(key, -1), key)
    order = torch.argsort(key, stable=True)
    skey = key[order]
    # Each half-edge pairs with its successor in sorted order when the keys match; pairs are
    # formed greedily (0-1, 2-3, ...) within a run of equal keys.
    same_next = torch.zeros_like(skey, dtype=torch.bool)
    same_next[:-1] = (skey[:-1] == skey[1:]) & (skey[:-1] >= 0)
    run_start = torch.ones_like(skey, dtype=torch.bool)
    run_start[1:] = skey[1:] != skey[:-1]
    idx = torch.arange(skey.numel(), device=device)
    start_of_run = torch.cummax(torch.where(run_start, idx, torch.zeros_like(idx)), 0).values
    first_of_pair = same_next & ((idx - start_of_run) % 2 == 0)
    he_a = order[first_of_pair.nonzero().squeeze(1)]
    he_b = order[first_of_pair.nonzero().squeeze(1) + 1]
    opposite = own.reshape(-1).clone()
    flat_own = own.reshape(-1)
    opposite[he_a] = flat_own[he_b]
    opposite[he_b] = flat_own[he_a]
    return Topology(t.clone(), opposite.reshape(T, 3))
