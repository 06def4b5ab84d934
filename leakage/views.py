"""What one observer really saw in one round, and the names of the observers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

__all__ = [
    "EAVESDROPPER",
    "PUBLIC",
    "SERVER",
    "Message",
    "PublicValue",
    "RoundView",
    "client_observer",
    "parse_client_observer",
    "released_model_view",
]

SERVER = "server"
EAVESDROPPER = "eavesdropper"
PUBLIC = "public"

Message = Tensor | bytes
PublicValue = int | float | str | bool | None | list[Any] | dict[str, Any]


def client_observer(client_id: int) -> str:
    """Return the observer name of participant ``client_id``.

    >>> client_observer(7)
    'client:7'
    """
    return f"client:{int(client_id)}"


def parse_client_observer(observer: str) -> int:
    """Return the client id in an observer name like ``"client:7"``.

    Raises:
        ValueError: ``observer`` is not of the form ``client:<id>``.

    >>> parse_client_observer("client:7")
    7
    """
    prefix, _, number = observer.partition(":")
    if prefix != "client" or not number.isdigit():
        raise ValueError(f"observer must look like 'client:<id>', got {observer!r}")
    return int(number)


@dataclass(frozen=True)
class RoundView:
    """What one observer really saw in one round, and nothing more.

    Attributes:
        round_index: 0-based round number.
        observer: ``"server"``, ``"client:<id>"``, ``"eavesdropper"`` or ``"public"``.
        params_before: the global model broadcast at the start of the round (flat
            ``[P]``), or ``None`` if this observer did not receive it.
        params_after: the global model released at the end of the round (flat ``[P]``),
            or ``None`` if this observer did not receive it.
        received: messages exactly as they arrived, keyed by what they are
            (``"update:client:3"``, ``"aggregate"``, ...): plaintext updates, masked
            vectors or ciphertext bytes, depending on the scheme.
        own: what the observer itself holds (a participant's own ``"update"`` ``[P]``
            and ``"data_indices"``); empty for the server, eavesdropper and public.
        participants: client ids whose contribution entered the aggregate, as this
            observer knows them (empty if it cannot know).
        public: public parameters of the round this observer was told (learning
            rate, local steps, batch size, aggregation weights, scheme parameters).
    """

    round_index: int
    observer: str
    params_before: Tensor | None
    params_after: Tensor | None
    received: Mapping[str, Message] = field(default_factory=dict)
    own: Mapping[str, Tensor] = field(default_factory=dict)
    participants: frozenset[int] = frozenset()
    public: Mapping[str, PublicValue] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """Plain-data form (tensors, bytes, lists, dicts) for serialisation."""
        return {
            "round_index": self.round_index,
            "observer": self.observer,
            "params_before": self.params_before,
            "params_after": self.params_after,
            "received": dict(self.received),
            "own": dict(self.own),
            "participants": sorted(self.participants),
            "public": dict(self.public),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RoundView:
        """Inverse of :meth:`to_dict`."""
        return cls(
            round_index=int(data["round_index"]),
            observer=str(data["observer"]),
            params_before=data["params_before"],
            params_after=data["params_after"],
            received=dict(data["received"]),
            own=dict(data["own"]),
            participants=frozenset(int(c) for c in data["participants"]),
            public=dict(data["public"]),
        )


def released_model_view(round_index: int, params_after: Tensor) -> RoundView:
    """Return the ``public`` observer's view: the released final model and nothing else.

    >>> import torch
    >>> released_model_view(4, torch.zeros(2)).observer
    'public'
    """
    return RoundView(round_index=round_index, observer=PUBLIC, params_before=None, params_after=params_after)
