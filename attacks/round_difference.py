"""``round_difference``: a participant subtracts its own update from the model's change.

Each round a participant sees the global model before and after aggregation, knows
what it sent and the public aggregation rule (``public["weighting"]``, the server
learning rate ``eta``). For sample-count weighting,

    ``(params_after - params_before) / eta = sum_i n_i s_i / W``,   ``W = sum_i n_i``,

so a coalition ``K`` of participants obtains the weighted mean update of everyone else,

    ``u_rest = (W * delta / eta - sum_{k in K} n_k s_k) / (W - sum_{k in K} n_k)``,

whatever the aggregation hid: plain, secure aggregation (up to its fixed-point
step), homomorphic aggregation (up to CKKS noise). With two participants, or ``N - 1``
colluders among ``N``, ``u_rest`` is the one honest client's exact update; a lone
attacker among ``N`` gets the mean of ``N - 1`` updates. Under ``"uniform"`` weighting
every ``n_i`` is 1; under ``"expected_clients"`` (central DP) ``W`` is the deployment's
expected number of clients and the DP noise ``N(0, sigma^2 C^2)`` enters ``u_rest``
scaled by ``W / (W - |K|)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from attacks.base import ATTACKS, Knowledge, Observation
from attacks.history import (
    HistoryAttack,
    RecoveredUpdate,
    UpdateEstimate,
    group_by_round,
)
from leakage.errors import ThreatModelError
from leakage.views import RoundView, parse_client_observer

__all__ = ["RoundDifferenceAttack", "own_weight", "target_observations"]


def own_weight(view: RoundView) -> float:
    """Return the aggregation weight (sample count) a participant knows it contributed.

    FedAvg weights a client by its local sample count; FedSGD by the batch it drew
    (``batch_size`` samples, or all of them if it holds fewer).

    Raises:
        ThreatModelError: the view holds no ``data_indices``.
    """
    indices = view.own.get("data_indices")
    if indices is None:
        raise ThreatModelError(f"observer {view.observer!r} holds no data_indices in round {view.round_index}")
    count = int(indices.numel())
    batch_size = view.public.get("batch_size")
    if view.public.get("algorithm") == "fedsgd" and isinstance(batch_size, int):
        return float(min(batch_size, count))
    return float(count)


def _sent(view: RoundView) -> Tensor:
    sent = view.own.get("sent", view.own.get("update"))
    if sent is None:
        raise ThreatModelError(
            f"observer {view.observer!r} does not know its own update in round {view.round_index} "
            "(under MPC training even a participant's update stays secret-shared)"
        )
    return sent.to(torch.float64)


@ATTACKS.register("round_difference")
class RoundDifferenceAttack(HistoryAttack[UpdateEstimate]):
    """Recover the other participants' (weighted mean) update from the change of the global model.

    Run it on the views of one participant, or of a coalition of colluding participants
    (pass all their views). Each round where the coalition's contribution arrived and the
    new model was released yields one :class:`~attacks.history.RecoveredUpdate` of the
    remaining participants; it is individual (chainable into gradient inversion) when
    exactly one participant remains.

    The total weight ``W`` comes from the view where the scheme discloses it
    (``public["weights"]`` under ``plain``, ``public["total_weight"]`` under ``he``);
    otherwise from ``knowledge.client_weights`` for each other participant; otherwise,
    for FedSGD with a public ``batch_size``, every other participant is assumed to have
    drawn a full batch (listed in the result's ``assumptions``).

    Raises:
        ThreatModelError: no round has both global models and the coalition's own
            update (MPC training shows neither), or the weights cannot be determined.

    >>> from leakage import simulate
    >>> transcript = simulate(n_clients=2, rounds=1, algorithm="fedsgd", batch_size=4)
    >>> estimate = RoundDifferenceAttack().run(transcript.views_of("client:0"))
    >>> truth = transcript.truth.rounds[0].update_of(1)
    >>> bool(torch.allclose(estimate.observation(1).value.float(), truth, atol=1e-5))
    True
    """

    name = "round_difference"
    observer = "a participant (or a coalition of colluding participants)"
    role = "client"

    def _run(
        self,
        history: Sequence[RoundView],
        knowledge: Knowledge | None,
        *,
        generator: torch.Generator,
        show_progress: bool,
    ) -> UpdateEstimate:
        coalition = sorted({parse_client_observer(view.observer) for view in history})
        assumptions: set[str] = set()
        recovered: list[RecoveredUpdate] = []
        for round_index, views in group_by_round(history).items():
            item = _subtract(round_index, views, knowledge, assumptions)
            if item is not None:
                recovered.append(item)
        observer = "+".join(f"client:{c}" for c in coalition)
        if not recovered:
            raise ThreatModelError(
                f"{observer} saw no round with both global models, its own update and another participant"
            )
        return UpdateEstimate(self.name, observer, tuple(recovered), tuple(sorted(assumptions)))


def _subtract(
    round_index: int, views: Sequence[RoundView], knowledge: Knowledge | None, assumptions: set[str]
) -> RecoveredUpdate | None:
    """Return the rest's update in one round, or ``None`` if the coalition saw no release."""
    released = [view for view in views if view.params_before is not None and view.params_after is not None]
    for view in views:
        _sent(view)  # a participant that cannot name its own update cannot subtract it
    if not released:
        return None
    reference = released[0]
    assert reference.params_before is not None and reference.params_after is not None
    public = reference.public
    if reference.server_lr is None:
        assumptions.add("the server learning rate is 1 (not disclosed to this observer)")
    delta = reference.model_change()
    members = {parse_client_observer(view.observer): view for view in released}
    weighting = public.get("weighting", "sample_count")
    participants = frozenset().union(*(view.participants for view in released))
    if weighting == "sample_count":
        member_weights = {client: own_weight(view) for client, view in members.items()}
    else:
        member_weights = dict.fromkeys(members, 1.0)
    total = _total_weight(reference, weighting, participants, members, member_weights, knowledge, assumptions)
    rest_clients: frozenset[int] | None = participants - set(members) if participants else None
    rest_weight = total - sum(member_weights.values())
    if rest_clients is not None:
        rest_count = len(rest_clients)
    else:  # central DP tells no participant list: assume the expected number took part
        rest_count = round(total) - len(members)
        assumptions.add(f"the expected {round(total)} clients took part in every round")
    if rest_weight <= 1e-9 or rest_count < 1:
        return None  # nobody else's update entered this aggregate
    rest_sum = total * delta
    for client, view in members.items():
        rest_sum -= member_weights[client] * _sent(view)
    return RecoveredUpdate(
        rounds=(round_index,),
        params_before=reference.params_before,
        update=rest_sum / rest_weight,
        clients=rest_clients,
        count=rest_count,
        weight=rest_weight,
    )


def _total_weight(
    view: RoundView,
    weighting: object,
    participants: frozenset[int],
    members: dict[int, RoundView],
    member_weights: dict[int, float],
    knowledge: Knowledge | None,
    assumptions: set[str],
) -> float:
    public = view.public
    if weighting == "expected_clients":
        expected = public.get("expected_clients")
        if not isinstance(expected, (int, float)):
            raise ThreatModelError(f"round {view.round_index}: the view does not state the expected number of clients")
        return float(expected)
    if not participants:
        raise ThreatModelError(f"round {view.round_index}: observer {view.observer!r} was not told who took part")
    if weighting == "uniform":
        return float(len(participants))
    disclosed = public.get("weights")
    if isinstance(disclosed, dict):
        return float(sum(float(w) for w in disclosed.values()))
    if isinstance(public.get("total_weight"), (int, float)):
        return float(public["total_weight"])  # type: ignore[arg-type]
    others = sorted(participants - set(members))
    assumed = knowledge.client_weights if knowledge is not None and knowledge.client_weights else {}
    if all(client in assumed for client in others):
        assumptions.add("aggregation weights of the other participants from knowledge.client_weights")
        return sum(member_weights.values()) + sum(assumed[client] for client in others)
    batch_size = public.get("batch_size")
    if public.get("algorithm") == "fedsgd" and isinstance(batch_size, int):
        assumptions.add(f"every other participant drew a full FedSGD batch of {batch_size} samples")
        return sum(member_weights.values()) + batch_size * len(others)
    raise ThreatModelError(
        f"round {view.round_index}: the view does not disclose the aggregation weights of clients {others}; "
        "declare them in knowledge.client_weights"
    )


def target_observations(
    views: Sequence[RoundView], client: int, knowledge: Knowledge | None = None
) -> list[Observation]:
    """Return ``client``'s upload in every round of ``views`` that reveals it, in round order.

    Server or eavesdropper views give the plaintext upload they received; participants'
    views give it through :class:`RoundDifferenceAttack` (rounds where ``client`` is the
    only other participant).

    Raises:
        ThreatModelError: no view reveals ``client``'s individual upload.
    """
    history = sorted(views, key=lambda view: (view.round_index, view.observer))
    if history and all(view.observer.startswith("client:") for view in history):
        estimate = RoundDifferenceAttack().run(history, knowledge)
        found = [item.observation() for item in estimate.of_client(client)]
    else:
        found = []
        for view in history:
            try:
                found.append(Observation.from_view(view, client))
            except ThreatModelError:
                continue
    if not found:
        raise ThreatModelError(f"no view reveals the individual upload of client {client}")
    return found
