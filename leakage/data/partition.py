"""Split a dataset's sample indices among federated clients, by a registered scheme.

Every partitioner takes the labels ``targets`` (int tensor ``[num_samples]``), the
number of clients and a numpy generator, and returns one int64 index tensor per
client, sorted ascending (the order carries no information; shuffle when batching).
Unless a scheme says otherwise, clients are disjoint, each holds at least one sample,
and the same generator state gives the same partition.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from leakage.checks import require_bool, require_choice, require_in_interval, require_int, require_positive_float
from leakage.errors import ConfigError
from leakage.registry import Registry

__all__ = [
    "PARTITIONS",
    "partition_by_property",
    "partition_dataset",
    "partition_dirichlet",
    "partition_iid",
    "partition_quantity",
    "partition_target",
]

PARTITIONS: Registry[Callable[..., list[Tensor]]] = Registry("partition")


def partition_dataset(
    name: str, targets: Tensor, n_clients: int, *, rng: np.random.Generator, **options: Any
) -> list[Tensor]:
    """Return one sorted int64 index tensor per client, split by the partitioner ``name``.

    Args:
        name: a key of `PARTITIONS`: ``"iid"``, ``"dirichlet"``, ``"quantity"``, ``"property"``,
            ``"target"``.
        targets: int tensor ``[num_samples]`` of labels.
        n_clients: number of clients, from 1 to ``num_samples``.
        rng: the only source of randomness.
        **options: the partitioner's keyword options (see each ``partition_*`` function).

    Raises:
        UnknownNameError: ``name`` is not registered.
        ConfigError: an option is unknown, or a value is out of range (a ``ValueError``).

    >>> parts = partition_dataset("iid", torch.arange(5), 2, rng=np.random.default_rng(0))
    >>> [len(part) for part in parts], sorted(torch.cat(parts).tolist())
    ([3, 2], [0, 1, 2, 3, 4])
    """
    return PARTITIONS.create(name, targets, n_clients, rng=rng, **options)  # type: ignore[no-any-return]


def _check_common(targets: object, n_clients: object, rng: object) -> int:
    """Validate the arguments every partitioner takes; return the number of samples."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if not isinstance(targets, Tensor) or targets.ndim != 1:
        raise ConfigError(f"targets must be a 1-D tensor of labels, got {targets!r:.80}")
    if targets.dtype == torch.bool or targets.dtype.is_floating_point or targets.is_complex():
        raise ConfigError(f"targets must hold integer labels, got dtype {targets.dtype}")
    num_samples = len(targets)
    if isinstance(n_clients, bool) or not isinstance(n_clients, (int, np.integer)):
        raise ConfigError(f"n_clients must be an integer, got {n_clients!r}")
    if not 1 <= n_clients <= num_samples:
        raise ConfigError(
            f"n_clients must be between 1 and the number of samples ({num_samples}), "
            f"got {n_clients}"
        )
    return num_samples


def _as_tensors(parts: Sequence[NDArray[np.integer[Any]]]) -> list[Tensor]:
    return [torch.from_numpy(np.sort(part).astype(np.int64)) for part in parts]


@PARTITIONS.register("iid")
def partition_iid(
    targets: Tensor,
    n_clients: int,
    *,
    rng: np.random.Generator,
    samples_per_client: int | None = None,
    replacement: bool = False,
) -> list[Tensor]:
    """Return uniformly random client shards: labels and sizes are iid across clients.

    Without ``samples_per_client`` all samples are shuffled and split as evenly as
    possible (sizes differ by at most one). With it, every client gets exactly that
    many samples: disjoint shards of a shuffle when ``replacement`` is False (this needs
    ``n_clients * samples_per_client <= num_samples``), or, when ``replacement`` is
    True, an independent draw per client, so clients may share samples but no client
    holds one sample twice.

    Raises:
        ConfigError: ``samples_per_client`` is not an integer >= 1, the shards do not
            fit without replacement, or ``replacement`` is set without it.

    >>> parts = partition_iid(torch.zeros(6, dtype=torch.long), 3, rng=np.random.default_rng(1))
    >>> [len(part) for part in parts]
    [2, 2, 2]
    """
    num_samples = _check_common(targets, n_clients, rng)
    require_bool("replacement", replacement)
    if samples_per_client is None:
        if replacement:
            raise ConfigError("replacement=True needs samples_per_client, got None")
        return _as_tensors(np.array_split(rng.permutation(num_samples), n_clients))
    per_client = require_int("samples_per_client", samples_per_client, minimum=1)
    if replacement:
        if per_client > num_samples:
            raise ConfigError(
                f"samples_per_client must be at most the number of samples ({num_samples}), "
                f"got {per_client}"
            )
        return _as_tensors(
            [rng.choice(num_samples, per_client, replace=False) for _ in range(n_clients)]
        )
    if n_clients * per_client > num_samples:
        raise ConfigError(
            f"samples_per_client={per_client} for {n_clients} clients needs "
            f"{n_clients * per_client} samples but there are {num_samples}; "
            "lower samples_per_client or pass replacement=True"
        )
    shuffled = rng.permutation(num_samples)[: n_clients * per_client]
    return _as_tensors(np.split(shuffled, n_clients))


@PARTITIONS.register("dirichlet")
def partition_dirichlet(
    targets: Tensor,
    n_clients: int,
    *,
    rng: np.random.Generator,
    alpha: float,
    min_size: int = 1,
    max_attempts: int = 1000,
) -> list[Tensor]:
    """Return label-skewed client shards, with per-class shares drawn from ``Dir(alpha)``.

    The scheme of Hsu et al. (2019), as implemented in NIID-Bench (Li et al., 2022):
    for each class, draw client proportions ``p ~ Dir(alpha * 1)``, set ``p_j = 0``
    for clients already holding ``num_samples / n_clients`` samples or more (keeps
    sizes from exploding), renormalise and deal the shuffled class samples out by
    ``p``. The whole draw is repeated until every client holds ``min_size`` samples.
    Small ``alpha`` gives clients few classes; large ``alpha`` approaches iid.

    Raises:
        ConfigError: ``alpha`` is not a finite number > 0, ``min_size`` or
            ``max_attempts`` is not an integer >= 1, ``n_clients * min_size`` exceeds
            the number of samples, or no draw in ``max_attempts`` met ``min_size``.

    >>> targets = torch.arange(20) % 2
    >>> parts = partition_dirichlet(targets, 4, rng=np.random.default_rng(0), alpha=0.5)
    >>> sum(len(part) for part in parts)
    20
    """
    num_samples = _check_common(targets, n_clients, rng)
    concentration = require_positive_float("alpha", alpha)
    min_size = require_int("min_size", min_size, minimum=1)
    max_attempts = require_int("max_attempts", max_attempts, minimum=1)
    if n_clients * min_size > num_samples:
        raise ConfigError(
            f"min_size={min_size} for {n_clients} clients needs {n_clients * min_size} "
            f"samples but there are {num_samples}"
        )
    labels = targets.numpy(force=True)
    members_per_class = [np.flatnonzero(labels == label) for label in np.unique(labels)]
    for _ in range(max_attempts):
        parts = _draw_dirichlet(members_per_class, n_clients, concentration, num_samples, rng)
        if parts is not None and min(len(part) for part in parts) >= min_size:
            return _as_tensors(parts)
    raise ConfigError(
        f"dirichlet partition left some client with fewer than min_size={min_size} samples "
        f"in all max_attempts={max_attempts} draws (alpha={concentration}, "
        f"n_clients={n_clients}, {num_samples} samples); raise alpha or max_attempts, "
        "or lower n_clients or min_size"
    )


def _draw_dirichlet(
    members_per_class: list[NDArray[np.intp]],
    n_clients: int,
    alpha: float,
    num_samples: int,
    rng: np.random.Generator,
) -> list[NDArray[np.intp]] | None:
    """Deal each class out by Dirichlet proportions; None when a draw degenerates."""
    client_parts: list[list[NDArray[np.intp]]] = [[] for _ in range(n_clients)]
    sizes = np.zeros(n_clients, dtype=np.int64)
    for members in members_per_class:
        proportions = rng.dirichlet(np.full(n_clients, alpha))
        proportions = proportions * (sizes < num_samples / n_clients)
        total = proportions.sum()
        if total <= 0:  # tiny alpha put all mass on clients that are already full
            return None
        cuts = (np.cumsum(proportions / total) * len(members)).astype(np.int64)[:-1]
        for client, share in enumerate(np.split(rng.permutation(members), cuts)):
            client_parts[client].append(share)
            sizes[client] += len(share)
    return [np.concatenate(parts) for parts in client_parts]


@PARTITIONS.register("quantity")
def partition_quantity(
    targets: Tensor, n_clients: int, *, rng: np.random.Generator, alpha: float
) -> list[Tensor]:
    """Return quantity-skewed client shards: sizes follow ``Dir(alpha)``, labels stay iid.

    Each client first gets one sample; the other ``num_samples - n_clients`` are dealt
    by a multinomial draw with proportions ``p ~ Dir(alpha * 1)``. The shards are then
    cut from a shuffle, so every client's labels are a uniform sample. Small ``alpha``
    gives a few large clients and many tiny ones.

    Raises:
        ConfigError: ``alpha`` is not a finite number > 0.

    >>> parts = partition_quantity(torch.zeros(10, dtype=torch.long), 3,
    ...                            rng=np.random.default_rng(0), alpha=1.0)
    >>> sum(len(part) for part in parts), min(len(part) for part in parts) >= 1
    (10, True)
    """
    num_samples = _check_common(targets, n_clients, rng)
    concentration = require_positive_float("alpha", alpha)
    proportions = rng.dirichlet(np.full(n_clients, concentration))
    sizes = 1 + rng.multinomial(num_samples - n_clients, proportions)
    shuffled = rng.permutation(num_samples)
    return _as_tensors(np.split(shuffled, np.cumsum(sizes)[:-1]))


@PARTITIONS.register("property")
def partition_by_property(
    targets: Tensor,
    n_clients: int,
    *,
    rng: np.random.Generator,
    has_property: Tensor,
    fraction: float,
) -> list[Tensor]:
    """Return client shards where only a random ``fraction`` of clients hold the property.

    ``round(fraction * n_clients)`` property clients are drawn uniformly from ``rng``
    (recover them as the clients whose shard contains a flagged sample). They split
    all samples with the property as evenly as possible. The samples without the
    property are then dealt so client sizes are as equal as possible: clients with
    the fewest samples are topped up first, so property clients also get some
    whenever the property samples are fewer than their fair share, and size alone then
    does not reveal who holds the property. With ``fraction = 0`` no client holds a
    property sample (they are left out).

    Args:
        has_property: bool tensor ``[num_samples]``, e.g. ``dataset.properties["high_ink"]``.
        fraction: share of clients that hold the property, in ``[0, 1]``.

    Raises:
        ConfigError: ``has_property`` is not a bool tensor of the right length,
            ``fraction`` is outside ``[0, 1]`` or rounds to zero clients while > 0,
            there are fewer property samples than property clients, or fewer
            samples without the property than clients without it.

    >>> flags = torch.tensor([True, True, False, False, False, False])
    >>> targets, rng = torch.zeros(6, dtype=torch.long), np.random.default_rng(0)
    >>> parts = partition_by_property(targets, 3, rng=rng, has_property=flags, fraction=1 / 3)
    >>> sorted(int(flags[part].sum()) for part in parts)
    [0, 0, 2]
    """
    num_samples = _check_common(targets, n_clients, rng)
    if not isinstance(has_property, Tensor) or has_property.dtype != torch.bool:
        raise ConfigError(f"has_property must be a bool tensor, got {has_property!r:.80}")
    if has_property.shape != (num_samples,):
        raise ConfigError(
            f"has_property must have shape [{num_samples}] like targets, "
            f"got {list(has_property.shape)}"
        )
    fraction = require_in_interval("fraction", fraction, 0, 1)
    num_holders = round(fraction * n_clients)
    if fraction > 0 and num_holders == 0:
        raise ConfigError(
            f"fraction={fraction} of {n_clients} clients rounds to no property client; "
            f"use fraction >= {0.5 / n_clients:.3g} or 0"
        )
    flags = has_property.numpy(force=True)
    with_property = np.flatnonzero(flags)
    without_property = np.flatnonzero(~flags)
    if len(with_property) < num_holders:
        raise ConfigError(
            f"has_property marks {len(with_property)} samples, fewer than the "
            f"{num_holders} property clients that fraction={fraction} asks for"
        )
    if len(without_property) < n_clients - num_holders:
        raise ConfigError(
            f"has_property leaves {len(without_property)} samples without the property, "
            f"fewer than the {n_clients - num_holders} clients that must hold only those"
        )
    holders = rng.choice(n_clients, num_holders, replace=False)
    base_sizes = np.zeros(n_clients, dtype=np.int64)
    property_shares = (
        np.array_split(rng.permutation(with_property), num_holders) if num_holders else []
    )
    base_sizes[holders] = [len(share) for share in property_shares]
    extra_sizes = _fill_levels(base_sizes, len(without_property), rng)
    other_shares = np.split(rng.permutation(without_property), np.cumsum(extra_sizes)[:-1])
    parts = list(other_shares)
    for holder, share in zip(holders, property_shares, strict=True):
        parts[holder] = np.concatenate([share, parts[holder]])
    return _as_tensors(parts)


def _fill_levels(
    base_sizes: NDArray[np.int64], count: int, rng: np.random.Generator
) -> NDArray[np.int64]:
    """Return how many of ``count`` items each bin gets so that totals are as equal as possible.

    Water-filling: every bin is raised to a common level ``L`` (bins already above stay),
    the largest ``L`` whose cost fits in ``count``; the few items left over go one each
    to bins drawn at random among those at the level.
    """
    low, high = 0, int(base_sizes.max()) + count
    while low < high:  # largest level whose fill cost is at most count
        level = (low + high + 1) // 2
        if np.maximum(level - base_sizes, 0).sum() <= count:
            low = level
        else:
            high = level - 1
    extra = np.maximum(low - base_sizes, 0)
    leftover = count - int(extra.sum())
    at_level = np.flatnonzero(base_sizes <= low)
    extra[rng.choice(at_level, leftover, replace=False)] += 1
    return extra


@PARTITIONS.register("target")
def partition_target(
    targets: Tensor,
    n_clients: int,
    *,
    rng: np.random.Generator,
    target_size: int,
    samples_per_client: int | None = None,
    has_property: Tensor | None = None,
    target_has_property: bool | None = None,
    others: str = "any",
) -> list[Tensor]:
    """Return shards where client 0, the attack's target, holds a controlled sample.

    Client 0 gets ``target_size`` samples drawn uniformly (only among samples whose
    property flag equals ``target_has_property`` when it is set). The other clients
    split the remaining samples (only those without the property when ``others`` is
    ``"without_property"``, the population of Melis et al.'s experiments; all of them
    for ``"any"``, a realistic population): ``samples_per_client`` each, disjoint, or all
    of them as evenly as possible.

    Raises:
        ConfigError: a size is not a positive integer, the samples do not suffice,
            ``others`` is not ``"any"`` or ``"without_property"``, or a property option
            is used without ``has_property``.

    >>> flags = torch.tensor([True, False, True, False, False, False])
    >>> parts = partition_target(torch.zeros(6, dtype=torch.long), 3, rng=np.random.default_rng(0),
    ...                          target_size=2, has_property=flags, target_has_property=True,
    ...                          others="without_property")
    >>> parts[0].tolist(), sorted(torch.cat(parts[1:]).tolist())
    ([0, 2], [1, 3, 4, 5])
    """
    num_samples = _check_common(targets, n_clients, rng)
    size = require_int("target_size", target_size, minimum=1)
    require_choice("others", others, ("any", "without_property"))
    if target_has_property is not None and not isinstance(target_has_property, bool):
        raise ConfigError(f"target_has_property must be true, false or unset, got {target_has_property!r}")
    needs_flags = target_has_property is not None or others == "without_property"
    if needs_flags and (not isinstance(has_property, Tensor) or has_property.shape != (num_samples,)):
        raise ConfigError("target_has_property and others='without_property' need partition_options.property")
    flags = has_property.numpy(force=True).astype(bool) if has_property is not None else np.zeros(num_samples, bool)
    pool = np.arange(num_samples) if target_has_property is None else np.flatnonzero(flags == target_has_property)
    if len(pool) < size:
        raise ConfigError(f"target_size={size} but only {len(pool)} samples match the target's property")
    chosen = rng.choice(pool, size, replace=False)
    remaining = np.setdiff1d(np.arange(num_samples), chosen)
    if others == "without_property":
        remaining = remaining[~flags[remaining]]
    remaining = rng.permutation(remaining)
    peers = n_clients - 1
    if peers == 0:
        return _as_tensors([chosen])
    if samples_per_client is not None:
        per_client = require_int("samples_per_client", samples_per_client, minimum=1)
        if peers * per_client > len(remaining):
            raise ConfigError(
                f"samples_per_client={per_client} for {peers} other clients needs {peers * per_client} "
                f"samples but {len(remaining)} remain"
            )
        shards = np.split(remaining[: peers * per_client], peers)
    else:
        if len(remaining) < peers:
            raise ConfigError(f"{len(remaining)} samples remain for {peers} other clients")
        shards = np.array_split(remaining, peers)
    return _as_tensors([chosen, *shards])
