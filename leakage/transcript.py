"""The transcript of a simulation: per-round records, observer views and ground truth."""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal, get_args

import torch
from torch import Tensor, nn

from leakage.errors import ConfigError
from leakage.models import BufferLayout, ParameterLayout, create_model, load_flat_buffers, load_flat_parameters
from leakage.views import RoundView

__all__ = [
    "RECORD_TRUTH",
    "TRANSCRIPT_FORMAT",
    "GroundTruth",
    "RecordTruth",
    "RoundRecord",
    "RoundTruth",
    "Transcript",
    "TruthKept",
]

# 2: each round's truth names the clients it recorded (record_truth); format 1 files still load.
TRANSCRIPT_FORMAT = 2
RecordTruth = Literal["all", "targets"]
RECORD_TRUTH: tuple[str, ...] = get_args(RecordTruth)


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
        buffers_before, buffers_after: the global model's buffers (batch-norm running
            statistics) before and after the round, flat float32 ``[B]``; empty for a
            model without buffers.
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
    buffers_before: Tensor = field(default_factory=lambda: torch.zeros(0))
    buffers_after: Tensor = field(default_factory=lambda: torch.zeros(0))

    @property
    def dropped(self) -> tuple[int, ...]:
        """Sampled clients whose update never arrived."""
        survivors = set(self.survivors)
        return tuple(c for c in self.sampled if c not in survivors)


@dataclass(frozen=True)
class RoundTruth:
    """Ground truth of one round, for scoring code only.

    A simulation keeps the truth of every sampled client (``record_truth="all"``) or
    only of the clients scoring reads (``"targets"``): then ``updates`` and
    ``sample_order`` hold those clients alone, and asking for another one raises.

    Attributes:
        client_ids: every sampled client, in row order of ``weights``.
        updates: ``[K, P]`` true local updates (local model minus global model) of the
            ``recorded_ids``, in that order, including those of clients that dropped
            before their upload arrived. With every client recorded, ``K = C`` and the
            rows follow ``client_ids``.
        weights: ``[C]`` aggregation weights (sample counts) of ``client_ids``.
        sample_order: per recorded client, the dataset indices it trained on this round
            in the order used; consecutive chunks of ``batch_size`` form its batches.
        recorded_ids: the sampled clients whose truth was kept, in row order of ``updates``.
    """

    round_index: int
    client_ids: tuple[int, ...]
    updates: Tensor
    weights: Tensor
    sample_order: Mapping[int, Tensor]
    recorded_ids: tuple[int, ...]

    def is_recorded(self, client_id: int) -> bool:
        """Return whether this round kept ``client_id``'s update and sample order."""
        return client_id in self._recorded_rows

    def update_of(self, client_id: int) -> Tensor:
        """Return the true update ``[P]`` of ``client_id`` in this round.

        Raises:
            ValueError: ``client_id`` was not sampled this round, or its truth was not
                recorded (``record_truth="targets"`` without it among ``truth_clients``).
        """
        row = self._recorded_rows.get(client_id)
        if row is not None:
            return self.updates[row]
        if client_id not in self.client_ids:
            raise ValueError(f"client {client_id} was not sampled in round {self.round_index}")
        kept = ", ".join(map(str, self.recorded_ids)) or "none"
        raise ValueError(
            f"the ground truth of client {client_id} in round {self.round_index} was not recorded "
            f"(record_truth='targets' kept clients: {kept}); simulate with record_truth='all' "
            f"or add {client_id} to truth_clients"
        )

    @cached_property
    def _recorded_rows(self) -> dict[int, int]:
        return {client: row for row, client in enumerate(self.recorded_ids)}


@dataclass(frozen=True)
class TruthKept:
    """How much ground truth a transcript holds (the memory that scoring's truth costs).

    Attributes:
        record_truth: ``"all"`` or ``"targets"``, as simulated.
        clients: the clients whose truth was kept in at least one round, sorted.
        updates_kept: true updates ``[P]`` held, over all rounds.
        updates_sampled: updates the sampled clients computed, over all rounds.
        update_bytes: bytes of the kept updates.
    """

    record_truth: RecordTruth
    clients: tuple[int, ...]
    updates_kept: int
    updates_sampled: int
    update_bytes: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data."""
        return {
            "record_truth": self.record_truth,
            "clients": list(self.clients),
            "updates_kept": self.updates_kept,
            "updates_sampled": self.updates_sampled,
            "update_bytes": self.update_bytes,
        }


@dataclass(frozen=True)
class GroundTruth:
    """Everything an attack must never see: partitions, true updates, property labels.

    Attributes:
        partition: dataset indices held by each client (int64 tensors).
        rounds: per-round truth, aligned with ``Transcript.rounds``.
        properties: per-sample boolean property flags of the dataset.
        record_truth: ``"all"`` (every sampled client's update and sample order) or
            ``"targets"`` (only the clients scoring reads; see :class:`RoundTruth`).
    """

    partition: tuple[Tensor, ...]
    rounds: tuple[RoundTruth, ...]
    properties: Mapping[str, Tensor] = field(default_factory=dict)
    record_truth: RecordTruth = "all"

    def client_property_fraction(self, name: str, client_id: int) -> float:
        """Return the fraction of ``client_id``'s samples that carry property ``name``."""
        flags = self.properties[name][self.partition[client_id]]
        return float(flags.float().mean()) if len(flags) else 0.0

    def kept(self) -> TruthKept:
        """Return how much per-round truth this transcript holds, for reports."""
        return TruthKept(
            record_truth=self.record_truth,
            clients=tuple(sorted({c for r in self.rounds for c in r.recorded_ids})),
            updates_kept=sum(len(r.recorded_ids) for r in self.rounds),
            updates_sampled=sum(len(r.client_ids) for r in self.rounds),
            update_bytes=sum(r.updates.numel() * r.updates.element_size() for r in self.rounds),
        )


@dataclass(frozen=True)
class Transcript:
    """What a simulation produced: settings, per-round records with views, and truth.

    Attributes:
        settings: the resolved simulation settings as plain data.
        layout: names and shapes of the model parameters in the flat vectors.
        initial_params: global model before round 0, flat ``[P]``.
        rounds: one record per round.
        truth: ground truth, kept apart from the views.
        buffer_layout: names, shapes and dtypes of the model's buffers in the flat
            buffer vectors (empty for a model without buffers).
        initial_buffers: the global model's buffers before round 0, flat ``[B]``.
        architecture: the user's model object when the simulation was given one (not
            saved with the transcript); :meth:`build_model` copies it.
    """

    settings: Mapping[str, Any]
    layout: ParameterLayout
    initial_params: Tensor
    rounds: tuple[RoundRecord, ...]
    truth: GroundTruth
    buffer_layout: BufferLayout = field(default_factory=BufferLayout)
    initial_buffers: Tensor = field(default_factory=lambda: torch.zeros(0))
    architecture: nn.Module | None = field(default=None, repr=False, compare=False)

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

    @property
    def final_buffers(self) -> Tensor:
        """The released final model's buffers, flat ``[B]`` (empty without buffers)."""
        return self.rounds[-1].buffers_after if self.rounds else self.initial_buffers

    def build_model(self, params: Tensor | None = None, buffers: Tensor | None = None) -> nn.Module:
        """Return a fresh model of the simulated architecture holding ``params`` and ``buffers``.

        Args:
            params: a flat ``[P]`` vector; the final global model when ``None``.
            buffers: a flat ``[B]`` buffer vector; when ``None``, the final model's
                buffers with the final parameters, else the initial ones.

        Raises:
            ConfigError: the simulation was given a model object, which a loaded
                transcript does not hold (an import path or registered name rebuilds).
        """
        settings = self.settings
        if self.architecture is not None:
            model = copy.deepcopy(self.architecture)
        else:
            name = str(settings["model"])
            if name.startswith("<"):
                raise ConfigError(f"this transcript's model {name!r} was a Python object; it cannot be rebuilt")
            model = create_model(
                name,
                input_shape=tuple(settings["input_shape"]),
                num_classes=int(settings["num_classes"]),
                generator=torch.Generator().manual_seed(0),
                **dict(settings.get("model_options", {})),
            )
        if buffers is None:
            buffers = self.final_buffers if params is None else self.initial_buffers
        if buffers.numel():
            load_flat_buffers(model, buffers)
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
    def from_recording(cls, path: str | os.PathLike[str]) -> Transcript:
        """Read a recording of a real run (:mod:`leakage.recording`) as the views the simulator makes.

        Ground truth is kept for the recording's canary clients only.

        Raises:
            ConfigError: the recording is missing, malformed or inconsistent; the message
                names the file and the field.
        """
        from leakage.recording import read_recording

        return read_recording(path).transcript

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Transcript:
        """Read a transcript written by :meth:`save`, with ``weights_only=True`` loading."""
        from leakage._transcript_io import transcript_from_data

        data = torch.load(path, map_location="cpu", weights_only=True)
        return transcript_from_data(data)
