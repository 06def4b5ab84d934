"""The interface every aggregation scheme implements, and the scheme registry.

A scheme runs one round's aggregation protocol on the clients' true updates and
decides what each observer sees. The simulator does not know which scheme it runs;
``defenses`` registers ``secagg``, ``he``, ``dp``, ``mpc``... in the same registry.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import ClassVar, Literal

import torch
from torch import Tensor

from leakage.errors import ConfigError
from leakage.registry import Registry
from leakage.views import PublicValue, RoundView

__all__ = [
    "SCHEMES",
    "AggregationScheme",
    "ClientSampling",
    "Deployment",
    "RoundContext",
    "RoundOutcome",
    "Weighting",
    "WrappedScheme",
    "weighted_mean",
]

ClientSampling = Literal["fixed", "poisson"]
Weighting = Literal["sample_count", "uniform", "expected_clients"]


@dataclass(frozen=True)
class Deployment:
    """The facts about a deployment a scheme may check before the first round.

    Attributes:
        n_clients: clients in the population.
        clients_per_round: clients sampled per round (the expected number under
            Poisson sampling).
        client_sampling: ``"fixed"`` (exactly ``clients_per_round``, uniformly without
            replacement) or ``"poisson"`` (each client independently with probability
            ``clients_per_round / n_clients``).
        rounds: number of rounds.
        num_parameters: length ``P`` of the flat update vector.
        client_weights: each client's aggregation weight whenever it takes part
            (its sample count), indexed by client id.
        model: the model's registry name (``None`` when not known, as in unit tests).
        num_classes: the dataset's number of classes (``None`` when not known).
        loss: the local training loss (``None`` when not known).
        algorithm: ``"fedsgd"`` or ``"fedavg"`` (``None`` when not known).
    """

    n_clients: int
    clients_per_round: int
    client_sampling: ClientSampling
    rounds: int
    num_parameters: int
    client_weights: tuple[float, ...]
    model: str | None = None
    num_classes: int | None = None
    loss: str | None = None
    algorithm: str | None = None

    @property
    def sampling_rate(self) -> float:
        """Probability that a given client takes part in a given round."""
        return self.clients_per_round / self.n_clients

    @property
    def max_round_clients(self) -> int:
        """The most clients any round can sample."""
        return self.n_clients if self.client_sampling == "poisson" else self.clients_per_round

    @property
    def max_round_weight(self) -> float:
        """The largest total weight one round can have (the heaviest possible sample)."""
        heaviest = sorted(self.client_weights, reverse=True)[: self.max_round_clients]
        return float(sum(heaviest))


@dataclass(frozen=True)
class RoundContext:
    """Everything a scheme needs to run one round.

    Attributes:
        round_index: 0-based round number.
        is_final_round: the model after this round is the one released to the public.
        params_before: global model broadcast to the sampled clients, flat ``[P]``.
        client_ids: the sampled clients, sorted; rows of ``updates`` follow this order.
        updates: ``[C, P]`` true local updates (local model minus ``params_before``).
        weights: ``[C]`` float64 aggregation weights (sample counts).
        dropped: sampled clients that drop out before their upload arrives.
        server_lr: global step size: ``params_after = params_before + server_lr * delta``.
        public: public parameters of the round (algorithm, lr, local steps, batch size).
        client_data: dataset indices each sampled client holds.
        generator: the scheme's own randomness for this round (e.g. DP noise).
        client_batches: per sampled client, the ``(inputs, targets)`` batches it trains
            on this round, in order; filled only for schemes whose
            ``needs_client_batches`` is true (training on secret-shared data).
            Protocol secrets (keys, mask seeds) come from the cryptographic layer instead.
    """

    round_index: int
    is_final_round: bool
    params_before: Tensor
    client_ids: tuple[int, ...]
    updates: Tensor
    weights: Tensor
    dropped: frozenset[int]
    server_lr: float
    public: Mapping[str, PublicValue]
    client_data: Mapping[int, Tensor]
    generator: torch.Generator = field(default_factory=torch.Generator)
    client_batches: Mapping[int, Sequence[tuple[Tensor, Tensor]]] = field(default_factory=dict)

    def row(self, client_id: int) -> int:
        """Return the row of ``client_id`` in ``updates`` and ``weights``."""
        return self._rows[client_id]

    @cached_property
    def _rows(self) -> dict[int, int]:
        return {client: row for row, client in enumerate(self.client_ids)}

    @property
    def arriving(self) -> tuple[int, ...]:
        """Sampled clients that do not drop, in row order."""
        return tuple(c for c in self.client_ids if c not in self.dropped)

    @property
    def arrived_weights(self) -> Tensor:
        """``weights`` with zeros for dropped clients (aggregate without copying updates)."""
        if not self.dropped:
            return self.weights
        arrived = torch.tensor([c not in self.dropped for c in self.client_ids])
        return self.weights * arrived

    def apply(self, delta: Tensor) -> Tensor:
        """Return the global model after applying the aggregated ``delta`` ``[P]``."""
        return self.params_before + self.server_lr * delta


@dataclass(frozen=True)
class RoundOutcome:
    """What a scheme's round produced.

    Attributes:
        params_after: the new global model, flat ``[P]`` (unchanged if the round aborted).
        survivors: clients whose contribution entered the aggregate, sorted.
        views: one view per observer that saw anything this round.
        public: the scheme's public parameters for this round (merged into the record).
        metrics: measurements of the run that no observer is shown (how many values
            were clipped, bytes sent...), recorded next to the ground truth.
        aborted: why the round aborted (the model is then unchanged), or ``None``.
    """

    params_after: Tensor
    survivors: tuple[int, ...]
    views: Mapping[str, RoundView]
    public: Mapping[str, PublicValue] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    aborted: str | None = None


class AggregationScheme(ABC):
    """Runs one round of an aggregation protocol and records each observer's view.

    Subclasses take keyword-only hyper-parameters in ``__init__``, validate them, do no
    work there, and keep no state that changes across rounds unless the protocol
    really carries it (so one instance can run many simulations).
    """

    name: ClassVar[str] = ""

    @property
    def needs_client_batches(self) -> bool:
        """Whether ``run_round`` computes from the clients' data batches instead of their updates.

        True for MPC training on secret shares; the simulator then fills
        ``RoundContext.client_batches``.
        """
        return False

    def prepare(self, deployment: Deployment) -> None:
        """Check the scheme against ``deployment`` before any round runs.

        Schemes whose parameters depend on the deployment (a ring that must hold the
        sum of every possible round, a threshold no larger than a round) raise
        :class:`~leakage.errors.ConfigError` here, before any training happens.
        """

    def min_summands(self, deployment: Deployment) -> int:
        """Return the fewest client contributions in any aggregate this scheme releases.

        Distributed noise is split over this many clients so that every released
        aggregate carries at least the full noise. Schemes that release anything with
        fewer contributors (a plain sum of the survivors) return 1.
        """
        return 1

    def lattice_step(self) -> float | None:
        """Return the spacing of the grid inputs are rounded to, or ``None`` for reals."""
        return None

    @abstractmethod
    def run_round(self, context: RoundContext) -> RoundOutcome:
        """Aggregate ``context.updates`` and return the new model and every view."""

    def public_parameters(self) -> dict[str, PublicValue]:
        """Return the scheme's hyper-parameters that every party knows."""
        return {}

    def weighting(self) -> Weighting:
        """Return the public rule that weights each arriving update in the aggregate.

        ``"sample_count"``: ``sum_i n_i u_i / sum_i n_i``; ``"uniform"``: every arriving
        client counts once, ``sum_i u_i / k``; ``"expected_clients"``: the sum is divided
        by the deployment's expected number of clients per round, whoever arrived. The
        simulator publishes it in every round's ``public["weighting"]``: the rule is
        part of the protocol, so every party knows it.
        """
        return "sample_count"


class WrappedScheme(AggregationScheme):
    """A scheme that runs ``inner`` and changes its rounds: everything else is ``inner``'s.

    Subclasses (canary clients, an active server) override :meth:`run_round`; records and
    views keep naming the scheme the clients ran.
    """

    def __init__(self, inner: AggregationScheme) -> None:
        if not isinstance(inner, AggregationScheme):
            raise ConfigError(f"inner must be an AggregationScheme, got {type(inner).__name__}")
        self.inner = inner

    @property
    def name(self) -> str:  # type: ignore[override]  # views and records name the scheme that ran
        return self.inner.name

    def prepare(self, deployment: Deployment) -> None:
        self.inner.prepare(deployment)

    def min_summands(self, deployment: Deployment) -> int:
        return self.inner.min_summands(deployment)

    def lattice_step(self) -> float | None:
        return self.inner.lattice_step()

    def weighting(self) -> Weighting:
        return self.inner.weighting()

    def public_parameters(self) -> dict[str, PublicValue]:
        return self.inner.public_parameters()


SCHEMES: Registry[type[AggregationScheme]] = Registry("scheme", plugin_modules=("defenses",))


def weighted_mean(updates: Tensor, weights: Tensor) -> Tensor:
    """Return ``sum_i w_i u_i / sum_i w_i`` for ``updates`` ``[C, P]`` and ``weights`` ``[C]``.

    With no rows, or all weights zero, the result is the zero vector: nothing arrived.

    >>> weighted_mean(torch.tensor([[1.0, 0.0], [3.0, 2.0]]), torch.tensor([1.0, 3.0]))
    tensor([2.5000, 1.5000])
    """
    total = float(weights.sum()) if weights.numel() else 0.0
    if total == 0.0:
        return torch.zeros(updates.shape[-1], dtype=updates.dtype)
    scaled = (weights.to(torch.float64) / total).to(updates.dtype)
    return scaled @ updates
