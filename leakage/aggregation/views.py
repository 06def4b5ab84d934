"""The standard observers' views of a round, built in one place for every scheme.

Every scheme shows the same cast: the ``server``, an ``eavesdropper`` on the wire, each
sampled ``client:<id>`` and, in the final round, the ``public``. What they see follows
one set of rules; a scheme only says where it departs from them (:func:`observer_views`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from types import MappingProxyType
from typing import Any, Literal, get_args

from torch import Tensor

from leakage.aggregation.base import RoundContext
from leakage.checks import require_choice
from leakage.views import (
    EAVESDROPPER,
    PUBLIC,
    SERVER,
    Message,
    PublicValue,
    RoundView,
    client_observer,
    released_model_view,
)

__all__ = ["MODEL_DISCLOSURES", "ModelDisclosure", "observer_views"]

ModelDisclosure = Literal["clear", "clients", "final"]
MODEL_DISCLOSURES: tuple[ModelDisclosure, ...] = get_args(ModelDisclosure)

_NOTHING: Mapping[str, Any] = MappingProxyType({})


def observer_views(
    context: RoundContext,
    params_after: Tensor | None,
    *,
    participants: Collection[int],
    public: Mapping[str, PublicValue],
    wire: Mapping[str, Message] = _NOTHING,
    server_received: Mapping[str, Message] = _NOTHING,
    server_public: Mapping[str, PublicValue] = _NOTHING,
    server_own: Mapping[str, Tensor] = _NOTHING,
    client_received: Callable[[int], Mapping[str, Message]] | None = None,
    client_own: Callable[[int], Mapping[str, Tensor]] | None = None,
    finished: Collection[int] | None = None,
    finished_public: Mapping[str, PublicValue] = _NOTHING,
    clients_told_participants: bool = True,
    models: ModelDisclosure = "clear",
) -> dict[str, RoundView]:
    """Return the round's views, ``server``, ``eavesdropper``, ``client:<id>`` per sampled client, and ``public``.

    The standard rules (``plain``'s views), which the keyword arguments adjust:

    - ``server``: both global models, the ``wire`` plus ``server_received``, the
      ``participants``, the round's ``public`` plus ``server_public``, and ``server_own``.
    - ``eavesdropper``: both global models, the ``wire``, the ``participants``; no
      public parameters.
    - ``client:<id>``: the model it was sent; its own ``"update"`` and
      ``"data_indices"`` plus ``client_own(id)``; ``client_received(id)``. A client that
      *finished* the round (it is in ``finished`` and the round produced a model) also
      gets the new model, the ``participants`` (unless ``clients_told_participants`` is
      false) and the round's ``public`` plus ``finished_public``; one that did not
      keeps the public parameters it was told at the start, ``context.public``.
    - ``public``: in the final round only, the released model (``params_before`` when
      the round aborted: the model is then unchanged).

    ``models`` says who ever holds a global model in the clear:

    - ``"clear"``: both models cross the wire in the clear (``plain``, ``dp``, ``secagg``).
    - ``"clients"``: only clients decrypt the models, so the server and the
      eavesdropper see neither (``he``).
    - ``"final"``: nothing but the released model is ever opened (MPC training): no
      observer sees ``params_before``, every observer sees ``params_after`` in the final
      round only, no client holds an ``"update"``, and every observer, finished or not,
      is told ``public``.

    Args:
        context: the round.
        params_after: the new global model ``[P]``, or ``None`` if the round aborted.
        participants: the clients each observer is told took part (the survivors).
        public: the round's public parameters, as told at the end of the round.
        wire: what crossed the wire, keyed as in ``leakage.views.RECEIVED_KEYS``.
        server_received: what the server alone holds besides the wire (a decoded aggregate).
        server_public: public values the server alone learns (a decoded total weight).
        server_own: what the server itself keeps (an MPC party's model share).
        client_received: what client ``id`` received, for every sampled client.
        client_own: what client ``id`` holds besides its update and data.
        finished: the clients that stayed to the end; default ``participants``.
        finished_public: public values only the finishing clients learn.
        clients_told_participants: whether finishing clients learn who took part.
        models: who holds the global models, as above.

    Raises:
        ValueError: ``models`` is unknown, or a key is not declared in ``leakage.views``.

    >>> import torch
    >>> context = RoundContext(
    ...     round_index=0, is_final_round=True, params_before=torch.zeros(2), client_ids=(0, 1),
    ...     updates=torch.eye(2), weights=torch.ones(2), dropped=frozenset({1}), server_lr=1.0,
    ...     public={"lr": 0.1}, client_data={0: torch.tensor([0]), 1: torch.tensor([1])})
    >>> views = observer_views(context, torch.ones(2), participants=(0,), public={"lr": 0.1},
    ...                        wire={"update:client:0": torch.tensor([1.0, 0.0])})
    >>> sorted(views), views["client:1"].params_after is None
    (['client:0', 'client:1', 'eavesdropper', 'public', 'server'], True)
    """
    require_choice("models", models, MODEL_DISCLOSURES)
    told = frozenset(participants)
    done = told if finished is None else frozenset(finished)
    if params_after is None:
        done = frozenset()
    sealed = models == "final"
    # what the server and the eavesdropper hold; under "final", everyone's only model
    wire_before = context.params_before if models == "clear" else None
    if models == "clear" or (sealed and context.is_final_round):
        wire_after = params_after
    else:
        wire_after = None

    views = {
        SERVER: RoundView(
            round_index=context.round_index,
            observer=SERVER,
            params_before=wire_before,
            params_after=wire_after,
            received={**wire, **server_received},
            own=dict(server_own),
            participants=told,
            public={**public, **server_public},
        ),
        EAVESDROPPER: RoundView(
            round_index=context.round_index,
            observer=EAVESDROPPER,
            params_before=wire_before,
            params_after=wire_after,
            received=dict(wire),
            participants=told,
            public=dict(public) if sealed else {},
        ),
    }
    for client_id in context.client_ids:
        has_finished = client_id in done
        own: dict[str, Tensor] = {} if sealed else {"update": context.updates[context.row(client_id)]}
        own["data_indices"] = context.client_data[client_id]
        if client_own is not None:
            own.update(client_own(client_id))
        if sealed:  # every party knows the protocol's parameters; nothing else is opened
            client_public, client_after = dict(public), wire_after
        elif has_finished:
            client_public, client_after = {**public, **finished_public}, params_after
        else:  # it left before the end: it keeps what it was told when the round began
            client_public, client_after = dict(context.public), None
        views[client_observer(client_id)] = RoundView(
            round_index=context.round_index,
            observer=client_observer(client_id),
            params_before=None if sealed else context.params_before,
            params_after=client_after,
            received={} if client_received is None else dict(client_received(client_id)),
            own=own,
            participants=told if has_finished and clients_told_participants else frozenset(),
            public=client_public,
        )
    if context.is_final_round:
        released = context.params_before if params_after is None else params_after
        views[PUBLIC] = released_model_view(context.round_index, released)
    return views
