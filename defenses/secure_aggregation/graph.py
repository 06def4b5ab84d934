"""Who masks with whom: the complete graph (SecAgg) or a random Harary graph (SecAgg+).

Bell, Bonawitz, Gascon, Lepoint, Raykova (CCS 2020), "Secure Single-Server Aggregation
with (Poly)Logarithmic Overhead": clients share secrets and pairwise masks only with
their ``k`` neighbours in a random ``k``-regular graph, ``k = O(log n)``. The graph is
the Harary graph ``H(k, n)`` (each node joined to the ``k/2`` nearest nodes on either
side of a ring) with node labels randomly permuted, drawn from public randomness.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["complete_graph", "default_degree", "harary_graph"]

Graph = dict[int, frozenset[int]]


def complete_graph(clients: Sequence[int]) -> Graph:
    """Return every client's neighbours when everyone is everyone's neighbour.

    >>> complete_graph([3, 5, 9])[5]
    frozenset({9, 3})
    """
    members = frozenset(clients)
    return {c: members - {c} for c in clients}


def default_degree(num_clients: int) -> int:
    """Return the SecAgg+ neighbourhood size: the even number ``>= 2 * ceil(log2 n)``, at most ``n - 1``.

    >>> default_degree(200), default_degree(10), default_degree(3)
    (16, 8, 2)
    """
    degree = 2 * math.ceil(math.log2(max(num_clients, 2)))
    return min(degree, num_clients - 1)


def harary_graph(clients: Sequence[int], degree: int, rng: np.random.Generator) -> Graph:
    """Return a random ``degree``-regular Harary graph over ``clients``.

    Clients are placed on a ring in a random order; each is joined to ``degree // 2``
    ring neighbours on each side (and, for odd ``degree``, to the opposite node, which
    needs an even number of clients). ``degree >= n - 1`` gives the complete graph.

    >>> g = harary_graph(range(10), 4, np.random.default_rng(0))
    >>> sorted(len(n) for n in g.values()) == [4] * 10
    True
    """
    members = list(clients)
    count = len(members)
    if degree >= count - 1:
        return complete_graph(members)
    order = [members[i] for i in rng.permutation(count)]
    neighbours: dict[int, set[int]] = {c: set() for c in members}
    for position, client in enumerate(order):
        for step in range(1, degree // 2 + 1):
            for other in (order[(position + step) % count], order[(position - step) % count]):
                neighbours[client].add(other)
        if degree % 2:
            neighbours[client].add(order[(position + count // 2) % count])
    return {c: frozenset(n) for c, n in neighbours.items()}
