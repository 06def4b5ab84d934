"""Turn a recording's checked files into the views and truth the simulator makes (:mod:`leakage.recording.reader`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from leakage.data import Dataset
from leakage.models import BufferLayout, ParameterLayout
from leakage.recording._parsed import Participant, ParticipantRound, ServerRound
from leakage.recording.format import AggregationRule, RecordedTask
from leakage.transcript import GroundTruth, RoundRecord, RoundTruth, Transcript
from leakage.views import PUBLIC, SERVER, RoundView, client_observer, released_model_view, sender_key, upload_key

__all__ = ["build_transcript"]


def build_transcript(
    *,
    folder: Path,
    manifest: Mapping[str, Any],
    task: RecordedTask,
    rule: AggregationRule,
    scheme: str,
    dataset: Dataset,
    model: nn.Module,
    rounds: Sequence[ServerRound],
    clients: Sequence[Participant],
) -> tuple[Transcript, dict[int, str]]:
    """Return the transcript of checked recording files, and the node name of each client id.

    Recorded participants keep their client ids; unrecorded nodes get the next free ids,
    in order of their names.
    """
    ids: dict[str, int] = {client.node: client.client_id for client in clients}
    fresh = max(ids.values(), default=-1) + 1
    for server in rounds:  # unrecorded nodes get the next free ids, in order of their names
        for node in sorted(set(server.sampled) - set(ids)):
            ids[node] = fresh
            fresh += 1
    n_clients = fresh
    node_of = {client_id: node for node, client_id in ids.items()}
    public: dict[str, Any] = rule.to_dict()
    records, truths = [], []
    by_id = {client.client_id: client for client in clients}
    canaries = tuple(sorted(client.client_id for client in clients if client.canary))
    for server in rounds:
        r = server.round_index
        sampled = tuple(sorted(ids[node] for node in server.sampled))
        survivors = tuple(sorted(ids[node] for node in server.participants))
        views: dict[str, RoundView] = {SERVER: _server_view(server, ids, public)}
        for client in clients:
            fit = client.fits.get(r)
            if fit is not None:
                views[client_observer(client.client_id)] = _client_view(client, fit, ids, public)
        if r == len(rounds) - 1:
            views[PUBLIC] = released_model_view(r, server.after.params)
        round_public = dict(public)
        if server.aborted is not None:
            round_public["aborted"] = server.aborted
        records.append(RoundRecord(
            round_index=r, params_before=server.before.params, params_after=server.after.params,
            sampled=sampled, survivors=survivors, scheme=scheme, public=round_public, views=views,
            buffers_before=server.before.buffers, buffers_after=server.after.buffers,
        ))
        recorded = tuple(c for c in canaries if r in by_id[c].fits)
        weights = torch.tensor(  # the weights the server saw; NaN where it saw none
            [(server.weights or {}).get(node_of[c], float("nan")) for c in sampled], dtype=torch.float64
        )
        truths.append(RoundTruth(
            round_index=r,
            client_ids=sampled,
            updates=torch.stack([by_id[c].fits[r].update for c in recorded]) if recorded
            else torch.zeros(0, len(server.before.params)),
            weights=weights,
            sample_order={c: by_id[c].fits[r].order_or(by_id[c].indices) for c in recorded},
            recorded_ids=recorded,
        ))
    partition = tuple(
        by_id[c].indices if c in by_id and by_id[c].canary else torch.zeros(0, dtype=torch.int64)
        for c in range(n_clients)
    )
    settings = {
        "source": "recording",
        "recording": str(folder),
        "name": str(manifest.get("name", "recorded run")),
        "framework": dict(manifest.get("framework") or {}),
        "dataset": task.dataset, "dataset_options": dict(task.dataset_options),
        "model": task.model, "model_options": dict(task.model_options),
        "input_shape": list(dataset.input_shape), "num_classes": dataset.num_classes,
        "scheme": scheme, "n_clients": n_clients, "rounds": len(rounds), "seed": 0,
        "record_truth": "targets", "canaries": list(canaries),
        "normalisation": {"mean": dataset.mean.flatten().tolist(), "std": dataset.std.flatten().tolist()},
        **rule.to_dict(),
    }
    transcript = Transcript(
        settings=settings,
        layout=ParameterLayout.of(model),
        initial_params=rounds[0].before.params,
        rounds=tuple(records),
        truth=GroundTruth(partition=partition, rounds=tuple(truths), record_truth="targets"),
        buffer_layout=BufferLayout.of(model),
        initial_buffers=rounds[0].before.buffers,
    )
    return transcript, node_of

def _server_view(server: ServerRound, ids: Mapping[str, int], public: Mapping[str, Any]) -> RoundView:
    received: dict[str, Tensor | bytes] = {}
    server_public = dict(public)
    for node, upload in server.uploads.items():
        received[upload_key(ids[node])] = upload.params - server.before.params
        if upload.buffers.numel():
            received[sender_key("buffers", ids[node])] = upload.buffers
    if server.aggregate is not None:
        received["aggregate"] = server.aggregate.params - server.before.params
    if server.weights is not None:
        server_public["weights"] = {str(ids[node]): weight for node, weight in server.weights.items()}
        if server.aggregate is not None:
            server_public["total_weight"] = sum(server.weights.values())
    has_buffers = server.before.buffers.numel() > 0
    return RoundView(
        round_index=server.round_index, observer=SERVER,
        params_before=server.before.params, params_after=server.after.params,
        received=received, participants=frozenset(ids[node] for node in server.participants),
        public=server_public,
        buffers_before=server.before.buffers if has_buffers else None,
        buffers_after=server.after.buffers if has_buffers else None,
    )

def _client_view(
    client: Participant, fit: ParticipantRound, ids: Mapping[str, int], public: Mapping[str, Any]
) -> RoundView:
    own: dict[str, Tensor] = {"update": fit.update, "data_indices": client.indices}
    told = dict(public)
    if fit.told_weights is not None:
        told["weights"] = {str(ids[node]): weight for node, weight in fit.told_weights.items()}
    if fit.local.buffers.numel():
        own["buffers"] = fit.local.buffers
    has_buffers = fit.received.buffers.numel() > 0
    return RoundView(
        round_index=fit.round_index, observer=client_observer(client.client_id),
        params_before=fit.received.params,
        params_after=None if fit.released is None else fit.released.params,
        own=own,
        participants=frozenset(ids[node] for node in fit.participants or () if node in ids),
        public=told,
        buffers_before=fit.received.buffers if has_buffers else None,
        buffers_after=fit.released.buffers if has_buffers and fit.released is not None else None,
    )
