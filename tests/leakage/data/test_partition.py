"""Tests for the client partitioners."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from leakage.data import PARTITIONS, partition_dataset
from leakage.errors import ConfigError, UnknownNameError

NUM_SAMPLES = 400
NUM_CLASSES = 10
TARGETS = torch.arange(NUM_SAMPLES) % NUM_CLASSES
HAS_PROPERTY = torch.arange(NUM_SAMPLES) % 5 == 0  # 80 samples carry the property

VALID_OPTIONS: dict[str, dict[str, Any]] = {
    "iid": {},
    "dirichlet": {"alpha": 0.5},
    "quantity": {"alpha": 1.0},
    "property": {"has_property": HAS_PROPERTY, "fraction": 0.3},
}


def split(name: str, n_clients: int = 10, seed: int = 0, **options: Any) -> list[torch.Tensor]:
    merged = {**VALID_OPTIONS[name], **options}
    return partition_dataset(name, TARGETS, n_clients, rng=np.random.default_rng(seed), **merged)


def label_entropy(indices: torch.Tensor) -> float:
    counts = TARGETS[indices].bincount(minlength=NUM_CLASSES).double()
    shares = counts[counts > 0] / counts.sum()
    return float(-(shares * shares.log()).sum())


def test_registered_partitioners() -> None:
    assert PARTITIONS.names() == ["dirichlet", "iid", "property", "quantity", "target"]


@pytest.mark.parametrize("name", sorted(VALID_OPTIONS))
def test_partition_is_disjoint_sorted_int64_and_nonempty(name: str) -> None:
    parts = split(name)

    assert len(parts) == 10
    for part in parts:
        assert part.dtype == torch.int64 and part.ndim == 1
        assert len(part) >= 1
        assert torch.equal(part, part.sort().values)
    everything = torch.cat(parts)
    assert len(torch.unique(everything)) == len(everything)
    assert bool((everything >= 0).all()) and bool((everything < NUM_SAMPLES).all())


@pytest.mark.parametrize("name", ["dirichlet", "iid", "quantity"])
def test_partition_covers_every_sample(name: str) -> None:
    parts = split(name)

    assert torch.equal(torch.cat(parts).sort().values, torch.arange(NUM_SAMPLES))


@pytest.mark.parametrize("name", sorted(VALID_OPTIONS))
def test_partition_is_deterministic_given_the_generator(name: str) -> None:
    first, again, other = split(name, seed=7), split(name, seed=7), split(name, seed=8)

    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(first, other, strict=True))


@pytest.mark.parametrize("name", sorted(VALID_OPTIONS))
def test_partition_does_not_change_its_inputs(name: str) -> None:
    targets_before, flags_before = TARGETS.clone(), HAS_PROPERTY.clone()

    split(name)

    assert torch.equal(TARGETS, targets_before) and torch.equal(HAS_PROPERTY, flags_before)


@pytest.mark.parametrize("name", sorted(VALID_OPTIONS))
@pytest.mark.parametrize("n_clients", [0, -1, NUM_SAMPLES + 1, True, 2.0])
def test_bad_client_counts_are_rejected(name: str, n_clients: object) -> None:
    with pytest.raises(ValueError, match="n_clients"):
        split(name, n_clients=n_clients)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "targets", [torch.zeros(5), torch.zeros(5, 2, dtype=torch.long), [0, 1, 2]]
)
def test_bad_targets_are_rejected(targets: object) -> None:
    with pytest.raises(ValueError, match="targets"):
        partition_dataset("iid", targets, 2, rng=np.random.default_rng(0))  # type: ignore[arg-type]


def test_unknown_partition_and_option_are_rejected() -> None:
    rng = np.random.default_rng(0)

    with pytest.raises(UnknownNameError, match="dirichlet, iid, property, quantity, target"):
        partition_dataset("shards", TARGETS, 2, rng=rng)
    with pytest.raises(ConfigError, match="unknown option .beta. for partition .dirichlet.; it accepts: alpha, max_attempts, min_size, rng"):
        partition_dataset("dirichlet", TARGETS, 2, rng=rng, alpha=1.0, beta=2.0)


def test_missing_generator_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        partition_dataset("iid", TARGETS, 2, rng=0)  # type: ignore[arg-type]


# --- iid ---------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_iid_assigns_every_index_exactly_once(data: st.DataObject) -> None:
    num_samples = data.draw(st.integers(min_value=1, max_value=200), label="num_samples")
    n_clients = data.draw(st.integers(min_value=1, max_value=num_samples), label="n_clients")
    seed = data.draw(st.integers(min_value=0, max_value=2**32 - 1), label="seed")

    targets = torch.zeros(num_samples, dtype=torch.long)

    parts = partition_dataset("iid", targets, n_clients, rng=np.random.default_rng(seed))

    sizes = [len(part) for part in parts]
    assert len(parts) == n_clients
    assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1
    assert torch.equal(torch.cat(parts).sort().values, torch.arange(num_samples))


def test_iid_samples_per_client_gives_disjoint_equal_shards() -> None:
    parts = split("iid", n_clients=8, samples_per_client=50)

    assert [len(part) for part in parts] == [50] * 8
    assert len(torch.unique(torch.cat(parts))) == 400


def test_iid_with_replacement_lets_clients_share_but_not_repeat_samples() -> None:
    parts = split("iid", n_clients=8, samples_per_client=100, replacement=True)

    assert [len(part) for part in parts] == [100] * 8
    assert all(len(torch.unique(part)) == 100 for part in parts)
    assert len(torch.unique(torch.cat(parts))) < 800


def test_iid_too_many_samples_per_client_suggests_replacement() -> None:
    with pytest.raises(ValueError, match=r"samples_per_client=41 .* replacement=True"):
        split("iid", n_clients=10, samples_per_client=41)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"samples_per_client": 0}, "samples_per_client"),
        ({"samples_per_client": 2.0}, "samples_per_client"),
        ({"samples_per_client": NUM_SAMPLES + 1, "replacement": True}, "samples_per_client"),
        ({"replacement": True}, "replacement"),
        ({"samples_per_client": 5, "replacement": "yes"}, "replacement"),
    ],
)
def test_iid_rejects_bad_options(options: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        split("iid", **options)


# --- dirichlet ---------------------------------------------------------------------


def test_dirichlet_skew_grows_as_alpha_shrinks() -> None:
    def mean_entropy(alpha: float) -> float:
        parts = split("dirichlet", alpha=alpha, seed=3)
        return sum(label_entropy(part) for part in parts) / len(parts)

    assert mean_entropy(0.1) < mean_entropy(1.0) < mean_entropy(100.0)
    assert mean_entropy(100.0) > 0.9 * np.log(NUM_CLASSES)


def test_dirichlet_respects_min_size() -> None:
    parts = split("dirichlet", alpha=0.3, min_size=20)

    assert min(len(part) for part in parts) >= 20


def test_dirichlet_gives_up_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="min_size=40 .* max_attempts=3"):
        split("dirichlet", alpha=0.01, min_size=40, max_attempts=3)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"alpha": 0}, "alpha"),
        ({"alpha": -1.0}, "alpha"),
        ({"alpha": float("nan")}, "alpha"),
        ({"alpha": "1"}, "alpha"),
        ({"min_size": 0}, "min_size"),
        ({"min_size": 41}, "min_size"),
        ({"max_attempts": 0}, "max_attempts"),
    ],
)
def test_dirichlet_rejects_bad_options(options: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        split("dirichlet", **options)


# --- quantity ----------------------------------------------------------------------


def test_quantity_sizes_spread_more_as_alpha_shrinks() -> None:
    def size_spread(alpha: float) -> float:
        sizes = np.array([len(part) for part in split("quantity", alpha=alpha, seed=5)])
        return float(sizes.std() / sizes.mean())

    assert size_spread(0.1) > size_spread(1.0) > size_spread(100.0)


def test_quantity_keeps_labels_iid() -> None:
    parts = split("quantity", n_clients=2, alpha=100.0)

    assert all(label_entropy(part) > 0.95 * np.log(NUM_CLASSES) for part in parts)


@pytest.mark.parametrize("alpha", [0.0, -2.0, float("inf"), None])
def test_quantity_rejects_bad_alpha(alpha: object) -> None:
    with pytest.raises(ValueError, match="alpha"):
        split("quantity", alpha=alpha)


# --- property ----------------------------------------------------------------------


def test_property_samples_go_only_to_a_random_fraction_of_clients() -> None:
    parts = split("property", fraction=0.3)

    holders = [index for index, part in enumerate(parts) if HAS_PROPERTY[part].any()]
    held = torch.cat([parts[index] for index in holders])
    assert len(holders) == 3
    assert torch.equal(held[HAS_PROPERTY[held]].sort().values, HAS_PROPERTY.nonzero().flatten())
    assert torch.equal(torch.cat(parts).sort().values, torch.arange(NUM_SAMPLES))
    holders_by_seed = {
        tuple(i for i, part in enumerate(split("property", seed=seed)) if HAS_PROPERTY[part].any())
        for seed in range(5)
    }
    assert len(holders_by_seed) > 1


def test_property_clients_are_topped_up_to_equal_sizes() -> None:
    parts = split("property", fraction=0.3)

    sizes = [len(part) for part in parts]
    assert max(sizes) - min(sizes) <= 1
    assert all(int((~HAS_PROPERTY[part]).sum()) > 0 for part in parts)


def test_property_zero_fraction_leaves_property_samples_out() -> None:
    parts = split("property", fraction=0.0)

    held = torch.cat(parts)
    assert not HAS_PROPERTY[held].any()
    assert len(held) == int((~HAS_PROPERTY).sum())


def test_property_full_fraction_gives_every_client_property_samples() -> None:
    parts = split("property", fraction=1.0)

    assert all(HAS_PROPERTY[part].any() for part in parts)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"fraction": -0.1}, "fraction"),
        ({"fraction": 1.5}, "fraction"),
        ({"fraction": float("nan")}, "fraction"),
        ({"fraction": 0.01}, "fraction"),
        ({"has_property": HAS_PROPERTY.long()}, "has_property"),
        ({"has_property": HAS_PROPERTY[:-1]}, "has_property"),
        ({"has_property": torch.zeros(NUM_SAMPLES, dtype=torch.bool)}, "has_property"),
        ({"has_property": torch.arange(NUM_SAMPLES) >= 5, "fraction": 0.3}, "has_property"),
    ],
)
def test_property_rejects_bad_options(options: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        split("property", **options)
