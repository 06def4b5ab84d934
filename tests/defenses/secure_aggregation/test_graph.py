import numpy as np
import pytest

from defenses.secure_aggregation import complete_graph, default_degree, harary_graph


@pytest.mark.parametrize("clients, degree", [(10, 4), (50, 12), (200, 16), (7, 2), (12, 6)])
def test_harary_graphs_are_regular_and_symmetric(clients: int, degree: int) -> None:
    graph = harary_graph(range(clients), degree, np.random.default_rng(clients))

    assert all(len(peers) == degree for peers in graph.values())
    assert all(u in graph[v] for u, peers in graph.items() for v in peers)
    assert all(u not in peers for u, peers in graph.items())


def test_the_graph_depends_on_the_public_randomness() -> None:
    first = harary_graph(range(30), 6, np.random.default_rng(1))

    assert first == harary_graph(range(30), 6, np.random.default_rng(1))
    assert first != harary_graph(range(30), 6, np.random.default_rng(2))


def test_a_degree_of_n_minus_1_or_more_is_the_complete_graph() -> None:
    assert harary_graph([2, 4, 6], 8, np.random.default_rng(0)) == complete_graph([2, 4, 6])


def test_default_degree_grows_logarithmically() -> None:
    assert [default_degree(n) for n in (2, 10, 50, 200, 1000)] == [1, 8, 12, 16, 20]
