"""``plaintext``: read every upload an observer received in the clear.

Under ``plain`` aggregation or central DP the server (and an eavesdropper on an
unencrypted channel) receives each participant's update ``u_i`` as sent. Nothing is
inferred: the estimate of client ``i``'s update in round ``t`` is the vector the view
holds under ``received["update:client:<i>"]``, exactly. Under secure or homomorphic
aggregation the view holds masked vectors or ciphertexts instead, and the attack
raises :class:`~leakage.errors.ThreatModelError`.

It is implicit: scoring runs it for every server-side observer, since it only reads.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from attacks.base import ATTACKS, Knowledge, Observation
from attacks.history import HistoryAttack, RecoveredUpdate, UpdateEstimate
from leakage.errors import ThreatModelError
from leakage.views import RoundView, parse_client_observer

__all__ = ["PlaintextAttack"]

_UPLOAD_PREFIX = "update:"


@ATTACKS.register("plaintext")
class PlaintextAttack(HistoryAttack[UpdateEstimate]):
    """Return every plaintext upload in the server's or an eavesdropper's views, one per client and round.

    >>> from leakage import simulate
    >>> transcript = simulate(n_clients=3, rounds=1, algorithm="fedsgd", batch_size=2, scheme="plain")
    >>> estimate = PlaintextAttack().run(transcript.views_of("server"))
    >>> truth = transcript.truth.rounds[0].update_of(2)
    >>> bool(torch.equal(estimate.observation(2).value, truth.double()))
    True
    """

    name = "plaintext"
    observer = "the server or an eavesdropper, reading uploads sent in the clear"
    role = "server"
    is_implicit = True
    reads_uploads = True

    def _run(
        self,
        history: Sequence[RoundView],
        knowledge: Knowledge | None,
        *,
        generator: torch.Generator,
        show_progress: bool,
    ) -> UpdateEstimate:
        recovered: list[RecoveredUpdate] = []
        for view in history:
            if view.params_before is None:
                continue
            for key in sorted(k for k in view.received if k.startswith(_UPLOAD_PREFIX)):
                client = parse_client_observer(key.removeprefix(_UPLOAD_PREFIX))
                observation = Observation.from_view(view, client)
                recovered.append(RecoveredUpdate(
                    (view.round_index,), observation.params, observation.value.double(), frozenset({client}), 1
                ))
        if not recovered:
            raise ThreatModelError(f"{history[0].observer} holds no plaintext update of any client")
        return UpdateEstimate(self.name, history[0].observer, tuple(recovered))
