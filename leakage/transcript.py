"""The transcript of a simulation: per-round records, observer views and ground truth."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from leakage.models import ParameterLayout, create_model, load_flat_parameters
from leakage.views import RoundView

__all__ = ["TRANSCRIPT_FORMAT", "GroundTruth", "RoundRecord", "RoundTruth", "Transcript"]

TRANSCRIPT_FORMAT = 1


@dataclass(frozen=True)
class RoundRecord:
    """One round as the protocol ran it.

    Attributes:
        round_index: 0-based round number.
        params_before, params_after: global model before and after the round, flat ``[P]``.
        sampled: clients selected for the round, sorted.
        survivors: clients whose update entered the aggregate, sorted.
        scheme: registry name of the aggregation scheme.
        public: the round's public parameters (lr, local steps, batch size, weights...).
        views: one view per observer that saw anything this round.
        metrics: simulation diagnostics (mean local training loss), not seen by observers.
    """

    round_index: int
    params_before: Tensor
    params_after: Tensor
    sampled: tuple[int, ...]
    survivors: tuple[int, ...]
    scheme: str
    public: Mapping[str, object]
    views: Mapping[str, RoundView]
    metrics: Mapping[str, float] = field(default_factory=dict)

    @property
    def dropped(self) -> tuple[int, ...]:
        """Sampled clients whose update never arrived."""
        survivors = set(self.survivors)
        return tuple(c for c in self.sampled if c not in survivors)


@dataclass(frozen=True)
class RoundTruth:
    """Ground truth of one round, for scoring code only.

    Attributes:
        client_ids: every sampled client, in row order of ``updates``.
        updates: ``[C, P]`` true local updates (local model minus global model),
            including those of clients that dropped before their upload arrived.
        weights: ``[C]`` aggregation weights (sample counts) of those clients.
        sample_order: per client, the dataset indices it trained on this round in the
            order used; consecutive chunks of ``batch_size`` form its batches.
    """

    round_index: int
    client_ids: tuple[int, ...]
    updates: Tensor
    weights: Tensor
    sample_order: Mapping[int, Tensor]

    def update_of(self, client_id: int) -> Tensor:
        """Return the true update ``[P]`` of ``client_id`` in this round."""
        return self.updates[self.client_ids.index(client_id)]


@dataclass(frozen=True)
class GroundTruth:
    """Everything an attack must never see: partitions, true updates, property labels.

    Attributes:
        partition: dataset indices held by each client (int64 tensors).
        rounds: per-round truth, aligned with ``Transcript.rounds``.
        properties: per-sample boolean property flags of the dataset.
    """

    partition: tuple[Tensor, ...]
    rounds: tuple[RoundTruth, ...]
    properties: Mapping[str, Tensor] = field(default_factory=dict)

    def client_property_fraction(self, name: str, client_id: int) -> float:
        """Return the fraction of ``client_id``'s samples that carry property ``name``."""
        flags = self.properties[name][self.partition[client_id]]
        return float(flags.float().mean()) if len(flags) else 0.0


@dataclass(frozen=True)
class Transcript:
    """What a simulation produced: settings, per-round records with views, and truth.

    Attributes:
        settings: the resolved simulation settings as plain data.
        layout: names and shapes of the model parameters in the flat vectors.
        initial_params: global model before round 0, flat ``[P]``.
        rounds: one record per round.
        truth: ground truth, kept apart from the views.
    """

    settings: Mapping[str, Any]
    layout: ParameterLayout
    initial_params: Tensor
    rounds: tuple[RoundRecord, ...]
    truth: GroundTruth

    @property
    def final_params(self) -> Tensor:
        """The released final model, flat ``[P]``."""
        return self.rounds[-1].params_after if self.rounds else self.initial_params

    def views_of(self, observer: str) -> list[RoundView]:
        """Return every view ``observer`` has, in round order (rounds it saw nothing are skipped)."""
        return [record.views[observer] for record in self.rounds if observer in record.views]

    def observers(self) -> list[str]:
        """Return every observer name that saw something in any round, sorted."""
        return sorted({name for record in self.rounds for name in record.views})

    def build_model(self, params: Tensor | None = None) -> nn.Module:
        """Return a fresh model of the simulated architecture holding ``params``.

        Args:
            params: a flat ``[P]`` vector; the final global model when ``None``.
        """
        settings = self.settings
        model = create_model(
            str(settings["model"]),
            input_shape=tuple(settings["input_shape"]),
            num_classes=int(settings["num_classes"]),
            generator=torch.Generator().manual_seed(0),
            **dict(settings.get("model_options", {})),
        )
        return load_flat_parameters(model, self.final_params if params is None else params)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the transcript to ``path`` (a ``torch.save`` file of plain data), atomically."""
        import io

        from leakage._transcript_io import transcript_to_data
        from leakage.files import write_atomically

        buffer = io.BytesIO()
        torch.save(transcript_to_data(self), buffer)
        write_atomically(path, buffer.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Transcript:
        """Read a transcript written by :meth:`save`, with ``weights_only=True`` loading."""
        from leakage._transcript_io import transcript_from_data

        data = torch.load(path, map_location="cpu", weights_only=True)
        return transcript_from_data(data)
