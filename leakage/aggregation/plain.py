"""``plain``: federated averaging with no protection at all (the reference point)."""

from __future__ import annotations

from leakage.aggregation.base import (
    SCHEMES,
    AggregationScheme,
    RoundContext,
    RoundOutcome,
    weighted_mean,
)
from leakage.aggregation.views import observer_views
from leakage.views import upload_key

__all__ = ["PlainAggregation"]


@SCHEMES.register("plain")
class PlainAggregation(AggregationScheme):
    """Plaintext FedAvg/FedSGD aggregation (McMahan et al., 2017).

    ``params_after = params_before + server_lr * sum_i n_i u_i / sum_i n_i`` over the
    clients whose update arrived. Views:

    - ``server``: every arriving update in the clear, both global models.
    - ``client:<id>``: its own update and data, the model it was sent and, if its
      update arrived, the new global model and the aggregation weights.
    - ``eavesdropper``: both directions on the wire: the broadcast model, every
      upload, the new model.
    - ``public``: only the final released model, in the last round.
    """

    name = "plain"

    def run_round(self, context: RoundContext) -> RoundOutcome:
        survivors = frozenset(context.arriving)
        delta = weighted_mean(context.updates, context.arrived_weights)
        params_after = context.apply(delta)
        public = dict(context.public)
        public["weights"] = {str(c): float(context.weights[context.row(c)]) for c in survivors}
        uploads = {upload_key(c): context.updates[context.row(c)] for c in sorted(survivors)}
        views = observer_views(context, params_after, participants=survivors, public=public, wire=uploads)
        return RoundOutcome(params_after=params_after, survivors=tuple(sorted(survivors)), views=views)
