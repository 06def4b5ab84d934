"""Write a simulated transcript as a recording: the same files a framework bridge writes.

It turns a simulation into what a real run would have left on disk, so the recording
path (``leakage score --recording``) can be checked against the simulator on the same
run, and so a recording can be made without any framework.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from leakage.errors import ConfigError
from leakage.models import load_flat_buffers, load_flat_parameters
from leakage.recording.format import AggregationRule, RecordedTask
from leakage.recording.writer import ClientRecorder, ServerRecorder
from leakage.transcript import Transcript
from leakage.views import SERVER, client_observer, parse_received_key

__all__ = ["EXPORTABLE_SCHEMES", "record_transcript"]

#: The schemes whose server view a recording holds: uploads in the clear, or the decoded aggregate.
EXPORTABLE_SCHEMES: tuple[str, ...] = ("plain", "secagg", "secagg+")


def record_transcript(
    transcript: Transcript,
    folder: str | os.PathLike[str],
    *,
    canaries: Sequence[int] = (0,),
    recorded: Sequence[int] | None = None,
    name: str = "exported simulation",
    overwrite: bool = False,
    held_out: Sequence[int] | None = None,
) -> Path:
    """Write ``transcript`` as a recording in ``folder`` and return the folder.

    Args:
        transcript: a simulation of a registered dataset and model (or an import path)
            under ``plain``, ``secagg`` or ``secagg+``.
        folder: where the recording goes.
        canaries: clients whose truth the recording keeps (their data is the auditor's);
            the transcript must hold their truth.
        recorded: clients whose view is recorded; every client with a view if ``None``
            (canaries are always recorded).
        name: the run's name in reports.
        overwrite: replace a recording already in ``folder``.
        held_out: dataset records no client trained on, for membership inference.

    Raises:
        ConfigError: the scheme or model cannot be recorded, or a canary's truth is missing.
    """
    settings = transcript.settings
    schemes = sorted({record.scheme for record in transcript.rounds})
    if any(scheme not in EXPORTABLE_SCHEMES for scheme in schemes) or len(schemes) != 1:
        raise ConfigError(f"scheme must be one of {', '.join(EXPORTABLE_SCHEMES)} to be recorded, got {schemes}")
    if str(settings["model"]).startswith("<"):
        raise ConfigError(f"model {settings['model']!r} was a Python object; a recording names its model")
    task = RecordedTask(
        dataset=str(settings["dataset"]), model=str(settings["model"]),
        dataset_options=dict(settings.get("dataset_options", {})),
        model_options=dict(settings.get("model_options", {})),
    )
    rule = AggregationRule(
        algorithm=settings["algorithm"], lr=float(settings["lr"]), local_epochs=int(settings["local_epochs"]),
        batch_size=settings["batch_size"],
        weighting=transcript.rounds[0].public.get("weighting", "sample_count"),  # type: ignore[arg-type]
        server_lr=float(settings["server_lr"]), loss=settings.get("loss", "cross_entropy"),
    )
    model = transcript.build_model()

    def state(params: Tensor, buffers: Tensor | None) -> dict[str, Tensor]:
        load_flat_parameters(model, params.to(torch.float32))
        if buffers is not None and buffers.numel():
            load_flat_buffers(model, buffers)
        return {key: value.clone() for key, value in model.state_dict().items()}

    server = ServerRecorder(
        folder, task=task, rule=rule, scheme=schemes[0], name=name, overwrite=overwrite, held_out=held_out
    )
    for record in transcript.rounds:
        view = record.views[SERVER]
        before = state(record.params_before, record.buffers_before)
        uploads, aggregate = {}, None
        for key, message in view.received.items():
            parsed = parse_received_key(key)
            if parsed.kind == "update" and parsed.sender is not None and isinstance(message, Tensor):
                buffers = view.received.get(f"buffers:{client_observer(parsed.sender)}")
                uploads[parsed.sender] = state(
                    record.params_before + message, buffers if isinstance(buffers, Tensor) else None
                )
        decoded = view.received.get("aggregate")
        if isinstance(decoded, Tensor):
            aggregate = state(record.params_before + decoded.to(torch.float32), record.buffers_after)
        weights = view.public.get("weights")
        server.record_round(
            record.round_index, before=before, after=state(record.params_after, record.buffers_after),
            sampled=list(record.sampled), participants=list(record.survivors),
            weights={int(c): float(w) for c, w in weights.items()} if isinstance(weights, dict) else None,
            uploads=uploads or None, aggregate=aggregate, aborted=record.public.get("aborted"),  # type: ignore[arg-type]
        )
    holders = {int(name.partition(":")[2]) for name in transcript.observers() if name.startswith("client:")}
    chosen = sorted(set(holders if recorded is None else recorded) | set(canaries))
    truth_rounds = {truth.round_index: truth for truth in transcript.truth.rounds}
    for client in chosen:
        views = transcript.views_of(client_observer(client))
        indices = next((v.own["data_indices"] for v in views if "data_indices" in v.own), None)
        if indices is None:
            raise ConfigError(f"client {client} holds no view with its data indices; it cannot be recorded")
        recorder = ClientRecorder(folder, client_id=client, data_indices=indices, canary=client in canaries)
        for view in views:
            update = view.own.get("update")
            if update is None or view.params_before is None:
                continue
            truth = truth_rounds[view.round_index]
            order = None
            if client in canaries:
                if not truth.is_recorded(client):
                    raise ConfigError(f"canary {client}'s truth of round {view.round_index} was not kept")
                order = truth.sample_order[client].tolist()
            local_buffers = view.own.get("buffers")
            recorder.record_fit(
                view.round_index,
                received=state(view.params_before, view.buffers_before),
                local=state(view.params_before + update, local_buffers),
                num_examples=_weight(view.own["data_indices"], rule),
                sample_order=order,
                participants=sorted(view.participants) or None,
            )
            if view.params_after is not None:
                told = view.public.get("weights")  # plain tells the finishing clients everyone's weights
                recorder.record_release(
                    view.round_index, state(view.params_after, view.buffers_after),
                    weights={int(c): float(w) for c, w in told.items()} if isinstance(told, dict) else None,
                )
    return Path(folder)


def _weight(indices: Tensor, rule: AggregationRule) -> int:
    """The sample count a client reports: its FedSGD batch, or all its data under FedAvg."""
    count = int(indices.numel())
    if rule.algorithm == "fedsgd" and rule.batch_size is not None:
        return min(rule.batch_size, count)
    return count
