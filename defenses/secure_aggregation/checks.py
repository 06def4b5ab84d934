"""Client-side checks against an active server, each a change to the protocol a client runs.

The semi-honest protocol (:mod:`defenses.secure_aggregation.protocol`) trusts the server
for four things an active server can abuse: the model it sends, the public keys it
relays, the survivor list it announces, and the threshold it sets. A client holding
:class:`ClientChecks` stops trusting them:

- ``bind_model``: the digest of the model the client received (:func:`model_digest`) is
  mixed into the salt of every key it derives (share encryption and mask seeds) and into
  the associated data of every share it encrypts. Two clients holding different models
  derive different keys: their shares fail authentication at the first relay, and the
  client refuses before it sends any masked input (no extra round).
- ``directory``: public signature keys (Ed25519) of the round's clients, from a source
  the server does not control (a PKI, device attestation). Every key advertisement must
  carry a valid signature by its sender's directory key; a client refuses a roster with
  a key the server made (key substitution).
- ``consistency_round`` (Bonawitz et al. 2017, section 4, ConsistencyCheck): after the
  masked inputs, every client signs the survivor list it was shown; before unmasking it
  requires ``t`` valid signatures on exactly that list, by signers on it. It needs a
  ``directory``.
- ``assumed_corrupt``: the number ``c`` of server-controlled clients the client guards
  against; it refuses a threshold ``t <= (n + c) / 2`` for its sharing group of ``n``
  (itself and its neighbours), the condition under which a server can collect both of a
  client's secrets by telling half of its shareholders it survived and half it dropped.

A client whose check fails raises
:class:`~defenses.secure_aggregation.protocol.ClientRefused` (a
``SecureAggregationAborted``): it stops taking
part, and when too few clients remain the round aborts with the model unchanged.
``announced_architecture`` is the simple model vetting the simulation layer applies: a
client refuses a model whose architecture digest (:func:`architecture_digest`) differs
from the one announced before the round.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import torch
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from torch import Tensor, nn

__all__ = [
    "CHECK_NAMES",
    "ClientChecks",
    "SigningKey",
    "architecture_digest",
    "model_digest",
    "sign",
    "survivor_list_bytes",
    "verify",
]

#: The checks by name, as specs and benchmarks spell them.
CHECK_NAMES: tuple[str, ...] = ("bind_model", "signed_keys", "consistency_round", "min_threshold", "vet_model")


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 key pair of one client's long-term identity.

    Attributes:
        secret: the 32-byte private key.
        public: the 32-byte public key (what a directory lists).
    """

    secret: bytes = field(repr=False)
    public: bytes

    @classmethod
    def from_secret(cls, secret: bytes) -> SigningKey:
        """The key pair of the 32-byte private key ``secret``."""
        private = Ed25519PrivateKey.from_private_bytes(secret)
        public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return cls(secret, public)


def sign(key: SigningKey, message: bytes) -> bytes:
    """Return the 64-byte Ed25519 signature of ``message``."""
    return Ed25519PrivateKey.from_private_bytes(key.secret).sign(message)


def verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is ``public``'s valid signature of ``message``.

    >>> import os
    >>> key = SigningKey.from_secret(os.urandom(32))
    >>> verify(key.public, b"m", sign(key, b"m")), verify(key.public, b"n", sign(key, b"m"))
    (True, False)
    """
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def survivor_list_bytes(session: bytes, survivors: Iterable[int]) -> bytes:
    """The message a client signs in the consistency round: the session and the sorted survivor list."""
    return b"consistency/" + session + b"".join(c.to_bytes(4, "big") for c in sorted(survivors))


def model_digest(params: Tensor, *, architecture: bytes = b"") -> bytes:
    """SHA-256 of a model as a client received it: its architecture digest and parameter bytes.

    >>> zeros = model_digest(torch.zeros(3))
    >>> zeros == model_digest(torch.zeros(3)), zeros == model_digest(torch.ones(3))
    (True, False)
    """
    flat = params.detach().to("cpu", torch.float64).contiguous()
    return hashlib.sha256(b"model/" + architecture + flat.numpy().tobytes()).digest()


def architecture_digest(model: nn.Module) -> bytes:
    """SHA-256 of a model's architecture: its modules' printed form and its parameters' names and shapes.

    >>> architecture_digest(nn.Linear(2, 3)) == architecture_digest(nn.Linear(2, 3))
    True
    >>> architecture_digest(nn.Linear(2, 3)) == architecture_digest(nn.Linear(3, 3))
    False
    """
    described = repr(model) + "".join(f"|{name}:{tuple(p.shape)}" for name, p in model.named_parameters())
    return hashlib.sha256(described.encode()).digest()


@dataclass(frozen=True)
class ClientChecks:
    """The checks a client runs against the server (see the module docstring); all off by default.

    Attributes:
        bind_model: mix the received model's digest into every key and share.
        directory: each client's public signature key; advertisements must be signed by it.
        consistency_round: sign the survivor list and require ``t`` signatures on it.
        assumed_corrupt: refuse a threshold ``t <= (n + c) / 2`` for ``c = assumed_corrupt``.
        announced_architecture: refuse a model whose :func:`architecture_digest` differs.
    """

    bind_model: bool = False
    directory: Mapping[int, bytes] | None = None
    consistency_round: bool = False
    assumed_corrupt: int | None = None
    announced_architecture: bytes | None = None

    def __post_init__(self) -> None:
        from leakage.errors import ConfigError

        if self.consistency_round and self.directory is None:
            raise ConfigError("consistency_round needs a directory of the clients' signature keys to check "
                              "the signatures against")
        if self.assumed_corrupt is not None and (not isinstance(self.assumed_corrupt, int)
                                                 or isinstance(self.assumed_corrupt, bool)
                                                 or self.assumed_corrupt < 0):
            raise ConfigError(f"assumed_corrupt must be an integer >= 0 or None, got {self.assumed_corrupt!r}")

    @property
    def names(self) -> tuple[str, ...]:
        """The checks switched on, by :data:`CHECK_NAMES`."""
        on = {"bind_model": self.bind_model, "signed_keys": self.directory is not None,
              "consistency_round": self.consistency_round, "min_threshold": self.assumed_corrupt is not None,
              "vet_model": self.announced_architecture is not None}
        return tuple(name for name in CHECK_NAMES if on[name])

    def refuses_threshold(self, threshold: int, group: int) -> str | None:
        """Why a client with a sharing group of ``group`` refuses ``threshold``, or ``None``."""
        if self.assumed_corrupt is None or 2 * threshold > group + self.assumed_corrupt:
            return None
        return (f"threshold {threshold} is at most (n + c) / 2 = ({group} + {self.assumed_corrupt}) / 2: "
                f"{self.assumed_corrupt} corrupt clients could collect both of a client's secrets")
