"""``lira``: the likelihood-ratio membership attack, calibrated per record by reference models.

Carlini, Chien, Nasr, Song, Terzis, Tramer, "Membership Inference Attacks From First
Principles" (IEEE S&P 2022). The signal is the target model's scaled logit of the true
class, ``phi(x) = log(p_y / (1 - p_y))``. For each candidate the reference models'
values (:mod:`attacks.reference_membership`) fit Gaussians: offline, only
``N(mu_out, sigma_out^2)``, and the one-sided test ``Phi((phi_target - mu_out) /
sigma_out)`` (the score is its argument, which ranks the same and never saturates);
online, also ``N(mu_in, sigma_in^2)``, and the score is the log-likelihood ratio
``log N(phi; mu_in, sigma_in^2) - log N(phi; mu_out, sigma_out^2)``. With
``fixed_variance`` one variance per side is pooled over all candidates, as the paper
advises for few reference models.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from attacks.base import ATTACKS
from attacks.reference_membership import ReferenceMembershipAttack, ReferenceMode, ReferenceSignals
from attacks.reference_models import scaled_logits
from leakage.checks import require_bool
from leakage.errors import ConfigError
from leakage.simulation import LossName

__all__ = ["LiRAAttack", "lira_scores"]

_MIN_VARIANCE = 1e-12  # keeps a test finite where every reference model gave the same value


def lira_scores(
    target: Tensor, references: Tensor, is_in: Tensor, *, mode: ReferenceMode, fixed_variance: bool
) -> Tensor:
    """Return LiRA's score per record, float64 ``[M]``: higher means more likely a member.

    Args:
        target: ``[M]`` the target model's scaled logits.
        references: ``[K, M]`` the reference models' scaled logits.
        is_in: ``[K, M]`` whether reference model ``k`` trained on record ``m``; every
            record needs two OUT models (online also two IN).
        mode: ``offline`` (``(phi - mu_out) / sigma_out``) or ``online`` (the log-likelihood ratio).
        fixed_variance: pool each side's variance over all records.

    >>> references = torch.tensor([[0.0, 0.0], [2.0, 2.0]])
    >>> scores = lira_scores(torch.tensor([1.0, 3.0]), references, torch.zeros(2, 2, dtype=torch.bool),
    ...                      mode="offline", fixed_variance=False)
    >>> [round(score, 4) for score in scores.tolist()]  # (phi - 1) / sqrt(2)
    [0.0, 1.4142]
    """
    target, references = target.double(), references.double()
    mean_out, variance_out = _moments(references, ~is_in, fixed_variance)
    if mode == "offline":
        return (target - mean_out) / variance_out.sqrt()
    mean_in, variance_in = _moments(references, is_in, fixed_variance)
    return _log_normal(target, mean_in, variance_in) - _log_normal(target, mean_out, variance_out)


def _moments(values: Tensor, chosen: Tensor, pooled: bool) -> tuple[Tensor, Tensor]:
    """Per-record mean and unbiased variance over the chosen models (the variance pooled over records if asked)."""
    weights = chosen.to(values.dtype)
    counts = weights.sum(dim=0)
    mean = (values * weights).sum(dim=0) / counts
    squares = ((values - mean) ** 2 * weights).sum(dim=0)
    variance = (squares.sum() / (counts - 1).sum()).expand_as(mean) if pooled else squares / (counts - 1)
    return mean, variance.clamp(min=_MIN_VARIANCE)


def _log_normal(value: Tensor, mean: Tensor, variance: Tensor) -> Tensor:
    return -0.5 * ((value - mean) ** 2 / variance + torch.log(2 * math.pi * variance))


@ATTACKS.register("lira")
class LiRAAttack(ReferenceMembershipAttack):
    """Score candidates by a per-record Gaussian likelihood test of the target's scaled logit (Carlini et al. 2022).

    >>> from attacks import Knowledge
    >>> from leakage import load_dataset, simulate
    >>> from leakage.models import create_model
    >>> data = load_dataset("digits")
    >>> run = simulate(n_clients=2, rounds=1, algorithm="fedsgd", batch_size=4)
    >>> net = create_model("mlp", input_shape=data.input_shape, num_classes=10, generator=torch.Generator())
    >>> known = Knowledge.from_dataset(data, net, lr=0.1, candidates=data.subset(torch.arange(5)),
    ...                                auxiliary=data.subset(torch.arange(5, 45)))
    >>> LiRAAttack(reference_models=4, epochs=1).run(run.views_of("public"), known).scores.shape
    torch.Size([5])
    """

    name = "lira"

    def __init__(
        self,
        *,
        mode: ReferenceMode = "offline",
        reference_models: int = 32,
        epochs: int = 20,
        batch_size: int | None = None,
        lr: float | None = None,
        records_per_model: int | None = None,
        fixed_variance: bool = False,
        loss: LossName = "cross_entropy",
        rounds: str = "latest",
        start: str = "auto",
    ) -> None:
        super().__init__(mode=mode, reference_models=reference_models, epochs=epochs, batch_size=batch_size, lr=lr,
                         records_per_model=records_per_model, loss=loss, rounds=rounds, start=start)
        self.fixed_variance = require_bool("fixed_variance", fixed_variance)
        per_side = self.reference_models // 2 if self.mode == "online" else self.reference_models
        if per_side < 2:
            raise ConfigError(f"lira estimates variances from at least 2 models per side: reference_models must be "
                              f">= {4 if self.mode == 'online' else 2} {self.mode}, got {reference_models}")

    def _score(self, signals: ReferenceSignals) -> tuple[Tensor, dict[str, float]]:
        count, labels = signals.num_candidates, signals.labels[: signals.num_candidates]
        scores = lira_scores(
            scaled_logits(signals.target[:count], labels), scaled_logits(signals.references[:, :count], labels),
            signals.is_in[:, :count], mode=self.mode, fixed_variance=self.fixed_variance,
        )
        return scores, {}
