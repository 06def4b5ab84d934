import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leakage import simulate
from leakage.simulation import batch_schedule


def _loop_reference(num_samples: int, batch_size: int | None, local_epochs: int) -> list[tuple[int, int]]:
    """FedAvg spelled out: every epoch, walk the samples in batches of ``batch_size``."""
    batch = num_samples if batch_size is None else batch_size
    steps = []
    for _ in range(local_epochs):
        start = 0
        while start < num_samples:
            steps.append((start, min(start + batch, num_samples)))
            start += batch
    return steps


@given(
    st.integers(min_value=1, max_value=60),
    st.one_of(st.none(), st.integers(min_value=1, max_value=70)),
    st.integers(min_value=1, max_value=4),
)
def test_fedavg_walks_every_sample_once_per_epoch_in_batches(
    num_samples: int, batch_size: int | None, epochs: int
) -> None:
    schedule = batch_schedule(num_samples, batch_size=batch_size, local_epochs=epochs)

    assert [(step.start, step.stop) for step in schedule] == _loop_reference(num_samples, batch_size, epochs)
    batch = num_samples if batch_size is None else min(batch_size, num_samples)
    assert len(schedule) == epochs * math.ceil(num_samples / batch)
    assert sum(step.stop - step.start for step in schedule) == epochs * num_samples


@given(st.integers(min_value=1, max_value=60), st.one_of(st.none(), st.integers(min_value=1, max_value=70)))
def test_fedsgd_takes_one_step_on_one_batch(num_samples: int, batch_size: int | None) -> None:
    schedule = batch_schedule(num_samples, batch_size=batch_size, algorithm="fedsgd")

    expected = num_samples if batch_size is None else min(batch_size, num_samples)
    assert schedule == [slice(0, expected)]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"num_samples": 0, "batch_size": 2}, "num_samples must be an integer >= 1, got 0"),
        ({"num_samples": 4, "batch_size": 0}, "batch_size must be an integer >= 1 or None, got 0"),
        ({"num_samples": 4, "batch_size": 2, "local_epochs": 0}, "local_epochs must be an integer >= 1, got 0"),
        ({"num_samples": 4, "batch_size": 2, "algorithm": "sgd"}, "algorithm must be one of fedsgd, fedavg, got 'sgd'"),
    ],
)
def test_bad_arguments_are_named(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        batch_schedule(**options)


def test_the_simulator_reads_what_the_schedule_says(tiny_digits) -> None:
    transcript = simulate(
        dataset=tiny_digits, n_clients=5, rounds=1, seed=2, algorithm="fedavg", local_epochs=2, batch_size=7
    )

    held = {client: len(indices) for client, indices in enumerate(transcript.truth.partition)}
    for client, order in transcript.truth.rounds[0].sample_order.items():
        schedule = batch_schedule(held[client], batch_size=7, local_epochs=2)
        assert len(order) == sum(step.stop - step.start for step in schedule)
        for epoch in range(2):  # each epoch is a full pass over the client's samples
            run = order[epoch * held[client] : (epoch + 1) * held[client]]
            assert sorted(run.tolist()) == sorted(transcript.truth.partition[client].tolist())
