"""Tests for Beaver triples, secure (matrix) multiplication and the message channel."""

from __future__ import annotations

import numpy as np
import pytest

from defenses.mpc.protocol import (
    AesCtrPrg,
    Channel,
    MalformedMessageError,
    MpcParty,
    PendingProduct,
    TrustedDealer,
    decode_bit_arrays,
    decode_ring_arrays,
    encode_bit_arrays,
    encode_ring_arrays,
    framed_size,
    reconstruct,
    ring_matmul,
    ring_multiply,
    ring_subtract,
    secure_matmul,
    secure_matmul_premasked,
    secure_multiply,
    share,
)


def _prg(label: int = 0) -> AesCtrPrg:
    return AesCtrPrg(seed=bytes([label]) * 32)


def _setup(num_parties: int) -> tuple[Channel, list[MpcParty], TrustedDealer]:
    channel = Channel(num_parties=num_parties)
    parties = [MpcParty(party_index=i, channel=channel) for i in range(num_parties)]
    return channel, parties, TrustedDealer(num_parties=num_parties, prg=_prg(1))


@pytest.mark.parametrize("num_parties", [2, 3])
def test_elementwise_triples_satisfy_c_equals_a_times_b(num_parties: int) -> None:
    triples = TrustedDealer(num_parties=num_parties, prg=_prg()).elementwise_triples((4, 5))

    a, b, c = (reconstruct([getattr(t, name) for t in triples]) for name in "abc")

    assert len(triples) == num_parties
    assert (ring_multiply(a, b) == c).all()


@pytest.mark.parametrize("num_parties", [2, 3])
def test_matrix_triples_satisfy_c_equals_a_matmul_b(num_parties: int) -> None:
    triples = TrustedDealer(num_parties=num_parties, prg=_prg()).matrix_triples((32, 31), (31, 1))

    a, b, c = (reconstruct([getattr(t, name) for t in triples]) for name in "abc")

    assert c.shape == (32, 1)
    assert (ring_matmul(a, b) == c).all()


@pytest.mark.parametrize("num_parties", [2, 3])
def test_secure_multiply_matches_plaintext_and_costs_one_round(num_parties: int) -> None:
    channel, parties, dealer = _setup(num_parties)
    prg = _prg(2)
    x, y = prg.random_ring((10,)), prg.random_ring((10,))

    x_shares, y_shares = share(x, num_parties, prg), share(y, num_parties, prg)

    z = secure_multiply(parties, x_shares, y_shares, dealer.elementwise_triples((10,)))

    assert (reconstruct(z) == ring_multiply(x, y)).all()
    links = num_parties * (num_parties - 1)
    assert channel.rounds == 1
    assert channel.messages_sent == links
    assert channel.bytes_sent == links * (1 + 2 * (1 + 8 + 8 * 10))
    assert channel.pending() == 0


@pytest.mark.parametrize("num_parties", [2, 3])
def test_secure_matmul_matches_plaintext_and_costs_one_round(num_parties: int) -> None:
    channel, parties, dealer = _setup(num_parties)
    prg = _prg(3)
    x, y = prg.random_ring((32, 31)), prg.random_ring((31, 1))

    z = secure_matmul(
        parties, share(x, num_parties, prg), share(y, num_parties, prg), dealer.matrix_triples((32, 31), (31, 1))
    )

    assert (reconstruct(z) == ring_matmul(x, y)).all()
    assert channel.rounds == 1
    assert channel.bytes_sent == num_parties * (num_parties - 1) * framed_size([(32, 31), (31, 1)])
    assert framed_size([(32, 31), (31, 1)]) == 1 + (1 + 16 + 8 * 32 * 31) + (1 + 16 + 8 * 31)


def test_dependent_multiplications_cost_one_round_each() -> None:
    channel, parties, dealer = _setup(2)
    prg = _prg(4)
    x = prg.random_ring((3,))
    x_shares = share(x, 2, prg)

    square = secure_multiply(parties, x_shares, x_shares, dealer.elementwise_triples((3,)))
    cube = secure_multiply(parties, square, x_shares, dealer.elementwise_triples((3,)))

    assert (reconstruct(cube) == ring_multiply(ring_multiply(x, x), x)).all()
    assert channel.rounds == 2
    assert channel.messages_sent == 4


def _start_party_zero(shape: tuple[int, ...]) -> tuple[Channel, MpcParty, PendingProduct]:
    channel, parties, dealer = _setup(2)
    triples = dealer.elementwise_triples(shape)
    zero = np.zeros(shape, np.uint64)
    pending = parties[0].start_product("elementwise", zero, zero, triples[0])
    return channel, parties[0], pending


@pytest.mark.parametrize(
    "bad_payload",
    [
        encode_ring_arrays([np.zeros(4, np.uint64), np.zeros(4, np.uint64)])[:-3],  # truncated
        encode_ring_arrays([np.zeros(4, np.uint64), np.zeros(4, np.uint64)]) + b"\x00",  # trailing byte
        encode_ring_arrays([np.zeros(4, np.uint64), np.zeros(4, np.uint64)])[:1],  # header only
        b"",
        encode_ring_arrays([np.zeros((2, 2), np.uint64), np.zeros(4, np.uint64)])[:-8],  # wrong shape and length
        encode_ring_arrays([np.zeros(4, np.uint64)]),  # one array instead of two
    ],
)
def test_party_rejects_malformed_or_truncated_messages(bad_payload: bytes) -> None:
    channel, party, pending = _start_party_zero((4,))
    channel.send(sender=1, receiver=0, payload=bad_payload)

    with pytest.raises(MalformedMessageError, match="expected"):
        party.finish_product(pending)


def test_decoder_rejects_a_right_length_message_with_the_wrong_shape() -> None:
    payload = encode_ring_arrays([np.zeros((2, 3), np.uint64)])

    with pytest.raises(MalformedMessageError, match=r"shape \(2, 3\), expected \(3, 2\)"):
        decode_ring_arrays(payload, [(3, 2)])
    with pytest.raises(MalformedMessageError, match="dims"):
        decode_ring_arrays(encode_ring_arrays([np.zeros(6, np.uint64)]) + bytes(8), [(2, 3)])  # same length, 1 dim


def test_party_raises_when_a_peer_sent_nothing() -> None:
    _, party, pending = _start_party_zero((2,))

    with pytest.raises(MalformedMessageError, match="none arrived"):
        party.finish_product(pending)


def test_bad_parameters_raise_clear_errors() -> None:
    channel, parties, dealer = _setup(2)
    with pytest.raises(ValueError, match="num_parties must be one of"):
        TrustedDealer(num_parties=4, prg=_prg())
    with pytest.raises(ValueError, match=r"\[m, k\] and \[k, n\]"):
        dealer.matrix_triples((2, 3), (2, 3))
    with pytest.raises(ValueError, match="party_index must be in"):
        MpcParty(party_index=2, channel=channel)
    with pytest.raises(ValueError, match="distinct parties"):
        channel.send(sender=0, receiver=0, payload=b"x")
    with pytest.raises(TypeError, match="payload must be bytes"):
        channel.send(sender=0, receiver=1, payload="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="do not match the triple"):
        operand = np.zeros(3, np.uint64)
        parties[0].start_product("elementwise", operand, operand, dealer.elementwise_triples((2,))[0])
    with pytest.raises(ValueError, match="num_parties must be >= 2"):
        Channel(num_parties=1)


@pytest.mark.parametrize(
    "bad_payload",
    [
        encode_bit_arrays([np.ones((2, 11), np.uint8)])[:-1],  # truncated
        encode_bit_arrays([np.ones((2, 11), np.uint8)]) + b"\x00",  # trailing byte
        encode_bit_arrays([np.ones((2, 11), np.uint8)])[:-1] + b"\xff",  # nonzero padding bits
        encode_bit_arrays([np.ones((1, 22), np.uint8)]),  # right length, wrong shape
    ],
)
def test_bit_messages_reject_malformed_frames(bad_payload: bytes) -> None:
    with pytest.raises(MalformedMessageError):
        decode_bit_arrays(bad_payload, [(2, 11)])


def test_bit_frames_refuse_non_bits() -> None:
    with pytest.raises(ValueError, match="only 0 and 1"):
        encode_bit_arrays([np.array([0, 2], np.uint8)])


@pytest.mark.parametrize("num_parties", [2, 3])
def test_premasked_matmul_triples_reuse_the_dealers_mask(num_parties: int) -> None:
    prg = _prg(3)
    channel, parties, dealer = _setup(num_parties)
    mask = dealer.random_ring((6, 3))
    mask_shares = dealer.share(mask)
    rows = np.array([4, 1, 3])
    triples = dealer.matrix_triples_given_left(mask[rows], [m[rows] for m in mask_shares], (3, 2))
    a, b, c = (reconstruct([getattr(t, n) for t in triples]) for n in "abc")
    assert (a == mask[rows]).all() and (ring_matmul(a, b) == c).all()

    x = prg.random_ring((6, 3))
    y = prg.random_ring((3, 2))
    opened = ring_subtract(x, mask)  # E = X - A, opened once
    z = secure_matmul_premasked(parties, opened[rows], share(y, num_parties, prg), triples)
    assert (reconstruct(z) == ring_matmul(x[rows], y)).all()
    assert channel.rounds == 1
    assert channel.bytes_sent == num_parties * (num_parties - 1) * framed_size([(3, 2)])  # only F = Y - B travels
