"""Membership inference on what an observer holds: which candidate records did the target train on?

A membership attack scores candidate records (``knowledge.candidates``, known to the
attacker; whether each is a member is not) from an observer's views and returns one
score per record, higher meaning "more likely a training member". Scoring compares the
scores with the truth by AUC.

``loss_threshold`` (Yeom, Giacomelli, Fredrikson, Jha, "Privacy Risk in Machine
Learning: Analyzing the Connection to Overfitting", CSF 2018): a model fits its training
records better than unseen ones, so the score of record ``(x, y)`` is its negative loss
``-l(f_theta(x), y)`` under the model closest to the target's data that the observer
holds: the target's latest local model where a view holds its upload in the clear
(``theta = global + update``, the server under ``plain``), else the latest global model
it saw (the released model for the public).

Across rounds (``rounds = "mean"`` or ``"max"``, here and in :mod:`attacks.lira` and
:mod:`attacks.rmia`): each round's closest model is scored and the scores are averaged
or maximised per record. Where some views hold the target's upload in the clear (the
server under ``plain`` or ``dp`` in the rounds the target took part in), only those
rounds count; otherwise every round's global model does (a participant, an eavesdropper
under secure aggregation).
"""

from __future__ import annotations

import copy
import time
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor

from attacks.base import ATTACKS, AttackBase, AttackProduct, Knowledge, Observation, ViewerRole
from leakage.checks import require_choice
from leakage.errors import ThreatModelError
from leakage.models import ParameterLayout, load_flat_buffers
from leakage.simulation import LOSSES, make_loss
from leakage.views import RoundView, client_observer, sender_key

__all__ = [
    "CALIBRATIONS", "ROUND_COMBINATIONS", "LossThresholdAttack", "MembershipAttack", "MembershipScores",
    "local_buffers", "round_start_model",
]

#: How ``loss_threshold`` scores a record under a model: its negative loss (Yeom et al.), or with
#: ``round_start`` its loss under the round's starting model minus it (how much the round fitted
#: the record), ``auto`` where the observer saw that model.
CALIBRATIONS: tuple[str, ...] = ("none", "auto", "round_start")

#: How a membership attack combines the rounds an observer saw: the latest model closest to
#: the target only, or each round's closest model's scores averaged or maximised per record.
ROUND_COMBINATIONS: tuple[str, ...] = ("latest", "mean", "max")


@dataclass(frozen=True)
class MembershipScores:
    """One membership score per candidate record (higher: more likely a member).

    Attributes:
        attack: the attack's registry name.
        observer: whose views it ran on.
        scores: ``[M]`` float64, in the order of ``knowledge.candidates``.
        round_index: the round whose model was used, if one.
        seconds: wall time.
        details: attack-specific numbers.
    """

    attack: str
    observer: str
    scores: Tensor
    round_index: int | None = None
    seconds: float = 0.0
    details: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the scores as a list)."""
        return {"attack": self.attack, "observer": self.observer, "scores": self.scores.tolist(),
                "round_index": self.round_index, "seconds": self.seconds, **dict(self.details)}


class MembershipAttack(AttackBase):
    """An attack that scores candidate records' membership from one observer's views.

    Subclasses implement :meth:`_run`; ``run`` checks the inputs and times it.
    """

    produces: ClassVar[AttackProduct] = "membership"

    def run(
        self,
        views: RoundView | Sequence[RoundView],
        knowledge: Knowledge,
        *,
        client: int | None = None,
        generator: torch.Generator | None = None,
        show_progress: bool = False,
    ) -> MembershipScores:
        """Score ``knowledge.candidates`` as members of ``client``'s training data (any client's when ``None``).

        Raises:
            ThreatModelError: no views, or no candidates declared.
        """
        history = [views] if isinstance(views, RoundView) else sorted(views, key=lambda v: v.round_index)
        if not history:
            raise ThreatModelError(f"{self.name} needs at least one view")
        if knowledge.candidates is None or len(knowledge.candidates) == 0:
            raise ThreatModelError(f"{self.name} needs knowledge.candidates, the records to score")
        generator = generator if generator is not None else torch.Generator().manual_seed(0)
        started = time.perf_counter()
        result = self._run(history, knowledge, client=client, generator=generator)
        from dataclasses import replace

        return replace(result, seconds=time.perf_counter() - started)

    @abstractmethod
    def _run(
        self, history: Sequence[RoundView], knowledge: Knowledge, *, client: int | None, generator: torch.Generator
    ) -> MembershipScores:
        """Score the candidates from views sorted by round."""


@ATTACKS.register("loss_threshold")
class LossThresholdAttack(MembershipAttack):
    """Score each candidate by its negative loss under the observer's closest model to the target (Yeom et al. 2018).

    >>> from leakage import load_dataset, simulate
    >>> from leakage.models import create_model
    >>> data = load_dataset("digits")
    >>> run = simulate(n_clients=2, rounds=1, algorithm="fedsgd", batch_size=4)
    >>> net = create_model("mlp", input_shape=data.input_shape, num_classes=10, generator=torch.Generator())
    >>> known = Knowledge.from_dataset(data, net, candidates=data.subset(torch.arange(5)))
    >>> LossThresholdAttack().run(run.views_of("public"), known).scores.shape
    torch.Size([5])
    """

    name = "loss_threshold"
    observer = "anyone holding a global model (the public holds the released one)"

    def __init__(self, *, loss: str = "cross_entropy", rounds: str = "latest", calibration: str = "none") -> None:
        self.loss = require_choice("loss", loss, LOSSES)
        self.rounds = require_choice("rounds", rounds, ROUND_COMBINATIONS)
        self.calibration = require_choice("calibration", calibration, CALIBRATIONS)

    @classmethod
    def runs_as(cls, role: ViewerRole) -> bool:
        """Every observer holds at least the released model."""
        return True

    def _run(
        self, history: Sequence[RoundView], knowledge: Knowledge, *, client: int | None, generator: torch.Generator
    ) -> MembershipScores:
        assert knowledge.candidates is not None
        if self.rounds == "latest":
            model, view, source = self._closest_model(history, client)
            scores, calibrated = self._scores(model, view, source, knowledge, client)
            return MembershipScores(self.name, view.observer, scores, view.round_index,
                                    details={"local_model": float(source == "local"), "calibrated": float(calibrated)})
        models = self._models_by_round(history, client)
        scored = [self._scores(m, v, source, knowledge, client) for m, v, source in models]
        per_round = torch.stack([scores for scores, _ in scored])
        scores = per_round.mean(dim=0) if self.rounds == "mean" else per_round.max(dim=0).values
        return MembershipScores(
            self.name, models[-1][1].observer, scores, models[-1][1].round_index,
            details={"rounds": float(len(models)), "local_models": float(sum(s == "local" for _, _, s in models)),
                     "calibrated": float(sum(calibrated for _, calibrated in scored))},
        )

    def _scores(
        self, model: Tensor, view: RoundView, source: str, knowledge: Knowledge, client: int | None
    ) -> tuple[Tensor, bool]:
        """Each candidate's score under one model, and whether it was calibrated by the round's starting model."""
        losses = self._losses(model, view, source, knowledge, client)
        start = round_start_model(view, source, client) if self.calibration != "none" else None
        if start is None:
            if self.calibration == "round_start":
                raise ThreatModelError(f"{self.name} with calibration='round_start' compares each record's loss "
                                       f"with its loss under the model the round began from, which observer "
                                       f"{view.observer!r} did not see in round {view.round_index}")
            return -losses, False
        return self._losses(start, view, "start", knowledge, client) - losses, True

    def _losses(
        self, model: Tensor, view: RoundView, source: str, knowledge: Knowledge, client: int | None
    ) -> Tensor:
        """Each candidate's loss under ``model``, run as its users run it (evaluation mode, its buffers)."""
        assert knowledge.candidates is not None
        layout = ParameterLayout.of(knowledge.model)
        net = copy.deepcopy(knowledge.model).eval()
        buffers = {"local": local_buffers(view, client), "start": view.buffers_before}.get(source, view.buffers_after)
        if buffers is not None and buffers.numel():
            load_flat_buffers(net, buffers)
        per_record = make_loss(net, self.loss)  # type: ignore[arg-type]
        params = layout.unflatten(model.to(torch.float32))
        candidates = knowledge.candidates

        def record_loss(inputs: Tensor, target: Tensor) -> Tensor:
            return per_record(params, inputs.unsqueeze(0), target.unsqueeze(0))

        with torch.no_grad():
            losses: Tensor = torch.func.vmap(record_loss)(candidates.inputs, candidates.targets)
        return losses.double()

    @staticmethod
    def _models_by_round(history: Sequence[RoundView], client: int | None) -> list[tuple[Tensor, RoundView, str]]:
        """Per round the observer saw a model, the closest one to ``client``'s data: its local model where
        the view holds its upload in the clear, else the global model released that round. Where some
        rounds show its local model, only those count: the global model of a round it sat out holds
        its data only as every earlier aggregate does."""
        models = []
        for view in history:
            if client is not None:
                try:
                    upload = Observation.from_view(view, client)
                except ThreatModelError:
                    pass
                else:
                    models.append((upload.params + upload.value.to(upload.params.dtype), view, "local"))
                    continue
            if view.params_after is not None:
                models.append((view.params_after, view, "global"))
        if not models:
            raise ThreatModelError(f"observer {history[0].observer!r} never saw a model")
        local = [model for model in models if model[2] == "local"]
        return local or models

    @staticmethod
    def _closest_model(history: Sequence[RoundView], client: int | None) -> tuple[Tensor, RoundView, str]:
        """The model closest to ``client``'s data the views hold: its latest local model seen in the
        clear (global model plus its plaintext update), else the latest global model."""
        if client is not None:
            for view in reversed(history):
                try:
                    upload = Observation.from_view(view, client)
                except ThreatModelError:
                    continue
                return upload.params + upload.value.to(upload.params.dtype), view, "local"
        seen = [view for view in history if view.params_after is not None]
        if not seen:
            raise ThreatModelError(f"observer {history[0].observer!r} never saw a global model")
        latest = seen[-1]
        assert latest.params_after is not None
        return latest.params_after, latest, "global"


def round_start_model(view: RoundView, source: str, client: int | None) -> Tensor | None:
    """The global model the round of ``view`` began from, as the observer saw it, or ``None``.

    For a ``local`` model (``client``'s upload in the clear) it is the model the upload
    was computed on; for a ``global`` one, ``view.params_before`` (the public has none).
    """
    if source == "local" and client is not None:
        return Observation.from_view(view, client).params
    return view.params_before


def local_buffers(view: RoundView, client: int | None) -> Tensor | None:
    """The buffers ``client`` sent beside the upload this view holds (its own, for the client itself)."""
    if client is None:
        return None
    sent = view.received.get(sender_key("buffers", client))
    if isinstance(sent, Tensor):
        return sent
    own = view.own.get("buffers") if view.observer == client_observer(client) else None
    return own if isinstance(own, Tensor) else None
