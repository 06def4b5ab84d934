"""The secure aggregation protocol of Bonawitz et al., run message by message.

Bonawitz, Ivanov, Kreuter, Marcedone, McMahan, Patel, Ramage, Segal, Seth (CCS 2017),
"Practical Secure Aggregation for Privacy-Preserving Machine Learning", semi-honest
server version, with the neighbourhoods of SecAgg+ (Bell et al., CCS 2020) as an option.
Client ``u`` with input ``x_u`` (a vector in ``Z_(2^k)``) and neighbours ``N(u)``:

0. *AdvertiseKeys*: sends two X25519 public keys, ``c_u`` (to encrypt shares) and
   ``s_u`` (to agree mask seeds). The server forwards the list ``U1`` of senders.
1. *ShareKeys*: draws a self-mask seed ``b_u``, splits ``b_u`` and the private key
   ``s_u^SK`` into ``t``-out-of-``|N(u)| + 1`` Shamir shares (one for itself, one per
   neighbour in ``U1``), encrypts each neighbour's pair under the key agreed from the
   ``c`` keys and sends the ciphertexts through the server. ``U2`` are the senders.
2. *MaskedInputCollection*: sends ``y_u = x_u + PRG(b_u) + sum_{v in N(u) & U2}
   sign(u, v) PRG(s_uv) mod 2^k`` with ``s_uv`` agreed from the ``s`` keys and
   ``sign(u, v) = +1`` if ``u < v`` else ``-1``, so pairwise masks cancel in the sum.
   ``U3`` are the senders; their inputs are the ones aggregated.
3. *Unmasking*: each client still online reveals, for every neighbour ``v`` in ``U2``,
   its share of ``b_v`` if ``v`` is in ``U3`` and its share of ``s_v^SK`` otherwise,
   never both. From ``t`` shares per secret the server removes the self masks of
   ``U3`` and the pairwise masks that ``U3`` clients shared with the dropped ones.

Clients may drop at any stage: a client that never advertised keys or never sent its
shares is simply left out of every mask (the round goes on), and one that drops
later is recovered from its neighbours' shares. Whenever fewer than ``t`` clients are
left, or a secret cannot be rebuilt from ``t`` shares, the round aborts with
:class:`SecureAggregationAborted`. Every message names its session; the server
rejects messages from another session, duplicates and malformed inputs with
:class:`ProtocolViolation`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from functools import partial
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from defenses.secure_aggregation.checks import ClientChecks, SigningKey, sign, survivor_list_bytes, verify
from defenses.secure_aggregation.crypto import KeyPair, agree, decrypt_for, encrypt_for
from defenses.secure_aggregation.prg import MaskExpander
from defenses.secure_aggregation.shamir import (
    lagrange_coefficients,
    reconstruct_secret,
    share_from_bytes,
    share_to_bytes,
    split_secret,
)

__all__ = [
    "ClientRefused",
    "EncryptedShare",
    "KeyAdvertisement",
    "MaskedInput",
    "ProtocolConfig",
    "ProtocolResult",
    "ProtocolViolation",
    "SecAggClient",
    "SecAggServer",
    "SecureAggregationAborted",
    "Stage",
    "SurvivorSignature",
    "UnmaskingResponse",
    "run_protocol",
]

Entropy = Callable[[int], bytes]
RingVector = NDArray[np.unsignedinteger]


class Stage(IntEnum):
    """Protocol stages; a client that drops at a stage sends nothing from it on."""

    ADVERTISE = 0
    SHARE = 1
    MASKED_INPUT = 2
    UNMASK = 3


class SecureAggregationAborted(RuntimeError):
    """The round cannot complete: too few clients or shares are left."""


class ClientRefused(SecureAggregationAborted):
    """A client's check against the server failed (:mod:`defenses.secure_aggregation.checks`): it stops."""


class ProtocolViolation(ValueError):
    """A message is duplicated, replayed from another session, misaddressed or malformed."""


@dataclass(frozen=True)
class ProtocolConfig:
    """What every party of one round knows before it starts.

    Attributes:
        session: unique identifier of this round; bound into every message and key.
        ring_bits: inputs and masks live in ``Z_(2^ring_bits)``.
        length: ring elements per input vector.
        threshold: ``t``: shares needed to rebuild any secret, and the fewest clients
            that may remain at any stage.
        neighbours: ``N(u)`` for each client of the round (symmetric).
        model_digest: the digest of the model the server says it sent; where clients bind
            their keys to the model they received (``ClientChecks.bind_model``), the server
            derives the dropped clients' mask seeds with it. Empty when nobody binds.
    """

    session: bytes
    ring_bits: int
    length: int
    threshold: int
    neighbours: Mapping[int, frozenset[int]]
    model_digest: bytes = b""

    @property
    def key_salt(self) -> bytes:
        """The salt of the server's key derivations: the session, bound to the announced model."""
        return self.session + self.model_digest

    @property
    def dtype(self) -> type[np.unsignedinteger]:
        """Word type of the ring elements."""
        return np.uint32 if self.ring_bits <= 32 else np.uint64

    def reduce(self, vector: RingVector) -> RingVector:
        """Reduce words modulo ``2**ring_bits`` in place and return them."""
        if self.ring_bits not in (32, 64):
            np.bitwise_and(vector, self.dtype((1 << self.ring_bits) - 1), out=vector)
        return vector


@dataclass(frozen=True)
class KeyAdvertisement:
    """Stage 0 message: a client's two public keys."""

    session: bytes
    sender: int
    cipher_public: bytes
    mask_public: bytes
    signature: bytes = b""  # by the sender's directory key over advertisement_bytes(), where clients sign

    def to_bytes(self) -> bytes:
        """Return the wire encoding (the two 32-byte public keys, then the signature if any)."""
        return self.cipher_public + self.mask_public + self.signature

    def signed_bytes(self) -> bytes:
        """What the sender signs: the session, its id and both keys."""
        return b"advertise/" + self.session + self.sender.to_bytes(4, "big") + self.cipher_public + self.mask_public


@dataclass(frozen=True)
class SurvivorSignature:
    """Consistency-round message: a client's signature of the survivor list it was shown."""

    session: bytes
    sender: int
    signature: bytes


@dataclass(frozen=True)
class EncryptedShare:
    """Stage 1 message: shares of ``sender``'s secrets for ``recipient``, encrypted end to end."""

    session: bytes
    sender: int
    recipient: int
    ciphertext: bytes


@dataclass(frozen=True)
class MaskedInput:
    """Stage 2 message: a client's masked input vector."""

    session: bytes
    sender: int
    vector: RingVector


@dataclass(frozen=True)
class UnmaskingResponse:
    """Stage 3 message: shares of neighbours' self-mask seeds (survivors) or mask keys (dropped)."""

    session: bytes
    sender: int
    self_mask_shares: Mapping[int, int]
    mask_key_shares: Mapping[int, int]

    def to_bytes(self) -> bytes:
        """Return the wire encoding: (owner, kind, share) records."""
        records = [(owner, b"b", share) for owner, share in sorted(self.self_mask_shares.items())]
        records += [(owner, b"s", share) for owner, share in sorted(self.mask_key_shares.items())]
        return b"".join(owner.to_bytes(4, "big") + kind + share_to_bytes(share) for owner, kind, share in records)


def _sign(owner: int, peer: int) -> int:
    return 1 if owner < peer else -1


def _share_associated(session: bytes, sender: int, recipient: int) -> bytes:
    return session + sender.to_bytes(4, "big") + recipient.to_bytes(4, "big")


class SecAggClient:
    """One client's side of the protocol; its methods are the four stages in order.

    Args:
        client_id: this client's id (a key of ``config.neighbours``).
        config: the round's public configuration.
        value: this client's input, ``config.length`` ring elements.
        entropy: source of secret randomness (``os.urandom``); tests may pass a
            deterministic one.
        checks: the client's checks against the server (none by default).
        model_digest: the digest of the model this client received (``checks.bind_model``).
        signing_key: this client's identity key, listed in ``checks.directory``; it signs
            the key advertisement and the survivor list.
    """

    def __init__(
        self,
        client_id: int,
        config: ProtocolConfig,
        value: RingVector,
        *,
        entropy: Entropy = os.urandom,
        checks: ClientChecks | None = None,
        model_digest: bytes = b"",
        signing_key: SigningKey | None = None,
    ) -> None:
        if value.shape != (config.length,):
            raise ProtocolViolation(f"client {client_id}: input has shape {value.shape}, expected ({config.length},)")
        self.client_id = client_id
        self.config = config
        self._value = value
        self._entropy = entropy
        self.checks = checks if checks is not None else ClientChecks()
        self._signing_key = signing_key
        if self.checks.directory is not None and signing_key is None:
            raise ProtocolViolation(f"client {client_id}: a directory of signature keys needs the client's own "
                                    "signing_key")
        # every key this client derives is bound to the model it holds when it checks that
        self._salt = config.session + (model_digest if self.checks.bind_model else b"")
        self._signed_survivors: frozenset[int] | None = None
        self._neighbours = config.neighbours[client_id]
        self._cipher_keys: KeyPair | None = None
        self._mask_keys: KeyPair | None = None
        self._roster: dict[int, KeyAdvertisement] = {}
        self._channel_keys: dict[int, bytes] = {}
        self._own_shares: tuple[int, int] = (0, 0)
        self._held: dict[int, tuple[int, int]] = {}  # owner -> (share of s^SK, share of b)
        self._self_seed = b""
        self._u2: frozenset[int] = frozenset()
        self._revealed = False
        self.expander = MaskExpander(config.length, config.dtype)

    def _refuse(self, why: str) -> ClientRefused:
        return ClientRefused(f"client {self.client_id} refused: {why}")

    def advertise_keys(self) -> KeyAdvertisement:
        """Stage 0: generate and return the two public keys (signed where the client has an identity key).

        Raises:
            ClientRefused: the threshold is too low for the corruption the client guards against.
        """
        group = len(self._neighbours | {self.client_id})
        why = self.checks.refuses_threshold(self.config.threshold, group)
        if why is not None:
            raise self._refuse(why)
        self._cipher_keys = KeyPair.generate(self._entropy)
        self._mask_keys = KeyPair.generate(self._entropy)
        advert = KeyAdvertisement(self.config.session, self.client_id, self._cipher_keys.public,
                                  self._mask_keys.public)
        if self._signing_key is not None:
            advert = KeyAdvertisement(advert.session, advert.sender, advert.cipher_public, advert.mask_public,
                                      sign(self._signing_key, advert.signed_bytes()))
        return advert

    def _check_signatures(self, roster: Mapping[int, KeyAdvertisement], holders: Sequence[int]) -> None:
        """Refuse a roster entry of a shareholder not signed by its directory key."""
        directory = self.checks.directory
        if directory is None:
            return
        for peer in holders:
            if peer == self.client_id:
                continue
            advert, public = roster[peer], directory.get(peer)
            if public is None:
                raise self._refuse(f"client {peer} is not in the directory of signature keys")
            if advert.sender != peer or advert.session != self.config.session or not verify(
                    public, advert.signed_bytes(), advert.signature):
                raise self._refuse(f"the keys advertised for client {peer} are not signed by its directory key "
                                   "(substituted by the server?)")

    def share_keys(self, roster: Mapping[int, KeyAdvertisement]) -> list[EncryptedShare]:
        """Stage 1: share ``s^SK`` and ``b`` among the neighbours in ``roster`` (``U1``).

        Raises:
            SecureAggregationAborted: fewer than ``t`` shareholders remain.
        """
        assert self._cipher_keys is not None and self._mask_keys is not None
        holders = sorted((set(roster) & self._neighbours) | {self.client_id})
        if len(holders) < self.config.threshold:
            raise SecureAggregationAborted(
                f"client {self.client_id}: only {len(holders)} of its shareholders advertised keys, "
                f"threshold {self.config.threshold}"
            )
        self._check_signatures(roster, holders)
        self._roster = {v: roster[v] for v in holders if v != self.client_id}
        self._channel_keys = {
            v: agree(self._cipher_keys, advert.cipher_public, purpose=b"share", session=self._salt)
            for v, advert in self._roster.items()
        }
        self._self_seed = self._entropy(32)
        xs = [v + 1 for v in holders]
        key_shares = split_secret(self._mask_keys.secret, self.config.threshold, xs, self._entropy)
        seed_shares = split_secret(self._self_seed, self.config.threshold, xs, self._entropy)
        self._own_shares = (key_shares[self.client_id + 1], seed_shares[self.client_id + 1])
        messages = []
        for peer, key in self._channel_keys.items():
            plaintext = share_to_bytes(key_shares[peer + 1]) + share_to_bytes(seed_shares[peer + 1])
            associated = _share_associated(self._salt, self.client_id, peer)
            ciphertext = encrypt_for(key, plaintext, associated=associated, entropy=self._entropy)
            messages.append(EncryptedShare(self.config.session, self.client_id, peer, ciphertext))
        return messages

    def masked_input(self, shares: Sequence[EncryptedShare]) -> MaskedInput:
        """Stage 2: keep the shares received from ``U2`` and return the masked input.

        Raises:
            ProtocolViolation: a share is not for this client or fails authentication.
            SecureAggregationAborted: fewer than ``t`` shareholders remain.
        """
        assert self._cipher_keys is not None and self._mask_keys is not None
        for message in shares:
            if message.recipient != self.client_id or message.sender not in self._roster:
                raise ProtocolViolation(f"client {self.client_id}: share from {message.sender} was not meant for it")
            if message.sender in self._held:
                raise ProtocolViolation(f"client {self.client_id}: a second share from client {message.sender}")
            try:
                plaintext = decrypt_for(
                    self._channel_keys[message.sender],
                    message.ciphertext,
                    associated=_share_associated(self._salt, message.sender, self.client_id),
                )
            except ValueError as error:
                if self.checks.bind_model:  # keys bound to the model: the sender holds another model
                    raise self._refuse(f"the share from client {message.sender} does not authenticate under keys "
                                       "bound to this client's model: it holds another model") from None
                raise ProtocolViolation(
                    f"client {self.client_id}: share from client {message.sender}: {error}"
                ) from None
            self._held[message.sender] = (share_from_bytes(plaintext[:33]), share_from_bytes(plaintext[33:]))
        self._u2 = frozenset(self._held) | {self.client_id}
        if len(self._u2) < self.config.threshold:
            raise SecureAggregationAborted(
                f"client {self.client_id}: only {len(self._u2)} of its shareholders shared keys, "
                f"threshold {self.config.threshold}"
            )
        masked = self._value.copy()
        self.expander.add(masked, self._self_seed, sign=1)
        for peer in sorted(self._u2 - {self.client_id}):
            seed = agree(self._mask_keys, self._roster[peer].mask_public, purpose=b"mask", session=self._salt)
            self.expander.add(masked, seed, sign=_sign(self.client_id, peer))
        return MaskedInput(self.config.session, self.client_id, self.config.reduce(masked))

    def held_shares(self, owner: int) -> tuple[int, int] | None:
        """This client's shares of ``owner``'s ``(s^SK, b)``: what a client the server corrupted hands it."""
        return self._own_shares if owner == self.client_id else self._held.get(owner)

    @property
    def mask_public(self) -> bytes:
        """The public key this client agrees pairwise mask seeds with (after stage 0)."""
        assert self._mask_keys is not None
        return self._mask_keys.public

    def sign_survivors(self, survivors: frozenset[int]) -> SurvivorSignature:
        """Consistency round: sign the survivor list the server showed (``U3``).

        Raises:
            ProtocolViolation: this client has no identity key, or is not on the list.
            ClientRefused: the list holds a client that never shared keys with it.
        """
        if self._signing_key is None:
            raise ProtocolViolation(f"client {self.client_id}: the consistency round needs a signing_key")
        self._check_survivors(survivors)
        self._signed_survivors = survivors
        return SurvivorSignature(self.config.session, self.client_id,
                                 sign(self._signing_key, survivor_list_bytes(self.config.session, survivors)))

    def _check_survivors(self, survivors: frozenset[int]) -> None:
        if self.client_id not in survivors:
            raise ProtocolViolation(f"client {self.client_id}: its masked input is missing from the survivor list")
        strangers = survivors - self._u2 - (set(self.config.neighbours) - self._neighbours)
        if strangers:
            raise self._refuse(f"the survivor list names clients {sorted(strangers)[:5]} that never shared keys")

    def _check_consistency(self, survivors: frozenset[int], signatures: Mapping[int, bytes] | None) -> None:
        """Bonawitz et al.'s ConsistencyCheck: ``t`` valid signatures on exactly this list, by signers on it
        from the client's sharing group (every client under SecAgg, its neighbours under SecAgg+)."""
        directory = self.checks.directory
        assert directory is not None
        if self._signed_survivors != survivors:
            raise self._refuse("the survivor list to unmask differs from the one it signed")
        message = survivor_list_bytes(self.config.session, survivors)
        # signers among its own sharing group (everyone in SecAgg; its neighbours in SecAgg+), until t are valid
        group = (self._neighbours | {self.client_id}) & survivors
        valid = 0
        for signer, signature in sorted((signatures or {}).items()):
            if signer in group and signer in directory and verify(directory[signer], message, signature):
                valid += 1
                if valid == self.config.threshold:
                    break
        if valid < self.config.threshold:
            raise self._refuse(f"only {valid} clients signed the survivor list it was shown, threshold "
                               f"{self.config.threshold}: the server showed clients different lists")

    def unmask(self, survivors: frozenset[int], signatures: Mapping[int, bytes] | None = None) -> UnmaskingResponse:
        """Stage 3: reveal one share per neighbour in ``U2``: ``b`` if it survived, else ``s^SK``.

        With ``checks.consistency_round``, ``signatures`` are the survivor-list signatures the
        server relays (by signer); the client refuses unless ``t`` of them sign its list.

        Raises:
            ClientRefused: a check failed.
            ProtocolViolation: asked twice, or ``survivors`` (``U3``) is not a subset of ``U2``
                containing this client: an honest client reveals at most one secret per peer.
            SecureAggregationAborted: fewer than ``t`` survivors.
        """
        if self._revealed:
            raise ProtocolViolation(f"client {self.client_id}: already answered the unmasking request")
        if self.client_id not in survivors:
            raise ProtocolViolation(f"client {self.client_id}: its masked input is missing from the survivor list")
        if len(survivors) < self.config.threshold:
            raise SecureAggregationAborted(f"only {len(survivors)} survivors, threshold {self.config.threshold}")
        if self.checks.consistency_round:
            self._check_consistency(survivors, signatures)
        elif self.checks.directory is not None:
            self._check_survivors(survivors)
        self._revealed = True
        held = dict(self._held)
        held[self.client_id] = self._own_shares
        self_mask_shares = {}
        mask_key_shares = {}
        for owner, (key_share, seed_share) in held.items():
            if owner in survivors:
                self_mask_shares[owner] = seed_share
            else:
                mask_key_shares[owner] = key_share
        return UnmaskingResponse(self.config.session, self.client_id, self_mask_shares, mask_key_shares)


class SecAggServer:
    """The server's side: relays messages, tracks ``U1``..``U5`` and unmasks the sum.

    Args:
        config: the round's public configuration.
    """

    def __init__(self, config: ProtocolConfig) -> None:
        self.config = config
        self.roster: dict[int, KeyAdvertisement] = {}
        self.shares: dict[tuple[int, int], EncryptedShare] = {}
        self.masked: dict[int, MaskedInput] = {}
        self.responses: dict[int, UnmaskingResponse] = {}
        self.signatures: dict[int, bytes] = {}
        self.u2: frozenset[int] = frozenset()
        self.u3: frozenset[int] = frozenset()
        self.expander = MaskExpander(config.length, config.dtype)

    def _check(self, session: bytes, sender: int, stage: str) -> None:
        if session != self.config.session:
            raise ProtocolViolation(f"{stage} message from client {sender} belongs to another session (replayed)")
        if sender not in self.config.neighbours:
            raise ProtocolViolation(f"{stage} message from client {sender}, who is not in this round")

    def _require(self, count: int, stage: str) -> None:
        if count < self.config.threshold:
            raise SecureAggregationAborted(
                f"{stage}: only {count} clients remain, fewer than the threshold t={self.config.threshold}; "
                f"the round is aborted and the model is unchanged"
            )

    def receive_keys(self, messages: Iterable[KeyAdvertisement]) -> dict[int, KeyAdvertisement]:
        """Collect stage 0 and return the roster ``U1`` to broadcast."""
        for message in messages:
            self._check(message.session, message.sender, "key advertisement")
            if message.sender in self.roster:
                raise ProtocolViolation(f"duplicate key advertisement from client {message.sender}")
            if message.cipher_public == message.mask_public:
                raise ProtocolViolation(f"client {message.sender} advertised the same key twice")
            self.roster[message.sender] = message
        self._require(len(self.roster), "advertise keys")
        return dict(self.roster)

    def receive_shares(self, messages: Iterable[EncryptedShare]) -> dict[int, list[EncryptedShare]]:
        """Collect stage 1 and return, per client of ``U2``, the ciphertexts addressed to it."""
        for message in messages:
            self._check(message.session, message.sender, "share")
            pair = (message.sender, message.recipient)
            if message.sender not in self.roster or message.recipient not in self.roster:
                raise ProtocolViolation(
                    f"share from client {message.sender} to {message.recipient}: not both advertised keys"
                )
            if message.recipient not in self.config.neighbours[message.sender]:
                raise ProtocolViolation(
                    f"share from client {message.sender} to {message.recipient}, who is not its neighbour"
                )
            if pair in self.shares:
                raise ProtocolViolation(f"duplicate share from client {message.sender} to {message.recipient}")
            self.shares[pair] = message
        self.u2 = frozenset(sender for sender, _ in self.shares)
        self._require(len(self.u2), "share keys")
        inbox: dict[int, list[EncryptedShare]] = {u: [] for u in self.u2}
        for (_sender, recipient), message in sorted(self.shares.items()):
            if recipient in self.u2:
                inbox[recipient].append(message)
        return inbox

    def receive_masked_inputs(self, messages: Iterable[MaskedInput]) -> frozenset[int]:
        """Collect stage 2 and return the survivors ``U3`` whose inputs are aggregated."""
        for message in messages:
            self._check(message.session, message.sender, "masked input")
            if message.sender not in self.u2:
                raise ProtocolViolation(f"masked input from client {message.sender}, who did not share keys")
            if message.sender in self.masked:
                raise ProtocolViolation(f"duplicate masked input from client {message.sender}")
            if message.vector.shape != (self.config.length,) or message.vector.dtype != self.config.dtype:
                raise ProtocolViolation(
                    f"masked input from client {message.sender} has shape {message.vector.shape} and type "
                    f"{message.vector.dtype}, expected ({self.config.length},) of {np.dtype(self.config.dtype).name}"
                )
            self.masked[message.sender] = message
        self.u3 = frozenset(self.masked)
        self._require(len(self.u3), "masked input collection")
        return self.u3

    def receive_signatures(self, messages: Iterable[SurvivorSignature]) -> dict[int, bytes]:
        """Collect the consistency round's signatures and return them all, by signer, to relay to ``U3``."""
        for message in messages:
            self._check(message.session, message.sender, "survivor signature")
            if message.sender not in self.u3:
                raise ProtocolViolation(f"survivor signature from client {message.sender}, who is not a survivor")
            if message.sender in self.signatures:
                raise ProtocolViolation(f"duplicate survivor signature from client {message.sender}")
            self.signatures[message.sender] = message.signature
        self._require(len(self.signatures), "consistency check")
        return dict(self.signatures)

    def receive_unmasking(self, messages: Iterable[UnmaskingResponse]) -> RingVector:
        """Collect stage 3, rebuild the secrets and return ``sum_{u in U3} x_u mod 2^k``."""
        for message in messages:
            self._check(message.session, message.sender, "unmasking")
            if message.sender not in self.u3:
                raise ProtocolViolation(f"unmasking response from client {message.sender}, who is not a survivor")
            if message.sender in self.responses:
                raise ProtocolViolation(f"duplicate unmasking response from client {message.sender}")
            if set(message.self_mask_shares) & set(message.mask_key_shares):
                raise ProtocolViolation(f"client {message.sender} revealed both secrets of one client")
            self.responses[message.sender] = message
        self._require(len(self.responses), "unmasking")
        total = np.zeros(self.config.length, dtype=self.config.dtype)
        for masked in self.masked.values():
            np.add(total, masked.vector, out=total)
        seeds = self._rebuild({u: "b" for u in self.u3})
        for seed in seeds.values():
            self.expander.add(total, seed, sign=-1)
        dropped = {v for v in self.u2 - self.u3 if self.config.neighbours[v] & self.u3}
        keys = self._rebuild({v: "s" for v in dropped})
        for owner, secret in keys.items():
            pair = KeyPair.from_secret(secret)
            for peer in sorted(self.config.neighbours[owner] & self.u3):
                seed = agree(pair, self.roster[peer].mask_public, purpose=b"mask", session=self.config.key_salt)
                # Survivor ``peer`` added sign(peer, owner) * PRG(s); take it back out.
                self.expander.add(total, seed, sign=-_sign(peer, owner))
        return self.config.reduce(total)

    def _rebuild(self, wanted: Mapping[int, str]) -> dict[int, bytes]:
        """Return each wanted secret (``"b"`` self-mask seed or ``"s"`` mask key) from ``t`` shares."""
        threshold = self.config.threshold
        by_points: dict[tuple[int, ...], list[tuple[int, dict[int, int]]]] = {}
        for owner, kind in wanted.items():
            shares = {}
            for holder in sorted(self.config.neighbours[owner] | {owner}):
                response = self.responses.get(holder)
                if response is None:
                    continue
                table = response.self_mask_shares if kind == "b" else response.mask_key_shares
                if owner in table:
                    shares[holder + 1] = table[owner]
                if len(shares) == threshold:
                    break
            if len(shares) < threshold:
                what = "self-mask seed" if kind == "b" else "mask key"
                raise SecureAggregationAborted(
                    f"unmasking: only {len(shares)} shares of client {owner}'s {what} arrived, threshold {threshold}; "
                    f"the round is aborted and the model is unchanged"
                )
            by_points.setdefault(tuple(shares), []).append((owner, shares))
        secrets = {}
        for points, group in by_points.items():
            coefficients = lagrange_coefficients(points)  # once per set of responders
            for owner, shares in group:
                secrets[owner] = reconstruct_secret(shares, coefficients)
        return secrets


@dataclass(frozen=True)
class ProtocolResult:
    """Everything one run of the protocol produced, message by message.

    Attributes:
        total: ``sum_{u in U3} x_u mod 2^k``, or ``None`` if the round aborted.
        aborted: why the round aborted, or ``None``.
        roster: ``U1``'s key advertisements.
        shares: every encrypted share the server relayed, by ``(sender, recipient)``.
        masked: every masked input, by sender (``U3``).
        responses: every unmasking response, by sender.
        survivors: ``U3``: the clients whose inputs are in ``total``.
        online: clients that took part in every stage (they receive the result).
        refusals: why each client that refused to go on did (its checks failed).
        client_seconds: each client's compute time over all stages.
        server_seconds: the server's compute time.
        mask_bytes: PRG bytes each client generated for its masks.
        mask_seconds: time each client spent expanding and adding masks.
    """

    total: RingVector | None
    aborted: str | None
    roster: Mapping[int, KeyAdvertisement]
    shares: Mapping[tuple[int, int], EncryptedShare]
    masked: Mapping[int, MaskedInput]
    responses: Mapping[int, UnmaskingResponse]
    survivors: frozenset[int]
    online: frozenset[int]
    refusals: Mapping[int, str] = field(default_factory=dict)
    client_seconds: Mapping[int, float] = field(default_factory=dict)
    server_seconds: float = 0.0
    mask_bytes: Mapping[int, int] = field(default_factory=dict)
    mask_seconds: Mapping[int, float] = field(default_factory=dict)

    def upload_bytes_per_client(self) -> float:
        """Mean bytes a client that sent its masked input uploaded over the round.

        Its two public keys, its share ciphertexts, its masked vector and its unmasking
        answer (the answers are averaged over the same clients).
        """
        senders = list(self.masked)
        if not senders:
            return 0.0
        keys = 64 * len(senders)
        shares = sum(len(s.ciphertext) for (sender, _), s in self.shares.items() if sender in self.masked)
        vectors = sum(m.vector.nbytes for m in self.masked.values())
        answers = sum(len(r.to_bytes()) for r in self.responses.values())
        return (keys + shares + vectors + answers) / len(senders)


def run_protocol(
    inputs: Mapping[int, RingVector],
    config: ProtocolConfig,
    *,
    dropouts: Mapping[int, Stage] | None = None,
    entropy: Entropy = os.urandom,
    checks: ClientChecks | None = None,
    signing_keys: Mapping[int, SigningKey] | None = None,
    model_digests: Mapping[int, bytes] | None = None,
) -> ProtocolResult:
    """Run the four stages between honest clients and the server; return what happened.

    Args:
        inputs: each client's input, ``config.length`` ring elements; the keys must
            be the clients of ``config.neighbours``.
        config: the round's public configuration.
        dropouts: the stage at which a client drops (it sends nothing from then on).
        entropy: secret randomness for every client (``os.urandom``).
        checks: every client's checks against the server
            (:mod:`defenses.secure_aggregation.checks`); with ``consistency_round`` the
            consistency round runs between the masked inputs and the unmasking (a client
            that drops at ``Stage.UNMASK`` sends neither).
        signing_keys: each client's identity key (those ``checks.directory`` lists).
        model_digests: the digest of the model each client received (``checks.bind_model``).

    Returns:
        The result; ``total`` is ``None`` and ``aborted`` says why if the round aborted.

    >>> import numpy as np
    >>> from defenses.secure_aggregation.graph import complete_graph
    >>> config = ProtocolConfig(b"s" * 16, 32, 3, 2, complete_graph([0, 1, 2]))
    >>> inputs = {c: np.array([c, 1, 2], np.uint32) for c in range(3)}
    >>> run_protocol(inputs, config, dropouts={2: Stage.MASKED_INPUT}).total
    array([1, 2, 4], dtype=uint32)
    """
    if set(inputs) != set(config.neighbours):
        raise ProtocolViolation("inputs must be given for exactly the clients of the round")
    return _Run(inputs, config, dict(dropouts or {}), entropy, checks=checks, signing_keys=signing_keys or {},
                model_digests=model_digests or {}).execute()


_T = TypeVar("_T")


class _Run:
    """One execution of the protocol among honest clients, with timings."""

    def __init__(
        self,
        inputs: Mapping[int, RingVector],
        config: ProtocolConfig,
        drops: dict[int, Stage],
        entropy: Entropy,
        *,
        checks: ClientChecks | None = None,
        signing_keys: Mapping[int, SigningKey] | None = None,
        model_digests: Mapping[int, bytes] | None = None,
    ) -> None:
        keys, digests = signing_keys or {}, model_digests or {}
        self.clients = {
            c: SecAggClient(c, config, inputs[c], entropy=entropy, checks=checks, model_digest=digests.get(c, b""),
                            signing_key=keys.get(c))
            for c in sorted(inputs)
        }
        self.consistency = checks is not None and checks.consistency_round
        self.refusals: dict[int, str] = {}
        self.server = SecAggServer(config)
        self.drops = drops
        self.seconds = dict.fromkeys(self.clients, 0.0)
        self.server_seconds = 0.0

    def online(self, stage: Stage) -> list[int]:
        """Clients that have not dropped by ``stage``."""
        return [c for c in self.clients if self.drops.get(c, Stage.UNMASK + 1) > stage]

    def client_step(self, client: int, stage: Stage, call: Callable[[], _T]) -> _T | None:
        """Run one client's stage; a client left with too few peers stops (drops out)."""
        start = time.perf_counter()
        try:
            return call()
        except SecureAggregationAborted as stopped:
            if isinstance(stopped, ClientRefused):
                self.refusals[client] = str(stopped)
            self.drops[client] = stage
            return None
        finally:
            self.seconds[client] += time.perf_counter() - start

    def server_step(self, call: Callable[[], _T]) -> _T:
        start = time.perf_counter()
        try:
            return call()
        finally:
            self.server_seconds += time.perf_counter() - start

    def execute(self) -> ProtocolResult:
        clients, server = self.clients, self.server
        try:
            adverts = [clients[c].advertise_keys() for c in self.online(Stage.ADVERTISE)]
            roster = self.server_step(lambda: server.receive_keys(adverts))
            outgoing: list[EncryptedShare] = []
            for c in self.online(Stage.SHARE):
                if c in roster:
                    outgoing += self.client_step(c, Stage.SHARE, partial(clients[c].share_keys, roster)) or []
            inbox = self.server_step(lambda: server.receive_shares(outgoing))
            masked: list[MaskedInput] = []
            for c in self.online(Stage.MASKED_INPUT):
                if c in inbox:
                    message = self.client_step(c, Stage.MASKED_INPUT, partial(clients[c].masked_input, inbox[c]))
                    if message is not None:
                        masked.append(message)
            survivors = self.server_step(lambda: server.receive_masked_inputs(masked))
            alive = [c for c in self.online(Stage.UNMASK) if c in survivors]
            relayed: dict[int, bytes] | None = None
            if self.consistency:
                signed = [self.client_step(c, Stage.UNMASK, partial(clients[c].sign_survivors, survivors))
                          for c in alive]
                relayed = self.server_step(lambda: server.receive_signatures(s for s in signed if s is not None))
            answers = [self.client_step(c, Stage.UNMASK, partial(clients[c].unmask, survivors, relayed))
                       for c in alive]
            responses = [answer for answer in answers if answer is not None]
            alive = [response.sender for response in responses]
            total = self.server_step(lambda: server.receive_unmasking(responses))
        except SecureAggregationAborted as abort:
            reason = str(abort)
            if self.refusals:
                first = min(self.refusals)
                reason += f"; {len(self.refusals)} clients refused, e.g. {self.refusals[first]}"
            return self.result(None, reason, ())
        return self.result(total, None, alive)

    def result(self, total: RingVector | None, aborted: str | None, finished: Iterable[int]) -> ProtocolResult:
        server = self.server
        return ProtocolResult(
            total=total,
            aborted=aborted,
            roster=dict(server.roster),
            shares=dict(server.shares),
            masked=dict(server.masked),
            responses=dict(server.responses),
            survivors=server.u3 if total is not None else frozenset(),
            online=frozenset(finished),
            refusals=dict(self.refusals),
            client_seconds=self.seconds,
            server_seconds=self.server_seconds,
            mask_bytes={c: client.expander.bytes_generated for c, client in self.clients.items()},
            mask_seconds={c: client.expander.seconds for c, client in self.clients.items()},
        )
