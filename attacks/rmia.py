"""``rmia``: the relative membership attack, comparing each candidate with population records.

Zarifzadeh, Liu, Shokri, "Low-Cost High-Power Membership Inference Attacks" (ICML 2024).
With ``Pr(r | theta)`` the target model's probability of record ``r``'s true class and
``Pr(r)`` its average over reference models (:mod:`attacks.reference_membership`),

    ``LR(x, z) = (Pr(x | theta) / Pr(x)) / (Pr(z | theta) / Pr(z))``

and candidate ``x`` scores the fraction of population records ``z`` (the auxiliary
data) with ``LR(x, z) > gamma``. Where a record has only OUT models (every candidate
offline, auxiliary records no online model trained on) ``Pr(r) = ((1 + a) Pr_OUT(r) +
(1 - a)) / 2``, the paper's linear approximation of the missing IN models; offline every
record is treated so, for one estimator throughout. Online, where a record has both,
``Pr(r) = (Pr_IN(r) + Pr_OUT(r)) / 2``. A population record that no model left out is
not used. Since the score is the population's empirical CDF at ``ratio_x / gamma``, it
ranks candidates as ``Pr(x | theta) / Pr(x)`` does, up to ties.
The defaults ``gamma = 1`` and ``a = 0.3`` are those of the authors' implementation
(Privacy Meter); the paper's experiments used ``gamma = 2`` with tens of thousands of
population records, but with a few hundred it ties many candidates at score 0.
"""

from __future__ import annotations

import torch
from torch import Tensor

from attacks.base import ATTACKS
from attacks.reference_membership import ReferenceMembershipAttack, ReferenceMode, ReferenceSignals
from attacks.reference_models import true_class_probabilities
from leakage.checks import require_in_interval, require_positive_float
from leakage.errors import ThreatModelError
from leakage.simulation import LossName

__all__ = ["RMIAAttack", "marginal_probabilities", "rmia_scores"]


def marginal_probabilities(
    references: Tensor, is_in: Tensor, *, mode: ReferenceMode, offline_a: float
) -> Tensor:
    """Return RMIA's ``Pr(r)`` per record, float64 ``[R]``; NaN where no reference model left ``r`` out.

    ``online``, for a record with IN and OUT models: ``(Pr_IN + Pr_OUT) / 2``; otherwise
    (and always ``offline``) ``((1 + a) Pr_OUT + (1 - a)) / 2`` from the models that did
    not train on it. ``references`` ``[K, R]`` are the reference models' probabilities of
    the true class, ``is_in`` ``[K, R]`` their training sets.

    >>> probabilities = torch.tensor([[0.5, 0.5], [0.9, 0.5]], dtype=torch.float64)
    >>> is_in = torch.tensor([[False, False], [True, False]])
    >>> marginal_probabilities(probabilities, is_in, mode="online", offline_a=0.5).tolist()
    [0.7, 0.625]
    """
    references = references.double()

    def mean_of(chosen: Tensor) -> Tensor:
        weights = chosen.to(references.dtype)
        return (references * weights).sum(dim=0) / weights.sum(dim=0)  # 0 / 0 is NaN: no such model

    mean_out = mean_of(~is_in)
    approximated = ((1 + offline_a) * mean_out + (1 - offline_a)) / 2
    if mode == "offline":
        return approximated
    has_in = is_in.any(dim=0)
    return torch.where(has_in, (mean_of(is_in) + mean_out) / 2, approximated)


def rmia_scores(candidate_ratios: Tensor, population_ratios: Tensor, *, gamma: float) -> Tensor:
    """Return the fraction of population records ``z`` with ``ratio_x / ratio_z > gamma``, float64 ``[M]``.

    Each ratio is ``Pr(r | theta) / Pr(r)``; ``population_ratios`` ``[Z]`` must be non-empty.

    >>> rmia_scores(torch.tensor([1.0, 4.0]), torch.tensor([0.5, 1.0, 2.0, 3.0]), gamma=1.0).tolist()
    [0.25, 1.0]
    """
    ordered = population_ratios.double().sort().values
    below = torch.searchsorted(ordered, candidate_ratios.double() / gamma, side="left")
    return below.double() / len(ordered)


@ATTACKS.register("rmia")
class RMIAAttack(ReferenceMembershipAttack):
    """Score each candidate by the share of population records it beats in likelihood ratio (Zarifzadeh et al. 2024).

    >>> from attacks import Knowledge
    >>> from leakage import load_dataset, simulate
    >>> from leakage.models import create_model
    >>> data = load_dataset("digits")
    >>> run = simulate(n_clients=2, rounds=1, algorithm="fedsgd", batch_size=4)
    >>> net = create_model("mlp", input_shape=data.input_shape, num_classes=10, generator=torch.Generator())
    >>> known = Knowledge.from_dataset(data, net, lr=0.1, candidates=data.subset(torch.arange(5)),
    ...                                auxiliary=data.subset(torch.arange(5, 45)))
    >>> scores = RMIAAttack(reference_models=2, epochs=1).run(run.views_of("public"), known).scores
    >>> bool(((scores >= 0) & (scores <= 1)).all())
    True
    """

    name = "rmia"

    def __init__(
        self,
        *,
        mode: ReferenceMode = "offline",
        reference_models: int = 32,
        epochs: int = 20,
        batch_size: int | None = None,
        lr: float | None = None,
        records_per_model: int | None = None,
        gamma: float = 1.0,
        offline_a: float = 0.3,
        loss: LossName = "cross_entropy",
        rounds: str = "latest",
        start: str = "auto",
    ) -> None:
        super().__init__(mode=mode, reference_models=reference_models, epochs=epochs, batch_size=batch_size, lr=lr,
                         records_per_model=records_per_model, loss=loss, rounds=rounds, start=start)
        self.gamma = require_positive_float("gamma", gamma)
        self.offline_a = require_in_interval("offline_a", offline_a, 0.0, 1.0)

    def _score(self, signals: ReferenceSignals) -> tuple[Tensor, dict[str, float]]:
        count = signals.num_candidates
        ratios = true_class_probabilities(signals.target, signals.labels) / marginal_probabilities(
            true_class_probabilities(signals.references, signals.labels), signals.is_in, mode=self.mode,
            offline_a=self.offline_a,
        )
        population = ratios[count:][ratios[count:].isfinite()]
        if len(population) == 0:
            raise ThreatModelError("rmia found no auxiliary record that some reference model left out "
                                   "to compare the candidates with: lower records_per_model")
        scores = rmia_scores(ratios[:count], population, gamma=self.gamma)
        return scores, {"population": float(len(population))}
