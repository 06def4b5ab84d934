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

Sample attacks (:data:`ACTIVE_SAMPLE_ATTACKS`), scored as the fraction of the target's
samples of that round recovered above 30 dB after one-to-one matching (metric
``fraction_30db``, leakage the fraction itself), with whether they are attributed to it:

- ``imprint`` (Fowl et al.): a 1024-bin imprint layer prepended for everyone; stopped
  only by ``vet_model`` (the architecture differs from the announced one);
- ``imprint_inconsistent``: the imprint layer for the target alone, dead models for the
  rest: its samples, attributed; stopped by ``bind_model`` and ``vet_model``;
- ``trap_weights`` (Boenisch et al.): the first layer re-weighted for everyone; no check
  here stops it.

The attacks apply to ``secagg`` and ``secagg+``; under other schemes the row says why
not (under ``plain`` the honest server already holds every update).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from leakage.metrics import relative_error, update_cosine
from leakage.registry import Registry

__all__ = ["ACTIVE_ATTACKS", "ACTIVE_POWERS", "ACTIVE_SAMPLE_ATTACKS", "MALICIOUS_SERVER", "ActiveOutcome",
           "ActiveRoundSetup", "SampleOutcome", "score_active"]

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


def _local_updates(
    setup: ActiveRoundSetup, sent: Mapping[int, Tensor], model: torch.nn.Module
) -> dict[int, Tensor]:
    """Each participant's FedSGD/FedAvg update on the flat model ``sent[client]`` it was sent."""
    from leakage.models import ParameterLayout
    from leakage.quantify.inconsistency import local_batches
    from leakage.simulation import make_loss, train_client

    layout, loss = ParameterLayout.of(model), make_loss(model)
    updates = {}
    for client, (inputs, targets) in setup.batches.items():
        batches = local_batches(inputs, targets, setup.local_epochs, setup.batch_size)
        updates[client], _ = train_client(loss, layout, sent[client].float(), batches, lr=setup.lr)
    return updates


def _honest_updates(setup: ActiveRoundSetup) -> dict[int, Tensor]:
    return _local_updates(setup, dict.fromkeys(setup.batches, setup.params), setup.model)


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
    from defenses.secure_aggregation import fewest_corrupt, survivor_split

    def play(inputs: Mapping[int, object], config: object, checks: object, keys: object) -> object:
        corrupt = fewest_corrupt(config, setup.target)  # type: ignore[arg-type]
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


@dataclass(frozen=True)
class SampleOutcome:
    """One malicious round that pulls samples out of the aggregate (raw inputs), or ``None``."""

    samples: Tensor | None
    attributed: bool
    note: str
    powers: tuple[str, ...]


SampleAttack = Callable[[ActiveRoundSetup, Tensor], SampleOutcome]
#: Attacks that change the model so the aggregate gives back samples: imprint, and trap weights.
ACTIVE_SAMPLE_ATTACKS: Registry[SampleAttack] = Registry("active sample attack")
_IMPRINT_BINS = 1024


def _named(model: torch.nn.Module, params: Tensor) -> torch.nn.Module:
    """A copy of ``model`` holding the flat ``params``."""
    import copy

    from leakage.models import ParameterLayout

    net = copy.deepcopy(model)
    named = ParameterLayout.of(net).unflatten(params.detach().to(torch.float32))
    with torch.no_grad():
        for name, parameter in net.named_parameters():
            parameter.copy_(named[name])
    return net


def _flat(model: torch.nn.Module) -> Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def _sample_round(
    setup: ActiveRoundSetup, sent: Mapping[int, Tensor], model: torch.nn.Module
) -> tuple[Tensor, Tensor]:
    """The first layer (weight, bias) of the sum of every participant's update on the model it was sent."""
    from leakage.models import ParameterLayout

    layout = ParameterLayout.of(model)
    named = layout.unflatten(torch.stack(list(_local_updates(setup, sent, model).values())).sum(dim=0))
    return named[layout.names[0]], named[layout.names[1]]


def _imprinted(setup: ActiveRoundSetup, auxiliary: Tensor) -> tuple[torch.nn.Module, Any]:
    from attacks.imprint import ImprintBlock

    block = ImprintBlock.from_auxiliary(auxiliary, _IMPRINT_BINS, measurement="random",
                                        generator=torch.Generator().manual_seed(0))
    return torch.nn.Sequential(block, _named(setup.model, setup.params)), block


def _vetted(setup: ActiveRoundSetup, model: torch.nn.Module) -> bool:
    from defenses.secure_aggregation import architecture_digest

    return "vet_model" not in setup.checks or architecture_digest(model) == architecture_digest(setup.model)


@ACTIVE_SAMPLE_ATTACKS.register("imprint")
def _imprint(setup: ActiveRoundSetup, auxiliary: Tensor) -> SampleOutcome:
    from attacks.imprint import recover_from_imprint

    model, _ = _imprinted(setup, auxiliary)
    powers = ("added_layers",)
    if not _vetted(setup, model):
        return SampleOutcome(None, False, "every client refused a model whose architecture differs from the "
                             "announced one (vet_model)", powers)
    params = _flat(model)
    weight, bias = _sample_round(setup, dict.fromkeys(setup.batches, params), model)
    samples, _ = recover_from_imprint(weight, bias)
    return SampleOutcome(samples, False, f"a {_IMPRINT_BINS}-bin imprint layer for every client; samples come "
                         "out of the aggregate, not attributed to a client", powers)


@ACTIVE_SAMPLE_ATTACKS.register("imprint_inconsistent")
def _imprint_inconsistent(setup: ActiveRoundSetup, auxiliary: Tensor) -> SampleOutcome:
    from attacks.imprint import recover_from_imprint
    from attacks.model_inconsistency import dead_parameters

    model, _ = _imprinted(setup, auxiliary)
    powers = ("added_layers", "per_client_models")
    if not _vetted(setup, model):
        return SampleOutcome(None, True, "every client refused a model whose architecture differs from the "
                             "announced one (vet_model)", powers)
    if "bind_model" in setup.checks:
        return SampleOutcome(None, True, "clients holding different models cannot decrypt each other's shares "
                             "(bind_model): every client refused", powers)
    real = _flat(model)
    dead = dead_parameters(model, real)
    sent = {c: real if c == setup.target else dead for c in setup.batches}
    weight, bias = _sample_round(setup, sent, model)
    samples, _ = recover_from_imprint(weight, bias)
    return SampleOutcome(samples, True, "the imprint layer for the target alone, dead models for the others: "
                         "its samples, attributed", powers)


@ACTIVE_SAMPLE_ATTACKS.register("trap_weights")
def _trap_weights(setup: ActiveRoundSetup, auxiliary: Tensor) -> SampleOutcome:
    from attacks.trap_weights import install_trap_weights, recover_from_trap_weights
    from leakage.errors import ConfigError

    model = _named(setup.model, setup.params)
    shape = tuple(auxiliary.shape[1:])
    try:
        install_trap_weights(model, shape, generator=torch.Generator().manual_seed(0))
    except ConfigError as error:
        return SampleOutcome(None, False, f"not applicable: {error}", ("per_client_models",))
    weight, bias = _sample_round(setup, dict.fromkeys(setup.batches, _flat(model)), model)
    samples, _ = recover_from_trap_weights(weight, bias)
    return SampleOutcome(samples, False, "trap weights in the first layer for every client; samples come out of "
                         "the aggregate, not attributed", ("per_client_models",))


def _sample_rows(task: Any, setup: ActiveRoundSetup, observer_name: str, suffix: str) -> list[Any]:
    """One row per sample attack: the fraction of the target's samples recovered above 30 dB."""
    from leakage.metrics import match_samples
    from leakage.quantify.scoring import ScoreRow

    dataset = task.dataset
    pool = task.held_out if task.held_out is not None and len(task.held_out) >= 2 else dataset
    auxiliary = pool.inputs[torch.randperm(len(pool), generator=torch.Generator().manual_seed(task.seed))[:500]]
    originals = dataset.denormalize(setup.batches[setup.target][0])
    low, high = dataset.value_range
    rows = []
    for name in ACTIVE_SAMPLE_ATTACKS.names():
        outcome = ACTIVE_SAMPLE_ATTACKS.get(name)(setup, auxiliary)
        note = f"{outcome.note}; powers used: {', '.join(outcome.powers)}{suffix}"
        if outcome.samples is None:
            rows.append(ScoreRow(MALICIOUS_SERVER, observer_name, name, "ok", "fraction_30db", 0.0, 0.0, 1.0, 0.0,
                                 {"fraction_30db": 0.0, "attributed": float(outcome.attributed), "recovered": 0.0},
                                 note=note))
            continue
        raw = dataset.denormalize(outcome.samples.reshape(-1, *originals.shape[1:]).to(originals.dtype))
        fraction = match_samples(raw, originals, data_range=float(high - low)).fraction_recovered(30.0)
        rows.append(ScoreRow(
            MALICIOUS_SERVER, observer_name, name, "ok", "fraction_30db", fraction, 0.0, 1.0, fraction,
            {"fraction_30db": fraction, "attributed": float(outcome.attributed),
             "candidates": float(len(outcome.samples)), "target_samples": float(len(originals)),
             "recovered": float(fraction > 0)},
            note=note,
        ))
    return rows


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
        return [not_applicable(name, why) for name in (*ACTIVE_ATTACKS.names(), *ACTIVE_SAMPLE_ATTACKS.names())]
    if first is None:
        return [not_applicable(name, f"client {task.target} never took part")
                for name in (*ACTIVE_ATTACKS.names(), *ACTIVE_SAMPLE_ATTACKS.names())]
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
    suffix = f"; client checks: {', '.join(setup.checks)}" if setup.checks else ""
    rows += _sample_rows(task, setup, observer_name, suffix)
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

