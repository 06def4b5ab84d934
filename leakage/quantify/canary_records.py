"""Canary records for one-run privacy audits: example-level canaries among the clients' data.

**The game** (Steinke, Nasr, Jagielski, NeurIPS 2023, at the level of records). The
auditor draws ``m`` canary records from the data, takes them out of the training set, and
puts each back with probability 1/2, independently (its *membership bit*, drawn from the
canary seed and kept as ground truth apart from every view), before the partition deals
the records to the clients: a canary lands with a client exactly as a real record does.
By default each canary carries a wrong label drawn uniformly from the other classes
(``mislabel=True``): a model can only fit it by memorising it, the strongest canary of
those the paper compares on real data; with ``mislabel=False`` canaries keep their own
labels and the audit measures typical records.

**The attacker** is a registered membership attack (``loss_threshold`` by default) run on
one observer's views, with the ``m`` canaries as its candidates: the public reads the
released model, a server or an eavesdropper every round's models (``rounds`` and
``calibration`` options of the attack). It never learns which clients hold the canaries.

**The bounds** are :mod:`leakage.quantify.one_run`'s, as for canary clients
(:mod:`leakage.quantify.canaries`): Steinke et al.'s bound and its Gaussian f-DP variant
for a rule fixed in advance, chosen on one half of the canaries, or Bonferroni-corrected,
each with delta beside epsilon, next to the scheme's accountant epsilon where it has one.
A user-level accountant (``dp``'s) bounds record-level privacy too, so every valid bound
stays below it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from leakage.aggregation import AggregationScheme, create_scheme
from leakage.checks import require_bool, require_int
from leakage.data import Dataset, load_dataset
from leakage.errors import ConfigError
from leakage.quantify.canaries import AuditSet, one_run_audits
from leakage.quantify.one_run import (
    GuessRule,
    OneRunAudit,
)
from leakage.simulation import SimulationSettings, Simulator
from leakage.transcript import Transcript

__all__ = ["CanaryRecordSpec", "CanaryRecords", "RecordAudit", "audit_canary_records", "audit_with_canary_records",
           "insert_canary_records"]

_DEFAULT_DELTA = 1e-5
_BITS, _CHOICE, _LABELS = 0, 1, 2  # the canary seed's streams


@dataclass(frozen=True)
class CanaryRecordSpec:
    """How many canary records, and of which kind.

    Attributes:
        m: canary records; each is put in with probability 1/2.
        seed: draws the records, their labels and their membership bits.
        mislabel: give each canary a wrong label (uniform over the other classes).
    """

    m: int
    seed: int = 0
    mislabel: bool = True

    def __post_init__(self) -> None:
        require_int("m", self.m, minimum=2)
        require_int("seed", self.seed, minimum=0)
        require_bool("mislabel", self.mislabel)


@dataclass(frozen=True)
class CanaryRecords:
    """The canaries of one run: the records (with the labels they train under) and who was put in.

    Attributes:
        records: the ``m`` canaries, as the clients hold them (a wrong label when mislabelled).
        inserted: ``(m,)`` bool, the membership bits.
        source_indices: ``(m,)`` where each canary was drawn from in the original dataset.
        mislabelled: whether each canary carries a wrong label.
        training: the training data of the run: the dataset less every canary, plus the inserted ones
            (appended at the end, in canary order).
    """

    records: Dataset
    inserted: npt.NDArray[np.bool_]
    source_indices: tuple[int, ...]
    mislabelled: bool
    training: Dataset = field(repr=False)


def insert_canary_records(dataset: Dataset, spec: CanaryRecordSpec) -> CanaryRecords:
    """Draw ``spec.m`` canary records from ``dataset`` and build the training data with the inserted half.

    Raises:
        ConfigError: the dataset has too few records, or one class only (no wrong label to give).

    >>> from leakage import load_dataset
    >>> canaries = insert_canary_records(load_dataset("digits"), CanaryRecordSpec(m=100, seed=1))
    >>> len(canaries.training) == 1797 - 100 + int(canaries.inserted.sum())
    True
    """
    m = spec.m
    if m > len(dataset) // 2:
        raise ConfigError(f"canary records: m must be at most half the dataset's {len(dataset)} records, got {m}")
    if spec.mislabel and dataset.num_classes < 2:
        raise ConfigError("canary records: mislabel needs at least two classes")

    def rng(stream: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=(stream,)))

    inserted = np.asarray(rng(_BITS).random(m) < 0.5)
    chosen = np.sort(rng(_CHOICE).choice(len(dataset), m, replace=False))
    drawn = torch.from_numpy(chosen).to(torch.int64)
    canaries = dataset.subset(drawn)
    if spec.mislabel:
        shift = torch.from_numpy(rng(_LABELS).integers(1, dataset.num_classes, m)).to(torch.int64)
        canaries = replace(canaries, targets=(canaries.targets + shift) % dataset.num_classes)
    keep = torch.ones(len(dataset), dtype=torch.bool)
    keep[drawn] = False
    rest = dataset.subset(torch.nonzero(keep).flatten())
    put_in = canaries.subset(torch.from_numpy(np.flatnonzero(inserted)).to(torch.int64))
    training = replace(
        rest,
        inputs=torch.cat([rest.inputs, put_in.inputs]),
        targets=torch.cat([rest.targets, put_in.targets]),
        properties={name: torch.cat([flags, put_in.properties[name]]) for name, flags in rest.properties.items()
                    if name in put_in.properties},
    )
    return CanaryRecords(canaries, inserted, tuple(int(i) for i in chosen), spec.mislabel, training)


@dataclass(frozen=True)
class RecordAudit(AuditSet):
    """A canary-record audit of one run: bounds with delta beside epsilon, and the accountant's epsilon."""

    scheme: str
    observer: str
    attack: str
    m: int
    inserted: int
    mislabelled: bool
    rounds: int
    audits: tuple[OneRunAudit, ...]  # fixed, split and Bonferroni, each by Steinke et al. and by GDP
    accountant_epsilon: float | None
    accountant_delta: float | None
    scores: tuple[float, ...] = field(repr=False, default=())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready result; the per-canary scores are left out."""
        return {
            "scheme": self.scheme, "observer": self.observer, "attack": self.attack, "m": self.m,
            "inserted": self.inserted, "mislabelled": self.mislabelled, "rounds": self.rounds,
            "audits": [audit.to_dict() for audit in self.audits],
            "accountant_epsilon": self.accountant_epsilon, "accountant_delta": self.accountant_delta,
        }

    def summary(self) -> str:
        """One line per audit and the accountant, each epsilon with its delta."""
        return "\n".join(self.summary_lines())


def audit_canary_records(
    transcript: Transcript,
    canaries: CanaryRecords,
    *,
    observer: str = "public",
    attack: str = "loss_threshold",
    attack_options: Mapping[str, Any] | None = None,
    rule: GuessRule | None = None,
    rules: Sequence[GuessRule] | None = None,
    delta: float | None = None,
    confidence: float = 0.95,
) -> RecordAudit:
    """Return the one-run audits of a run trained on ``canaries.training`` (see the module docstring).

    Args:
        transcript: the run.
        canaries: its canaries, from :func:`insert_canary_records`.
        observer: whose views the attack reads.
        attack: a registered membership attack; ``attack_options`` its options. An attack that
            trains reference models needs auxiliary data, which this audit does not give.
        rule: the guess rule fixed in advance; default "in" for the top 40% and "out" for the
            bottom 40% of the canaries.
        rules: the rules ``split`` and ``bonferroni`` choose from; default top-k and
            top-k/bottom-k for k a few fractions of the canaries.
        delta: the delta of every epsilon; default the scheme's ``public["delta"]``, else 1e-5.
        confidence: that each bound holds.

    Raises:
        ConfigError: ``attack`` is not a membership attack, or the observer saw nothing.
        ThreatModelError: the attack cannot run on the observer's views.
    """
    from attacks import ATTACKS, Knowledge, create_attack

    if ATTACKS.get(attack).produces != "membership":
        raise ConfigError(f"attack must be a membership attack, got {attack!r} (it produces "
                          f"{ATTACKS.get(attack).produces})")
    views = transcript.views_of(observer)
    if not views:
        raise ConfigError(f"observer {observer!r} saw nothing in this run; choose another observer")
    settings = transcript.settings
    knowledge = Knowledge.from_dataset(
        canaries.training, transcript.build_model(), candidates=canaries.records, lr=float(settings["lr"]),
        batch_size=settings.get("batch_size"), algorithm=settings["algorithm"],
        local_epochs=int(settings["local_epochs"]),
    )
    result = create_attack(attack, **dict(attack_options or {})).run(views, knowledge,
                                                                      generator=torch.Generator().manual_seed(0))
    scores = np.asarray(result.scores.numpy(), dtype=np.float64)
    m, inserted = len(canaries.inserted), canaries.inserted
    last_public: Mapping[str, Any] = transcript.rounds[-1].public if transcript.rounds else {}
    accountant_epsilon, accountant_delta = last_public.get("epsilon"), last_public.get("delta")
    if delta is None:
        delta = float(accountant_delta) if isinstance(accountant_delta, float) else _DEFAULT_DELTA
    audits = one_run_audits(scores, inserted, rule=rule, rules=rules, delta=delta, confidence=confidence)
    return RecordAudit(
        scheme=transcript.rounds[0].scheme if transcript.rounds else "",
        observer=observer, attack=attack, m=m, inserted=int(inserted.sum()),
        mislabelled=canaries.mislabelled,
        rounds=len(transcript.rounds), audits=audits,
        accountant_epsilon=float(accountant_epsilon) if isinstance(accountant_epsilon, (int, float)) else None,
        accountant_delta=float(accountant_delta) if isinstance(accountant_delta, (int, float)) else None,
        scores=tuple(float(s) for s in scores),
    )


def audit_with_canary_records(
    settings: SimulationSettings,
    canaries: CanaryRecordSpec,
    *,
    scheme: AggregationScheme | None = None,
    dataset: Dataset | None = None,
    observer: str = "public",
    attack: str = "loss_threshold",
    attack_options: Mapping[str, Any] | None = None,
    rule: GuessRule | None = None,
    rules: Sequence[GuessRule] | None = None,
    delta: float | None = None,
    confidence: float = 0.95,
) -> RecordAudit:
    """Draw the canary records, simulate ``settings`` on the training data with the inserted half, audit.

    Args:
        settings: the deployment (its partition deals the canaries like any record).
        canaries: the canary records.
        scheme: a configured scheme instead of ``settings.scheme``.
        dataset: an already loaded dataset instead of ``settings.dataset``.
        observer, attack, attack_options, rule, rules, delta, confidence: as for :func:`audit_canary_records`.

    >>> settings = SimulationSettings(n_clients=2, rounds=3, algorithm="fedavg", local_epochs=5, seed=0)
    >>> audit = audit_with_canary_records(settings, CanaryRecordSpec(m=40))
    >>> audit.m, audit.observer, audit.epsilon_lower_bound >= 0
    (40, 'public', True)
    """
    data = dataset if dataset is not None else load_dataset(settings.dataset, **settings.dataset_options)
    drawn = insert_canary_records(data, canaries)
    inner = scheme if scheme is not None else create_scheme(settings.scheme, **settings.scheme_options)
    transcript = Simulator(settings, dataset=drawn.training, scheme=inner).run()
    return audit_canary_records(transcript, drawn, observer=observer, attack=attack, attack_options=attack_options,
                                rule=rule, rules=rules, delta=delta, confidence=confidence)
