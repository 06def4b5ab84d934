"""In-process message channel between MPC parties, with byte and round accounting.

Parties exchange only ``bytes``. Ring arrays travel in a small self-describing frame::

    count:u8 | (ndim:u8 | dims:u64-le * ndim) * count | data:u64-le ...

costing ``1 + sum_i (1 + 8 * ndim_i + 8 * size_i)`` bytes (``framed_size``). Bit arrays
(``uint8`` holding 0 or 1, the XOR shares of the comparison circuit) travel in the same
header followed by all their bits packed eight to a byte, zero-padded
(``framed_bits_size``). A receiver states the shapes it expects and
``decode_ring_arrays`` / ``decode_bit_arrays`` reject any frame whose count, shapes,
length or padding differ, raising ``MalformedMessageError``.

Rounds are counted as the communication depth (Lamport clock): a message's depth is one
more than the deepest message its sender had received before sending it, and
``rounds`` is the greatest depth sent. Messages sent simultaneously by all parties in one
step (as when opening ``e = x - a`` and ``f = y - b`` in Beaver multiplication) therefore
cost one round, as in Beaver, CRYPTO 1991 and Mohassel & Zhang, "SecureML", IEEE S&P 2017.
"""

from __future__ import annotations

import math
import struct
from collections import deque
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from defenses.mpc.protocol.ring import RingArray

__all__ = [
    "Channel",
    "MalformedMessageError",
    "decode_bit_arrays",
    "decode_ring_arrays",
    "encode_bit_arrays",
    "encode_ring_arrays",
    "framed_bits_size",
    "framed_size",
]

_WORD_BYTES = 8
_MAX_NDIM = 255


class MalformedMessageError(ValueError):
    """A received message does not have the count, shapes or length the receiver expects."""


def _header_size(shapes: Sequence[tuple[int, ...]]) -> int:
    return 1 + sum(1 + _WORD_BYTES * len(shape) for shape in shapes)


def _size(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


def framed_bits_size(shapes: Sequence[tuple[int, ...]]) -> int:
    """Return the number of bytes ``encode_bit_arrays`` uses for bit arrays of these shapes.

    >>> framed_bits_size([(2, 64)])
    34
    """
    return _header_size(shapes) + -(-sum(_size(shape) for shape in shapes) // 8)


def framed_size(shapes: Sequence[tuple[int, ...]]) -> int:
    """Return the number of bytes ``encode_ring_arrays`` uses for arrays of these shapes.

    >>> framed_size([(3,), (2, 2)])
    83
    """
    return _header_size(shapes) + _WORD_BYTES * sum(_size(shape) for shape in shapes)


def encode_ring_arrays(arrays: Sequence[RingArray]) -> bytes:
    """Return the frame carrying ``arrays`` (uint64, at most 255 arrays of at most 255 dims).

    >>> len(encode_ring_arrays([np.zeros(3, np.uint64)]))
    34
    """
    body = b"".join(np.ascontiguousarray(a, dtype="<u8").tobytes() for a in arrays)
    return _encode_header(arrays) + body


def _encode_header(arrays: Sequence[NDArray[np.generic]]) -> bytes:
    if len(arrays) > _MAX_NDIM or any(a.ndim > _MAX_NDIM for a in arrays):
        raise ValueError(f"at most {_MAX_NDIM} arrays of at most {_MAX_NDIM} dims fit a frame")
    header = bytearray(struct.pack("<B", len(arrays)))
    for array in arrays:
        header += struct.pack(f"<B{array.ndim}Q", array.ndim, *array.shape)
    return bytes(header)


def _check_header(payload: bytes, expected_shapes: Sequence[tuple[int, ...]], expected_length: int) -> int:
    """Validate length, count and shapes; return the offset where the data starts."""
    if len(payload) != expected_length:
        raise MalformedMessageError(
            f"message has {len(payload)} bytes, expected {expected_length} for shapes {list(expected_shapes)}"
        )
    (count,) = struct.unpack_from("<B", payload, 0)
    if count != len(expected_shapes):
        raise MalformedMessageError(f"message carries {count} arrays, expected {len(expected_shapes)}")
    offset = 1
    for expected in expected_shapes:
        (ndim,) = struct.unpack_from("<B", payload, offset)
        if ndim != len(expected):
            raise MalformedMessageError(f"array has {ndim} dims, expected shape {expected}")
        shape = struct.unpack_from(f"<{ndim}Q", payload, offset + 1)
        if tuple(shape) != tuple(expected):
            raise MalformedMessageError(f"array has shape {tuple(shape)}, expected {tuple(expected)}")
        offset += 1 + _WORD_BYTES * ndim
    return offset


def encode_bit_arrays(arrays: Sequence[NDArray[np.uint8]]) -> bytes:
    """Return the frame carrying bit arrays (``uint8`` of 0/1), their bits packed eight to a byte.

    Raises:
        ValueError: if an array is not ``uint8`` or holds a value other than 0 and 1.

    >>> len(encode_bit_arrays([np.ones((2, 64), np.uint8)]))
    34
    """
    for array in arrays:
        if array.dtype != np.uint8 or (array > 1).any():
            raise ValueError("bit arrays must be uint8 holding only 0 and 1")
    flat = np.concatenate([a.reshape(-1) for a in arrays]) if arrays else np.zeros(0, np.uint8)
    return _encode_header(arrays) + np.packbits(flat, bitorder="little").tobytes()


def decode_bit_arrays(payload: bytes, expected_shapes: Sequence[tuple[int, ...]]) -> list[NDArray[np.uint8]]:
    """Return the bit arrays in ``payload``, checking they have exactly ``expected_shapes``.

    Raises:
        MalformedMessageError: on a wrong count, shape or length, or nonzero padding bits.

    >>> bits = np.array([[1, 0, 1]], np.uint8)
    >>> decode_bit_arrays(encode_bit_arrays([bits]), [(1, 3)])[0].tolist()
    [[1, 0, 1]]
    """
    offset = _check_header(payload, expected_shapes, framed_bits_size(expected_shapes))
    total = sum(_size(shape) for shape in expected_shapes)
    bits = np.unpackbits(np.frombuffer(payload, dtype=np.uint8, offset=offset), bitorder="little")
    if bits[total:].any():
        raise MalformedMessageError("bit message has nonzero padding bits")
    arrays: list[NDArray[np.uint8]] = []
    start = 0
    for expected in expected_shapes:
        size = _size(expected)
        arrays.append(bits[start : start + size].reshape(expected))
        start += size
    return arrays


def decode_ring_arrays(payload: bytes, expected_shapes: Sequence[tuple[int, ...]]) -> list[RingArray]:
    """Return the arrays in ``payload``, checking they have exactly ``expected_shapes``.

    Raises:
        MalformedMessageError: on a wrong array count, a wrong shape, or a payload that
            is truncated or has trailing bytes.

    >>> x = np.arange(4, dtype=np.uint64).reshape(2, 2)
    >>> decode_ring_arrays(encode_ring_arrays([x]), [(2, 2)])[0].tolist()
    [[0, 1], [2, 3]]
    """
    offset = _check_header(payload, expected_shapes, framed_size(expected_shapes))
    arrays: list[RingArray] = []
    for expected in expected_shapes:
        size = _size(expected)
        words = np.frombuffer(payload, dtype="<u8", count=size, offset=offset)
        arrays.append(words.astype(np.uint64).reshape(expected))
        offset += _WORD_BYTES * size
    return arrays


class Channel:
    """Point-to-point FIFO queues between ``num_parties`` parties, counting bytes and rounds.

    Args:
        num_parties: number of parties, at least 2.
        record: keep every message in ``log`` as ``(sender, receiver, payload)``, as an
            eavesdropper on every link would see them.

    >>> channel = Channel(num_parties=2)
    >>> channel.send(sender=0, receiver=1, payload=b"hi")
    >>> channel.receive(receiver=1, sender=0)
    b'hi'
    >>> (channel.bytes_sent, channel.messages_sent, channel.rounds)
    (2, 1, 1)
    """

    def __init__(self, *, num_parties: int, record: bool = False) -> None:
        if num_parties < 2:
            raise ValueError(f"num_parties must be >= 2, got {num_parties}")
        self.num_parties = num_parties
        self._queues: dict[tuple[int, int], deque[tuple[bytes, int]]] = {
            (s, r): deque() for s in range(num_parties) for r in range(num_parties) if s != r
        }
        self._depth_seen = [0] * num_parties
        self.bytes_sent = 0
        self.messages_sent = 0
        self.rounds = 0
        self.record = record
        self.log: list[tuple[int, int, bytes]] = []

    def _check_pair(self, sender: int, receiver: int) -> None:
        if (sender, receiver) not in self._queues:
            raise ValueError(
                f"sender and receiver must be distinct parties in [0, {self.num_parties}), got {sender} -> {receiver}"
            )

    def send(self, *, sender: int, receiver: int, payload: bytes) -> None:
        """Queue ``payload`` from ``sender`` to ``receiver`` and account for it."""
        self._check_pair(sender, receiver)
        if not isinstance(payload, bytes):
            raise TypeError(f"payload must be bytes, got {type(payload).__name__}")
        if self.record:
            self.log.append((sender, receiver, payload))
        depth = self._depth_seen[sender] + 1
        self._queues[(sender, receiver)].append((payload, depth))
        self.bytes_sent += len(payload)
        self.messages_sent += 1
        self.rounds = max(self.rounds, depth)

    def receive(self, *, receiver: int, sender: int) -> bytes:
        """Return the oldest undelivered message from ``sender`` to ``receiver``.

        Raises:
            MalformedMessageError: if no message is waiting (the peer sent nothing).
        """
        self._check_pair(sender, receiver)
        queue = self._queues[(sender, receiver)]
        if not queue:
            raise MalformedMessageError(f"party {receiver} expected a message from party {sender}, none arrived")
        payload, depth = queue.popleft()
        self._depth_seen[receiver] = max(self._depth_seen[receiver], depth)
        return payload

    def pending(self) -> int:
        """Return the number of messages sent but not yet received."""
        return sum(len(queue) for queue in self._queues.values())
