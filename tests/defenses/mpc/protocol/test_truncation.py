"""Tests for truncation on shares: SecureML local (2 parties) and ABY3 truncation pairs (2 or 3 parties)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from defenses.mpc.protocol import (
    AesCtrPrg,
    Channel,
    MpcParty,
    TrustedDealer,
    decode_fixed,
    encode_fixed,
    reconstruct,
    ring_to_signed,
    secure_truncate,
    share,
)


def _prg(label: str) -> AesCtrPrg:
    return AesCtrPrg(seed=hashlib.sha256(label.encode()).digest())


def _parties(count: int) -> tuple[Channel, list[MpcParty]]:
    channel = Channel(num_parties=count)
    return channel, [MpcParty(party_index=i, channel=channel) for i in range(count)]


def test_truncation_pairs_hold_a_mask_and_its_arithmetic_shift() -> None:
    pairs = TrustedDealer(num_parties=3, prg=_prg("pairs")).truncation_pairs((1000,), 16)
    mask = reconstruct([p.mask for p in pairs])
    shifted = reconstruct([p.shifted for p in pairs])
    assert (ring_to_signed(shifted) == -((-ring_to_signed(mask)) >> 16)).all()  # ceil(r / 2^16)
    # The mask is uniform: about half of the entries are negative as signed integers.
    assert 400 < int((ring_to_signed(mask) < 0).sum()) < 600


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.floats(-1e4, 1e4, allow_nan=False), min_size=1, max_size=20),
    parties=st.sampled_from([2, 3]),
    local=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_truncation_errs_by_at_most_one_unit(values: list[float], parties: int, local: bool, seed: int) -> None:
    if local and parties == 3:
        local = False
    channel, members = _parties(parties)
    reals = np.array(values)
    product = encode_fixed(reals, 32)  # a product of two 16-bit encodings carries 32 fractional bits
    pairs = None
    if not local:
        pairs = TrustedDealer(num_parties=parties, prg=_prg(f"d{seed}")).truncation_pairs(reals.shape, 16)
    shares = share(product, parties, _prg(f"s{seed}"))

    result = decode_fixed(reconstruct(secure_truncate(members, shares, fractional_bits=16, pairs=pairs)), 16)

    exact = decode_fixed(product, 32)
    assert np.abs(result - exact).max() < 2.0**-16
    assert channel.rounds == (0 if local else 1)


def test_three_parties_refuse_local_truncation_and_mismatched_pairs() -> None:
    _, members = _parties(3)
    zero = [np.zeros(2, np.uint64)] * 3
    with pytest.raises(ValueError, match="cannot truncate locally"):
        secure_truncate(members, zero, fractional_bits=16)
    pairs = TrustedDealer(num_parties=3, prg=_prg("x")).truncation_pairs((3,), 16)
    with pytest.raises(ValueError, match="does not match"):
        secure_truncate(members, zero, fractional_bits=16, pairs=pairs)
    with pytest.raises(ValueError, match="one truncation pair per party"):
        secure_truncate(members, zero, fractional_bits=16, pairs=pairs[:2])


def test_opened_masked_value_is_uniform_whatever_the_secret() -> None:
    """What a party receives during pair truncation (its peers' shares of z - r) sums to a uniform value."""
    secret = encode_fixed(np.full(4000, 1.5), 32)  # one constant secret everywhere
    pairs = TrustedDealer(num_parties=3, prg=_prg("u")).truncation_pairs(secret.shape, 16)
    opened = [s - p.mask for s, p in zip(share(secret, 3, _prg("v")), pairs, strict=True)]
    top_bytes = (reconstruct(opened) >> np.uint64(56)).astype(np.int64)
    counts = np.bincount(top_bytes, minlength=256)
    chi_square = float(((counts - 4000 / 256) ** 2 / (4000 / 256)).sum())
    assert chi_square < 330  # 255 degrees of freedom: p > 0.001
