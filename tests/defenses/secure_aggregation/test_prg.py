import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from defenses.secure_aggregation import MaskExpander, expand_mask


def test_masks_are_reproducible_from_the_seed_and_differ_across_seeds() -> None:
    first = expand_mask(b"\x01" * 32, 1000, np.uint32)

    assert np.array_equal(first, expand_mask(b"\x01" * 32, 1000, np.uint32))
    assert not np.array_equal(first, expand_mask(b"\x02" + b"\x01" * 31, 1000, np.uint32))


def test_every_seed_byte_changes_the_mask() -> None:
    # A mask seeded through a 32-bit fold would ignore most of these bytes.
    base = bytearray(32)
    reference = expand_mask(bytes(base), 64, np.uint64)
    for position in range(32):
        changed = bytearray(base)
        changed[position] = 1
        assert not np.array_equal(expand_mask(bytes(changed), 64, np.uint64), reference)


@settings(max_examples=20, deadline=None)
@given(length=st.integers(min_value=1, max_value=300_000), seed=st.binary(min_size=32, max_size=32))
def test_chunked_expansion_matches_one_shot_output(length: int, seed: bytes) -> None:
    expander = MaskExpander(length, np.uint32)
    total = np.zeros(length, np.uint32)

    expander.add(total, seed, sign=1)

    assert np.array_equal(total, expand_mask(seed, length, np.uint32))
    assert expander.bytes_generated == 4 * length


def test_adding_then_subtracting_a_mask_restores_the_vector() -> None:
    rng = np.random.default_rng(0)
    vector = rng.integers(0, 2**32, 5000, dtype=np.uint32)
    total = vector.copy()
    expander = MaskExpander(5000, np.uint32)

    expander.add(total, b"k" * 32, sign=1)
    expander.add(total, b"k" * 32, sign=-1)

    assert np.array_equal(total, vector)


def test_mask_words_are_uniform() -> None:
    words = expand_mask(b"u" * 32, 64_000, np.uint32)
    counts = np.bincount((words >> np.uint32(26)).astype(np.int64), minlength=64)

    assert stats.chisquare(counts).pvalue > 1e-4
