"""``ldp``: local differential privacy, each client noises its own update before upload."""

from __future__ import annotations

import torch

from defenses.dp.accountant import (
    AccountingMethod,
    local_privacy_spent,
    require_delta,
    require_method,
)
from defenses.dp.clipping import clip_updates
from leakage.aggregation import (
    MECHANISMS,
    AggregationScheme,
    ClientMechanism,
    MechanismOutput,
    RoundContext,
)
from leakage.checks import require_positive_float
from leakage.views import PublicValue

__all__ = ["LocalDP"]


@MECHANISMS.register("ldp")
class LocalDP(ClientMechanism):
    """Each client clips its update and adds the full Gaussian noise itself, before any upload.

    ``sent_i = u_i * min(1, C / ||u_i||_2) + N(0, (noise_multiplier * C)^2 I)``, with the
    noise drawn from ``context.generator``. Whatever protocol follows (even ``plain``)
    and every observer, the server included, only ever see noisy updates: nobody is
    trusted (local DP; Duchi, Jordan, Wainwright 2013; the Gaussian randomiser with
    clipping as in DP-FedAvg, McMahan et al. 2018, moved onto the client). Clients
    count uniformly in the aggregate, whatever their sample counts.

    Accounting is local: a report's L2 sensitivity is ``2C`` (any two inputs are
    neighbours) and the server sees who sent what, so sampling amplifies nothing. Each
    round's ``public`` carries ``ldp_epsilon``, the epsilon after this round of a client
    that reported in every round so far (``GaussianDpEvent(noise_multiplier / 2)``
    composed ``round_index + 1`` times; see
    :func:`defenses.dp.accountant.local_privacy_spent`), and ``ldp_delta``.
    ``metrics["clipped_clients"]`` counts sampled clients whose update was scaled down.
    The noise per client equals central DP's noise on the whole sum, so the aggregate
    is ``sqrt(clients)`` times noisier than under ``dp`` for the same multiplier.

    Args:
        clip_norm: L2 bound ``C`` on each client's update; > 0.
        noise_multiplier: noise std over ``C``; > 0.
        delta: the delta of the reported epsilon, in (0, 1).
        accountant: ``"rdp"`` or ``"pld"``.

    >>> from leakage.aggregation import create_scheme
    >>> create_scheme("ldp", clip_norm=1.0, noise_multiplier=1.0).name
    'ldp,plain'
    """

    name = "ldp"
    uniform_weights = True

    def __init__(
        self,
        *,
        clip_norm: float,
        noise_multiplier: float,
        delta: float = 1e-5,
        accountant: AccountingMethod = "rdp",
    ) -> None:
        self.clip_norm = require_positive_float("clip_norm", clip_norm)
        self.noise_multiplier = require_positive_float("noise_multiplier", noise_multiplier)
        self.delta = require_delta(delta)
        self.accountant = require_method(accountant)

    def public_parameters(self) -> dict[str, PublicValue]:
        return {
            "ldp_clip_norm": self.clip_norm,
            "ldp_noise_multiplier": self.noise_multiplier,
            "ldp_delta": self.delta,
            "ldp_accountant": self.accountant,
        }

    def apply(self, context: RoundContext, protocol: AggregationScheme) -> MechanismOutput:
        clipped, was_clipped = clip_updates(context.updates, self.clip_norm)
        noise = torch.randn(clipped.shape, generator=context.generator, dtype=torch.float64)
        noisy = clipped.to(torch.float64) + noise * (self.noise_multiplier * self.clip_norm)
        spent = local_privacy_spent(
            noise_multiplier=self.noise_multiplier,
            steps=context.round_index + 1,
            delta=self.delta,
            method=self.accountant,
        )
        return MechanismOutput(
            updates=noisy.to(context.updates.dtype),
            public={"ldp_epsilon": spent.epsilon, "ldp_delta": self.delta},
            metrics={"clipped_clients": float(was_clipped.sum())},
        )
