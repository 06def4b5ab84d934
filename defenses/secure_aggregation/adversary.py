"""An active server against secure aggregation: protocol deviations that unmask one client.

Each function plays one round of :mod:`defenses.secure_aggregation.protocol` with honest
:class:`~defenses.secure_aggregation.protocol.SecAggClient` objects (running whatever
:class:`~defenses.secure_aggregation.checks.ClientChecks` they are given) and a server
that deviates, and returns an :class:`ActiveRound`: the target's input as the server
rebuilt it (compared with the true one), or the abort and each refusing client's reason.

- :func:`survivor_split` (Bonawitz et al. 2017 discuss it; their consistency round and a
  threshold above ``(n + c) / 2`` are the defence): after the masked inputs the server
  tells some of the target's shareholders "the target survived" (they reveal shares of
  its self-mask seed ``b``) and the others "the target dropped" (they reveal shares of its
  mask key ``s^SK``); the clients it corrupted hand over both. With ``t`` shares of each
  it removes every mask from the target's masked input. It needs ``corrupt >= 2t - n``
  for a sharing group of ``n``. With the consistency round each side must still see ``t``
  signatures on its own list, which the corrupt clients give to both sides: the count is
  the same, so only a threshold the clients check stops it.
- :func:`key_substitution`: the server hands the target a roster of keys it made itself,
  one per other client, and plays all of them: the target's round is a round of Sybils.
  Signed keys against a directory stop it.
- :func:`sybil_fill`: the other ``N - 1`` clients are the server's own, registered
  identities holding known inputs: the aggregate minus theirs is the target's input. No
  protocol check stops it; only identity (attestation) and sampling the server does not
  control bound it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

import numpy as np

from defenses.secure_aggregation.checks import ClientChecks, SigningKey, sign, survivor_list_bytes
from defenses.secure_aggregation.crypto import KeyPair, agree, decrypt_for, encrypt_for
from defenses.secure_aggregation.protocol import (
    ClientRefused,
    EncryptedShare,
    KeyAdvertisement,
    MaskedInput,
    ProtocolConfig,
    RingVector,
    SecAggClient,
    SecAggServer,
    SecureAggregationAborted,
    UnmaskingResponse,
    run_protocol,
)
from defenses.secure_aggregation.shamir import (
    lagrange_coefficients,
    reconstruct_secret,
    share_from_bytes,
    share_to_bytes,
    split_secret,
)

__all__ = ["ActiveRound", "fewest_corrupt", "identities", "key_substitution", "survivor_split", "sybil_fill"]

Entropy = Callable[[int], bytes]
_T = TypeVar("_T")


@dataclass(frozen=True)
class ActiveRound:
    """What an active server got out of one round.

    Attributes:
        attack: the deviation played.
        target: the client it went after.
        recovered: the target's input as the server rebuilt it, or ``None``.
        exact: ``recovered`` equals the target's true input, word for word.
        aborted: why the round aborted or a client refused, or ``None``.
        refusals: each client that refused, with its reason.
        details: counts behind the outcome (shares collected, sides, ...).
    """

    attack: str
    target: int
    recovered: RingVector | None
    exact: bool
    aborted: str | None
    refusals: Mapping[int, str] = field(default_factory=dict)
    details: Mapping[str, float] = field(default_factory=dict)
    failure: str | None = None  # why the server got nothing from a round that went on (the target stayed private)


def identities(clients: Sequence[int], entropy: Entropy = os.urandom) -> tuple[dict[int, SigningKey], dict[int, bytes]]:
    """Return an identity key per client and the directory of their public keys."""
    keys = {c: SigningKey.from_secret(entropy(32)) for c in clients}
    return keys, {c: key.public for c, key in keys.items()}


class _Refusals:
    """Runs client steps; a client whose check fails or that is left with too few peers stops."""

    def __init__(self) -> None:
        self.reasons: dict[int, str] = {}

    def step(self, client: int, call: Callable[[], _T]) -> _T | None:
        try:
            return call()
        except ClientRefused as refused:
            self.reasons[client] = str(refused)
        except SecureAggregationAborted:
            pass
        return None


def _strip_masks(
    masked: RingVector, config: ProtocolConfig, target: int, self_seed: bytes, mask_key: bytes,
    peers: Mapping[int, bytes],
) -> RingVector:
    """The target's input: its masked input less ``PRG(b)`` and every pairwise mask it added."""
    client = SecAggClient(target, config, np.zeros(config.length, config.dtype))  # only for its mask expander
    value = masked.copy()
    client.expander.add(value, self_seed, sign=-1)
    pair = KeyPair.from_secret(mask_key)
    for peer, public in sorted(peers.items()):
        seed = agree(pair, public, purpose=b"mask", session=config.key_salt)
        client.expander.add(value, seed, sign=-(1 if target < peer else -1))
    return config.reduce(value)


def _rebuild(shares: Mapping[int, int], threshold: int) -> bytes | None:
    """The secret from ``threshold`` of ``shares`` (by holder id), or ``None`` with fewer."""
    if len(shares) < threshold:
        return None
    chosen = dict(sorted(shares.items())[:threshold])
    points = {holder + 1: share for holder, share in chosen.items()}
    return reconstruct_secret(points, lagrange_coefficients(tuple(points)))


def fewest_corrupt(config: ProtocolConfig, target: int) -> list[int]:
    """The target's neighbours a split needs to control at the default threshold ``floor(n / 2) + 1``
    of its sharing group of ``n``: ``2t - n`` of them, at least one (the server picks them, as it
    picks SecAgg+'s ring order).

    >>> from defenses.secure_aggregation.graph import complete_graph
    >>> fewest_corrupt(ProtocolConfig(b"s", 32, 1, 6, complete_graph(list(range(10)))), 0)
    [1, 2]
    """
    group = sorted(config.neighbours[target])
    default = (len(group) + 1) // 2 + 1
    return group[: max(1, 2 * default - (len(group) + 1))]


def survivor_split(
    inputs: Mapping[int, RingVector],
    config: ProtocolConfig,
    *,
    target: int,
    corrupt: Sequence[int],
    checks: ClientChecks | None = None,
    signing_keys: Mapping[int, SigningKey] | None = None,
    entropy: Entropy = os.urandom,
) -> ActiveRound:
    """Tell half of the target's shareholders it survived and half it dropped; collect both secrets.

    Args:
        inputs: every client's input (the corrupt clients' too: they run the protocol).
        config: the round; its threshold ``t`` is what the clients are told.
        target: the client to unmask.
        corrupt: the server's own clients (their shares and identity keys are the server's).
        checks: the honest clients' checks.
        signing_keys: every client's identity key (needed with a directory).
        entropy: every party's randomness.
    """
    keys = signing_keys or {}
    refusals = _Refusals()
    clients = {c: SecAggClient(c, config, inputs[c], entropy=entropy, checks=checks, signing_key=keys.get(c),
                               model_digest=config.model_digest)  # everyone holds the model the server announced
               for c in sorted(inputs)}
    server = SecAggServer(config)
    bad = frozenset(corrupt)
    try:
        adverts = [a for c in clients if (a := refusals.step(c, clients[c].advertise_keys)) is not None]
        roster = server.receive_keys(adverts)
        outgoing: list[EncryptedShare] = []
        for c in clients:
            if c in roster:
                outgoing += refusals.step(c, partial(clients[c].share_keys, roster)) or []
        inbox = server.receive_shares(outgoing)
        masked = [m for c in inbox if (m := refusals.step(c, partial(clients[c].masked_input, inbox[c])))]
        survivors = server.receive_masked_inputs(masked)
    except SecureAggregationAborted as abort:
        why = str(abort)
        if refusals.reasons:
            why += f"; {len(refusals.reasons)} clients refused, e.g. {refusals.reasons[min(refusals.reasons)]}"
        return ActiveRound("survivor_split", target, None, False, why, refusals.reasons)
    if target not in survivors:
        return ActiveRound("survivor_split", target, None, False, "the target sent no masked input",
                           refusals.reasons)
    group = sorted((config.neighbours[target] | {target}) & survivors)
    honest = [c for c in group if c not in bad and c != target]
    # side A (with the target) reveals b_target; side B reveals s_target^SK: t of each, counting the corrupt
    need_a = max(0, config.threshold - len(bad & set(group)) - 1)
    side_a, side_b = frozenset(honest[:need_a]) | {target}, frozenset(honest[need_a:])
    list_a, list_b = survivors, survivors - {target}
    outsiders = [c for c in survivors if c not in group and c not in bad]
    shown = {**dict.fromkeys(side_a, list_a), **dict.fromkeys(side_b, list_b), **dict.fromkeys(outsiders, list_a)}
    relayed: dict[frozenset[int], dict[int, bytes]] = {list_a: {}, list_b: {}}
    if checks is not None and checks.consistency_round:
        for c, shown_list in shown.items():
            signed = refusals.step(c, partial(clients[c].sign_survivors, shown_list))
            if signed is not None:
                relayed[shown_list][c] = signed.signature
        for c in bad & survivors:  # the server signs both lists with the keys of the clients it controls
            for shown_list in relayed:
                relayed[shown_list][c] = sign(keys[c], survivor_list_bytes(config.session, shown_list))
    responses: dict[int, UnmaskingResponse] = {}
    for c, shown_list in shown.items():
        answer = refusals.step(c, partial(clients[c].unmask, shown_list, relayed[shown_list]))
        if answer is not None:
            responses[c] = answer
    seed_shares = {c: r.self_mask_shares[target] for c, r in responses.items() if target in r.self_mask_shares}
    key_shares = {c: r.mask_key_shares[target] for c, r in responses.items() if target in r.mask_key_shares}
    for c in bad & set(group):
        held = clients[c].held_shares(target)
        if held is not None:
            key_shares[c], seed_shares[c] = held
    details = {"seed_shares": float(len(seed_shares)), "key_shares": float(len(key_shares)),
               "side_a": float(len(side_a)), "side_b": float(len(side_b)), "corrupt": float(len(bad))}
    self_seed, mask_key = _rebuild(seed_shares, config.threshold), _rebuild(key_shares, config.threshold)
    if self_seed is None or mask_key is None:
        why = (f"the server collected {len(seed_shares)} shares of the target's self-mask seed and "
               f"{len(key_shares)} of its mask key, threshold {config.threshold}")
        if refusals.reasons:
            why += f"; {len(refusals.reasons)} clients refused, e.g. {refusals.reasons[min(refusals.reasons)]}"
            return ActiveRound("survivor_split", target, None, False, why, refusals.reasons, details)
        return ActiveRound("survivor_split", target, None, False, None, refusals.reasons, details, failure=why)
    peers = {v: roster[v].mask_public for v in server.u2 & config.neighbours[target]}
    recovered = _strip_masks(server.masked[target].vector, config, target, self_seed, mask_key, peers)
    return ActiveRound("survivor_split", target, recovered, bool(np.array_equal(recovered, inputs[target])), None,
                       refusals.reasons, details)


def key_substitution(
    inputs: Mapping[int, RingVector],
    config: ProtocolConfig,
    *,
    target: int,
    checks: ClientChecks | None = None,
    signing_keys: Mapping[int, SigningKey] | None = None,
    entropy: Entropy = os.urandom,
) -> ActiveRound:
    """Hand the target a roster of server-made keys and play every other client in its round.

    The other clients' round runs apart (without the target); the server decrypts every
    share the target sent, rebuilds its self-mask seed, and knows every pairwise seed.
    """
    keys = signing_keys or {}
    refusals = _Refusals()
    client = SecAggClient(target, config, inputs[target], entropy=entropy, checks=checks, signing_key=keys.get(target),
                          model_digest=config.model_digest)
    own = refusals.step(target, client.advertise_keys)
    if own is None:
        return ActiveRound("key_substitution", target, None, False, "the target refused to start", refusals.reasons)
    fakes = {v: (KeyPair.generate(entropy), KeyPair.generate(entropy)) for v in config.neighbours[target]}
    roster: dict[int, KeyAdvertisement] = {target: own}
    for v, (cipher, mask) in fakes.items():  # unsigned: the server holds no directory key of v
        roster[v] = KeyAdvertisement(config.session, v, cipher.public, mask.public)
    sent = refusals.step(target, lambda: client.share_keys(roster))
    if sent is None:
        why = refusals.reasons.get(target, "the target stopped at the key sharing")
        return ActiveRound("key_substitution", target, None, False, why, refusals.reasons)
    salt = config.key_salt
    holders = sorted(set(fakes) | {target})
    received: list[EncryptedShare] = []
    seed_shares: dict[int, int] = {}
    for message in sent:  # every share the target sent is to a key the server made
        channel = agree(fakes[message.recipient][0], own.cipher_public, purpose=b"share", session=salt)
        plaintext = decrypt_for(channel, message.ciphertext,
                                associated=salt + target.to_bytes(4, "big") + message.recipient.to_bytes(4, "big"))
        seed_shares[message.recipient] = share_from_bytes(plaintext[33:])
    for v, (cipher, _mask) in fakes.items():  # fake peers share fake secrets with the target, so it goes on
        shares = split_secret(entropy(32), config.threshold, [h + 1 for h in holders], entropy)
        channel = agree(cipher, own.cipher_public, purpose=b"share", session=salt)
        plaintext = share_to_bytes(shares[target + 1]) + share_to_bytes(shares[target + 1])
        ciphertext = encrypt_for(channel, plaintext, associated=salt + v.to_bytes(4, "big") + target.to_bytes(4, "big"),
                                 entropy=entropy)
        received.append(EncryptedShare(config.session, v, target, ciphertext))
    masked: MaskedInput | None = refusals.step(target, lambda: client.masked_input(received))
    if masked is None:
        return ActiveRound("key_substitution", target, None, False, "the target stopped before its masked input",
                           refusals.reasons)
    seed_shares[target] = client.held_shares(target)[1]  # type: ignore[index]  # what it would reveal for itself
    self_seed = _rebuild({h: s for h, s in seed_shares.items() if h != target}, config.threshold)
    assert self_seed is not None
    value = masked.vector.copy()
    client.expander.add(value, self_seed, sign=-1)
    for v, (_cipher, mask) in fakes.items():
        seed = agree(mask, own.mask_public, purpose=b"mask", session=salt)
        client.expander.add(value, seed, sign=-(1 if target < v else -1))
    recovered = config.reduce(value)
    return ActiveRound("key_substitution", target, recovered, bool(np.array_equal(recovered, inputs[target])), None,
                       refusals.reasons, {"fake_peers": float(len(fakes))})


def sybil_fill(
    target_input: RingVector,
    config: ProtocolConfig,
    *,
    target: int,
    checks: ClientChecks | None = None,
    signing_keys: Mapping[int, SigningKey] | None = None,
    model_digests: Mapping[int, bytes] | None = None,
    entropy: Entropy = os.urandom,
) -> ActiveRound:
    """Fill the round with the server's own clients holding zeros: the aggregate is the target's input.

    The Sybils are registered identities (their keys are in any directory the clients
    check), hold the model the target holds, and follow the protocol to the letter.
    """
    inputs = {c: np.zeros(config.length, config.dtype) for c in config.neighbours}
    inputs[target] = target_input
    result = run_protocol(inputs, config, checks=checks, signing_keys=signing_keys, model_digests=model_digests,
                          entropy=entropy)
    if result.total is None:
        return ActiveRound("sybil", target, None, False, result.aborted, result.refusals)
    return ActiveRound("sybil", target, result.total, bool(np.array_equal(result.total, target_input)), None,
                       result.refusals, {"sybils": float(len(inputs) - 1)})
