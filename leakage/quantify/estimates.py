"""What each observer of a transcript can estimate about the target client's update.

``observer_views`` turns an observer kind of the spec (``server``, ``participant``,
``coalition``, ``eavesdropper``, ``public``) into the views that observer really holds.
``target_estimates`` returns, per round, the observer's best estimate of the target's
update by one named method:

- ``plaintext``: the target's upload read from the view (server or eavesdropper under
  ``plain`` or central DP); exact.
- ``round_difference``: a participant (or the coalition of all but the target) subtracts
  its own update from the model's change; exact when the target is the only one left.
- ``disaggregation``: the server splits secure aggregates across rounds (Lam et al.).
- ``aggregate``: the server's or eavesdropper's model change, the mean of everyone.
- ``final_model``: what anyone can say from the released model alone, the direction
  ``final - initial``; this is all that MPC training reveals, the baseline of the score.

Estimates are scored against ground truth by :mod:`leakage.quantify.scoring` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor

from attacks import DisaggregationAttack, Knowledge, Observation, RoundDifferenceAttack
from leakage.errors import ThreatModelError
from leakage.transcript import Transcript
from leakage.views import EAVESDROPPER, PUBLIC, SERVER, RoundView, client_observer

__all__ = ["TargetEstimate", "final_model_estimates", "observer_views", "target_estimates"]


@dataclass(frozen=True)
class TargetEstimate:
    """An observer's estimate of the target's update in one round.

    Attributes:
        round_index: the round.
        params_before: the global model the round started from, flat ``[P]``.
        update: the estimate, flat ``[P]``.
        count: how many clients' updates it mixes (1: the target's own).
    """

    round_index: int
    params_before: Tensor
    update: Tensor
    count: int

    def observation(self, target: int) -> Observation:
        """The estimate as the target's upload, for gradient inversion (``count`` must be 1)."""
        return Observation(self.params_before, self.update, "update", target, self.round_index)


def observer_views(transcript: Transcript, kind: str, target: int) -> tuple[str, list[RoundView]]:
    """Return the observer's name and every view it holds, for an observer kind of the spec.

    ``participant`` is the lowest-numbered client other than ``target``; ``coalition``
    is every client but ``target``, pooling their views.
    """
    n_clients = len(transcript.truth.partition)
    if kind in (SERVER, EAVESDROPPER, PUBLIC):
        return kind, transcript.views_of(kind)
    others = [client for client in range(n_clients) if client != target]
    if kind == "participant":
        return client_observer(others[0]), transcript.views_of(client_observer(others[0]))
    views = [view for client in others for view in transcript.views_of(client_observer(client))]
    return "+".join(client_observer(c) for c in others) if len(others) <= 3 else f"clients other than {target}", views


def target_estimates(
    method: str, views: Sequence[RoundView], target: int, knowledge: Knowledge | None = None
) -> list[TargetEstimate]:
    """Return the per-round estimates of ``target``'s update that ``method`` gets from ``views``.

    Rounds where the method learns nothing about the target are left out; an empty list
    means the observer cannot apply the method at all.

    Raises:
        ThreatModelError: the method cannot run on these views (the message says why).
    """
    if not views:
        raise ThreatModelError("the observer saw nothing in any round")
    if method == "plaintext":
        found = []
        for view in views:
            try:
                observation = Observation.from_view(view, target)
            except ThreatModelError:
                continue
            found.append(TargetEstimate(view.round_index, observation.params, observation.value.double(), 1))
        if not found:
            raise ThreatModelError(f"the view holds no plaintext update of client {target}")
        return found
    if method == "round_difference":
        estimate = RoundDifferenceAttack().run(views, knowledge)
        return [
            TargetEstimate(item.round_index, item.params_before, item.update, item.count)
            for item in estimate.recovered
            if item.clients is None or target in item.clients
        ]
    if method == "disaggregation":
        estimate = DisaggregationAttack().run(views, knowledge)
        return [
            TargetEstimate(round_index, item.params_before, item.update, 1)
            for item in estimate.of_client(target)
            for round_index in item.rounds
        ]
    if method == "aggregate":
        found = []
        for view in views:
            if view.params_before is None or view.params_after is None or target not in view.participants:
                continue
            server_lr = float(view.public.get("server_lr", 1.0))  # type: ignore[arg-type]
            change = (view.params_after.double() - view.params_before.double()) / server_lr
            found.append(TargetEstimate(view.round_index, view.params_before, change, max(1, len(view.participants))))
        if not found:
            raise ThreatModelError("the observer never saw a model change it knows the target took part in")
        return found
    raise ThreatModelError(f"unknown estimation method {method!r}")


def final_model_estimates(transcript: Transcript) -> list[TargetEstimate]:
    """The MPC-level estimate: the released model's total change, for every round.

    The initial model is public (every party starts from it) and the final one is
    released, so ``(final - initial) / rounds`` is known to everyone under any scheme.
    """
    change = (transcript.final_params.double() - transcript.initial_params.double()) / max(1, len(transcript.rounds))
    return [TargetEstimate(r.round_index, r.params_before, change, len(r.survivors)) for r in transcript.rounds]
