"""The registered ``binary_records`` attack: a client's 0/1 records from an observer's views of its uploads.

Li, Huang, Chen, Hong, "Quantification of the Leakage in Federated Learning"
(FL-NeurIPS 2019 workshop, arXiv:1910.05467). Clients train the two-output ``logreg``
model with FedSGD on the Taylor-approximated logistic loss of HE training (Aono et al.),

    ``loss = log 2 - y z / 2 + z^2 / 8``,  ``y = 2 t - 1``,  ``z = out_1 - out_0 = w~ . x~``,

with ``w~ = [W[1] - W[0], b[1] - b[0]]`` and ``x~ = [x, 1]``. Both output rows depend on
the data, with opposite signs: the flat gradient holds ``+g`` in row 1 and ``-g`` in
row 0 of the weight and bias, where ``g = -v / 2 + A w~ / 4`` is the gradient in ``w~``,
``A = (1/n) sum x~ x~^T`` and ``v = (1/n) sum y x~``. A FedSGD upload is ``-lr`` times the
flat gradient, so ``g = (upload[row 0] - upload[row 1]) / (2 lr)``.

An observer that sees the target's upload in several rounds (the server or an
eavesdropper under ``plain``; a participant of a two-client ``secagg`` or ``he``
deployment through :func:`attacks.round_difference.target_observations`) fits ``(A, v)``
exactly and, for 0/1 inputs, recovers the target's records
(:func:`attacks.binary_records.chain.recover_records`). The target must train on the same
records every round (FedSGD with ``batch_size`` at least its data size).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import torch
from torch import Tensor

from attacks.base import ATTACKS, Knowledge
from attacks.binary_records.chain import (
    ATTACK_NAME,
    BinaryRecordsResult,
    recover_records,
)
from attacks.history import HistoryAttack, group_by_round
from attacks.round_difference import own_weight, target_observations
from leakage.checks import require_in_interval, require_int, require_optional_int, require_positive_float
from leakage.errors import ThreatModelError
from leakage.models import ParameterLayout
from leakage.views import PublicValue, RoundView, parse_client_observer

__all__ = ["BinaryRecordsAttack", "effective_pairs"]


def effective_pairs(
    layout: ParameterLayout, params: Sequence[Tensor], uploads: Sequence[Tensor], lrs: Sequence[float]
) -> tuple[Tensor, Tensor]:
    """Return ``(w~ [R, d+1], g [R, d+1])`` from flat ``logreg`` parameters and FedSGD uploads.

    ``w~ = [W[1] - W[0], b[1] - b[0]]`` and ``g = (u[row 0] - u[row 1]) / (2 lr)`` for
    the upload ``u = -lr * gradient`` (rows 0 and 1 of the weight and the bias carry
    ``-g`` and ``+g``; averaging both halves the rounding noise).

    Raises:
        ThreatModelError: the layout is not one ``[2, d]`` weight and one ``[2]`` bias.

    >>> layout = ParameterLayout(("1.weight", "1.bias"), ((2, 2), (2,)))
    >>> params = torch.tensor([0.0, 1.0, 2.0, 2.0, 0.5, 1.0])  # W = [[0, 1], [2, 2]], b = [.5, 1]
    >>> upload = torch.tensor([0.25, 0.5, -0.25, -0.5, 0.125, -0.125])  # -lr * gradient, lr = 0.125
    >>> w, g = effective_pairs(layout, [params], [upload], [0.125])
    >>> w.tolist(), g.tolist()
    ([[2.0, 1.0, 0.5]], [[2.0, 4.0, 1.0]])
    """
    weight_name, bias_name = _logreg_names(layout)
    weights, gradients = [], []
    for flat, upload, lr in zip(params, uploads, lrs, strict=True):
        named = layout.unflatten(flat.to(torch.float64))
        moved = layout.unflatten(upload.to(torch.float64))
        weight, bias = named[weight_name], named[bias_name]
        weights.append(torch.cat([weight[1] - weight[0], (bias[1] - bias[0])[None]]))
        weight_step, bias_step = moved[weight_name], moved[bias_name]
        gradients.append(torch.cat([weight_step[0] - weight_step[1], (bias_step[0] - bias_step[1])[None]]) / (2.0 * lr))
    return torch.stack(weights), torch.stack(gradients)


def _logreg_names(layout: ParameterLayout) -> tuple[str, str]:
    """Names of the ``[2, d]`` weight and ``[2]`` bias of a two-output logistic regression."""
    shapes = dict(zip(layout.names, layout.shapes, strict=True))
    weights = [name for name, shape in shapes.items() if len(shape) == 2 and shape[0] == 2]
    biases = [name for name, shape in shapes.items() if shape == (2,)]
    if len(shapes) != 2 or len(weights) != 1 or len(biases) != 1:
        raise ThreatModelError(
            f"{ATTACK_NAME} needs a two-output logistic regression (a [2, d] weight and a [2] bias), "
            f"got parameters {dict(shapes)}"
        )
    return weights[0], biases[0]


@ATTACKS.register(ATTACK_NAME)
class BinaryRecordsAttack(HistoryAttack[BinaryRecordsResult]):
    """Recover the target's 0/1 records from its Taylor-logistic FedSGD uploads over rounds.

    Every round that reveals the target's upload gives ``d + 1`` linear equations in
    its statistics ``(A, v)``; :func:`attacks.binary_records.minimum_rounds` rounds with
    different models determine them, ``n A`` and ``n v`` are integer counts, and the
    record search returns the records when they are the only ones with these counts.
    The result says ``"not_unique"``, ``"undetermined"`` or ``"ill_conditioned"``
    instead of guessing (full-batch training, for one, moves the model along nearly
    collinear directions and leaves the statistics inexact).

    The record count ``n`` is ``num_samples`` if given, else the target's aggregation
    weight where the view discloses it (``public["weights"]`` under ``plain``), else
    ``knowledge.client_weights``, else the smallest count that makes the statistics
    integral (an assumption the result lists).

    Args:
        client: the target client's id.
        num_samples: the target's record count, if the attacker knows it.
        max_samples: the largest record count tried when inferring it.
        max_nodes: node budget of the record search.
        integrality_tolerance: accepted distance of a record count from an integer.
        max_condition: larger condition numbers of the statistics fit are ill-conditioned.
        max_residual: larger relative residuals of the fit mean the model does not fit.
        max_uncertainty: the largest accepted standard error of a record count.

    Raises:
        ConfigError: an option is out of range (the message names it).

    >>> from leakage import simulate
    >>> transcript = simulate(dataset="binary_features", dataset_options={"n_features": 4, "n_samples": 100},
    ...                       model="logreg", loss="taylor_logistic", algorithm="fedsgd", partition="target",
    ...                       partition_options={"target_size": 2}, batch_size=8, n_clients=5, rounds=6)
    >>> found = BinaryRecordsAttack(client=0).run(transcript.views_of("server"))
    >>> found.status, found.num_samples
    ('recovered', 2)
    """

    name = ATTACK_NAME
    observer = (
        "any observer of the target's FedSGD uploads over several rounds: the server or an eavesdropper "
        "under plain aggregation, or a participant (coalition) isolating them by round difference"
    )
    role = "any"
    produces = "records"

    def __init__(
        self,
        *,
        client: int = 0,
        num_samples: int | None = None,
        max_samples: int = 1000,
        max_nodes: int = 3_000,
        integrality_tolerance: float = 0.2,
        max_condition: float = 1e8,
        max_residual: float = 1e-3,
        max_uncertainty: float = 0.1,
    ) -> None:
        self.client = require_int("client", client, minimum=0)
        self.num_samples = require_optional_int("num_samples", num_samples, minimum=1)
        self.max_samples = require_int("max_samples", max_samples, minimum=1)
        self.max_nodes = require_int("max_nodes", max_nodes, minimum=1)
        # a record count's distance from an integer never exceeds 0.5
        self.integrality_tolerance = require_in_interval(
            "integrality_tolerance", integrality_tolerance, 0, 0.5, inclusive="right"
        )
        self.max_condition = require_positive_float("max_condition", max_condition)
        self.max_residual = require_positive_float("max_residual", max_residual)
        self.max_uncertainty = require_positive_float("max_uncertainty", max_uncertainty)

    def _run(
        self,
        history: Sequence[RoundView],
        knowledge: Knowledge | None,
        *,
        generator: torch.Generator,
        show_progress: bool,
    ) -> BinaryRecordsResult:
        observations = target_observations(history, self.client, knowledge)
        publics = {view.round_index: view.public for view in history}
        assumptions = [
            "the target trains with FedSGD on the Taylor logistic loss, on the same 0/1 records every round"
        ]
        if all(view.observer.startswith("client:") for view in history):
            assumptions.append(_round_difference_assumption(history, self.client, knowledge))
        if knowledge is not None:
            layout = ParameterLayout.of(knowledge.model)
        else:
            layout = _assumed_layout(observations[0].params.numel())
            assumptions.append("knowledge.model not given: the parameters are a logreg weight [2, d], then bias [2]")
        _logreg_names(layout)  # refuse any other architecture before reading the uploads
        if layout.num_parameters != observations[0].params.numel():
            raise ThreatModelError(
                f"the uploads have {observations[0].params.numel()} values but the model has "
                f"{layout.num_parameters} parameters"
            )
        rounds = [-1 if obs.round_index is None else obs.round_index for obs in observations]
        lrs = [_fedsgd_lr(publics.get(index, {}), knowledge, index) for index in rounds]
        weights, gradients = effective_pairs(
            layout,
            [obs.params for obs in observations],
            [obs.value.to(torch.float64) for obs in observations],
            lrs,
        )
        num_samples = self.num_samples
        if num_samples is None:
            num_samples = _disclosed_weight(history, self.client)
        if num_samples is None and knowledge is not None and knowledge.client_weights:
            assumed = knowledge.client_weights.get(self.client)
            if assumed is not None and float(assumed).is_integer():
                num_samples = int(assumed)
                assumptions.append(f"n = {num_samples} records from knowledge.client_weights")
        recovery = recover_records(
            weights,
            gradients,
            num_samples=num_samples,
            max_samples=self.max_samples,
            integrality_tolerance=self.integrality_tolerance,
            max_condition=self.max_condition,
            max_residual=self.max_residual,
            max_uncertainty=self.max_uncertainty,
            max_nodes=self.max_nodes,
            assumptions=assumptions,
        )
        return replace(recovery, attack=self.name)


def _assumed_layout(num_parameters: int) -> ParameterLayout:
    """The ``logreg`` layout for ``num_parameters = 2 d + 2`` (``nn.Linear`` weight, then bias)."""
    features, odd = divmod(num_parameters - 2, 2)
    if odd or features < 1:
        raise ThreatModelError(
            f"{num_parameters} parameters are not a two-output logistic regression (2 d + 2); "
            "pass knowledge.model"
        )
    return ParameterLayout(("1.weight", "1.bias"), ((2, features), (2,)))


def _fedsgd_lr(public: Mapping[str, PublicValue], knowledge: Knowledge | None, round_index: int) -> float:
    """The client learning rate of a FedSGD round, from the view or else from the knowledge."""
    algorithm = public.get("algorithm", None if knowledge is None else knowledge.algorithm)
    if algorithm != "fedsgd" or public.get("local_epochs", 1) != 1:
        raise ThreatModelError(
            f"round {round_index}: {ATTACK_NAME} needs FedSGD uploads (one gradient step), got algorithm {algorithm!r}"
        )
    lr = public.get("lr", None if knowledge is None else knowledge.lr)
    if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not lr > 0:
        raise ThreatModelError(f"round {round_index}: the view states no client learning rate; declare knowledge.lr")
    return float(lr)


def _disclosed_weight(history: Sequence[RoundView], client: int) -> int | None:
    """The target's aggregation weight (its FedSGD batch, i.e. ``n``) if the views disclose it.

    Either directly (``public["weights"]``, plain aggregation), or, for a coalition of
    participants whose only other participant is the target, as the disclosed total
    weight (``public["total_weight"]``, homomorphic aggregation) minus their own. Every
    round that discloses it must agree.
    """
    seen: set[float] = set()
    for round_views in group_by_round(history).values():
        for view in round_views:
            weights = view.public.get("weights")
            if isinstance(weights, dict) and str(client) in weights:
                seen.add(float(weights[str(client)]))
        total = round_views[0].public.get("total_weight")
        members = {view.observer for view in round_views}
        participants = frozenset().union(*(view.participants for view in round_views))
        coalition = {parse_client_observer(name) for name in members if name.startswith("client:")}
        if isinstance(total, (int, float)) and len(members) == len(coalition) and participants - coalition == {client}:
            try:
                rest = float(total) - sum(own_weight(view) for view in round_views)
            except ThreatModelError:
                continue
            seen.add(float(round(rest)) if abs(rest - round(rest)) < 1e-3 else rest)  # CKKS noise
    if len(seen) == 1:
        value = seen.pop()
        return int(value) if value.is_integer() and value >= 1 else None
    return None


def _round_difference_assumption(history: Sequence[RoundView], client: int, knowledge: Knowledge | None) -> str:
    """Name how the round difference weighed the target's upload out of the aggregate."""
    public = history[0].public
    if any(isinstance(view.public.get("weights"), dict) or "total_weight" in view.public for view in history):
        return "the target's uploads isolated by round difference, with the disclosed aggregation weights"
    if knowledge is not None and knowledge.client_weights and client in knowledge.client_weights:
        return "the target's uploads isolated by round difference, with weights from knowledge.client_weights"
    return (
        "the target's uploads isolated by round difference, assuming it drew a full FedSGD batch of "
        f"{public.get('batch_size')} samples (declare knowledge.client_weights if it holds fewer)"
    )
