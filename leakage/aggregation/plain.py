"""``plain``: federated averaging with no protection at all (the reference point)."""

from __future__ import annotations

from leakage.aggregation.base import (
    SCHEMES,
    AggregationScheme,
    RoundContext,
    RoundOutcome,
    weighted_mean,
)
from leakage.views import (
    EAVESDROPPER,
    PUBLIC,
    SERVER,
    RoundView,
    client_observer,
    released_model_view,
)

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
        uploads = {f"update:{client_observer(c)}": context.updates[context.row(c)] for c in sorted(survivors)}

        views: dict[str, RoundView] = {
            SERVER: RoundView(
                round_index=context.round_index,
                observer=SERVER,
                params_before=context.params_before,
                params_after=params_after,
                received=uploads,
                participants=survivors,
                public=public,
            ),
            EAVESDROPPER: RoundView(
                round_index=context.round_index,
                observer=EAVESDROPPER,
                params_before=context.params_before,
                params_after=params_after,
                received=uploads,
                participants=survivors,
            ),
        }
        for client_id in context.client_ids:
            arrived = client_id in survivors
            views[client_observer(client_id)] = RoundView(
                round_index=context.round_index,
                observer=client_observer(client_id),
                params_before=context.params_before,
                params_after=params_after if arrived else None,
                own={
                    "update": context.updates[context.row(client_id)],
                    "data_indices": context.client_data[client_id],
                },
                participants=survivors if arrived else frozenset(),
                public=public if arrived else dict(context.public),
            )
        if context.is_final_round:
            views[PUBLIC] = released_model_view(context.round_index, params_after)
        return RoundOutcome(params_after=params_after, survivors=tuple(sorted(survivors)), views=views)
