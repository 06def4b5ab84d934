"""Arithmetic foundation for secret-shared MPC training (SecureML-style).

Ring ``Z_(2^64)`` arithmetic, an AES-CTR PRG, additive sharing among 2 or 3 parties,
fixed-point encoding with SecureML local truncation, a byte/round-counting channel and
Beaver-triple multiplication, secure comparison (MSB), sigmoid approximations and
two-party logistic-regression training. References: Mohassel & Zhang, "SecureML: A System
for Scalable Privacy-Preserving Machine Learning", IEEE S&P 2017; Beaver, "Efficient
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
from defenses.mpc_protocol.comparison import (
    CIRCUIT_LAYERS,
    MSB_ROUNDS,
    BitTripleShare,
    ComparisonDealer,
    MsbPreprocessing,
    secure_and,
    secure_less_than,
    secure_msb,
    xor_reconstruct,
    xor_share,
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
from defenses.mpc_protocol.sigmoid import (
    CUBIC_SIGMOID_COEFFICIENTS,
    cubic_sigmoid,
    piecewise_sigmoid,
    secure_cubic_sigmoid,
    secure_piecewise_sigmoid,
)
from defenses.mpc_protocol.training import (
    LogisticModel,
    MpcTrainingResult,
    SigmoidKind,
    logistic_accuracy,
    minibatch_schedule,
    train_logistic_regression_mpc,
    train_logistic_regression_plain,
)

__all__ = [
    "CIRCUIT_LAYERS",
    "CUBIC_SIGMOID_COEFFICIENTS",
    "DEFAULT_FRACTIONAL_BITS",
    "MSB_ROUNDS",
    "RING_BITS",
    "SEED_BYTES",
    "SUPPORTED_PARTIES",
    "AesCtrPrg",
    "BitTripleShare",
    "Channel",
    "ComparisonDealer",
    "LogisticModel",
    "MalformedMessageError",
    "MpcParty",
    "MpcTrainingResult",
    "MsbPreprocessing",
    "PendingProduct",
    "RingArray",
    "SigmoidKind",
    "TripleShare",
    "TrustedDealer",
    "cubic_sigmoid",
    "decode_fixed",
    "decode_ring_arrays",
    "encode_fixed",
    "encode_ring_arrays",
    "framed_size",
    "logistic_accuracy",
    "minibatch_schedule",
    "piecewise_sigmoid",
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
    "secure_and",
    "secure_cubic_sigmoid",
    "secure_less_than",
    "secure_matmul",
    "secure_msb",
    "secure_multiply",
    "secure_piecewise_sigmoid",
    "share",
    "train_logistic_regression_mpc",
    "train_logistic_regression_plain",
    "truncate_share",
    "xor_reconstruct",
    "xor_share",
]
