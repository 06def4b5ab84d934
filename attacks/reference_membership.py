"""What the membership attacks calibrated by reference models share: their data, options and signals.

``lira`` (:mod:`attacks.lira`) and ``rmia`` (:mod:`attacks.rmia`) train ``K`` reference
models of the target's architecture on the attacker's auxiliary data
(:mod:`attacks.reference_models`, all ``K`` in one ``vmap`` per step) and compare the
target's behaviour on each candidate with theirs. The target model is the one
:class:`~attacks.membership.LossThresholdAttack` reads: the released model for the
public, the target's local model where a view holds its upload in the clear.

Which records each reference model trains on (:func:`reference_memberships`):
``offline``, a random subset of the auxiliary data only, so every model is OUT for
every candidate; ``online``, models come in pairs that split the candidates into
complementary random halves (plus auxiliary records), so each candidate is IN for
exactly ``K / 2`` of them. The attacker needs ``knowledge.auxiliary`` (records from the
task's distribution that are not the candidates) and the training recipe: the learning
rate (``knowledge.lr`` or the ``lr`` option), epochs and batch size.
"""

from __future__ import annotations

import copy
import time
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal, get_args

import torch
from torch import Tensor

from attacks.base import Knowledge, ViewerRole
from attacks.membership import (
    ROUND_COMBINATIONS,
    LossThresholdAttack,
    MembershipAttack,
    MembershipScores,
    local_buffers,
    round_start_model,
)
from attacks.reference_models import reference_logits, train_reference_models
from leakage.checks import require_choice, require_int, require_optional_int, require_positive_float
from leakage.errors import ConfigError, ThreatModelError
from leakage.models import ParameterLayout, load_flat_buffers
from leakage.simulation import LOSSES, LossName
from leakage.views import RoundView

__all__ = [
    "REFERENCE_MODES", "REFERENCE_STARTS", "ReferenceMembershipAttack", "ReferenceMode", "ReferenceSignals",
    "reference_memberships",
]

ReferenceMode = Literal["offline", "online"]
REFERENCE_MODES: tuple[ReferenceMode, ...] = get_args(ReferenceMode)
#: Where reference models start: fresh initialisations, the round's global model, or the latter where seen.
REFERENCE_STARTS: tuple[str, ...] = ("auto", "scratch", "round")


def reference_memberships(
    num_candidates: int,
    num_auxiliary: int,
    *,
    models: int,
    mode: ReferenceMode,
    records_per_model: int | None,
    generator: torch.Generator,
) -> Tensor:
    """Return which records each reference model trains on, ``[K, M + A]`` bool (candidates first).

    ``offline``: ``records_per_model`` auxiliary records drawn per model (default half of
    them). ``online``: pair ``j`` splits the candidates into random halves, one per
    model, and each model adds ``records_per_model`` minus its half of auxiliary records
    (default half of the auxiliary data).

    Raises:
        ThreatModelError: too few auxiliary records for ``records_per_model``.

    >>> mask = reference_memberships(4, 6, models=2, mode="online", records_per_model=None,
    ...                              generator=torch.Generator())
    >>> mask[:, :4].sum(dim=0).tolist(), mask.sum(dim=1).tolist()
    ([1, 1, 1, 1], [5, 5])
    """
    mask = torch.zeros(models, num_candidates + num_auxiliary, dtype=torch.bool)
    if mode == "online":
        for pair in range(0, models, 2):
            order = torch.randperm(num_candidates, generator=generator)
            mask[pair, order[: num_candidates // 2]] = True
            mask[pair + 1, order[num_candidates // 2 :]] = True
    for model in range(models):
        held = int(mask[model].sum())
        wanted = num_auxiliary // 2 if records_per_model is None else records_per_model - held
        if not (0 if held else 1) <= wanted <= num_auxiliary:
            raise ThreatModelError(
                f"a reference model of {held} candidates would need {wanted} of the {num_auxiliary} auxiliary "
                f"records (records_per_model={records_per_model}): give more knowledge.auxiliary or change "
                "records_per_model"
            )
        chosen = torch.randperm(num_auxiliary, generator=generator)[:wanted]
        mask[model, num_candidates + chosen] = True
    return mask


@dataclass(frozen=True)
class ReferenceSignals:
    """The target's and the reference models' outputs on the candidates, then the auxiliary records.

    Attributes:
        target: ``[M + A, C]`` the target model's logits.
        references: ``[K, M + A, C]`` every reference model's logits.
        is_in: ``[K, M + A]`` whether reference model ``k`` trained on the record.
        labels: ``[M + A]`` the records' labels.
        num_candidates: ``M``; the first ``M`` records are the candidates.
        view: the view whose model is the target's.
        details: numbers for the result (reference models, training seconds...).
    """

    target: Tensor
    references: Tensor
    is_in: Tensor
    labels: Tensor
    num_candidates: int
    view: RoundView
    details: dict[str, float]


@dataclass(frozen=True)
class _Recipe:
    """How the reference models of one target model train: from where, on how many records, how long."""

    start: Tensor | None  # flat parameters every reference model starts from; None: fresh initialisations
    epochs: int
    batch_size: int | None
    records_per_model: int | None


class ReferenceMembershipAttack(MembershipAttack):
    """A membership attack that trains reference models: shared options, checks and signals.

    Subclasses turn one target model's :class:`ReferenceSignals` into scores in
    :meth:`_score`; :meth:`_run` picks the target models, by ``rounds``, and combines.

    Which reference models calibrate a target model (``start``):

    - ``scratch``: fresh initialisations trained ``epochs`` passes over their records with
      ``batch_size`` (the recipe of a model trained from the start, as the released one);
    - ``round``: every reference model starts from the global model the round began from
      (the attacker saw it: a server, a participant, an eavesdropper) and trains one round
      of the clients' recipe (``knowledge.algorithm``: FedSGD one step on
      ``min(batch_size, num_samples)`` records, FedAvg ``knowledge.local_epochs`` passes over
      ``knowledge.num_samples`` in batches of ``knowledge.batch_size``), so IN and OUT
      differ by one round's training on a record, as the target's local model (or the
      round's aggregate) does;
    - ``auto`` (default): ``round`` where the view holds the round's starting model,
      ``scratch`` where it does not (the public holds only the released model).

    Args:
        mode: ``offline`` (reference models trained on auxiliary data only) or ``online``
            (pairs that also split the candidates).
        reference_models: ``K``; even when ``online``.
        epochs: passes of each reference model over its records (``scratch``).
        batch_size: records per SGD step (``scratch``); ``None`` uses ``knowledge.batch_size``
            (all records at once when that is ``None`` too).
        lr: the SGD learning rate; ``None`` uses ``knowledge.lr``.
        records_per_model: records each reference model trains on; ``None``: half of the
            auxiliary data (online: plus half of the candidates) from scratch, one round's
            records (above) from a round's model.
        loss: the training loss.
        rounds: ``latest`` scores the model closest to the target that the views hold
            (its latest local model seen in the clear, else the latest global model);
            ``mean`` / ``max`` score each round's closest model, each with its own reference
            models, and average or maximise the scores per record.
        start: ``auto``, ``scratch`` or ``round`` (above).
    """

    observer: ClassVar[str] = "anyone holding a global model and auxiliary data (the public holds the released model)"

    def __init__(
        self,
        *,
        mode: ReferenceMode = "offline",
        reference_models: int = 32,
        epochs: int = 20,
        batch_size: int | None = None,
        lr: float | None = None,
        records_per_model: int | None = None,
        loss: LossName = "cross_entropy",
        rounds: str = "latest",
        start: str = "auto",
    ) -> None:
        self.mode: ReferenceMode = require_choice("mode", mode, REFERENCE_MODES)
        self.reference_models = require_int("reference_models", reference_models, minimum=1)
        if self.mode == "online" and self.reference_models % 2:
            raise ConfigError(f"online reference models come in pairs: reference_models must be even, "
                              f"got {reference_models}")
        self.epochs = require_int("epochs", epochs, minimum=1)
        self.batch_size = require_optional_int("batch_size", batch_size, minimum=1)
        self.lr = None if lr is None else require_positive_float("lr", lr)
        self.records_per_model = require_optional_int("records_per_model", records_per_model, minimum=1)
        require_choice("loss", loss, LOSSES)
        self.loss: LossName = loss
        self.rounds = require_choice("rounds", rounds, ROUND_COMBINATIONS)
        self.start = require_choice("start", start, REFERENCE_STARTS)

    @classmethod
    def runs_as(cls, role: ViewerRole) -> bool:
        """Every observer holds at least the released model."""
        return True

    @abstractmethod
    def _score(self, signals: ReferenceSignals) -> tuple[Tensor, dict[str, float]]:
        """Each candidate's score (float64 ``[M]``) and extra details, from one target model's signals."""

    def _run(
        self, history: Sequence[RoundView], knowledge: Knowledge, *, client: int | None, generator: torch.Generator
    ) -> MembershipScores:
        if self.rounds == "latest":
            models = [LossThresholdAttack._closest_model(history, client)]
        else:
            models = LossThresholdAttack._models_by_round(history, client)
        per_round, details = [], {}
        for flat, view, source in models:
            signals = self.signals_of(flat, view, source, knowledge, client, generator)
            scores, extra = self._score(signals)
            per_round.append(scores)
            details = {**signals.details, **extra}
        stacked = torch.stack(per_round)
        combined = stacked.max(dim=0).values if self.rounds == "max" else stacked.mean(dim=0)
        last = models[-1][1]
        if self.rounds != "latest":
            details = {**details, "rounds": float(len(models)),
                       "local_models": float(sum(source == "local" for _, _, source in models))}
        return MembershipScores(self.name, last.observer, combined, last.round_index, details=details)

    def signals(
        self, history: Sequence[RoundView], knowledge: Knowledge, client: int | None, generator: torch.Generator
    ) -> ReferenceSignals:
        """The signals of the model closest to ``client``'s data the views hold (``rounds = "latest"``)."""
        flat, view, source = LossThresholdAttack._closest_model(history, client)
        return self.signals_of(flat, view, source, knowledge, client, generator)

    def _recipe(self, view: RoundView, source: str, knowledge: Knowledge, client: int | None) -> _Recipe:
        """Where the reference models of the target model in ``view`` start and how they train."""
        begun = round_start_model(view, source, client)
        if self.start == "round" and begun is None:
            raise ThreatModelError(f"{self.name} with start='round' trains reference models from the model the "
                                   f"round began from, which observer {view.observer!r} did not see in round "
                                   f"{view.round_index}")
        if self.start == "scratch" or begun is None:
            return _Recipe(None, self.epochs, self.batch_size if self.batch_size is not None else knowledge.batch_size,
                           self.records_per_model)
        if knowledge.algorithm == "fedsgd":
            samples = knowledge.num_samples if knowledge.batch_size is None else min(knowledge.batch_size,
                                                                                    knowledge.num_samples)
            return _Recipe(begun, 1, None, self.records_per_model or samples)
        return _Recipe(begun, knowledge.local_epochs, knowledge.batch_size,
                       self.records_per_model or knowledge.num_samples)

    def signals_of(
        self,
        flat: Tensor,
        view: RoundView,
        source: str,
        knowledge: Knowledge,
        client: int | None,
        generator: torch.Generator,
    ) -> ReferenceSignals:
        """Train the reference models of the target model ``flat`` (seen in ``view``, a ``local`` or
        ``global`` model); evaluate them and the target on every candidate and auxiliary record.

        Raises:
            ThreatModelError: no auxiliary data or learning rate, a view whose model does not
                match ``knowledge.model``, or an architecture reference models cannot be
                trained for (batch normalisation, a layer without a known initialisation).
        """
        candidates, auxiliary = knowledge.candidates, knowledge.auxiliary
        assert candidates is not None
        if auxiliary is None or len(auxiliary) == 0:
            raise ThreatModelError(f"{self.name} trains reference models on knowledge.auxiliary (records from the "
                                   "task's distribution, not the candidates), which is not given")
        lr = self.lr if self.lr is not None else knowledge.lr
        if lr is None:
            raise ThreatModelError(f"{self.name} trains reference models with the target's learning rate: "
                                   "give knowledge.lr or the lr option")
        layout = ParameterLayout.of(knowledge.model)
        if flat.numel() != layout.num_parameters:
            raise ThreatModelError(f"the observed model has {flat.numel()} parameters but knowledge.model has "
                                   f"{layout.num_parameters}: the declared architecture does not match the view")
        recipe = self._recipe(view, source, knowledge, client)
        dtype = next(knowledge.model.parameters()).dtype
        inputs = torch.cat([candidates.inputs, auxiliary.inputs]).to(dtype)
        labels = torch.cat([candidates.targets, auxiliary.targets])
        is_in = reference_memberships(
            len(candidates), len(auxiliary), models=self.reference_models, mode=self.mode,
            records_per_model=recipe.records_per_model, generator=generator,
        )
        started = time.perf_counter()
        try:
            params = train_reference_models(
                knowledge.model, is_in, inputs, labels, epochs=recipe.epochs, lr=lr, batch_size=recipe.batch_size,
                generator=generator, loss=self.loss,
                start=None if recipe.start is None else layout.unflatten(recipe.start.to(dtype)),
            )
        except ConfigError as error:  # the architecture rules the attack out, as a missing view would
            raise ThreatModelError(f"{self.name} cannot train reference models of knowledge.model: {error}") from None
        trained = time.perf_counter() - started
        references = reference_logits(knowledge.model, params, inputs)
        # the target as its users run it: evaluation mode, with the buffers the observer read
        net = copy.deepcopy(knowledge.model)
        buffers = local_buffers(view, client) if source == "local" else view.buffers_after
        if buffers is not None and buffers.numel():
            load_flat_buffers(net, buffers)
        target_params = {name: value.unsqueeze(0) for name, value in layout.unflatten(flat.to(dtype)).items()}
        target = reference_logits(net, target_params, inputs)[0]
        details = {"reference_models": float(self.reference_models), "reference_seconds": trained,
                   "records_per_model": float(is_in.sum(dim=1).double().mean()),
                   "local_model": float(source == "local"), "from_round_model": float(recipe.start is not None)}
        return ReferenceSignals(target, references, is_in, labels, len(candidates), view, details)
