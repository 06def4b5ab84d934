"""One round's local training: grouping by length, padding uneven clients, the loop as reference."""

from dataclasses import replace

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from leakage.data import Dataset
from leakage.models import ParameterLayout, create_model, flatten_parameters
from leakage.simulation import batch_schedule, make_loss, make_weighted_loss
from leakage.simulation.round_training import LocalTraining, PartitionIndex, orders_by_client, sample_orders


def _round(
    dataset: Dataset, sizes: list[int], *, batch_size: int | None, epochs: int, algorithm: str = "fedavg", seed: int = 0
):
    """A partition with the given ``sizes`` (consecutive samples), its round-0 orders, and both trainers."""
    starts = np.cumsum([0, *sizes])
    partition = [torch.arange(start, stop) % len(dataset) for start, stop in zip(starts[:-1], starts[1:])]
    model = create_model("mlp", input_shape=(1, 8, 8), num_classes=10, generator=torch.Generator().manual_seed(0),
                         hidden=(12,))
    epochs = 1 if algorithm == "fedsgd" else epochs

    def schedule(length: int) -> list[slice]:
        return batch_schedule(length // epochs, batch_size=batch_size, local_epochs=epochs, algorithm=algorithm)

    def samples_read(count: int) -> int:
        steps = batch_schedule(count, batch_size=batch_size, local_epochs=epochs, algorithm=algorithm)
        return sum(step.stop - step.start for step in steps)

    client_ids = tuple(range(len(sizes)))
    groups = sample_orders(seed, 0, client_ids, PartitionIndex.of(partition), epochs=epochs,
                           samples_read=samples_read)
    vectorised = LocalTraining(loss=make_loss(model), weighted_loss=make_weighted_loss(model),
                               layout=ParameterLayout.of(model), lr=0.3, schedule=schedule, vectorise=True,
                               can_pad=True)
    return flatten_parameters(model), groups, vectorised, replace(vectorised, vectorise=False)


@settings(max_examples=20, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 14), min_size=2, max_size=24),
    batch_size=st.one_of(st.none(), st.integers(1, 6)),
    epochs=st.integers(1, 3),
    algorithm=st.sampled_from(["fedavg", "fedsgd"]),
)
def test_vectorised_clients_of_any_sizes_equal_the_per_client_loop(
    digits: Dataset, sizes: list[int], batch_size: int | None, epochs: int, algorithm: str
) -> None:
    params, groups, vectorised, loop = _round(digits, sizes, batch_size=batch_size, epochs=epochs, algorithm=algorithm)

    updates, first_losses = vectorised.run(params, digits, groups, len(sizes))
    expected, expected_losses = loop.run(params, digits, groups, len(sizes))

    # float32 over up to 42 local steps, summed in another order by the padded path: a few ulps per step add up
    torch.testing.assert_close(updates, expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(first_losses, expected_losses, rtol=1e-5, atol=1e-6)


def test_many_different_sizes_are_padded_into_few_calls_and_still_agree(digits: Dataset) -> None:
    sizes = [3 + (7 * client) % 20 for client in range(40)]  # twenty sizes, two clients each
    params, groups, vectorised, loop = _round(digits, sizes, batch_size=4, epochs=2)

    exact, padded = vectorised._plan(groups)
    updates, _ = vectorised.run(params, digits, groups, len(sizes))

    assert len(groups) == 20 and padded and sum(g.rows.numel() for bucket in padded for g in bucket) > 30
    torch.testing.assert_close(updates, loop.run(params, digits, groups, len(sizes))[0], rtol=1e-5, atol=1e-6)


def test_iid_sizes_train_exactly_per_size(digits: Dataset) -> None:
    params, groups, vectorised, _ = _round(digits, [5, 6] * 4, batch_size=4, epochs=1)

    exact, padded = vectorised._plan(groups)

    assert padded == [] and [g.length for g in exact] == [5, 6]


def test_the_same_round_trains_to_the_same_bits(digits: Dataset) -> None:
    sizes = [1 + (5 * client) % 13 for client in range(30)]
    params, groups, vectorised, _ = _round(digits, sizes, batch_size=3, epochs=2)
    _, again_groups, again, _ = _round(digits, sizes, batch_size=3, epochs=2)

    first = vectorised.run(params, digits, groups, len(sizes))
    second = again.run(params, digits, again_groups, len(sizes))

    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


def test_orders_hold_every_sample_once_per_epoch_and_follow_the_rows(digits: Dataset) -> None:
    sizes = [4, 7, 4, 2]
    _, groups, _, _ = _round(digits, sizes, batch_size=None, epochs=2)

    orders = orders_by_client(groups, (0, 1, 2, 3))
    only = orders_by_client(groups, (0, 1, 2, 3), {2})

    assert list(orders) == [0, 1, 2, 3] and list(only) == [2] and torch.equal(only[2], orders[2])
    starts = np.cumsum([0, *sizes])
    for client, order in orders.items():
        own = torch.arange(starts[client], starts[client + 1])
        for epoch in order.view(2, sizes[client]):
            assert torch.equal(epoch.sort().values, own)


def test_large_groups_stay_exact_and_a_lone_small_length_needs_no_padding(digits: Dataset) -> None:
    params, groups, vectorised, _ = _round(digits, [5] * 20 + [6] * 20 + [7] * 2, batch_size=4, epochs=1)
    _, mixed_groups, mixed, _ = _round(digits, [5] * 20 + [6, 7, 7], batch_size=4, epochs=1)

    exact, padded = vectorised._plan(groups)
    mixed_exact, mixed_padded = mixed._plan(mixed_groups)

    assert padded == [] and sorted(g.length for g in exact) == [5, 6, 7]
    assert [g.length for g in mixed_exact] == [5] and [sorted(g.length for g in b) for b in mixed_padded] == [[6, 7]]
