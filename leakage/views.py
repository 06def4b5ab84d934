"""What one observer really saw in one round, and the names it is filed under.

The names are a declared vocabulary, so that every scheme files the same thing under
the same key and an attack can rely on it:

- observers: ``"server"``, ``"eavesdropper"``, ``"public"`` and ``"client:<id>"``;
- ``RoundView.own``: the keys of :data:`OWN_KEYS`;
- ``RoundView.received``: the patterns of :data:`RECEIVED_KEYS` (``"aggregate"``,
  ``"update:client:<id>"``, ``"share:client:<id>->client:<id>"``...), built with
  :func:`upload_key`, :func:`sender_key` and :func:`share_key`, read back with
  :func:`parse_received_key`;
- ``RoundView.public``: the keys of :data:`PUBLIC_KEYS`.

A view with any other key is rejected when it is built: a scheme that shows something
new declares its name here first, with what the value is and who gets it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, get_args

import torch
from torch import Tensor

from leakage.checks import require_choice
from leakage.errors import ThreatModelError

__all__ = [
    "EAVESDROPPER",
    "MALICIOUS_SERVER",
    "OWN_KEYS",
    "PUBLIC",
    "PUBLIC_KEYS",
    "RECEIVED_KEYS",
    "SERVER",
    "Message",
    "OwnKey",
    "PublicKey",
    "PublicValue",
    "ReceivedKey",
    "ReceivedKind",
    "RoundView",
    "SenderKind",
    "check_view_keys",
    "client_observer",
    "parse_client_observer",
    "parse_received_key",
    "parse_upload_key",
    "released_model_view",
    "sender_key",
    "share_key",
    "upload_key",
]

SERVER = "server"
EAVESDROPPER = "eavesdropper"
PUBLIC = "public"
MALICIOUS_SERVER = "malicious_server"  # an active server: the honest server's view and what it extracted

Message = Tensor | bytes
PublicValue = int | float | str | bool | None | list[Any] | dict[str, Any]


def client_observer(client_id: int) -> str:
    """Return the observer name of participant ``client_id``.

    >>> client_observer(7)
    'client:7'
    """
    return f"client:{int(client_id)}"


def parse_client_observer(observer: str) -> int:
    """Return the client id in an observer name like ``"client:7"``.

    Raises:
        ValueError: ``observer`` is not of the form ``client:<id>``.

    >>> parse_client_observer("client:7")
    7
    """
    prefix, _, number = observer.partition(":")
    if prefix != "client" or not number.isdigit():
        raise ValueError(f"observer must look like 'client:<id>', got {observer!r}")
    return int(number)


# -- what an observer holds itself: RoundView.own ------------------------------------

OwnKey = Literal["update", "sent", "data_indices", "clipped_values", "model_share", "buffers"]

OWN_KEYS: Mapping[OwnKey, str] = MappingProxyType[OwnKey, str](
    {
        "update": "the participant's true local update, local minus global model, [P]; "
        "client:<id> under every scheme that opens updates (all but mpc)",
        "sent": "the vector the participant handed to the protocol after its own clipping, compression or "
        "noise, [P]; client:<id> under dp and under compositions with client mechanisms",
        "data_indices": "dataset indices of the samples the participant holds, int64 [n]; "
        "client:<id> under every scheme",
        "clipped_values": "how many coordinates the fixed-point encoding clipped, int 0-dim; "
        "client:<id> under secagg and secagg+",
        "model_share": "the model share kept by the computing party the server runs, ring words as int64 [P']; "
        "server under mpc with the secureml backend",
        "buffers": "the participant's model buffers after its local training (batch-norm running statistics), "
        "float32 [B], sent with its update; client:<id> for a model with buffers, wherever it holds its update",
    }
)
"""Every key of ``RoundView.own``: what the value is, and which observers get it."""

# -- what arrived: RoundView.received -------------------------------------------------

SenderKind = Literal["update", "buffers", "ciphertext", "keys", "masked", "unmask"]
"""Messages filed per sender, as ``"<kind>:client:<id>"`` (see :func:`sender_key`)."""
ReceivedKind = Literal["aggregate", "public_context", "share", SenderKind]
_SENDER_KINDS: tuple[SenderKind, ...] = get_args(SenderKind)
_SINGLE_KINDS: tuple[str, ...] = ("aggregate", "public_context")

RECEIVED_KEYS: Mapping[str, str] = MappingProxyType(
    {
        "aggregate": "the aggregate of the arriving uploads: the decoded update, [P] (server under secagg "
        "and secagg+), or the summed ciphertext, bytes (server, eavesdropper and arriving clients under he)",
        "public_context": "the CKKS public context (parameters and public key), bytes; server and eavesdropper "
        "under he",
        "update:client:<id>": "a client's upload in the clear, [P] (clipped under dp, transformed under client "
        "mechanisms); server and eavesdropper under plain and dp",
        "buffers:client:<id>": "a client's model buffers after its local training, float32 [B], sent in the "
        "clear beside its update as FL frameworks send a state_dict; wherever update:client:<id> arrives",
        "ciphertext:client:<id>": "a client's encrypted upload [n u, n], bytes; server and eavesdropper under he",
        "keys:client:<id>": "a client's advertised public keys, bytes; server, eavesdropper and every client "
        "under secagg and secagg+",
        "masked:client:<id>": "a client's masked input, raw ring words, bytes; server and eavesdropper under "
        "secagg and secagg+",
        "unmask:client:<id>": "a client's answer to the unmasking request (revealed shares), bytes; server and "
        "eavesdropper under secagg and secagg+",
        "share:client:<id>->client:<id>": "an encrypted secret share from its sender to its recipient, bytes; "
        "server, eavesdropper and the recipient under secagg and secagg+",
    }
)
"""Every pattern of ``RoundView.received`` keys (``<id>`` a client id): the value, and who gets it."""


@dataclass(frozen=True)
class ReceivedKey:
    """A ``received`` key taken apart: what the message is, and between whom it went.

    Attributes:
        kind: ``"aggregate"``, ``"public_context"``, ``"share"`` or a :data:`SenderKind`.
        sender: the sending client (``None`` for ``aggregate`` and ``public_context``).
        recipient: the receiving client of a ``share`` (``None`` otherwise).
    """

    kind: ReceivedKind
    sender: int | None = None
    recipient: int | None = None

    def __str__(self) -> str:
        if self.sender is None:
            return self.kind
        if self.recipient is None:
            return f"{self.kind}:{client_observer(self.sender)}"
        return share_key(self.sender, self.recipient)


def sender_key(kind: SenderKind, client_id: int) -> str:
    """Return the ``received`` key of client ``client_id``'s message of ``kind``.

    >>> sender_key("masked", 3)
    'masked:client:3'
    """
    require_choice("kind", kind, _SENDER_KINDS)
    return f"{kind}:{client_observer(client_id)}"


def upload_key(client_id: int) -> str:
    """Return the ``received`` key of client ``client_id``'s upload in the clear.

    >>> upload_key(3)
    'update:client:3'
    """
    return sender_key("update", client_id)


def share_key(sender: int, recipient: int) -> str:
    """Return the ``received`` key of the encrypted share ``sender`` sent ``recipient``.

    >>> share_key(1, 4)
    'share:client:1->client:4'
    """
    return f"share:{client_observer(sender)}->{client_observer(recipient)}"


def parse_received_key(key: str) -> ReceivedKey:
    """Return what the ``received`` key ``key`` names.

    Raises:
        ValueError: ``key`` matches no pattern of :data:`RECEIVED_KEYS` (the message lists them).

    >>> parse_received_key("share:client:1->client:4")
    ReceivedKey(kind='share', sender=1, recipient=4)
    >>> parse_received_key("aggregate")
    ReceivedKey(kind='aggregate', sender=None, recipient=None)
    """
    if key in _SINGLE_KINDS:
        return ReceivedKey(key)  # type: ignore[arg-type]  # checked against the literal's values
    kind, _, rest = key.partition(":")
    try:
        if kind in _SENDER_KINDS:
            return ReceivedKey(kind, parse_client_observer(rest))
        if kind == "share":
            sender, arrow, recipient = rest.partition("->")
            if arrow:
                return ReceivedKey("share", parse_client_observer(sender), parse_client_observer(recipient))
    except ValueError:
        pass
    raise ValueError(f"received key {key!r} matches no declared pattern; choose one of: {', '.join(RECEIVED_KEYS)}")


def parse_upload_key(key: str) -> int:
    """Return the client id of an upload key like ``"update:client:3"``.

    Raises:
        ValueError: ``key`` is not an upload key.

    >>> parse_upload_key("update:client:3")
    3
    """
    parsed = parse_received_key(key)
    if parsed.kind != "update" or parsed.sender is None:
        raise ValueError(f"upload key must look like 'update:client:<id>', got {key!r}")
    return parsed.sender


# -- what the observer was told: RoundView.public -------------------------------------

PublicKey = Literal[
    # the round, published by the simulator
    "algorithm",
    "lr",
    "local_epochs",
    "batch_size",
    "server_lr",
    "weighting",
    "loss",
    # aggregation
    "weights",
    "total_weight",
    "expected_clients",
    "aborted",
    "checks",
    "active_attack",
    "active_powers",
    # differential privacy
    "clip_norm",
    "noise_multiplier",
    "delta",
    "accountant",
    "epsilon",
    "epsilon_vs_server",
    "ldp_clip_norm",
    "ldp_noise_multiplier",
    "ldp_delta",
    "ldp_accountant",
    "ldp_epsilon",
    "ddp_clip_norm",
    "ddp_noise_multiplier",
    "ddp_delta",
    "ddp_accountant",
    "ddp_min_summands",
    "ddp_lattice_step",
    "ddp_sensitivity",
    # compression
    "compression_method",
    "compression_keep",
    "compression_bits",
    # secure aggregation
    "ring_bits",
    "clip_range",
    "quantization_step",
    "threshold",
    "neighbours",
    # homomorphic aggregation
    "scheme",
    "poly_modulus_degree",
    "coeff_mod_bit_sizes",
    "scale_bits",
    # MPC
    "mpc_backend",
    "mpc_backend_description",
]

_TOLD = "the server and the participants that finish the round"
_DDP = "under ddp compositions"
PUBLIC_KEYS: Mapping[PublicKey, str] = MappingProxyType[PublicKey, str](
    {
        "algorithm": f'"fedsgd" or "fedavg"; {_TOLD} (every observer but the eavesdropper; all under mpc)',
        "lr": f"the clients' learning rate; {_TOLD}",
        "local_epochs": f"local epochs per round (FedAvg); {_TOLD}",
        "batch_size": f"local batch size, None for the full local data; {_TOLD}",
        "server_lr": f"the global step size on the aggregated update; {_TOLD}",
        "weighting": f'the aggregation rule: "sample_count", "uniform" or "expected_clients"; {_TOLD}',
        "loss": f"the local training loss; {_TOLD}",
        "weights": 'the arriving clients\' aggregation weights, {"<id>": weight}; server and arriving clients '
        "under plain",
        "total_weight": "the summed weight of the arriving clients, as decoded; server under secagg and secagg+, "
        "arriving clients under he",
        "expected_clients": "the fixed denominator of the aggregate (clients per round); under dp",
        "aborted": "why the round aborted (the model is unchanged); the round record only",
        "checks": "the clients' checks against an active server, comma-separated; under secagg and secagg+ with "
        "checks",
        "active_attack": "the deviation an active server played this round; malicious_server only",
        "active_powers": "the powers that deviation used, comma-separated (per_client_models, survivor_lists, "
        "key_rosters, sybil_clients, ...); malicious_server only",
        "clip_norm": "L2 clipping bound of central DP; under dp",
        "noise_multiplier": "noise std over the clipping bound of central DP; under dp",
        "delta": "the delta of the reported epsilon; under dp and ddp",
        "accountant": 'the privacy accountant, "rdp" or "pld"; under dp',
        "epsilon": "cumulative epsilon against observers of the released models after this round; under dp and ddp",
        "epsilon_vs_server": f"cumulative epsilon against the server, without sampling amplification; {_DDP}",
        "ldp_clip_norm": "L2 clipping bound of local DP; under ldp compositions",
        "ldp_noise_multiplier": "noise std over the clipping bound of local DP; under ldp compositions",
        "ldp_delta": "the delta of ldp_epsilon; under ldp compositions",
        "ldp_accountant": "the privacy accountant of local DP; under ldp compositions",
        "ldp_epsilon": "cumulative local-DP epsilon of a client that reported every round; under ldp compositions",
        "ddp_clip_norm": f"L2 clipping bound of distributed DP; {_DDP}",
        "ddp_noise_multiplier": f"total noise std over the clipping bound of distributed DP; {_DDP}",
        "ddp_delta": f"the delta of distributed DP; {_DDP}",
        "ddp_accountant": f"the privacy accountant of distributed DP; {_DDP}",
        "ddp_min_summands": f"the fewest clients in any released sum, over which the noise is split; {_DDP}",
        "ddp_lattice_step": f"the grid step inputs are rounded to, None on reals; {_DDP}",
        "ddp_sensitivity": f"the L2 bound on one client's contribution after rounding; {_DDP}",
        "compression_method": 'the compression, "topk" or "quantize"; under compression compositions',
        "compression_keep": "fraction of coordinates top-k keeps; under compression compositions",
        "compression_bits": "bits per quantised coordinate; under compression compositions",
        "ring_bits": "k of the ring Z_(2^k) the masked inputs live in; under secagg and secagg+",
        "clip_range": "each coordinate is clipped to [-clip_range, clip_range]; under secagg and secagg+",
        "quantization_step": "the fixed-point step of the encoding; under secagg and secagg+",
        "threshold": "shares needed to rebuild a secret, the fewest clients that may remain; under secagg and secagg+",
        "neighbours": "how many peers each client masks with this round; under secagg and secagg+",
        "scheme": "the scheme's name; under he",
        "poly_modulus_degree": "CKKS ring dimension; under he",
        "coeff_mod_bit_sizes": "bit sizes of the CKKS coefficient-modulus primes; under he",
        "scale_bits": "CKKS scale 2**scale_bits; under he",
        "mpc_backend": "the backend that ran, a key of defenses.mpc.MPC_BACKENDS; every observer under mpc",
        "mpc_backend_description": "a one-line description of the backend that ran; the round record only, under mpc",
    }
)
"""Every key of ``RoundView.public``: what the value is, and which observers are told it."""


def check_view_keys(
    observer: str,
    own: Mapping[str, object],
    received: Mapping[str, object],
    public: Mapping[str, object],
) -> None:
    """Check that every key of a view is declared in this module's vocabulary.

    Raises:
        ValueError: an ``own`` or ``public`` key is not declared, or a ``received`` key
            matches no declared pattern; the message names the key and the choices.

    >>> check_view_keys("client:0", {"gradient": None}, {}, {"lr": 0.1})
    Traceback (most recent call last):
    ...
    ValueError: own key 'gradient' of observer 'client:0' is not declared in leakage.views.OWN_KEYS; \
choose one of: buffers, clipped_values, data_indices, model_share, sent, update
    """
    for kind, keys, declared in (("own", own, OWN_KEYS), ("public", public, PUBLIC_KEYS)):
        for key in keys:
            if key not in declared:
                raise ValueError(
                    f"{kind} key {key!r} of observer {observer!r} is not declared in "
                    f"leakage.views.{kind.upper()}_KEYS; choose one of: {', '.join(sorted(declared))}"
                )
    for key in received:
        try:
            parse_received_key(key)
        except ValueError:
            raise ValueError(
                f"received key {key!r} of observer {observer!r} matches no declared pattern in "
                f"leakage.views.RECEIVED_KEYS; choose one of: {', '.join(RECEIVED_KEYS)}"
            ) from None


@dataclass(frozen=True)
class RoundView:
    """What one observer really saw in one round, and nothing more.

    Attributes:
        round_index: 0-based round number.
        observer: ``"server"``, ``"client:<id>"``, ``"eavesdropper"`` or ``"public"``.
        params_before: the global model broadcast at the start of the round (flat
            ``[P]``), or ``None`` if this observer did not receive it.
        params_after: the global model released at the end of the round (flat ``[P]``),
            or ``None`` if this observer did not receive it.
        received: messages exactly as they arrived, keyed by what they are
            (``"update:client:3"``, ``"aggregate"``, ...: :data:`RECEIVED_KEYS`):
            plaintext updates, masked vectors or ciphertext bytes, depending on the scheme.
        own: what the observer itself holds (a participant's own ``"update"`` ``[P]``
            and ``"data_indices"``...: :data:`OWN_KEYS`); empty for the eavesdropper
            and public.
        participants: client ids whose contribution entered the aggregate, as this
            observer knows them (empty if it cannot know).
        public: public parameters of the round this observer was told (learning
            rate, local steps, batch size, aggregation weights, scheme parameters:
            :data:`PUBLIC_KEYS`).
        buffers_before, buffers_after: the global model's buffers (batch-norm running
            statistics, flat float32 ``[B]``) broadcast and released with
            ``params_before`` and ``params_after``; ``None`` where the observer did not
            get that model, or the model has no buffers.

    Raises:
        ValueError: a key of ``own``, ``received`` or ``public`` is not declared.
    """

    round_index: int
    observer: str
    params_before: Tensor | None
    params_after: Tensor | None
    received: Mapping[str, Message] = field(default_factory=dict)
    own: Mapping[str, Tensor] = field(default_factory=dict)
    participants: frozenset[int] = frozenset()
    public: Mapping[str, PublicValue] = field(default_factory=dict)
    buffers_before: Tensor | None = None
    buffers_after: Tensor | None = None

    def __post_init__(self) -> None:
        check_view_keys(self.observer, self.own, self.received, self.public)

    @property
    def server_lr(self) -> float | None:
        """The global step size this observer was told (``public["server_lr"]``), or ``None`` if not disclosed."""
        value = self.public.get("server_lr")
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    def model_change(self) -> Tensor:
        """Return the aggregated update the round applied, ``(params_after - params_before) / server_lr``.

        The result is float64 ``[P]``.

        The one server-lr policy of the toolkit: the disclosed ``server_lr``, else 1 (the
        FedAvg default). An attack that relies on the fallback names it as an assumption
        (``server_lr is None``).

        Raises:
            ThreatModelError: the observer did not see both global models of the round.

        >>> view = RoundView(0, "server", torch.zeros(2), torch.tensor([1.0, 2.0]), public={"server_lr": 2.0})
        >>> view.model_change()
        tensor([0.5000, 1.0000], dtype=torch.float64)
        """
        if self.params_before is None or self.params_after is None:
            raise ThreatModelError(
                f"observer {self.observer!r} did not see both global models of round {self.round_index}"
            )
        server_lr = self.server_lr
        change = self.params_after.to(torch.float64) - self.params_before.to(torch.float64)
        return change if server_lr is None else change / server_lr

    def to_dict(self) -> dict[str, object]:
        """Plain-data form (tensors, bytes, lists, dicts) for serialisation."""
        return {
            "round_index": self.round_index,
            "observer": self.observer,
            "params_before": self.params_before,
            "params_after": self.params_after,
            "received": dict(self.received),
            "own": dict(self.own),
            "participants": sorted(self.participants),
            "public": dict(self.public),
            "buffers_before": self.buffers_before,
            "buffers_after": self.buffers_after,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RoundView:
        """Inverse of :meth:`to_dict`."""
        return cls(
            round_index=int(data["round_index"]),
            observer=str(data["observer"]),
            params_before=data["params_before"],
            params_after=data["params_after"],
            received=dict(data["received"]),
            own=dict(data["own"]),
            participants=frozenset(int(c) for c in data["participants"]),
            public=dict(data["public"]),
            buffers_before=data.get("buffers_before"),
            buffers_after=data.get("buffers_after"),
        )


def released_model_view(round_index: int, params_after: Tensor) -> RoundView:
    """Return the ``public`` observer's view: the released final model and nothing else.

    >>> import torch
    >>> released_model_view(4, torch.zeros(2)).observer
    'public'
    """
    return RoundView(round_index=round_index, observer=PUBLIC, params_before=None, params_after=params_after)
