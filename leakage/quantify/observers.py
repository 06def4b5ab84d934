"""The observers of a spec and the views each one really holds.

A spec names observer kinds: ``server``, ``participant`` (the lowest-numbered client
other than the target, alone), ``coalition`` (every client but the target, pooling
their views), ``eavesdropper`` and ``public`` (the released model only). Attacks declare
the role they run as (``client``, ``server``, ``public``); :data:`ROLES` maps one to the
other, so scoring asks each attack whether it runs as an observer instead of keeping a
table of attack names per observer.
"""

from __future__ import annotations

from collections.abc import Mapping

from attacks import ViewerRole
from leakage.quantify.spec import ObserverKind
from leakage.transcript import Transcript
from leakage.views import EAVESDROPPER, PUBLIC, SERVER, RoundView, client_observer

__all__ = ["ROLES", "observer_views"]

#: The role each observer kind plays towards an attack.
ROLES: Mapping[str, ViewerRole] = {
    "server": "server",
    "eavesdropper": "server",
    "participant": "client",
    "coalition": "client",
    "public": "public",
    "malicious_server": "server",
}


def observer_views(transcript: Transcript, kind: ObserverKind | str, target: int) -> tuple[str, list[RoundView]]:
    """Return the observer's name and every view it holds, for an observer kind of the spec.

    ``participant`` is the lowest-numbered client other than ``target`` that holds a
    view (a recording holds the views of its recorded participants only); ``coalition``
    is every client but ``target``, pooling their views.

    >>> from leakage import simulate
    >>> observer_views(simulate(n_clients=3, rounds=1, algorithm="fedsgd"), "participant", 0)[0]
    'client:1'
    """
    n_clients = len(transcript.truth.partition)
    if kind in (SERVER, EAVESDROPPER, PUBLIC):
        return kind, transcript.views_of(kind)
    if kind == "malicious_server":  # its recorded views where a MaliciousServer ran, else the honest server's
        recorded = transcript.views_of("malicious_server")
        return ("malicious_server", recorded) if recorded else (SERVER, transcript.views_of(SERVER))
    others = [client for client in range(n_clients) if client != target]
    if kind == "participant":  # the lowest-numbered other client that saw anything (a recording holds few)
        seen = set(transcript.observers())
        chosen = next((client for client in others if client_observer(client) in seen), others[0])
        return client_observer(chosen), transcript.views_of(client_observer(chosen))
    views = [view for client in others for view in transcript.views_of(client_observer(client))]
    return "+".join(client_observer(c) for c in others) if len(others) <= 3 else f"clients other than {target}", views
