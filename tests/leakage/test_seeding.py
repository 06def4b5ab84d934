import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from leakage.seeding import hashed_permutations, numpy_rng, torch_generator


@settings(max_examples=30, deadline=None)
@given(
    ids=st.lists(st.integers(0, 10**6), min_size=1, max_size=20, unique=True),
    length=st.integers(1, 40),
    seed=st.integers(0, 2**32),
)
def test_each_row_is_a_permutation_that_depends_only_on_its_own_id(ids, length, seed) -> None:
    rows = hashed_permutations(seed, (4, 2), np.array(ids), length)

    for index, client in enumerate(ids):
        assert sorted(rows[index].tolist()) == list(range(length))
        assert np.array_equal(hashed_permutations(seed, (4, 2), np.array([client]), length)[0], rows[index])


def test_permutations_look_uniform() -> None:
    rows = hashed_permutations(0, (1,), np.arange(20000), 4)

    first_positions = np.bincount(rows[:, 0], minlength=4) / len(rows)
    assert np.allclose(first_positions, 0.25, atol=0.02)
    assert not np.array_equal(rows, hashed_permutations(1, (1,), np.arange(20000), 4))


def test_streams_with_different_paths_differ_and_repeat() -> None:
    assert numpy_rng(0, 1).integers(1 << 30) == numpy_rng(0, 1).integers(1 << 30)
    assert numpy_rng(0, 1).integers(1 << 30) != numpy_rng(0, 2).integers(1 << 30)
    assert torch_generator(3, 1).initial_seed() == torch_generator(3, 1).initial_seed()
    assert torch_generator(3, 1).initial_seed() != torch_generator(3, 2).initial_seed()
