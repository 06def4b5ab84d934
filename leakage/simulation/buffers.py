"""Model buffers in a round: how the server aggregates them, and who sees which.

FL frameworks exchange a model's ``state_dict``, so buffers (batch normalisation's
running mean and variance, its batch counter) travel with each client's update and the
server averages them as it averages parameters (Flower's FedAvg over NumPy arrays,
for one). Here:

- **Aggregation.** The global buffers after a round are the mean of the arriving
  clients' buffers after their local training, weighted by sample counts under the
  ``sample_count`` rule and uniformly otherwise (``expected_clients`` divides a sum of
  noisy updates, which would shrink a variance). ``server_lr`` applies to parameters
  only. An aborted round, or one where nobody arrived, keeps the buffers.
- **Views.** Whoever gets a global model gets its buffers with it
  (``RoundView.buffers_before`` / ``buffers_after``). A client's own buffers go with its
  upload: ``own["buffers"]`` for the client that holds its update, and
  ``received["buffers:client:<id>"]`` for every observer that receives
  ``update:client:<id>`` in the clear. Under secure aggregation, homomorphic
  aggregation and MPC no single client's buffers are seen: only the averaged ones, with
  the released model, as the protocol would compute them beside the update (the
  simulator averages them directly instead of running them through the protocol).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
import torch
from torch import Tensor

from leakage.views import RoundView, parse_client_observer, parse_received_key, sender_key

__all__ = ["aggregate_buffers", "views_with_buffers"]


def aggregate_buffers(
    before: Tensor,
    client_buffers: Tensor,
    client_ids: Sequence[int],
    survivors: Sequence[int],
    weights: Tensor,
    *,
    weighting: object,
    aborted: object = None,
) -> Tensor:
    """Return the global buffers ``[B]`` after the round: the weighted mean of the survivors' ``client_buffers``.

    >>> aggregate_buffers(torch.zeros(1), torch.tensor([[1.0], [4.0]]), (0, 1), (0, 1), torch.tensor([1.0, 2.0]),
    ...                   weighting="sample_count")
    tensor([3.])
    """
    if aborted is not None or not survivors:
        return before
    rows = torch.from_numpy(np.searchsorted(np.asarray(client_ids), np.asarray(survivors, dtype=np.int64)))
    chosen = weights[rows].to(torch.float64) if weighting == "sample_count" else torch.ones(len(survivors))
    share = (chosen / chosen.sum()).to(torch.float64)
    mean = (client_buffers[rows].to(torch.float64) * share.unsqueeze(1)).sum(dim=0)
    return mean.to(before.dtype)


def views_with_buffers(
    views: Mapping[str, RoundView],
    client_ids: Sequence[int],
    client_buffers: Tensor,
    before: Tensor,
    after: Tensor,
) -> dict[str, RoundView]:
    """Add the buffers each observer saw to its view (see the module docstring)."""
    rows = {client: row for row, client in enumerate(client_ids)}
    updated = {}
    for name, view in views.items():
        received = dict(view.received)
        for key in view.received:
            parsed = parse_received_key(key)
            if parsed.kind == "update" and parsed.sender in rows:
                received[sender_key("buffers", parsed.sender)] = client_buffers[rows[parsed.sender]]
        own = dict(view.own)
        if "update" in own and name.startswith("client:"):
            client = parse_client_observer(name)
            if client in rows:
                own["buffers"] = client_buffers[rows[client]]
        updated[name] = replace(
            view,
            received=received,
            own=own,
            buffers_before=before if view.params_before is not None else None,
            buffers_after=after if view.params_after is not None else None,
        )
    return updated
