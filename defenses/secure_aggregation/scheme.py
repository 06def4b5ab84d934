"""``secagg`` and ``secagg+``: secure aggregation schemes that run the real protocol each round.

Each round the sampled clients encode their updates into ``Z_(2^k)``
(:class:`~defenses.secure_aggregation.ring.RingEncoding`) and run the four stages of
:func:`~defenses.secure_aggregation.protocol.run_protocol` with fresh keys. The views
hold exactly the protocol's messages: public keys, the encrypted shares the server
relays, the masked vectors, the revealed shares; never a plaintext update.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Literal, get_args

import numpy as np
import torch
from torch import Tensor

from defenses.secure_aggregation.checks import CHECK_NAMES, ClientChecks, SigningKey, model_digest
from defenses.secure_aggregation.graph import (
    Graph,
    complete_graph,
    default_degree,
    harary_graph,
)
from defenses.secure_aggregation.protocol import (
    ProtocolConfig,
    ProtocolResult,
    Stage,
    run_protocol,
)
from defenses.secure_aggregation.ring import RingEncoding
from leakage.aggregation import (
    SCHEMES,
    AggregationScheme,
    Deployment,
    RoundContext,
    RoundOutcome,
    observer_views,
)
from leakage.checks import (
    require_choice,
    require_in_interval,
    require_int,
    require_optional_int,
    require_positive_float,
)
from leakage.errors import ConfigError
from leakage.views import Message, PublicValue, RoundView, sender_key, share_key

__all__ = ["DropoutStage", "SecureAggregation", "SecureAggregationPlus"]

DropoutStage = Literal["advertise", "share", "masked_input", "random"]
DROPOUT_STAGES: tuple[DropoutStage, ...] = get_args(DropoutStage)
_STAGES = {"advertise": Stage.ADVERTISE, "share": Stage.SHARE, "masked_input": Stage.MASKED_INPUT}


@SCHEMES.register("secagg")
class SecureAggregation(AggregationScheme):
    """Secure aggregation of Bonawitz et al. (CCS 2017), semi-honest server, with dropouts.

    The server learns ``sum_{u in U3} w_u x_u`` and ``sum w_u`` (``w_u`` the integer
    sample-count weight, ``x_u`` the clipped, fixed-point update) and nothing else about
    single updates, as long as at least ``threshold`` clients remain and the server does
    not collude with clients. With two participants each one still learns the other's
    update from the new model (the round-difference attack): secure aggregation hides an
    update only among many.

    Views: ``server``: public keys, the share ciphertexts it relayed, the masked vectors
    (raw ring words), the revealed shares, both global models, the decoded
    ``aggregate`` and its ``total_weight`` (in ``public``). ``eavesdropper``: the same
    messages (no transport encryption is assumed on top of the protocol's own) and both
    models, not the decoded aggregate.
    ``client:<id>``: its own true update, data, clipped-value count and masked vector,
    the public keys and the share ciphertexts addressed to it, and the new model if it
    stayed to the end. ``public``: the final model.

    Args:
        clip_range: each coordinate is clipped to ``[-clip_range, clip_range]``.
        ring_bits: ``k``, the ring is ``Z_(2^k)``, ``16 <= k <= 64``.
        precision_bits: fixed-point levels ``2**precision_bits - 1`` per ``clip_range``;
            ``None`` takes the most the ring holds without overflow.
        threshold: ``t``, shares needed to rebuild a secret and the fewest clients that
            may remain; ``None`` is a majority of each client's shareholders.
        dropout_stage: when the simulator's dropped clients drop: ``"advertise"``,
            ``"share"``, ``"masked_input"``, or ``"random"`` (each one at a stage drawn
            uniformly from the three).
        unmask_dropout: probability that a client whose masked input arrived drops
            before answering the unmasking request (its input still counts).
        entropy: source of protocol secrets; ``os.urandom`` unless a test needs repeats.
        checks: client-side checks against an active server
            (:mod:`defenses.secure_aggregation.checks`), by name: ``bind_model`` (keys bound
            to the digest of the model each client received), ``signed_keys`` (key
            advertisements signed by identity keys listed in a directory; the simulation
            draws the identities), ``consistency_round`` (implies ``signed_keys``),
            ``min_threshold`` (clients refuse ``t <= (n + assumed_corrupt) / 2``; without an
            explicit ``threshold`` the smallest one they accept is used), ``vet_model``
            (clients refuse a model whose architecture differs from the announced one).
        assumed_corrupt: the corrupt clients ``min_threshold`` guards against.
    """

    name = "secagg"

    def __init__(
        self,
        *,
        clip_range: float = 1.0,
        ring_bits: int = 32,
        precision_bits: int | None = None,
        threshold: int | None = None,
        dropout_stage: DropoutStage = "random",
        unmask_dropout: float = 0.0,
        entropy: Callable[[int], bytes] | None = None,
        checks: Sequence[str] = (),
        assumed_corrupt: int = 1,
    ) -> None:
        self.clip_range = require_positive_float("clip_range", clip_range)
        if isinstance(checks, str) or not all(isinstance(name, str) for name in checks):
            raise ConfigError(f"checks must be a list of check names from {', '.join(CHECK_NAMES)}, got {checks!r}")
        for name in checks:
            require_choice("checks", name, CHECK_NAMES)
        self.checks: tuple[str, ...] = tuple(name for name in CHECK_NAMES if name in checks)
        self.assumed_corrupt = require_int("assumed_corrupt", assumed_corrupt, minimum=0)
        require_int("ring_bits", ring_bits, minimum=16)  # below 16 the message gives the lower bound alone
        self.ring_bits = require_int("ring_bits", ring_bits, minimum=16, maximum=64)
        self.precision_bits = require_optional_int("precision_bits", precision_bits, minimum=8, maximum=52)
        self.threshold = require_optional_int("threshold", threshold, minimum=2)
        self.dropout_stage: DropoutStage = require_choice("dropout_stage", dropout_stage, DROPOUT_STAGES)
        self.unmask_dropout = require_in_interval(
            "unmask_dropout", unmask_dropout, 0, 1, inclusive="left", what="a probability"
        )
        self.entropy = entropy or os.urandom
        self.encoding: RingEncoding | None = None
        self._deployment: Deployment | None = None

    # -- configuration --------------------------------------------------------------

    def shareholders(self, clients: int) -> int:
        """Return how many parties hold shares of one client's secrets in a round of ``clients``."""
        return clients

    def resolved_threshold(self, clients: int) -> int:
        """Return ``t`` for a round of ``clients`` sampled clients."""
        if self.threshold is not None:
            return self.threshold
        holders = self.shareholders(clients)
        if "min_threshold" in self.checks:  # the smallest threshold the clients accept
            return min(holders, (holders + self.assumed_corrupt) // 2 + 1)
        return holders // 2 + 1

    def client_checks(
        self, clients: Sequence[int], *, architecture: bytes | None = None
    ) -> tuple[ClientChecks | None, dict[int, SigningKey]]:
        """The clients' checks for one round, and the identity keys they sign with (drawn here).

        ``architecture``: the digest of the announced architecture ``vet_model`` compares with
        (``None``: the honest simulator sends the announced model, so there is nothing to vet).
        """
        if not self.checks:
            return None, {}
        signed = "signed_keys" in self.checks or "consistency_round" in self.checks
        keys = {c: SigningKey.from_secret(self.entropy(32)) for c in clients} if signed else {}
        checks = ClientChecks(
            bind_model="bind_model" in self.checks,
            directory={c: key.public for c, key in keys.items()} if signed else None,
            consistency_round="consistency_round" in self.checks,
            assumed_corrupt=self.assumed_corrupt if "min_threshold" in self.checks else None,
            announced_architecture=architecture if "vet_model" in self.checks else None,
        )
        return checks, keys

    def prepare(self, deployment: Deployment) -> None:
        """Fix the fixed-point encoding and check the threshold against the deployment.

        Raises:
            ConfigError: weights are not integers, the ring cannot hold a round's sum
                at 8 bits of precision, or the threshold exceeds the shareholders.
        """
        weights = deployment.client_weights
        if any(w != int(w) or w < 0 for w in weights):
            raise ConfigError("secure aggregation needs integer sample-count weights; got fractional weights")
        if deployment.clients_per_round < 2:
            raise ConfigError(
                f"clients_per_round must be >= 2 for scheme {self.name!r} (one client's sum is its update), "
                f"got {deployment.clients_per_round}"
            )
        self.encoding = RingEncoding.fitting(
            ring_bits=self.ring_bits,
            clip_range=self.clip_range,
            max_total_weight=max(1, int(deployment.max_round_weight)),
            precision_bits=self.precision_bits,
        )
        holders = self.shareholders(deployment.clients_per_round)
        if self.threshold is not None and self.threshold > holders:
            raise ConfigError(
                f"threshold must be between 2 and the {holders} shareholders of each client "
                f"({self._holders_phrase()}), got {self.threshold}"
            )
        self._deployment = deployment

    def _holders_phrase(self) -> str:
        return "every client of the round"

    def min_summands(self, deployment: Deployment) -> int:
        """A round that releases anything has at least ``t`` clients in the sum."""
        return self.resolved_threshold(deployment.clients_per_round)

    def lattice_step(self) -> float | None:
        """The fixed-point step inputs are rounded to (available after :meth:`prepare`)."""
        return None if self.encoding is None else self.encoding.step

    def public_parameters(self) -> dict[str, PublicValue]:
        public: dict[str, PublicValue] = {"ring_bits": self.ring_bits, "clip_range": self.clip_range}
        if self.encoding is not None:
            public["quantization_step"] = self.encoding.step
        if self.threshold is not None:
            public["threshold"] = self.threshold
        if self.checks:
            public["checks"] = ",".join(self.checks)
        return public

    # -- one round ------------------------------------------------------------------

    def graph(self, clients: list[int], generator: torch.Generator) -> Graph:
        """Return who masks with whom this round: everyone with everyone."""
        return complete_graph(clients)

    def run_round(self, context: RoundContext, *, model_digests: Mapping[int, bytes] | None = None) -> RoundOutcome:
        """Run the protocol on the round's updates.

        ``model_digests``: the digest of the model each client received, where a server sent
        clients different models (an active server; the honest simulator sends one model, whose
        digest every client holds). They matter only to clients that check ``bind_model``.
        """
        if self.encoding is None:
            raise ConfigError(f"scheme {self.name!r} must be prepared for a deployment before it runs a round")
        encoding = self.encoding
        clients = list(context.client_ids)
        length = context.updates.shape[1] + 1
        if len(clients) < 2:
            return self._aborted(context, f"only {len(clients)} client sampled; secure aggregation needs >= 2", None)
        words, clipped = encoding.encode(context.updates, context.weights, context.generator)
        inputs = {c: words[context.row(c)] for c in clients}
        dropouts = self._dropouts(context)
        graph = self.graph(clients, context.generator)
        threshold = self.resolved_threshold(len(clients))
        checks, keys = self.client_checks(clients)
        # an honest server sends every client the same model: each binds its keys to that model's digest
        digest = model_digest(context.params_before) if checks is not None and checks.bind_model else b""
        config = ProtocolConfig(
            session=self.entropy(16), ring_bits=self.ring_bits, length=length, threshold=threshold, neighbours=graph,
            model_digest=digest,
        )
        held = dict.fromkeys(clients, digest) if model_digests is None or not digest else dict(model_digests)
        result = run_protocol(inputs, config, dropouts=dropouts, entropy=self.entropy, checks=checks,
                              signing_keys=keys, model_digests=held)
        metrics = {
            "clipped_values": float(clipped.sum()),
            "upload_bytes_per_client": result.upload_bytes_per_client(),
        }
        public = dict(context.public)
        public.update(threshold=threshold, quantization_step=encoding.step, neighbours=_degree(graph))
        if result.total is None:
            return self._aborted(context, result.aborted or "aborted", result, public, metrics, clipped)
        weighted_sum, total_weight = encoding.decode_sum(result.total)
        delta = (weighted_sum / total_weight).to(context.params_before.dtype)
        params_after = context.apply(delta)
        views = self._views(context, result, public, params_after, delta, clipped, float(total_weight))
        return RoundOutcome(
            params_after=params_after,
            survivors=tuple(sorted(result.survivors)),
            views=views,
            public={"threshold": threshold, "quantization_step": encoding.step},
            metrics=metrics,
        )

    def _dropouts(self, context: RoundContext) -> dict[int, Stage]:
        dropouts: dict[int, Stage] = {}
        draws = torch.rand(len(context.client_ids), 2, generator=context.generator, dtype=torch.float64)
        for row, client in enumerate(context.client_ids):
            if client in context.dropped:
                if self.dropout_stage == "random":
                    dropouts[client] = Stage(min(2, int(draws[row, 0] * 3)))
                else:
                    dropouts[client] = _STAGES[self.dropout_stage]
            elif draws[row, 1] < self.unmask_dropout:
                dropouts[client] = Stage.UNMASK
        return dropouts

    def _aborted(
        self,
        context: RoundContext,
        reason: str,
        result: ProtocolResult | None,
        public: Mapping[str, PublicValue] | None = None,
        metrics: Mapping[str, float] | None = None,
        clipped: Tensor | None = None,
    ) -> RoundOutcome:
        public = dict(context.public) if public is None else public
        views = {} if result is None else self._views(context, result, public, None, None, clipped)
        return RoundOutcome(
            params_after=context.params_before,
            survivors=(),
            views=views,
            public={"aborted": reason},
            metrics={**(metrics or {}), "aborted": 1.0},
            aborted=reason,
        )

    def _views(
        self,
        context: RoundContext,
        result: ProtocolResult,
        public: Mapping[str, PublicValue],
        params_after: Tensor | None,
        delta: Tensor | None,
        clipped: Tensor | None,
        total_weight: float | None = None,
    ) -> dict[str, RoundView]:
        keys: dict[str, Message] = {
            sender_key("keys", sender): advert.to_bytes() for sender, advert in result.roster.items()
        }
        inbox: dict[int, dict[str, Message]] = {client: dict(keys) for client in context.client_ids}
        wire = dict(keys)
        for (sender, recipient), share in result.shares.items():
            wire[share_key(sender, recipient)] = share.ciphertext
            inbox[recipient][share_key(sender, recipient)] = share.ciphertext
        for sender, masked in result.masked.items():
            wire[sender_key("masked", sender)] = masked.vector.tobytes()
        for sender, response in result.responses.items():
            wire[sender_key("unmask", sender)] = response.to_bytes()

        def clipped_count(client: int) -> dict[str, Tensor]:
            return {} if clipped is None else {"clipped_values": clipped[context.row(client)].reshape(())}

        return observer_views(
            context,
            params_after,
            participants=result.survivors,
            public=public,
            wire=wire,
            server_received={} if delta is None else {"aggregate": delta},
            # the server decodes the summed weight along with the weighted sum
            server_public={} if total_weight is None else {"total_weight": total_weight},
            client_received=inbox.__getitem__,
            client_own=clipped_count,
            finished=result.online,
        )


@SCHEMES.register("secagg+")
class SecureAggregationPlus(SecureAggregation):
    """SecAgg+ (Bell et al., CCS 2020): masks and shares only within a random k-regular graph.

    Each client shares its secrets with, and masks against, its ``neighbours`` in a
    random Harary graph drawn per round from public randomness, so a client's work
    grows like ``k = O(log n)`` instead of ``n`` and the server's dropout recovery like
    ``k`` per dropped client. ``threshold`` counts among a client's ``k + 1``
    shareholders (its neighbours and itself). Views are those of :class:`SecureAggregation`.

    Args:
        neighbours: ``k``, an even number of neighbours per client; ``None`` takes
            ``2 * ceil(log2 n)`` (at most ``n - 1``).
        **options: as for :class:`SecureAggregation`.
    """

    name = "secagg+"

    def __init__(
        self,
        *,
        neighbours: int | None = None,
        clip_range: float = 1.0,
        ring_bits: int = 32,
        precision_bits: int | None = None,
        threshold: int | None = None,
        dropout_stage: DropoutStage = "random",
        unmask_dropout: float = 0.0,
        entropy: Callable[[int], bytes] | None = None,
        checks: Sequence[str] = (),
        assumed_corrupt: int = 1,
    ) -> None:
        super().__init__(
            clip_range=clip_range,
            ring_bits=ring_bits,
            precision_bits=precision_bits,
            threshold=threshold,
            dropout_stage=dropout_stage,
            unmask_dropout=unmask_dropout,
            entropy=entropy,
            checks=checks,
            assumed_corrupt=assumed_corrupt,
        )
        if neighbours is not None:
            require_int("neighbours", neighbours, minimum=2)
            if neighbours % 2:
                raise ConfigError(
                    f"neighbours must be an even integer >= 2 (a Harary graph's degree), got {neighbours}"
                )
        self.neighbours = neighbours

    def degree(self, clients: int) -> int:
        """Return ``k`` for a round of ``clients`` clients."""
        wanted = default_degree(clients) if self.neighbours is None else self.neighbours
        return min(wanted, clients - 1)

    def shareholders(self, clients: int) -> int:
        return self.degree(clients) + 1

    def _holders_phrase(self) -> str:
        return "its neighbours and itself"

    def graph(self, clients: list[int], generator: torch.Generator) -> Graph:
        """Return a random Harary graph drawn from the round's public randomness."""
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        return harary_graph(clients, self.degree(len(clients)), np.random.default_rng(seed))

    def public_parameters(self) -> dict[str, PublicValue]:
        public = super().public_parameters()
        if self.neighbours is not None:
            public["neighbours"] = self.neighbours
        return public


def _degree(graph: Graph) -> int:
    return max((len(peers) for peers in graph.values()), default=0)
