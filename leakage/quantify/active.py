"""Scoring an active server: the ``malicious_server`` observer and the attacks it plays.

A passive observer reads its views; an active one chooses what it sends. The
``malicious_server`` observer (spec ``threat = "active"``, or the observer listed) holds
everything the honest server holds and may also deviate: per-client models, its own
Sybil clients, survivor lists and rosters of its choosing. Its powers are declared in
:data:`ACTIVE_POWERS` and each row's note says which it used.

Each attack of :data:`ACTIVE_ATTACKS` plays one malicious round against the deployment's
clients as they stand at the target's first round: the global model they were sent
(``params_before``), each participant's first batch, the scheme's threshold, fixed-point
encoding and client checks (``scheme_options.checks``). The target's true update *in
that round* is computed alongside (ground truth, never shown to the attack), and the
server's estimate is scored like any update estimate: cosine against the released
model's direction (the baseline), relative error beside it.

- ``model_inconsistency``: the target gets the real model, the rest a dead one
  (:mod:`attacks.model_inconsistency`, :func:`leakage.quantify.model_inconsistency_round`); stopped by ``bind_model``.
- ``survivor_split``: ``max(1, 2t - n)`` corrupt clients split the target's shareholders
  (:func:`defenses.secure_aggregation.survivor_split`); stopped by ``min_threshold``.
- ``key_substitution``: server-made keys for the target; stopped by ``signed_keys``.
- ``sybil``: every other client is the server's; no protocol check stops it.

The attacks apply to ``secagg`` and ``secagg+``; under other schemes the row says why
not (under ``plain`` the honest server already holds every update).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from leakage.metrics import relative_error, update_cosine
from leakage.registry import Registry

__all__ = ["ACTIVE_ATTACKS", "ACTIVE_POWERS", "MALICIOUS_SERVER", "ActiveOutcome", "ActiveRoundSetup",
           "score_active"]

MALICIOUS_SERVER = "malicious_server"
#: What the active server may do, recorded with its rows.
ACTIVE_POWERS: tuple[str, ...] = ("per_client_models", "added_layers", "sybil_clients", "survivor_lists",
                                  "key_rosters", "feigned_dropouts")
_SCHEMES = ("secagg", "secagg+")


@dataclass(frozen=True)
class ActiveRoundSetup:
    """The deployment as the malicious round finds it.

    Attributes:
        model: the architecture.
        params: the global model the clients hold, flat.
        batches: each participant's ``(inputs, targets)`` for one round, by client id.
        target: the client attacked.
        lr, local_epochs, batch_size: the clients' local SGD.
        checks: the clients' check names (``scheme_options.checks``), and ``assumed_corrupt``.
        threshold: ``t`` of a round of these clients.
        sparse: ``secagg+`` (a SecAgg+ graph) rather than ``secagg``.
        clip_range, ring_bits: the fixed-point encoding.
    """

    model: torch.nn.Module
    params: Tensor
    batches: Mapping[int, tuple[Tensor, Tensor]]
    target: int
    lr: float
    local_epochs: int
    batch_size: int | None
    checks: tuple[str, ...]
    assumed_corrupt: int
    threshold: int
    sparse: bool
    clip_range: float
    ring_bits: int


@dataclass(frozen=True)
class ActiveOutcome:
    """One malicious round: the server's estimate of the target's update (``None`` if it got nothing)."""

    estimate: Tensor | None
    true_update: Tensor
    note: str
    powers: tuple[str, ...]


ActiveAttack = Callable[[ActiveRoundSetup], ActiveOutcome]
ACTIVE_ATTACKS: Registry[ActiveAttack] = Registry("active attack")


def _client_checks(setup: ActiveRoundSetup, clients: Sequence[int]) -> tuple[Any, dict[int, Any]]:
    """The clients' checks as the scheme runs them, vetting against the real architecture."""
    from defenses.secure_aggregation import SecureAggregation, SecureAggregationPlus, architecture_digest

    honest = (SecureAggregationPlus if setup.sparse else SecureAggregation)(
        checks=setup.checks, assumed_corrupt=setup.assumed_corrupt)
    return honest.client_checks(clients, architecture=architecture_digest(setup.model))


def _honest_updates(setup: ActiveRoundSetup) -> dict[int, Tensor]:
    from leakage.models import ParameterLayout
    from leakage.simulation import make_loss, train_client

    layout, loss = ParameterLayout.of(setup.model), make_loss(setup.model)
    updates = {}
    for client, (inputs, targets) in setup.batches.items():
        size = len(inputs) if setup.batch_size is None else setup.batch_size
        batches = [(inputs[i:i + size], targets[i:i + size]) for _ in range(setup.local_epochs)
                   for i in range(0, len(inputs), size)]
        updates[client], _ = train_client(loss, layout, setup.params.float(), batches, lr=setup.lr)
    return updates


@ACTIVE_ATTACKS.register("model_inconsistency")
def _model_inconsistency(setup: ActiveRoundSetup) -> ActiveOutcome:
    from leakage.quantify.inconsistency import model_inconsistency_round

    clients = sorted(setup.batches)
    checks, keys = _client_checks(setup, clients)
    result = model_inconsistency_round(
        setup.model, setup.params, [setup.batches[c] for c in clients], target=clients.index(setup.target),
        lr=setup.lr, local_epochs=setup.local_epochs, batch_size=setup.batch_size, checks=checks,
        signing_keys=keys, clip_range=setup.clip_range, ring_bits=setup.ring_bits,
        threshold=setup.threshold, protocol=len(clients) <= 100,
    )
    note = (f"aborted: {result.aborted}" if result.estimate is None
            else f"the {len(clients) - 1} others got a dead model; the aggregate is the target's update on "
                 f"{int(result.silenced.sum())} of {result.silenced.numel()} coordinates")
    return ActiveOutcome(result.estimate, result.true_update, note, ("per_client_models",))


def _protocol_attack(setup: ActiveRoundSetup, play: Callable[..., object], powers: tuple[str, ...]) -> ActiveOutcome:
    from defenses.secure_aggregation import (
        ProtocolConfig,
        RingEncoding,
        complete_graph,
        default_degree,
        harary_graph,
        model_digest,
    )

    clients = sorted(setup.batches)
    updates = _honest_updates(setup)
    encoding = RingEncoding.fitting(ring_bits=setup.ring_bits, clip_range=setup.clip_range,
                                    max_total_weight=len(clients))
    stacked = torch.stack([updates[c] for c in clients]).double()
    words, _ = encoding.encode(stacked, torch.ones(len(clients), dtype=torch.int64), torch.Generator().manual_seed(0))
    inputs = {c: words[i] for i, c in enumerate(clients)}
    graph = (harary_graph(clients, default_degree(len(clients)), np.random.default_rng(0)) if setup.sparse
             else complete_graph(clients))
    checks, keys = _client_checks(setup, clients)
    bound = checks is not None and "bind_model" in setup.checks
    import os

    config = ProtocolConfig(os.urandom(16), setup.ring_bits, words.shape[1], setup.threshold, graph,
                            model_digest=model_digest(setup.params) if bound else b"")
    outcome = play(inputs, config, checks, keys)
    recovered = getattr(outcome, "recovered", None)
    truth = updates[setup.target]
    if recovered is None:
        why = getattr(outcome, "aborted", None) or getattr(outcome, "failure", None) or "nothing recovered"
        return ActiveOutcome(None, truth, f"the server got nothing: {why}", powers)
    summed, _ = encoding.decode_sum(recovered)
    exact = bool(getattr(outcome, "exact", False))
    return ActiveOutcome(summed.float(), truth, f"the target's masked input unmasked{' exactly' if exact else ''}",
                         powers)


@ACTIVE_ATTACKS.register("survivor_split")
def _survivor_split(setup: ActiveRoundSetup) -> ActiveOutcome:
    from defenses.secure_aggregation import survivor_split

    def play(inputs: Mapping[int, object], config: object, checks: object, keys: object) -> object:
        group = sorted(config.neighbours[setup.target])  # type: ignore[attr-defined]
        default = (len(group) + 1) // 2 + 1
        corrupt = group[: max(1, 2 * default - (len(group) + 1))]
        return survivor_split(inputs, config, target=setup.target, corrupt=corrupt, checks=checks,  # type: ignore[arg-type]
                              signing_keys=keys)  # type: ignore[arg-type]

    return _protocol_attack(setup, play, ("survivor_lists", "feigned_dropouts", "sybil_clients"))


@ACTIVE_ATTACKS.register("key_substitution")
def _key_substitution(setup: ActiveRoundSetup) -> ActiveOutcome:
    from defenses.secure_aggregation import key_substitution

    def play(inputs: Mapping[int, object], config: object, checks: object, keys: object) -> object:
        return key_substitution(inputs, config, target=setup.target, checks=checks, signing_keys=keys)  # type: ignore[arg-type]

    return _protocol_attack(setup, play, ("key_rosters",))


@ACTIVE_ATTACKS.register("sybil")
def _sybil(setup: ActiveRoundSetup) -> ActiveOutcome:
    from defenses.secure_aggregation import sybil_fill

    def play(inputs: Mapping[int, object], config: object, checks: object, keys: object) -> object:
        digest = config.model_digest  # type: ignore[attr-defined]
        return sybil_fill(inputs[setup.target], config, target=setup.target, checks=checks,  # type: ignore[arg-type]
                          signing_keys=keys, model_digests=dict.fromkeys(inputs, digest))  # type: ignore[arg-type]

    return _protocol_attack(setup, play, ("sybil_clients",))


def score_active(task: object, observer_name: str = "server") -> list[object]:
    """The ``malicious_server`` rows of one transcript: one per active attack (see the module docstring)."""
    from leakage.quantify.scoring import ScoreRow, ScoringTask, normalised_leakage

    assert isinstance(task, ScoringTask)
    transcript = task.transcript
    settings = transcript.settings
    scheme = str(settings["scheme"])
    baseline = task.baseline_cosine
    rows: list[object] = []

    def not_applicable(attack: str, note: str) -> ScoreRow:
        return ScoreRow(MALICIOUS_SERVER, observer_name, attack, "not_applicable", "update_cosine", baseline,
                        baseline, 1.0, 0.0, note=note)

    first = task.first_round
    if scheme not in _SCHEMES:
        why = (f"the active attacks deviate from secure aggregation; under {scheme!r} "
               + ("the honest server already holds every update" if scheme == "plain" else "they are not modelled"))
        return [not_applicable(name, why) for name in ACTIVE_ATTACKS.names()]
    if first is None:
        return [not_applicable(name, f"client {task.target} never took part") for name in ACTIVE_ATTACKS.names()]
    setup = _setup(task, first, scheme)
    for name in ACTIVE_ATTACKS.names():
        outcome = ACTIVE_ATTACKS.get(name)(setup)
        note = f"{outcome.note}; powers used: {', '.join(outcome.powers)}"
        if setup.checks:
            note += f"; client checks: {', '.join(setup.checks)}"
        if outcome.estimate is None:
            rows.append(ScoreRow(MALICIOUS_SERVER, observer_name, name, "ok", "update_cosine", baseline, baseline,
                                 1.0, 0.0, {"update_cosine": baseline, "recovered": 0.0}, note=note))
            continue
        cosine = update_cosine(outcome.estimate, outcome.true_update)
        relative = relative_error(outcome.estimate, outcome.true_update)
        rows.append(ScoreRow(
            MALICIOUS_SERVER, observer_name, name, "ok", "update_cosine", cosine, baseline, 1.0,
            normalised_leakage(cosine, baseline, 1.0),
            {"update_cosine": cosine, "update_relative_error": relative, "mixed_clients": 1.0, "recovered": 1.0},
            note=note,
        ))
    return rows


def _setup(task: object, first: int, scheme: str) -> ActiveRoundSetup:
    from defenses.secure_aggregation import SecureAggregation, SecureAggregationPlus
    from leakage.quantify.scoring import ScoringTask

    assert isinstance(task, ScoringTask)
    transcript = task.transcript
    settings = transcript.settings
    record = next(r for r in transcript.rounds if r.round_index == first)
    truth_round = next(r for r in transcript.truth.rounds if r.round_index == first)
    options = dict(settings.get("scheme_options") or {})
    checks_value = options.get("checks", ())
    assumed = int(options.get("assumed_corrupt", 1))
    honest = (SecureAggregationPlus if scheme == "secagg+" else SecureAggregation)(
        checks=tuple(checks_value), assumed_corrupt=assumed, threshold=options.get("threshold"))
    clients = list(record.sampled)
    algorithm = settings["algorithm"]
    batch_size = settings.get("batch_size")
    batches = {}
    for client in clients:
        # the target's own order of that round where it is kept, else the client's data in partition order
        order = truth_round.sample_order.get(client, transcript.truth.partition[client])
        if algorithm == "fedsgd" and batch_size is not None:
            order = order[:batch_size]
        batches[client] = (task.dataset.inputs[order], task.dataset.targets[order])
    return ActiveRoundSetup(
        model=transcript.build_model(), params=record.params_before, batches=batches, target=task.target,
        lr=float(settings["lr"]), local_epochs=int(settings["local_epochs"]) if algorithm == "fedavg" else 1,
        batch_size=batch_size if algorithm == "fedavg" else None, checks=honest.checks, assumed_corrupt=assumed,
        threshold=honest.resolved_threshold(len(clients)), sparse=scheme == "secagg+",
        clip_range=float(options.get("clip_range", 1.0)), ring_bits=int(options.get("ring_bits", 32)),
    )

