"""A malicious server inside the simulation: each round it deviates, and its view records what it got.

It sits above ``attacks`` and ``defenses`` (it plays attacks against the protocol), as
:class:`~leakage.quantify.canaries.WithCanaries` does.

:class:`MaliciousServer` wraps a ``secagg`` or ``secagg+`` scheme. In every round the
target takes part in, the server plays one deviation (``attack``) against the round's
real clients, running their checks (``inner.checks``), and the transcript gains a view of
the observer ``malicious_server``: everything the honest server saw, plus the target's
update where the deviation extracted it (``received["update:client:<target>"]``, as if it
had arrived in the clear) and the deviation and the powers it used
(``public["active_attack"]``, ``public["active_powers"]``). Every attack on update views
then runs on it unchanged: ``plaintext`` recovers the update, gradient inversion chains
on it. Ground truth stays in ``transcript.truth``.

- ``model_inconsistency``: every client but the target trains on a dead model
  (:func:`attacks.model_inconsistency.dead_parameters`); the protocol runs on those
  updates with each client's own model digest, so clients that bind their keys to the
  model refuse and the round aborts. The published model is the inconsistent aggregate's.
- ``survivor_split``, ``key_substitution``, ``sybil``: the round runs honestly for the
  model, and beside it the server plays the deviation on the same encoded updates
  (:mod:`defenses.secure_aggregation.adversary`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from attacks.model_inconsistency import dead_parameters
from defenses.secure_aggregation import (
    ProtocolConfig,
    SecureAggregation,
    fewest_corrupt,
    key_substitution,
    model_digest,
    survivor_split,
    sybil_fill,
)
from leakage.aggregation import AggregationScheme, RoundContext, RoundOutcome, WrappedScheme
from leakage.checks import require_choice, require_int
from leakage.errors import ConfigError
from leakage.models import ParameterLayout
from leakage.simulation import make_loss, train_client
from leakage.views import MALICIOUS_SERVER, SERVER, PublicValue, RoundView, sender_key

__all__ = ["DEVIATIONS", "MaliciousServer"]

#: The deviations a :class:`MaliciousServer` plays, and the powers each uses.
DEVIATIONS: dict[str, tuple[str, ...]] = {
    "model_inconsistency": ("per_client_models",),
    "survivor_split": ("survivor_lists", "feigned_dropouts", "sybil_clients"),
    "key_substitution": ("key_rosters",),
    "sybil": ("sybil_clients",),
}


class MaliciousServer(WrappedScheme):
    """Runs ``inner`` with a server that deviates to recover ``target``'s update (module docstring).

    Args:
        inner: the ``secagg`` or ``secagg+`` scheme the clients run, with their checks.
        attack: one of :data:`DEVIATIONS`.
        target: the client the server goes after.
        model: the architecture, needed by ``model_inconsistency`` (to train the others on the dead model).
    """

    def __init__(self, inner: AggregationScheme, attack: str, *, target: int = 0, model: nn.Module | None = None
                 ) -> None:
        if not isinstance(inner, SecureAggregation):
            raise ConfigError(f"inner must be a secagg or secagg+ scheme (the deviations are of secure "
                              f"aggregation), got {type(inner).__name__}")
        super().__init__(inner)
        self.secure: SecureAggregation = inner
        self.attack = require_choice("attack", attack, tuple(DEVIATIONS))
        self.target = require_int("target", target, minimum=0)
        if self.attack == "model_inconsistency" and model is None:
            raise ConfigError("model_inconsistency trains the other clients on a dead model: give model")
        self.model = model

    @property
    def needs_client_batches(self) -> bool:
        return self.attack == "model_inconsistency"

    def run_round(self, context: RoundContext) -> RoundOutcome:
        if self.target not in context.client_ids:
            return self._with_view(context, self.inner.run_round(context), None)
        if self.attack == "model_inconsistency":
            return self._inconsistent(context)
        outcome = self.inner.run_round(context)
        return self._with_view(context, outcome, self._deviate(context))

    # -- the deviations ------------------------------------------------------------

    def _inconsistent(self, context: RoundContext) -> RoundOutcome:
        assert self.model is not None
        layout, loss = ParameterLayout.of(self.model), make_loss(self.model)
        real = context.params_before.to(torch.float32)
        dead = dead_parameters(self.model, real)
        lr = float(context.public["lr"])  # type: ignore[arg-type]
        updates = context.updates.clone()
        silenced = torch.ones(updates.shape[1], dtype=torch.bool)
        for row, client in enumerate(context.client_ids):
            if client == self.target:
                continue
            updates[row], _ = train_client(loss, layout, dead, list(context.client_batches[client]), lr=lr)
            silenced &= updates[row] == 0
        digests = {c: model_digest(real if c == self.target else dead) for c in context.client_ids}
        outcome = self.secure.run_round(replace(context, updates=updates), model_digests=digests)
        server = outcome.views.get(SERVER)
        aggregate = None if server is None else server.received.get("aggregate")
        if not isinstance(aggregate, Tensor) or outcome.aborted is not None:
            return self._with_view(context, outcome, None)
        weights = context.weights.double()
        alive = torch.tensor([c in outcome.survivors for c in context.client_ids])
        share = float(weights[context.client_ids.index(self.target)] / weights[alive].sum())
        estimate = aggregate.double() / share
        estimate[~silenced] = aggregate.double()[~silenced]  # every client moved these: the mean is the guess
        return self._with_view(context, outcome, estimate.to(context.params_before.dtype))

    def _deviate(self, context: RoundContext) -> Tensor | None:
        inner = self.secure
        encoding = inner.encoding
        assert encoding is not None
        clients = list(context.client_ids)
        generator = torch.Generator().manual_seed(context.round_index)
        words, _ = encoding.encode(context.updates, context.weights, generator)
        inputs = {c: words[context.row(c)] for c in clients}
        checks, keys = inner.client_checks(clients)
        digest = model_digest(context.params_before) if checks is not None and checks.bind_model else b""
        config = ProtocolConfig(inner.entropy(16), inner.ring_bits, words.shape[1],
                                inner.resolved_threshold(len(clients)), inner.graph(clients, context.generator),
                                model_digest=digest)
        outcome: Any
        if self.attack == "survivor_split":
            outcome = survivor_split(inputs, config, target=self.target, corrupt=fewest_corrupt(config, self.target),
                                     checks=checks,
                                     signing_keys=keys, entropy=inner.entropy)
        elif self.attack == "key_substitution":
            outcome = key_substitution(inputs, config, target=self.target, checks=checks, signing_keys=keys,
                                       entropy=inner.entropy)
        else:
            outcome = sybil_fill(inputs[self.target], config, target=self.target, checks=checks, signing_keys=keys,
                                 model_digests=dict.fromkeys(clients, digest), entropy=inner.entropy)
        if outcome.recovered is None:
            return None
        weighted, weight = encoding.decode_sum(np.asarray(outcome.recovered))
        return (weighted / max(weight, 1)).to(context.params_before.dtype)

    # -- the record ----------------------------------------------------------------

    def _with_view(self, context: RoundContext, outcome: RoundOutcome, recovered: Tensor | None) -> RoundOutcome:
        """``outcome`` plus the malicious server's view: the honest server's, and what it extracted."""
        server = outcome.views.get(SERVER)
        received = dict(server.received) if server is not None else {}
        if recovered is not None:
            received[sender_key("update", self.target)] = recovered
        public: dict[str, PublicValue] = dict(server.public) if server is not None else dict(context.public)
        public["active_attack"] = self.attack
        public["active_powers"] = ",".join(DEVIATIONS[self.attack])
        view = RoundView(
            round_index=context.round_index, observer=MALICIOUS_SERVER,
            params_before=context.params_before, params_after=None if server is None else server.params_after,
            own={}, received=received, public=public,
            participants=server.participants if server is not None else frozenset(),
        )
        return replace(outcome, views={**outcome.views, MALICIOUS_SERVER: view})
