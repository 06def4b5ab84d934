import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import defenses.dp  # noqa: F401  # registers dp, ldp, ddp
from defenses.dp import clip_updates, stochastic_round


@settings(max_examples=30, deadline=None)
@given(rows=st.integers(1, 6), size=st.integers(1, 8), clip_norm=st.floats(0.01, 10.0), seed=st.integers(0, 10_000))
def test_clipped_rows_keep_direction_and_stay_within_the_norm(rows: int, size: int, clip_norm: float, seed: int) -> None:
    updates = torch.randn(rows, size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 3

    clipped, was_clipped = clip_updates(updates, clip_norm)

    norms = updates.norm(dim=1)
    assert torch.all(clipped.norm(dim=1) <= clip_norm * (1 + 1e-12))
    assert torch.equal(was_clipped, norms > clip_norm)
    torch.testing.assert_close(clipped[~was_clipped], updates[~was_clipped], rtol=0, atol=0)
    unit = clipped[was_clipped] / clipped[was_clipped].norm(dim=1, keepdim=True)
    torch.testing.assert_close(unit, updates[was_clipped] / norms[was_clipped, None])


def test_zero_rows_stay_zero_and_inputs_are_not_changed() -> None:
    updates = torch.tensor([[0.0, 0.0], [6.0, 8.0]])
    before = updates.clone()

    clipped, was_clipped = clip_updates(updates, 5.0)

    assert torch.equal(clipped, torch.tensor([[0.0, 0.0], [3.0, 4.0]]))
    assert was_clipped.tolist() == [False, True]
    assert torch.equal(updates, before)


@settings(max_examples=30, deadline=None)
@given(
    values=st.lists(st.floats(-100, 100), min_size=1, max_size=20),
    exponent=st.integers(-8, 2),
    seed=st.integers(0, 10_000),
)
def test_rounding_moves_each_value_by_less_than_one_step(values: list[float], exponent: int, seed: int) -> None:
    step = 2.0**exponent
    tensor = torch.tensor(values, dtype=torch.float64)

    indices = stochastic_round(tensor, step, generator=torch.Generator().manual_seed(seed))

    assert indices.dtype == torch.int64
    assert torch.all((indices.double() * step - tensor).abs() < step)


def test_values_on_the_grid_are_kept_exactly() -> None:
    values = torch.tensor([-1.5, 0.0, 0.25, 3.0], dtype=torch.float64)

    indices = stochastic_round(values, 0.25, generator=torch.Generator().manual_seed(0))

    assert indices.tolist() == [-6, 0, 1, 12]


def test_rounding_is_unbiased() -> None:
    values = torch.full((200_000,), 0.3, dtype=torch.float64)

    indices = stochastic_round(values, 1.0, generator=torch.Generator().manual_seed(5))

    assert set(indices.unique().tolist()) == {0, 1}
    assert float(indices.double().mean()) == pytest.approx(0.3, abs=5 * (0.3 * 0.7 / 200_000) ** 0.5)
