"""``dp``: central user-level differential privacy, DP-FedAvg with a trusted server."""

from __future__ import annotations

import torch

from defenses.dp.accountant import (
    AccountingMethod,
    deployment_privacy_spent,
    require_accountable,
    require_delta,
    require_method,
)
from defenses.dp.clipping import clip_updates
from leakage.aggregation import (
    SCHEMES,
    AggregationScheme,
    Deployment,
    RoundContext,
    RoundOutcome,
    Weighting,
    observer_views,
)
from leakage.checks import require_positive_float
from leakage.views import PublicValue, upload_key

__all__ = ["CentralDP"]


@SCHEMES.register("dp")
class CentralDP(AggregationScheme):
    """User-level DP-FedAvg with Gaussian noise added by a trusted server.

    McMahan, Ramage, Talwar, Zhang, ICLR 2018, "Learning Differentially Private
    Recurrent Language Models" (the fixed-denominator estimator ``f~_f``). Every arriving
    client's update is clipped, ``clip(u) = u * min(1, C / ||u||_2)``; clients count
    uniformly, whatever their sample counts; the server releases

        ``delta = (sum_i clip(u_i) + N(0, (noise_multiplier * C)^2 I)) / clients_per_round``

    dividing by the *expected* number of clients, fixed by the deployment, not by the
    number that arrived (which would leak it and raise the sensitivity). The noise comes
    from ``context.generator`` only.

    **Who is protected:** everyone *but the server*. The server is trusted: it sees
    every clipped update in the clear, as under ``plain``. Other participants, the
    public and anyone who only sees released models get ``(epsilon, delta)`` user-level
    DP, accounted with :mod:`defenses.dp.accountant` for the deployment's client
    sampling (Poisson: add/remove one client; fixed-size: replace one client).

    Views:

    - ``server``: every arriving clipped update in the clear, both global models.
    - ``eavesdropper``: the broadcast model, every clipped upload, the noisy new model.
    - ``client:<id>``: its own true update, the clipped vector it ``sent`` and its data,
      the broadcast model and, if its update arrived, the noisy new model; no
      participant list and no weights.
    - ``public``: only the final noisy model, in the last round.

    Each round's ``public`` carries the cumulative ``epsilon`` after that round (with
    ``delta``, ``clip_norm``, ``noise_multiplier`` and ``accountant``);
    ``metrics["clipped_clients"]`` counts arriving updates that were scaled down.

    Args:
        clip_norm: L2 bound ``C`` on each client's update; > 0.
        noise_multiplier: noise std over ``C``; > 0.
        delta: the delta of the reported epsilon, in (0, 1).
        accountant: ``"rdp"`` or ``"pld"`` (PLD cannot account fixed-size sampling).

    >>> scheme = CentralDP(clip_norm=1.0, noise_multiplier=1.0)
    >>> scheme.public_parameters()["noise_multiplier"]
    1.0
    """

    name = "dp"

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
        self._deployment: Deployment | None = None

    def prepare(self, deployment: Deployment) -> None:
        require_accountable(self.accountant, deployment)
        self._deployment = deployment

    def weighting(self) -> Weighting:
        return "expected_clients"

    def public_parameters(self) -> dict[str, PublicValue]:
        public: dict[str, PublicValue] = {} if self._deployment is None else {
            "expected_clients": self._deployment.clients_per_round
        }
        return {
            **public,
            "clip_norm": self.clip_norm,
            "noise_multiplier": self.noise_multiplier,
            "delta": self.delta,
            "accountant": self.accountant,
        }

    def run_round(self, context: RoundContext) -> RoundOutcome:
        deployment = self._require_deployment()
        # Clients clip before uploading (McMahan et al. 2018, UserUpdate); rows as in context.
        clipped, was_clipped = clip_updates(context.updates, self.clip_norm)
        survivors = tuple(sorted(context.arriving))
        rows = torch.tensor([context.row(c) for c in survivors], dtype=torch.long)
        noise = torch.randn(context.updates.shape[1], generator=context.generator, dtype=torch.float64)
        noisy_sum = clipped[rows].to(torch.float64).sum(dim=0) + noise * (self.noise_multiplier * self.clip_norm)
        delta = (noisy_sum / deployment.clients_per_round).to(context.params_before.dtype)
        params_after = context.apply(delta)

        spent = deployment_privacy_spent(
            deployment,
            noise_multiplier=self.noise_multiplier,
            steps=context.round_index + 1,
            delta=self.delta,
            method=self.accountant,
        )
        dp_public: dict[str, PublicValue] = {**self.public_parameters(), "epsilon": spent.epsilon}
        public = {**context.public, **dp_public}
        uploads = {upload_key(c): clipped[context.row(c)] for c in survivors}
        views = observer_views(
            context,
            params_after,
            participants=survivors,
            public=public,
            wire=uploads,
            client_own=lambda client: {"sent": clipped[context.row(client)]},
            clients_told_participants=False,
        )
        return RoundOutcome(
            params_after=params_after,
            survivors=survivors,
            views=views,
            public=dp_public,
            metrics={"clipped_clients": float(was_clipped[rows].sum())},
        )

    def _require_deployment(self) -> Deployment:
        if self._deployment is None:
            raise RuntimeError("call prepare(deployment) before run_round: the noise scale and epsilon depend on it")
        return self._deployment
