"""The recording format: what a real federated run's observers saw, one folder per run.

A recording is written while a real framework runs (the Flower bridge,
:mod:`leakage.integrations.flower`, writes one) and read back by
:func:`~leakage.recording.read_recording` into the same :class:`~leakage.Transcript`
the simulator makes, so every attack and ``leakage score`` run on it unchanged.

Layout (format version 1)::

    RUN/
      recording.json                 the manifest: format, version, task, rule, scheme, rounds,
                                     and optionally held_out: dataset records no client
                                     trained on (membership inference's non-members)
      rounds/0000/round.json         who was sampled and who arrived (node names), the weights
                                     the server saw, and why the round aborted, if it did
      rounds/0000/global_before.pt   the global model broadcast at the start of the round
      rounds/0000/global_after.pt    the global model released at its end
      rounds/0000/server/upload-<node>.pt   what the server received from a node in the clear
                                     (the node's local model) where the scheme sends it so
      rounds/0000/server/aggregate.pt       what the server decoded under secure aggregation:
                                     the aggregated model, and no single upload
      clients/<id>/client.json       one recorded participant: its client id, node name,
                                     whether it is a canary, and its data indices
      clients/<id>/rounds/0000/round.json   its sample count, the order it used its samples
                                     in, and the participants it was told of
      clients/<id>/rounds/0000/received.pt  the global model it received to train on
      clients/<id>/rounds/0000/local.pt     its local model after training (what it sent,
                                     before any protocol masked it)
      clients/<id>/rounds/0000/released.pt  the new global model it was sent after the round
                                     (optional: a framework may send it only to evaluate)
      clients/<id>/rounds/0000/released.json  who took part and their weights, where the
                                     server announced them with the new model (optional)

Every ``.pt`` file is a ``state_dict`` (names to tensors) saved with ``torch.save`` and
read with ``torch.load(weights_only=True)``, so a recording never runs code when loaded.
Every ``.json`` file is plain JSON. Rounds are numbered from 0 in folder names and files;
nodes are the framework's names for clients (Flower's node ids), mapped to client ids by
the recorded participants' ``client.json`` (unrecorded nodes get the next free ids, in
order of their names).

Ground truth exists only for **canary** clients: recorded participants whose data the
auditor controls (``"canary": true``). Scores are computed against them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from leakage.checks import require_choice, require_int, require_positive_float
from leakage.errors import ConfigError

__all__ = [
    "RECORDING_FORMAT",
    "RECORDING_VERSION",
    "WEIGHTINGS",
    "AggregationRule",
    "RecordedTask",
    "Weighting",
    "client_folder",
    "round_folder",
]

RECORDING_FORMAT = "leakage-recording"
RECORDING_VERSION = 1
Weighting = Literal["sample_count", "uniform"]
WEIGHTINGS: tuple[str, ...] = get_args(Weighting)
_ALGORITHMS = ("fedsgd", "fedavg")


def round_folder(run: Path, round_index: int) -> Path:
    """The folder of round ``round_index`` (0-based) of the recording in ``run``.

    >>> round_folder(Path("run"), 3).as_posix()
    'run/rounds/0003'
    """
    return run / "rounds" / f"{round_index:04d}"


def client_folder(run: Path, client_id: int) -> Path:
    """The folder of recorded participant ``client_id``.

    >>> client_folder(Path("run"), 1).as_posix()
    'run/clients/1'
    """
    return run / "clients" / str(client_id)


@dataclass(frozen=True)
class RecordedTask:
    """What the run trained: the dataset the clients' data indices refer to, and the model.

    Attributes:
        dataset: a registered dataset name (``leakage datasets``); the recorded data
            indices index it as :func:`~leakage.load_dataset` loads it.
        model: a registered model name or an import path ``module:callable``; its
            ``state_dict`` keys and shapes must match the recorded models'.
        dataset_options, model_options: keyword options of the loader and the builder.
    """

    dataset: str
    model: str
    dataset_options: Mapping[str, Any] = field(default_factory=dict)
    model_options: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {"dataset": self.dataset, "dataset_options": dict(self.dataset_options), "model": self.model,
                "model_options": dict(self.model_options)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "task") -> RecordedTask:
        """Read and check the manifest's ``task`` table (errors name ``where``)."""
        _known(data, ("dataset", "dataset_options", "model", "model_options"), where)
        values: dict[str, Any] = {}
        for name in ("dataset", "model"):
            value = data.get(name)
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{where}.{name} must be a non-empty string, got {value!r}")
            values[name] = value
        for name in ("dataset_options", "model_options"):
            value = data.get(name, {})
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}.{name} must be a table of options, got {type(value).__name__}")
            values[name] = dict(value)
        return cls(**values)


@dataclass(frozen=True)
class AggregationRule:
    """The public aggregation rule of the run: how clients trained and how the server combined them.

    Attributes:
        algorithm: ``"fedsgd"`` (one step on one batch) or ``"fedavg"`` (local epochs).
        lr: the clients' learning rate.
        local_epochs: local epochs per round (FedAvg).
        batch_size: local batch size, ``None`` for the full local data.
        weighting: ``"sample_count"`` (FedAvg's weighted mean) or ``"uniform"``.
        server_lr: the global step size on the aggregated update (1 for FedAvg).
        loss: the clients' training loss (``"cross_entropy"``, or ``"taylor_logistic"`` for two classes).
    """

    algorithm: Literal["fedsgd", "fedavg"] = "fedavg"
    lr: float = 0.1
    local_epochs: int = 1
    batch_size: int | None = None
    weighting: Weighting = "sample_count"
    server_lr: float = 1.0
    loss: Literal["cross_entropy", "taylor_logistic"] = "cross_entropy"

    def __post_init__(self) -> None:
        require_choice("rule.algorithm", self.algorithm, _ALGORITHMS)
        require_positive_float("rule.lr", self.lr)
        require_int("rule.local_epochs", self.local_epochs, minimum=1)
        if self.batch_size is not None:
            require_int("rule.batch_size", self.batch_size, minimum=1)
        require_choice("rule.weighting", self.weighting, WEIGHTINGS)
        require_positive_float("rule.server_lr", self.server_lr)
        require_choice("rule.loss", self.loss, ("cross_entropy", "taylor_logistic"))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (also the round's public parameters every participant is told)."""
        return {"algorithm": self.algorithm, "lr": self.lr, "local_epochs": self.local_epochs,
                "batch_size": self.batch_size, "weighting": self.weighting, "server_lr": self.server_lr,
                "loss": self.loss}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "rule") -> AggregationRule:
        """Read and check the manifest's ``rule`` table (errors name ``where``)."""
        _known(data, tuple(cls().to_dict()), where)
        return cls(**dict(data))


def _known(data: Mapping[str, Any], names: tuple[str, ...], where: str) -> None:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(f"{where}: unknown field {unknown[0]!r}; choose from: {', '.join(names)}")
