"""What one observer really saw in one round, and the names of the observers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from leakage.errors import ThreatModelError

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

    @property
    def server_lr(self) -> float | None:
        """The global step size this observer was told (``public["server_lr"]``), or ``None`` if not disclosed."""
        value = self.public.get("server_lr")
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    def model_change(self) -> Tensor:
        """Return the aggregated update the round applied, ``(params_after - params_before) / server_lr``, float64 ``[P]``.

        The one server-lr policy of the toolkit: the disclosed ``server_lr``, else 1 (the
        FedAvg default). An attack that relies on the fallback names it as an assumption
        (``server_lr is None``).

        Raises:
            ThreatModelError: the observer did not see both global models of the round.

        >>> view = RoundView(0, "server", torch.zeros(2), torch.tensor([1.0, 2.0]), public={"server_lr": 2.0})
        >>> view.model_change()
        tensor([0.5000, 1.0000], dtype=torch.float64)
        """
        if self.params_before is None or self.params_after is None:
            raise ThreatModelError(
                f"observer {self.observer!r} did not see both global models of round {self.round_index}"
            )
        server_lr = self.server_lr
        change = self.params_after.to(torch.float64) - self.params_before.to(torch.float64)
        return change if server_lr is None else change / server_lr

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
