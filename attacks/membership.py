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
from leakage.views import RoundView

__all__ = ["LossThresholdAttack", "MembershipAttack", "MembershipScores"]


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

    def __init__(self, *, loss: str = "cross_entropy") -> None:
        self.loss = require_choice("loss", loss, LOSSES)

    @classmethod
    def runs_as(cls, role: ViewerRole) -> bool:
        """Every observer holds at least the released model."""
        return True

    def _run(
        self, history: Sequence[RoundView], knowledge: Knowledge, *, client: int | None, generator: torch.Generator
    ) -> MembershipScores:
        model, view, source = self._closest_model(history, client)
        assert knowledge.candidates is not None
        layout = ParameterLayout.of(knowledge.model)
        # inference as the model's users run it: evaluation mode, with the buffers of the model read
        net = copy.deepcopy(knowledge.model).eval()
        buffers = view.own.get("buffers") if source == "local" else view.buffers_after
        if buffers is not None and buffers.numel():
            load_flat_buffers(net, buffers)
        per_record = make_loss(net, self.loss)  # type: ignore[arg-type]
        params = layout.unflatten(model.to(torch.float32))
        candidates = knowledge.candidates

        def record_loss(inputs: Tensor, target: Tensor) -> Tensor:
            return per_record(params, inputs.unsqueeze(0), target.unsqueeze(0))

        with torch.no_grad():
            losses = torch.func.vmap(record_loss)(candidates.inputs, candidates.targets)
        return MembershipScores(self.name, view.observer, -losses.double(), view.round_index,
                                details={"local_model": float(source == "local")})

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
