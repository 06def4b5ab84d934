"""``aggregate``: read the round's aggregated update from the model change.

The server and an eavesdropper see the global model before and after each round and
who took part, so each round gives them the (weighted) mean update of the participants,

    ``delta_t = (params_after - params_before) / eta``,

with ``eta`` the disclosed server learning rate (:meth:`~leakage.views.RoundView.model_change`).
As an estimate of one participant's update it mixes ``|participants|`` clients: with
many clients it is no better than the released model's direction, with one other
client it is half of the target's. Nothing is inferred beyond that.

It is implicit: scoring runs it for every server-side observer, since it only reads.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from attacks.base import ATTACKS, Knowledge
from attacks.history import HistoryAttack, RecoveredUpdate, UpdateEstimate
from leakage.errors import ThreatModelError
from leakage.views import RoundView

__all__ = ["AggregateAttack"]


@ATTACKS.register("aggregate")
class AggregateAttack(HistoryAttack[UpdateEstimate]):
    """Return the participants' mean update of every round whose model change the observer saw.

    >>> from leakage import simulate
    >>> transcript = simulate(n_clients=3, rounds=2, algorithm="fedsgd", batch_size=2, scheme="secagg")
    >>> estimate = AggregateAttack().run(transcript.views_of("server"))
    >>> [(item.round_index, item.count) for item in estimate.recovered]
    [(0, 3), (1, 3)]
    """

    name = "aggregate"
    observer = "the server or an eavesdropper, reading the model change of each round"
    role = "server"
    is_implicit = True

    def _run(
        self,
        history: Sequence[RoundView],
        knowledge: Knowledge | None,
        *,
        generator: torch.Generator,
        show_progress: bool,
    ) -> UpdateEstimate:
        recovered: list[RecoveredUpdate] = []
        assumptions: set[str] = set()
        for view in history:
            if view.params_before is None or view.params_after is None or not view.participants:
                continue
            if view.server_lr is None:
                assumptions.add("the server learning rate is 1 (not disclosed to this observer)")
            recovered.append(RecoveredUpdate(
                (view.round_index,), view.params_before, view.model_change(), view.participants,
                len(view.participants),
            ))
        if not recovered:
            raise ThreatModelError(f"{history[0].observer} never saw a model change together with its participants")
        return UpdateEstimate(self.name, history[0].observer, tuple(recovered), tuple(sorted(assumptions)))
