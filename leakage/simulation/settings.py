"""``SimulationSettings``: the validated, frozen description of one FL simulation."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

from leakage.aggregation.base import ClientSampling
from leakage.checks import (
    require_bool,
    require_choice,
    require_device,
    require_in_interval,
    require_int,
    require_positive_float,
)
from leakage.errors import ConfigError
from leakage.plain_data import plain_data
from leakage.simulation.local_training import LOSSES, LossName
from leakage.transcript import RECORD_TRUTH, RecordTruth

__all__ = ["ALGORITHMS", "CLIENT_SAMPLINGS", "Algorithm", "SimulationSettings"]

Algorithm = Literal["fedsgd", "fedavg"]
ALGORITHMS: tuple[str, ...] = get_args(Algorithm)
CLIENT_SAMPLINGS: tuple[str, ...] = get_args(ClientSampling)


@dataclass(frozen=True)
class SimulationSettings:
    """One federated-learning deployment to simulate.

    Attributes:
        dataset: registry name in ``leakage.data.DATASETS``.
        model: registry name in ``leakage.models.MODELS``, or an import path
            ``"module:callable"`` of the user's builder (its initialisation is kept).
        n_clients: clients in the population.
        clients_per_round: clients sampled each round (the expected number under
            Poisson sampling); ``None`` samples all of them.
        client_sampling: ``"fixed"`` samples exactly ``clients_per_round`` clients
            uniformly without replacement; ``"poisson"`` includes each client
            independently with probability ``clients_per_round / n_clients``, as DP
            accountants with sampling amplification assume.
        rounds: number of rounds.
        algorithm: ``"fedsgd"`` (one gradient step on one local batch) or ``"fedavg"``
            (``local_epochs`` passes over the local data in batches of ``batch_size``).
        local_epochs: local passes for FedAvg; must be 1 for FedSGD.
        batch_size: local batch size; ``None`` uses all of a client's samples.
        lr: client learning rate.
        loss: the local training loss: ``"cross_entropy"``, or ``"taylor_logistic"``
            (the HE-friendly quadratic approximation of the logistic loss; needs a
            two-class dataset).
        server_lr: global step: ``params_after = params_before + server_lr * mean update``.
        scheme: a registered scheme name, or an ordered composition of client
            mechanisms and a protocol (``("compression", "secagg")``, or the same
            names separated by commas).
        partition: registry name in ``leakage.data.PARTITIONS``.
        dropout: probability that a sampled client drops before its update arrives.
        seed: the one experiment seed every random stream derives from.
        dataset_options, model_options, scheme_options, partition_options: keyword
            options for the registered constructors (``partition_options={"alpha": 0.5}``;
            ``{"property": "high_ink", "fraction": 0.1}`` picks a dataset property). A
            composed scheme takes one table per stage: ``{"secagg": {"clip_range": 1}}``.
        vectorise: train clients together with ``vmap`` (``False``: one client at a
            time, the slow reference).
        record_truth: which clients' per-round ground truth (true update, sample
            order) the transcript keeps: ``"all"`` sampled clients (research: any
            client can be scored), or only the ``"targets"`` in ``truth_clients``, so
            that a long run does not hold rounds x clients x P floats nobody reads.
            Partitions and property labels are always kept.
        truth_clients: the clients whose truth ``"targets"`` keeps (at least one);
            must be empty under ``"all"``.
        checkpoint: a ``state_dict`` file (read with ``weights_only=True``) holding the
            starting weights and buffers; its keys and shapes must match the model.
        device: where clients train: ``"cpu"``, or ``"cuda"`` / ``"cuda:N"`` where a GPU
            is present. Models, views and truth stay on the CPU either way; a GPU run
            agrees with a CPU run to float rounding, not bit for bit.
    """

    dataset: str = "digits"
    model: str = "mlp"
    n_clients: int = 10
    clients_per_round: int | None = None
    client_sampling: ClientSampling = "fixed"
    rounds: int = 5
    algorithm: Algorithm = "fedavg"
    local_epochs: int = 1
    batch_size: int | None = 16
    lr: float = 0.1
    loss: LossName = "cross_entropy"
    server_lr: float = 1.0
    scheme: str | tuple[str, ...] = "plain"
    partition: str = "iid"
    dropout: float = 0.0
    seed: int = 0
    dataset_options: Mapping[str, Any] = field(default_factory=dict)
    model_options: Mapping[str, Any] = field(default_factory=dict)
    scheme_options: Mapping[str, Any] = field(default_factory=dict)
    partition_options: Mapping[str, Any] = field(default_factory=dict)
    vectorise: bool = True
    record_truth: RecordTruth = "all"
    truth_clients: tuple[int, ...] = ()
    device: str = "cpu"
    checkpoint: str | None = None

    def __post_init__(self) -> None:
        for name in ("dataset", "model", "partition"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{name} must be a registered name (a string), got {value!r}")
        if isinstance(self.scheme, (list, tuple)):
            object.__setattr__(self, "scheme", tuple(self.scheme))
        if not (isinstance(self.scheme, str) and self.scheme) and not (
            isinstance(self.scheme, tuple) and self.scheme and all(isinstance(s, str) and s for s in self.scheme)
        ):
            raise ConfigError(f"scheme must be a registered name or a list of names, got {self.scheme!r}")
        require_int("n_clients", self.n_clients, minimum=1)
        if self.clients_per_round is not None:
            require_int("clients_per_round", self.clients_per_round, minimum=1)
            if self.clients_per_round > self.n_clients:
                raise ConfigError(
                    f"clients_per_round must be <= n_clients ({self.n_clients}), "
                    f"got {self.clients_per_round}"
                )
        require_choice("client_sampling", self.client_sampling, CLIENT_SAMPLINGS)
        require_int("rounds", self.rounds, minimum=1)
        require_choice("algorithm", self.algorithm, ALGORITHMS)
        require_int("local_epochs", self.local_epochs, minimum=1)
        if self.algorithm == "fedsgd" and self.local_epochs != 1:
            raise ConfigError(
                f"local_epochs must be 1 for fedsgd (one gradient step), got {self.local_epochs}"
            )
        if self.batch_size is not None:
            require_int("batch_size", self.batch_size, minimum=1)
        require_positive_float("lr", self.lr)
        require_positive_float("server_lr", self.server_lr)
        require_choice("loss", self.loss, LOSSES)
        dropout = require_in_interval("dropout", self.dropout, 0, 1, inclusive="left", what="a probability")
        object.__setattr__(self, "dropout", dropout)  # a numpy float would not survive to_dict's JSON
        require_int("seed", self.seed, minimum=0)
        for name in ("dataset_options", "model_options", "scheme_options", "partition_options"):
            if not isinstance(getattr(self, name), Mapping):
                raise ConfigError(f"{name} must be a table of options, got {getattr(self, name)!r}")
        require_bool("vectorise", self.vectorise)
        require_choice("record_truth", self.record_truth, RECORD_TRUTH)
        self._check_truth_clients()
        require_device("device", self.device)
        if self.checkpoint is not None:
            if not isinstance(self.checkpoint, (str, os.PathLike)) or not str(self.checkpoint):
                raise ConfigError(f"checkpoint must be a file path or None, got {self.checkpoint!r}")
            object.__setattr__(self, "checkpoint", str(self.checkpoint))

    def _check_truth_clients(self) -> None:
        clients = self.truth_clients
        if isinstance(clients, (str, bytes)) or not isinstance(clients, (list, tuple)):
            raise ConfigError(f"truth_clients must be a list of client ids, got {clients!r}")
        checked = tuple(
            require_int("truth_clients", client, minimum=0, maximum=self.n_clients - 1) for client in clients
        )
        object.__setattr__(self, "truth_clients", tuple(sorted(set(checked))))
        if self.record_truth == "targets" and not checked:
            raise ConfigError("truth_clients must name at least one client when record_truth is 'targets', got []")
        if self.record_truth == "all" and checked:
            raise ConfigError(
                f"truth_clients applies only to record_truth='targets' (record_truth='all' keeps every "
                f"client), got {list(checked)}"
            )

    @property
    def sampled_per_round(self) -> int:
        """Number of clients sampled in every round (the expected number under Poisson)."""
        return self.n_clients if self.clients_per_round is None else self.clients_per_round

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data (tuples become lists), for transcripts and reports."""
        plain: dict[str, Any] = plain_data(asdict(self))
        return plain
