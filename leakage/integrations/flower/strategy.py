"""Record the server's side of a Flower run by wrapping its (legacy) strategy.

Where each recorded fact comes from in Flower 1.42:

- the global model broadcast, and the sampled nodes: ``configure_fit(server_round,
  parameters, ...)`` receives the model and returns one ``(ClientProxy, FitIns)`` per
  sampled node (``ClientProxy.node_id``);
- who arrived, and their weights: ``aggregate_fit``'s ``results``, one ``FitRes`` per
  node with its ``num_examples``. The server sees these in the clear under SecAgg+ too
  (the ``secaggplus_mod`` blanks only the reply's arrays; ``num_examples`` travels as
  a metric record);
- plain: each ``FitRes.parameters`` is that node's local model;
- SecAgg+: ``SecAggPlusWorkflow.unmask_stage`` replaces every ``FitRes.parameters``
  with the one unmasked aggregate (the ``num_examples``-weighted mean of the local
  models, quantised), so the server records that aggregate and no upload;
- the released model: what the wrapped strategy's ``aggregate_fit`` returns.

A round whose ``aggregate_fit`` returns no model is recorded as aborted with the model
unchanged. Flower's SecAgg+ workflow can also stop a round before ``aggregate_fit``
(fewer than two sampled clients, too many dropouts); the round is then recorded as
aborted when the workflow calls ``evaluate`` for it, which Flower's default workflows
and legacy server do after every fit round.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import flwr
from flwr.common import (
    EvaluateIns,
    EvaluateRes,
    FitIns,
    FitRes,
    NDArrays,
    Parameters,
    Scalar,
    parameters_to_ndarrays,
)
from flwr.server.client_manager import ClientManager
from flwr.server.client_proxy import ClientProxy
from flwr.server.strategy import Strategy
from torch import Tensor

from leakage.checks import require_choice
from leakage.errors import ConfigError
from leakage.integrations.flower.arrays import ndarrays_to_state_dict
from leakage.recording import AggregationRule, RecordedTask, ServerRecorder, StateDict

__all__ = ["ANNOUNCE_KEY", "FLOWER_SCHEMES", "FlowerScheme", "RecordingStrategy"]

_LOG = logging.getLogger(__name__)

FlowerScheme = Literal["plain", "secagg+"]
FLOWER_SCHEMES: tuple[str, ...] = ("plain", "secagg+")
#: The evaluate config key under which ``announce`` sends the round's participants and weights (JSON).
ANNOUNCE_KEY = "leakage.round"


@dataclass(frozen=True)
class _PendingRound:
    """What ``configure_fit`` handed out, waiting for the round's end."""

    server_round: int
    before: dict[str, Tensor]
    sampled: tuple[str, ...]


class RecordingStrategy(Strategy):
    """A Flower strategy that delegates every call to ``strategy`` and records what the server saw.

    Args:
        strategy: any legacy ``flwr.server.strategy.Strategy`` (``FedAvg``, ...).
        folder: the recording's folder (see :mod:`leakage.recording.format`).
        keys: the ``state_dict`` keys the model's arrays follow, in order.
        task: the dataset and model the run trains.
        rule: the public aggregation rule.
        scheme: ``"plain"`` (the default fit workflow: each upload in the clear) or
            ``"secagg+"`` (``SecAggPlusWorkflow``: the server records the aggregate).
        like: a ``state_dict`` whose shapes and dtypes the recorded models take
            (Flower's SecAgg+ hands the model back as float64); ``None``: as Flower
            holds them.
        name: a name for reports.
        overwrite: replace an earlier recording in ``folder``.
        announce: send each round's participants and their weights to the clients with
            the new model (in the evaluate config, under :data:`ANNOUNCE_KEY`), as the
            simulator's ``plain`` tells finishing clients. Flower itself tells a client
            neither, so without it a recorded participant knows only what its protocol
            showed it (under SecAgg+, its neighbours; under plain FedAvg, nothing).
        held_out: dataset records no client trains on (membership inference's non-members).

    Raises:
        ConfigError: a bad ``scheme``, ``like`` without every key, or ``folder`` holds
            a recording and ``overwrite`` is false. During the run: a strategy that
            sends nodes different models, a 0-d array under SecAgg+ (see
            :mod:`~leakage.integrations.flower.arrays`), or results that contradict
            ``scheme``.

    Attributes:
        recorded_rounds: the 0-based rounds recorded so far, in order.
        aborted: per 0-based round that aborted, why.
        failures: per 0-based round, the failures ``aggregate_fit`` was handed.

    >>> import json, tempfile
    >>> from pathlib import Path
    >>> from flwr.server.strategy import FedAvg
    >>> run = Path(tempfile.mkdtemp()) / "run"
    >>> strategy = RecordingStrategy(FedAvg(), run, keys=["weight", "bias"],
    ...                              task=RecordedTask("digits", "logreg"), rule=AggregationRule(), scheme="secagg+")
    >>> manifest = json.loads((run / "recording.json").read_text())
    >>> manifest["scheme"], manifest["framework"]["name"], manifest["rounds"]
    ('secagg+', 'flower', 0)
    """

    def __init__(
        self,
        strategy: Strategy,
        folder: str | os.PathLike[str],
        *,
        keys: Sequence[str],
        task: RecordedTask,
        rule: AggregationRule,
        scheme: FlowerScheme = "plain",
        like: StateDict | None = None,
        name: str = "flower run",
        overwrite: bool = False,
        announce: bool = False,
        held_out: Sequence[int] | None = None,
    ) -> None:
        require_choice("scheme", scheme, FLOWER_SCHEMES)
        keys = tuple(str(key) for key in keys)
        if like is not None and (missing := [key for key in keys if key not in like]):
            raise ConfigError(f"like must hold every key; it lacks {missing[:3]}")
        self._strategy = strategy
        self._keys = keys
        self._like = like
        self._scheme = scheme
        self._recorder = ServerRecorder(
            folder, task=task, rule=rule, scheme=scheme, name=name,
            framework={"name": "flower", "version": flwr.__version__}, overwrite=overwrite, held_out=held_out,
        )
        self._announce = announce
        self._announced: dict[int, str] = {}
        self._pending: _PendingRound | None = None
        self.aborted: dict[int, str] = {}
        self.failures: dict[int, list[str]] = {}
        self.recorded_rounds: list[int] = []

    def __repr__(self) -> str:
        return f"RecordingStrategy({self._strategy!r}, scheme={self._scheme!r})"

    # -- the calls that carry a round -----------------------------------------------------

    def configure_fit(
        self, server_round: int, parameters: Parameters, client_manager: ClientManager
    ) -> list[tuple[ClientProxy, FitIns]]:
        """Delegate, and remember the broadcast model and the sampled nodes."""
        instructions = self._strategy.configure_fit(server_round, parameters, client_manager)
        for proxy, fitins in instructions:
            # One broadcast model per round is all the format holds; a strategy that
            # sends nodes different models must not be recorded as if it did not.
            if fitins.parameters is not parameters and fitins.parameters.tensors != parameters.tensors:
                raise ConfigError(
                    f"round {server_round}: the strategy sends node {proxy.node_id} a model other than the "
                    "global one; a recording holds one broadcast model per round"
                )
        arrays = parameters_to_ndarrays(parameters)
        before = self._state(arrays)
        flat = [key for key, array in zip(self._keys, arrays, strict=True) if array.ndim == 0]
        if self._scheme == "secagg+" and flat:
            raise ConfigError(
                f"Flower's SecAgg+ mis-aggregates 0-d arrays ({flat[0]!r}); send them as 1-d, "
                "as leakage.integrations.flower.state_dict_to_ndarrays does"
            )
        self._pending = _PendingRound(server_round, before, tuple(str(proxy.node_id) for proxy, _ in instructions))
        return instructions

    def aggregate_fit(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, FitRes]],
        failures: list[tuple[ClientProxy, FitRes] | BaseException],
    ) -> tuple[Parameters | None, dict[str, Scalar]]:
        """Delegate, and record the round: who arrived, their weights, what the server received."""
        pending = self._take_pending(server_round)
        nodes = [str(proxy.node_id) for proxy, _ in results]
        weights = {node: float(fitres.num_examples) for node, (_, fitres) in zip(nodes, results, strict=True)}
        uploads, aggregate = self._received(server_round, nodes, results)
        failure_texts = [_describe(failure) for failure in failures]
        parameters, metrics = self._strategy.aggregate_fit(server_round, results, failures)
        if parameters is None:
            reason = (
                f"{type(self._strategy).__name__}.aggregate_fit returned no model "
                f"({len(results)} results, {len(failures)} failures)"
            )
            if failure_texts:
                reason += f"; first failure: {failure_texts[0]}"
            after = pending.before
        else:
            reason = None
            after = self._state(parameters_to_ndarrays(parameters))
        self._record(pending, after, participants=nodes, weights=weights, uploads=uploads, aggregate=aggregate,
                     aborted=reason, failures=failure_texts)
        if self._announce and parameters is not None:
            self._announced[server_round] = json.dumps({"participants": nodes, "weights": weights})
        return parameters, metrics

    def evaluate(self, server_round: int, parameters: Parameters) -> tuple[float, dict[str, Scalar]] | None:
        """Delegate; first record the round as aborted if its fit stopped before ``aggregate_fit``."""
        if self._pending is not None and self._pending.server_round == server_round:
            pending, self._pending = self._pending, None
            reason = (
                "configure_fit sampled no clients" if not pending.sampled
                else "the fit workflow stopped before aggregate_fit (Flower's log says why)"
            )
            self._record(pending, pending.before, participants=[], weights=None, uploads=None, aggregate=None,
                         aborted=reason, failures=[])
        return self._strategy.evaluate(server_round, parameters)

    # -- the calls passed on unchanged ----------------------------------------------------

    def initialize_parameters(self, client_manager: ClientManager) -> Parameters | None:
        """Delegate."""
        return self._strategy.initialize_parameters(client_manager)

    def configure_evaluate(
        self, server_round: int, parameters: Parameters, client_manager: ClientManager
    ) -> list[tuple[ClientProxy, EvaluateIns]]:
        """Delegate; with ``announce``, add the round's participants and weights to each instruction's config."""
        instructions = self._strategy.configure_evaluate(server_round, parameters, client_manager)
        announced = self._announced.pop(server_round, None)
        if announced is not None:
            for _, evaluate_ins in instructions:
                evaluate_ins.config[ANNOUNCE_KEY] = announced
        return instructions

    def aggregate_evaluate(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, EvaluateRes]],
        failures: list[tuple[ClientProxy, EvaluateRes] | BaseException],
    ) -> tuple[float | None, dict[str, Scalar]]:
        """Delegate."""
        return self._strategy.aggregate_evaluate(server_round, results, failures)

    # -- helpers --------------------------------------------------------------------------

    def _state(self, arrays: NDArrays) -> dict[str, Tensor]:
        return ndarrays_to_state_dict(arrays, self._keys, like=self._like)

    def _take_pending(self, server_round: int) -> _PendingRound:
        pending, self._pending = self._pending, None
        if pending is None or pending.server_round != server_round:
            raise ConfigError(f"aggregate_fit of round {server_round} came without its configure_fit")
        return pending

    def _received(
        self, server_round: int, nodes: Sequence[str], results: Sequence[tuple[ClientProxy, FitRes]]
    ) -> tuple[dict[str, dict[str, Tensor]] | None, dict[str, Tensor] | None]:
        """Return (uploads, aggregate): what the server decoded from ``results`` under the scheme."""
        # Under SecAgg+, unmask_stage sets every FitRes.parameters to one Parameters
        # object; under the plain workflow each result decodes its own. Telling them apart
        # keeps a mislabelled run from recording the aggregate as each node's upload.
        shared = len(results) > 1 and all(fitres.parameters is results[0][1].parameters for _, fitres in results)
        if self._scheme == "plain":
            if shared:
                raise ConfigError(
                    f"round {server_round}: every result carries the same model object, as SecAgg+'s "
                    "workflow hands them over; record this run with scheme='secagg+'"
                )
            uploads = {node: self._state(parameters_to_ndarrays(fitres.parameters))
                       for node, (_, fitres) in zip(nodes, results, strict=True)}
            return uploads, None
        if len(results) > 1 and not shared:
            raise ConfigError(
                f"round {server_round}: the results carry different models, so the fit workflow was not "
                "SecAgg+'s; record this run with scheme='plain'"
            )
        return None, (self._state(parameters_to_ndarrays(results[0][1].parameters)) if results else None)

    def _record(
        self,
        pending: _PendingRound,
        after: StateDict,
        *,
        participants: Sequence[str],
        weights: dict[str, float] | None,
        uploads: dict[str, dict[str, Tensor]] | None,
        aggregate: dict[str, Tensor] | None,
        aborted: str | None,
        failures: list[str],
    ) -> None:
        round_index = pending.server_round - 1
        self._recorder.record_round(
            round_index, before=pending.before, after=after, sampled=pending.sampled, participants=participants,
            weights=weights, uploads=uploads, aggregate=aggregate, aborted=aborted,
        )
        self.recorded_rounds.append(round_index)
        if aborted is not None:
            _LOG.warning("round %d aborted: %s", round_index, aborted)
            self.aborted[round_index] = aborted
        if failures:
            self.failures[round_index] = failures


def _describe(failure: tuple[ClientProxy, FitRes] | BaseException) -> str:
    if isinstance(failure, BaseException):
        return f"{type(failure).__name__}: {failure}"
    proxy, fitres = failure
    return f"node {proxy.node_id}: {fitres.status.code.name} {fitres.status.message}"
