"""Arithmetic foundation for secret-shared MPC training (SecureML-style).

Ring ``Z_(2^64)`` arithmetic, an AES-CTR PRG, additive sharing among 2 or 3 parties,
fixed-point encoding with SecureML local truncation, a byte/round-counting channel and
Beaver-triple multiplication. References: Mohassel & Zhang, "SecureML: A System for
Scalable Privacy-Preserving Machine Learning", IEEE S&P 2017; Beaver, "Efficient
Multiparty Protocols Using Circuit Randomization", CRYPTO 1991.
"""

from __future__ import annotations

from defenses.mpc_protocol.beaver import (
    MpcParty,
    PendingProduct,
    TripleShare,
    TrustedDealer,
    secure_matmul,
    secure_multiply,
)
from defenses.mpc_protocol.channel import (
    Channel,
    MalformedMessageError,
    decode_ring_arrays,
    encode_ring_arrays,
    framed_size,
)
from defenses.mpc_protocol.fixed_point import (
    DEFAULT_FRACTIONAL_BITS,
    decode_fixed,
    encode_fixed,
    representable_range,
    truncate_share,
)
from defenses.mpc_protocol.prg import SEED_BYTES, AesCtrPrg
from defenses.mpc_protocol.ring import (
    RING_BITS,
    RingArray,
    ring_add,
    ring_from_signed,
    ring_matmul,
    ring_multiply,
    ring_negate,
    ring_subtract,
    ring_sum,
    ring_to_signed,
)
from defenses.mpc_protocol.sharing import SUPPORTED_PARTIES, reconstruct, share

__all__ = [
    "DEFAULT_FRACTIONAL_BITS",
    "RING_BITS",
    "SEED_BYTES",
    "SUPPORTED_PARTIES",
    "AesCtrPrg",
    "Channel",
    "MalformedMessageError",
    "MpcParty",
    "PendingProduct",
    "RingArray",
    "TripleShare",
    "TrustedDealer",
    "decode_fixed",
    "decode_ring_arrays",
    "encode_fixed",
    "encode_ring_arrays",
    "framed_size",
    "reconstruct",
    "representable_range",
    "ring_add",
    "ring_from_signed",
    "ring_matmul",
    "ring_multiply",
    "ring_negate",
    "ring_subtract",
    "ring_sum",
    "ring_to_signed",
    "secure_matmul",
    "secure_multiply",
    "share",
    "truncate_share",
]
