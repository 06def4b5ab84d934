"""Run a real Flower simulation of a torch model and record it, plain or under Flower's SecAgg+.

The run goes through Flower's own simulation engine (``flwr.simulation.run_simulation``,
Ray workers): a ``ServerApp`` runs Flower's ``DefaultWorkflow`` over a ``LegacyContext``
with the legacy ``FedAvg`` wrapped in a :class:`RecordingStrategy` (fit workflow:
Flower's default, or ``SecAggPlusWorkflow``), and a ``ClientApp`` runs a ``NumPyClient``
behind ``[secaggplus_mod,] RecordingMod``. Every client takes part in every round.

Under SecAgg+ every client holds a share of every other's secrets (``num_shares=1.0``,
``reconstruction_threshold=0.5``), so no dropout is tolerated; each client sends
``model * num_examples / max_weight`` clipped to ``clipping_range`` and quantised to
``quantization_range`` levels, so ``max_weight`` should be near the largest client's
sample count (Flower's default of 1000 ruins the precision for small clients).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection, Sequence
from pathlib import Path

import torch
from flwr.app import Context
from flwr.client.mod import secaggplus_mod
from flwr.clientapp import ClientApp
from flwr.common import ndarrays_to_parameters
from flwr.server import LegacyContext, ServerApp, ServerConfig
from flwr.server.strategy import FedAvg
from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow
from flwr.serverapp import Grid
from flwr.simulation import run_simulation
from torch import Tensor, nn

from leakage.checks import require_int, require_positive_float
from leakage.data import Dataset
from leakage.errors import ConfigError
from leakage.integrations.flower._torch_client import LocalData, TorchClientFactory, local_steps
from leakage.integrations.flower.arrays import state_dict_to_ndarrays
from leakage.integrations.flower.client import RecordedClient, RecordingMod
from leakage.integrations.flower.strategy import RecordingStrategy
from leakage.recording import AggregationRule, RecordedTask

__all__ = ["run_flower_simulation"]


def run_flower_simulation(
    folder: str | os.PathLike[str],
    *,
    dataset: Dataset,
    model: nn.Module,
    partition: Sequence[Tensor | Sequence[int]],
    rounds: int,
    rule: AggregationRule,
    task: RecordedTask,
    secure_aggregation: bool = False,
    recorded_clients: Collection[int] = (0,),
    canaries: Collection[int] = (),
    max_weight: float | None = None,
    clipping_range: float = 8.0,
    quantization_range: int = 2**22,
    name: str = "flower simulation",
    evaluate: bool = True,
    overwrite: bool = False,
    verbose: bool = False,
    announce: bool = False,
    held_out: Sequence[int] | None = None,
) -> Path:
    """Run ``rounds`` rounds of Flower's FedAvg among ``len(partition)`` clients and record them in ``folder``.

    Client ``i`` holds the samples ``partition[i]`` of ``dataset`` and trains by
    ``rule`` with torch SGD and mean cross-entropy: FedSGD takes one step on its first
    ``batch_size`` samples (all for ``None``) and reports that many samples; FedAvg runs
    ``local_epochs`` epochs of minibatches in data order and reports its data size.

    Args:
        folder: the recording's folder.
        dataset: the data the partition indexes (``task.dataset`` names it for readers).
        model: the initial global model (``task.model`` names it for readers).
        partition: per client, indices into ``dataset``.
        rounds: the number of rounds.
        rule: the aggregation rule (sample-count weighting, server step 1, cross-entropy:
            what Flower's FedAvg does).
        task: the dataset and model as the recording names them.
        secure_aggregation: run Flower's SecAgg+ workflow (needs two clients or more).
        recorded_clients, canaries: the clients whose views are recorded (canaries are
            recorded too, flagged as ground truth); the others write nothing.
        max_weight: SecAgg+'s weight bound; ``None``: the largest client's sample count.
        clipping_range, quantization_range: SecAgg+'s quantisation.
        name: a name for reports.
        evaluate: let clients evaluate the new model every round, which is the only way
            Flower sends it to them (``released.pt``).
        overwrite: replace an earlier recording in ``folder``.
        announce: the server sends each round's participants and weights to the clients
            with the new model (:class:`RecordingStrategy`'s ``announce``), as the
            simulator's ``plain`` tells them.
        held_out: records of ``dataset`` no client trains on, named in the recording as
            membership inference's non-members.
        verbose: keep Flower's own INFO log (its round-by-round progress); by default
            only its warnings show. Flower's telemetry is off unless
            ``FLWR_TELEMETRY_ENABLED`` is set: an audit sends nothing anywhere.

    Returns:
        The recording's folder.

    Raises:
        ConfigError: a bad argument (named), or a rule Flower's FedAvg does not follow.
        RuntimeError: a round failed or aborted (its first failure is quoted).
    """
    data = _local_data(dataset, partition)
    require_int("rounds", rounds, minimum=1)
    if rule.weighting != "sample_count" or rule.server_lr != 1.0 or rule.loss != "cross_entropy":
        raise ConfigError(
            "Flower's FedAvg weights by sample count with server step 1 and the clients train on cross-entropy; "
            f"got weighting={rule.weighting!r}, server_lr={rule.server_lr}, loss={rule.loss!r}"
        )
    if secure_aggregation and len(data) < 2:
        raise ConfigError(f"secure aggregation needs two clients or more, got {len(data)}")
    recorded = _recorded(recorded_clients, canaries, len(data))
    weights = [local_steps(rule, len(local.indices))[0].stop if rule.algorithm == "fedsgd" else len(local.indices)
               for local in data]
    if max_weight is None:
        max_weight = float(max(weights))
    require_positive_float("max_weight", max_weight)
    require_positive_float("clipping_range", clipping_range)
    require_int("quantization_range", quantization_range, minimum=2)

    like = {key: value.detach().cpu().clone() for key, value in model.state_dict().items()}
    keys = list(like)
    fedavg = FedAvg(
        fraction_fit=1.0, fraction_evaluate=1.0 if evaluate else 0.0, min_fit_clients=len(data),
        min_evaluate_clients=len(data), min_available_clients=len(data), accept_failures=False,
        initial_parameters=ndarrays_to_parameters(state_dict_to_ndarrays(like)),
    )
    strategy = RecordingStrategy(
        fedavg, folder, keys=keys, task=task, rule=rule, scheme="secagg+" if secure_aggregation else "plain",
        like=like, name=name, overwrite=overwrite, announce=announce, held_out=held_out,
    )
    fit_workflow = (
        SecAggPlusWorkflow(num_shares=1.0, reconstruction_threshold=0.5, max_weight=max_weight,
                           clipping_range=clipping_range, quantization_range=quantization_range)
        if secure_aggregation else None
    )
    server_app = ServerApp()

    @server_app.main()
    def _main(grid: Grid, context: Context) -> None:
        legacy = LegacyContext(context=context, config=ServerConfig(num_rounds=rounds), strategy=strategy)
        DefaultWorkflow(fit_workflow=fit_workflow)(grid, legacy)

    mod = RecordingMod(folder, keys=keys, like=like, clients={
        client: RecordedClient(tuple(data[client].indices.tolist()), canary=client in canaries) for client in recorded
    })
    client_app = ClientApp(
        client_fn=TorchClientFactory(model, data, rule),
        mods=[secaggplus_mod, mod] if secure_aggregation else [mod],
    )
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    flower_log = logging.getLogger("flwr")
    level = flower_log.level
    if not verbose:
        flower_log.setLevel(logging.WARNING)
    try:
        run_simulation(
            server_app=server_app, client_app=client_app, num_supernodes=len(data),
            backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                            "init_args": {"log_to_driver": False, "logging_level": "error"}},
        )
    finally:
        flower_log.setLevel(level)
    _check_completed(strategy, rounds)
    return Path(folder)


def _local_data(dataset: Dataset, partition: Sequence[Tensor | Sequence[int]]) -> list[LocalData]:
    if len(partition) < 1:
        raise ConfigError("partition must give at least one client's indices, got none")
    size = int(dataset.targets.shape[0])
    data = []
    for client, indices in enumerate(partition):
        index = torch.as_tensor(indices, dtype=torch.int64).flatten()
        if index.numel() == 0:
            raise ConfigError(f"partition[{client}] is empty; every client needs samples")
        if int(index.min()) < 0 or int(index.max()) >= size:
            outside = index[(index < 0) | (index >= size)]
            raise ConfigError(f"partition[{client}] must index the dataset's {size} samples, got {int(outside[0])}")
        data.append(LocalData(index, dataset.inputs[index].clone(), dataset.targets[index].clone()))
    return data


def _recorded(recorded_clients: Collection[int], canaries: Collection[int], num_clients: int) -> list[int]:
    for name, clients in (("recorded_clients", recorded_clients), ("canaries", canaries)):
        outside = [c for c in clients if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < num_clients]
        if outside:
            raise ConfigError(f"{name} must be client ids in [0, {num_clients}), got {outside[0]!r}")
    return sorted(set(recorded_clients) | set(canaries))


def _check_completed(strategy: RecordingStrategy, rounds: int) -> None:
    """Raise if a round failed, aborted or went unrecorded: every client takes part in every round of this run."""
    if strategy.recorded_rounds != list(range(rounds)):
        raise RuntimeError(f"the Flower simulation recorded rounds {strategy.recorded_rounds}, not 0..{rounds - 1}")
    for round_index in range(rounds):
        if round_index in strategy.failures:
            raise RuntimeError(f"round {round_index} of the Flower simulation failed: "
                               f"{strategy.failures[round_index][0]}")
        if round_index in strategy.aborted:
            raise RuntimeError(f"round {round_index} of the Flower simulation aborted: "
                               f"{strategy.aborted[round_index]}")
