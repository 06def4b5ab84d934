"""The files of a recording once read and checked, before they become a transcript."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from leakage.recording.flat import FlatModel

__all__ = ["Participant", "ParticipantRound", "ServerRound"]


@dataclass(frozen=True)
class ServerRound:
    """One round as the server recorded it (node names as the framework gave them)."""

    round_index: int
    sampled: list[str]
    participants: list[str]
    weights: dict[str, float] | None
    aborted: str | None
    before: FlatModel
    after: FlatModel
    uploads: dict[str, FlatModel]
    aggregate: FlatModel | None


@dataclass(frozen=True)
class ParticipantRound:
    """One round of a recorded participant: what it received, trained, sent and was told."""

    round_index: int
    num_examples: int
    order: Tensor | None
    participants: list[str] | None
    received: FlatModel
    local: FlatModel
    released: FlatModel | None
    told_weights: dict[str, float] | None = None

    @property
    def update(self) -> Tensor:
        """The participant's true update: its local model minus the model it received."""
        return self.local.params - self.received.params

    def order_or(self, indices: Tensor) -> Tensor:
        """The order it used its samples in, or its data indices in order when none was recorded."""
        return indices if self.order is None else self.order


@dataclass(frozen=True)
class Participant:
    """A recorded participant and the rounds it trained in."""

    client_id: int
    node: str
    canary: bool
    indices: Tensor
    fits: dict[int, ParticipantRound]
