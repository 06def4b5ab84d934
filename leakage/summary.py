"""Per-round summaries of a transcript: what a person reads after a simulation."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from leakage.data import Dataset
from leakage.models import load_flat_parameters
from leakage.transcript import Transcript

__all__ = ["RoundSummary", "accuracy", "summarize_rounds"]


@dataclass(frozen=True)
class RoundSummary:
    """Headline numbers of one round.

    Attributes:
        round_index: 0-based round number.
        sampled: clients selected.
        survivors: clients whose update entered the aggregate.
        train_loss: mean local loss of the survivors before their first step.
        update_norm: L2 norm of the change of the global model.
        accuracy: accuracy of the new global model on ``dataset`` (all samples).
    """

    round_index: int
    sampled: int
    survivors: int
    train_loss: float
    update_norm: float
    accuracy: float

    def to_dict(self) -> dict[str, float | int]:
        """Plain-data form for JSON."""
        return asdict(self)


@torch.no_grad()
def accuracy(model: torch.nn.Module, dataset: Dataset, *, batch_size: int = 1024) -> float:
    """Return the fraction of ``dataset`` samples ``model`` classifies correctly."""
    correct = 0
    for start in range(0, len(dataset), batch_size):
        logits = model(dataset.inputs[start : start + batch_size])
        correct += int((logits.argmax(dim=1) == dataset.targets[start : start + batch_size]).sum())
    return correct / max(1, len(dataset))


def summarize_rounds(transcript: Transcript, dataset: Dataset) -> list[RoundSummary]:
    """Return one :class:`RoundSummary` per round of ``transcript``."""
    model = transcript.build_model()
    summaries = []
    for record in transcript.rounds:
        load_flat_parameters(model, record.params_after)
        summaries.append(
            RoundSummary(
                round_index=record.round_index,
                sampled=len(record.sampled),
                survivors=len(record.survivors),
                train_loss=float(record.metrics.get("train_loss", float("nan"))),
                update_norm=float((record.params_after - record.params_before).norm()),
                accuracy=accuracy(model.eval(), dataset),
            )
        )
    return summaries
