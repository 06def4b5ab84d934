"""``ddp``: distributed differential privacy, each client adds a share of the noise before secure aggregation."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from defenses.dp.accountant import (
    AccountingMethod,
    deployment_privacy_spent,
    local_privacy_spent,
    require_accountable,
    require_delta,
    require_method,
)
from defenses.dp.clipping import clip_updates, stochastic_round
from defenses.dp.discrete_gaussian import sample_discrete_gaussian
from leakage.aggregation import (
    MECHANISMS,
    AggregationScheme,
    ClientMechanism,
    Deployment,
    MechanismOutput,
    RoundContext,
)
from leakage.checks import require_positive_float
from leakage.errors import ConfigError
from leakage.views import PublicValue

__all__ = ["DistributedDP"]


@dataclass(frozen=True)
class _NoisePlan:
    """What ``prepare`` learned from the deployment and the protocol behind the mechanism."""

    deployment: Deployment
    min_summands: int
    lattice_step: float | None
    sensitivity: float  # L2 bound on one client's contribution after rounding


@MECHANISMS.register("ddp")
class DistributedDP(ClientMechanism):
    """Clients clip and add a share of the noise so that every released sum carries the full noise.

    Kairouz, Liu, Steinke, ICML 2021, "The Distributed Discrete Gaussian Mechanism for
    Federated Learning with Secure Aggregation". With ``m = protocol.min_summands(deployment)``,
    the fewest clients in any aggregate the protocol releases (secure aggregation aborts
    below its threshold; ``plain`` releases single updates, so ``m = 1``), each client sends

    - on reals (``protocol.lattice_step()`` is ``None``):
      ``clip(u, C) + N(0, (noise_multiplier * C)^2 / m)``;
    - on a grid ``Δ·Z`` (the protocol encodes values as multiples of ``Δ``):
      ``Δ * (R(clip(u, C) / Δ) + N_Z(0, s^2))`` with ``s = noise_multiplier * C / (Δ sqrt(m))``,
      where ``R`` rounds up or down at random without bias and ``N_Z`` is the discrete
      Gaussian (:func:`~defenses.dp.discrete_gaussian.sample_discrete_gaussian`), so the
      protocol's own encoding is exact. These vectors are float64, since float32 cannot
      hold ``k * Δ`` exactly for the fine steps of secure aggregation (``Δ`` near 1e-10);
      such protocols decode into the model's dtype themselves.

    A sum over ``m`` or more clients then carries noise of variance at least
    ``(noise_multiplier * C)^2`` per coordinate, the noise of central DP, while no single
    party ever holds it all. Clients count uniformly; all randomness is ``context.generator``'s.

    Accounting, both cumulative after each round, in ``public``:

    - ``epsilon``: against observers of the released models, with amplification by the
      deployment's client sampling, exactly as for central ``dp``
      (:func:`~defenses.dp.accountant.deployment_privacy_spent`).
    - ``epsilon_vs_server``: against the server, which knows who took part, so without
      amplification; its neighbours replace one participant's update (sensitivity ``2C``),
      as in :func:`~defenses.dp.accountant.local_privacy_spent` with the full noise.

    Randomised rounding moves each coordinate by less than ``Δ``, so one client's
    contribution is bounded by ``C' = C + Δ sqrt(P)`` rather than ``C`` (reported as
    ``ddp_sensitivity``); both epsilons use the effective multiplier
    ``noise_multiplier * C / C'`` (Kairouz et al. tighten this with rounding conditioned on
    the norm, not done here). The sum of ``m`` discrete Gaussians is close to, but not
    exactly, a discrete Gaussian (Kairouz et al. bound the gap by a term like
    ``10 * sum_k exp(-2 pi^2 s^2 k / (k + 1))``, negligible once ``s`` is above about 1.5),
    and the accountant treats the sum as the continuous Gaussian mechanism. The protocols
    divide by the number of arriving clients, which the accounting treats as public.

    Args:
        clip_norm: L2 bound ``C`` on each client's update; > 0.
        noise_multiplier: total noise std over ``C``; > 0.
        delta: the delta of both reported epsilons, in (0, 1).
        accountant: ``"rdp"`` or ``"pld"`` (PLD cannot account fixed-size sampling).

    >>> from leakage.aggregation import create_scheme
    >>> create_scheme(["ddp", "plain"], ddp={"clip_norm": 1.0, "noise_multiplier": 1.0}).name
    'ddp,plain'
    """

    name = "ddp"
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
        self._plan: _NoisePlan | None = None

    def prepare(self, deployment: Deployment, protocol: AggregationScheme) -> None:
        require_accountable(self.accountant, deployment)
        min_summands = protocol.min_summands(deployment)
        if min_summands < 1:
            raise ConfigError(f"protocol {protocol.name!r} reports min_summands {min_summands}, must be >= 1")
        step = protocol.lattice_step()
        if step is not None and not (math.isfinite(step) and step > 0):
            raise ConfigError(f"protocol {protocol.name!r} reports lattice_step {step!r}, must be > 0")
        rounding_slack = 0.0 if step is None else step * math.sqrt(deployment.num_parameters)
        self._plan = _NoisePlan(deployment, min_summands, step, self.clip_norm + rounding_slack)

    def public_parameters(self) -> dict[str, PublicValue]:
        return {
            "ddp_clip_norm": self.clip_norm,
            "ddp_noise_multiplier": self.noise_multiplier,
            "ddp_delta": self.delta,
            "ddp_accountant": self.accountant,
        }

    def apply(self, context: RoundContext, protocol: AggregationScheme) -> MechanismOutput:
        plan = self._require_plan()
        clipped, was_clipped = clip_updates(context.updates, self.clip_norm)
        share_std = self.noise_multiplier * self.clip_norm / math.sqrt(plan.min_summands)
        if plan.lattice_step is None:
            noise = torch.randn(clipped.shape, generator=context.generator, dtype=torch.float64)
            sent = clipped.to(torch.float64) + noise * share_std
        else:
            indices = stochastic_round(clipped, plan.lattice_step, generator=context.generator)
            noise_indices = sample_discrete_gaussian(
                share_std / plan.lattice_step, tuple(indices.shape), generator=context.generator
            )
            sent = (indices + noise_indices).to(torch.float64) * plan.lattice_step

        effective_multiplier = self.noise_multiplier * self.clip_norm / plan.sensitivity
        steps = context.round_index + 1
        against_model = deployment_privacy_spent(
            plan.deployment,
            noise_multiplier=effective_multiplier,
            steps=steps,
            delta=self.delta,
            method=self.accountant,
        )
        against_server = local_privacy_spent(
            noise_multiplier=effective_multiplier, steps=steps, delta=self.delta, method=self.accountant
        )
        # On a grid, float64 keeps k * Δ exact where float32 cannot (secure aggregation's
        # steps can be ~1e-10, so k reaches 1e10); the protocol encodes from float64 anyway.
        dtype = context.updates.dtype if plan.lattice_step is None else torch.float64
        return MechanismOutput(
            updates=sent.to(dtype),
            public={
                "epsilon": against_model.epsilon,
                "epsilon_vs_server": against_server.epsilon,
                "delta": self.delta,
                "ddp_min_summands": plan.min_summands,
                "ddp_lattice_step": plan.lattice_step,
                "ddp_sensitivity": plan.sensitivity,
            },
            metrics={"clipped_clients": float(was_clipped.sum())},
        )

    def _require_plan(self) -> _NoisePlan:
        if self._plan is None:
            raise RuntimeError("call prepare(deployment, protocol) before apply: the noise share depends on them")
        return self._plan
