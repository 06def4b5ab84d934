"""Attacks on an observer's history of views, and the update estimates they return.

A :class:`HistoryAttack` runs as one observer (or a coalition of participants) over the
views it collected across rounds, plus an optional :class:`~attacks.base.Knowledge`
record of declared assumptions. It never sees ground truth. Attacks that estimate
client updates return an :class:`UpdateEstimate`, whose single-client rounds turn into
:class:`~attacks.base.Observation` objects that the gradient-inversion attacks take:
that is how a recovered update is chained into a reconstruction of the client's data.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar

import torch
from torch import Tensor

from attacks.base import AttackBase, AttackProduct, Knowledge, Observation, ViewerRole
from leakage.errors import ThreatModelError
from leakage.views import EAVESDROPPER, MALICIOUS_SERVER, SERVER, RoundView

__all__ = [
    "HistoryAttack",
    "ObserverRole",
    "RecoveredUpdate",
    "UpdateEstimate",
    "group_by_round",
]

ObserverRole = Literal["client", "server", "any"]


class _Timed(Protocol):
    @property
    def seconds(self) -> float: ...


ResultT = TypeVar("ResultT", bound=_Timed)


@dataclass(frozen=True)
class RecoveredUpdate:
    """An attack's estimate of the update some clients sent in some rounds.

    Attributes:
        rounds: the rounds the estimate covers (one round for a round difference; a
            window of rounds for disaggregation, which assumes the update constant there).
        params_before: flat ``[P]`` global model at the start of the first covered round.
        update: flat ``[P]`` estimate of the aggregation-weighted mean update of
            ``clients`` (their update itself when there is one client).
        clients: whose update it is; ``None`` when the observer cannot tell.
        count: how many clients' updates the estimate mixes (known or assumed).
        weight: their total aggregation weight, when known or assumed.
    """

    rounds: tuple[int, ...]
    params_before: Tensor
    update: Tensor
    clients: frozenset[int] | None
    count: int
    weight: float | None = None

    @property
    def is_individual(self) -> bool:
        """True when the estimate is one client's own update (whose, if ``clients`` names it)."""
        return self.count == 1

    @property
    def round_index(self) -> int:
        """The first covered round."""
        return self.rounds[0]

    def observation(self) -> Observation:
        """Return the estimate as the :class:`Observation` of one client's upload.

        Raises:
            ThreatModelError: the estimate mixes several clients' updates.
        """
        if not self.is_individual:
            whose = f"{self.count} unknown clients" if self.clients is None else f"clients {sorted(self.clients)}"
            raise ThreatModelError(
                f"round {self.round_index}: the estimate is the mean update of {whose}, not one client's"
            )
        client = None if self.clients is None else next(iter(self.clients))
        return Observation(self.params_before, self.update, "update", client, self.round_index)


@dataclass(frozen=True)
class UpdateEstimate:
    """What an update-recovering attack found: one :class:`RecoveredUpdate` per round or window.

    Attributes:
        attack: the attack's registry name.
        observer: who ran it (``"client:0"``, ``"client:0+client:3"``, ``"server"``).
        recovered: estimates in round order.
        assumptions: facts the attacker assumed rather than saw (named in reports).
        seconds: wall time.
        details: attack-specific numbers (condition numbers, residuals).
    """

    attack: str
    observer: str
    recovered: tuple[RecoveredUpdate, ...]
    assumptions: tuple[str, ...] = ()
    seconds: float = 0.0
    details: Mapping[str, float] = field(default_factory=dict)

    def of_client(self, client: int) -> list[RecoveredUpdate]:
        """Return every individual estimate of ``client``'s update, in round order."""
        return [item for item in self.recovered if item.is_individual and item.clients == frozenset({client})]

    def observation(self, client: int, round_index: int | None = None) -> Observation:
        """Return ``client``'s recovered update (in ``round_index``, else the first) as an observation.

        Raises:
            ThreatModelError: the attack recovered no individual update of ``client`` there.
        """
        for item in self.of_client(client):
            if round_index is None or round_index in item.rounds:
                return item.observation()
        where = "" if round_index is None else f" in round {round_index}"
        raise ThreatModelError(f"{self.attack} recovered no individual update of client {client}{where}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (which clients and rounds, not the vectors)."""
        return {
            "attack": self.attack,
            "observer": self.observer,
            "recovered": [
                {
                    "rounds": list(item.rounds),
                    "clients": None if item.clients is None else sorted(item.clients),
                    "count": item.count,
                    "weight": item.weight,
                    "norm": float(item.update.norm()),
                }
                for item in self.recovered
            ],
            "assumptions": list(self.assumptions),
            "seconds": self.seconds,
            **dict(self.details),
        }


def group_by_round(views: Sequence[RoundView]) -> dict[int, list[RoundView]]:
    """Return the views keyed by round, in round order (a coalition has several per round)."""
    grouped: dict[int, list[RoundView]] = defaultdict(list)
    for view in views:
        grouped[view.round_index].append(view)
    return dict(sorted(grouped.items()))


class HistoryAttack(AttackBase, Generic[ResultT]):
    """An attack on the views one observer (or a coalition of participants) collected.

    Subclasses set ``name``, ``observer`` (in words) and ``role``: ``"client"`` attacks
    take participants' views (several participants' views make a coalition),
    ``"server"`` attacks take the server's or an eavesdropper's, ``"any"`` attacks take
    either (one observer's history, or a coalition of participants). They implement
    :meth:`_run`; the object is unchanged by a run.
    """

    role: ClassVar[ObserverRole] = "client"
    produces: ClassVar[AttackProduct] = "update_estimate"

    @classmethod
    def runs_as(cls, role: ViewerRole) -> bool:
        """Whether this attack runs on the views of an observer in ``role``.

        >>> HistoryAttack.runs_as("client"), HistoryAttack.runs_as("public")
        (True, False)
        """
        if role == "public":
            return False
        return cls.role == "any" or cls.role == role

    def run(
        self,
        views: RoundView | Sequence[RoundView],
        knowledge: Knowledge | None = None,
        *,
        generator: torch.Generator | None = None,
        show_progress: bool = False,
    ) -> ResultT:
        """Attack the history ``views`` under the declared ``knowledge``.

        Args:
            views: the observer's views, any order (one view is a history of one round).
            knowledge: declared assumptions (weights, auxiliary data, architecture).
            generator: randomness (seeded 0 if omitted), so a call repeats exactly.
            show_progress: show a progress bar over rounds or trials.

        Raises:
            ThreatModelError: the views belong to an observer this attack does not run
                as, or they hold nothing the attack can use.
        """
        history = [views] if isinstance(views, RoundView) else list(views)
        if not history or not all(isinstance(view, RoundView) for view in history):
            raise ThreatModelError(f"{self.name} needs at least one RoundView")
        self._check_role(history)
        history.sort(key=lambda view: (view.round_index, view.observer))
        generator = generator if generator is not None else torch.Generator().manual_seed(0)
        started = time.perf_counter()
        result = self._run(history, knowledge, generator=generator, show_progress=show_progress)
        return replace(result, seconds=time.perf_counter() - started)  # type: ignore[type-var]

    def _check_role(self, history: Sequence[RoundView]) -> None:
        observers = sorted({view.observer for view in history})
        if self.role == "client":
            wrong = [name for name in observers if not name.startswith("client:")]
            if wrong:
                raise ThreatModelError(f"{self.name} runs as a participant; got views of {', '.join(wrong)}")
        elif self.role == "server":
            if len(observers) != 1 or observers[0] not in (SERVER, EAVESDROPPER, MALICIOUS_SERVER):
                raise ThreatModelError(
                    f"{self.name} runs as the server or an eavesdropper (or a malicious server); got views of "
                    f"{', '.join(observers)}"
                )
        elif len(observers) > 1 and not all(name.startswith("client:") for name in observers):
            raise ThreatModelError(
                f"{self.name} takes one observer's views or a coalition's; got {', '.join(observers)}"
            )

    @abstractmethod
    def _run(
        self,
        history: Sequence[RoundView],
        knowledge: Knowledge | None,
        *,
        generator: torch.Generator,
        show_progress: bool,
    ) -> ResultT:
        """Run the attack on views sorted by round and observer."""
