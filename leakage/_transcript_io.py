"""Conversion of transcripts to and from plain data that ``torch.load(weights_only=True)`` accepts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from leakage.errors import ConfigError
from leakage.models import BufferLayout, ParameterLayout
from leakage.transcript import (
    TRANSCRIPT_FORMAT,
    GroundTruth,
    RoundRecord,
    RoundTruth,
    Transcript,
)
from leakage.views import RoundView

_BYTES = "__bytes__"
# Format 1 predates record_truth: every sampled client's truth, no recorded_ids.
_READABLE_FORMATS = (1, TRANSCRIPT_FORMAT)


def _encode(value: Any) -> Any:
    """Replace bytes (not allowed by the safe unpickler) by tagged uint8 tensors."""
    if isinstance(value, bytes):
        return {_BYTES: torch.frombuffer(bytearray(value), dtype=torch.uint8)}
    if isinstance(value, Mapping):
        return {key: _encode(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(item) for item in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {_BYTES}:
            return value[_BYTES].numpy().tobytes()
        return {key: _decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode(item) for item in value]
    return value


def transcript_to_data(transcript: Transcript) -> dict[str, Any]:
    rounds = [
        {
            "round_index": r.round_index,
            "params_before": r.params_before,
            "params_after": r.params_after,
            "sampled": list(r.sampled),
            "survivors": list(r.survivors),
            "scheme": r.scheme,
            "public": dict(r.public),
            "views": {name: view.to_dict() for name, view in r.views.items()},
            "metrics": dict(r.metrics),
            "buffers_before": r.buffers_before,
            "buffers_after": r.buffers_after,
        }
        for r in transcript.rounds
    ]
    truth = transcript.truth
    encoded: dict[str, Any] = _encode(
        {
            "format": TRANSCRIPT_FORMAT,
            "settings": dict(transcript.settings),
            "layout": transcript.layout.to_dict(),
            "initial_params": transcript.initial_params,
            "buffer_layout": transcript.buffer_layout.to_dict(),
            "initial_buffers": transcript.initial_buffers,
            "rounds": rounds,
            "truth": {
                "partition": list(truth.partition),
                "properties": dict(truth.properties),
                "record_truth": truth.record_truth,
                "rounds": [
                    {
                        "round_index": t.round_index,
                        "client_ids": list(t.client_ids),
                        "updates": t.updates,
                        "weights": t.weights,
                        "sample_order": {str(c): order for c, order in t.sample_order.items()},
                        "recorded_ids": list(t.recorded_ids),
                    }
                    for t in truth.rounds
                ],
            },
        }
    )
    return encoded


def transcript_from_data(data: Mapping[str, Any]) -> Transcript:
    data = _decode(data)
    if data.get("format") not in _READABLE_FORMATS:
        raise ConfigError(
            f"transcript format must be one of {', '.join(map(str, _READABLE_FORMATS))}, got {data.get('format')!r}"
        )
    rounds = tuple(
        RoundRecord(
            round_index=int(r["round_index"]),
            params_before=r["params_before"],
            params_after=r["params_after"],
            sampled=tuple(int(c) for c in r["sampled"]),
            survivors=tuple(int(c) for c in r["survivors"]),
            scheme=str(r["scheme"]),
            public=r["public"],
            views={name: RoundView.from_dict(view) for name, view in r["views"].items()},
            metrics=r["metrics"],
            buffers_before=r.get("buffers_before", torch.zeros(0)),
            buffers_after=r.get("buffers_after", torch.zeros(0)),
        )
        for r in data["rounds"]
    )
    truth_data = data["truth"]
    truth = GroundTruth(
        partition=tuple(truth_data["partition"]),
        properties=truth_data["properties"],
        rounds=tuple(
            RoundTruth(
                round_index=int(t["round_index"]),
                client_ids=tuple(int(c) for c in t["client_ids"]),
                updates=t["updates"],
                weights=t["weights"],
                sample_order={int(c): order for c, order in t["sample_order"].items()},
                # format 1 kept every sampled client's truth
                recorded_ids=tuple(int(c) for c in t.get("recorded_ids", t["client_ids"])),
            )
            for t in truth_data["rounds"]
        ),
        record_truth=truth_data.get("record_truth", "all"),
    )
    return Transcript(
        settings=data["settings"],
        layout=ParameterLayout.from_dict(data["layout"]),
        initial_params=data["initial_params"],
        rounds=rounds,
        truth=truth,
        buffer_layout=BufferLayout.from_dict(data["buffer_layout"]) if "buffer_layout" in data else BufferLayout(),
        initial_buffers=data.get("initial_buffers", torch.zeros(0)),
    )
