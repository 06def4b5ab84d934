"""Secure aggregation: SecAgg (Bonawitz et al. 2017) and SecAgg+ (Bell et al. 2020), run for real."""

from defenses.secure_aggregation.adversary import (
    ActiveRound,
    fewest_corrupt,
    identities,
    key_substitution,
    survivor_split,
    sybil_fill,
)
from defenses.secure_aggregation.checks import (
    CHECK_NAMES,
    ClientChecks,
    SigningKey,
    architecture_digest,
    model_digest,
)
from defenses.secure_aggregation.graph import (
    complete_graph,
    default_degree,
    harary_graph,
)
from defenses.secure_aggregation.prg import MaskExpander, expand_mask
from defenses.secure_aggregation.protocol import (
    ClientRefused,
    EncryptedShare,
    KeyAdvertisement,
    MaskedInput,
    ProtocolConfig,
    ProtocolResult,
    ProtocolViolation,
    SecAggClient,
    SecAggServer,
    SecureAggregationAborted,
    Stage,
    SurvivorSignature,
    UnmaskingResponse,
    run_protocol,
)
from defenses.secure_aggregation.ring import RingEncoding, ring_dtype
from defenses.secure_aggregation.scheme import (
    DropoutStage,
    SecureAggregation,
    SecureAggregationPlus,
)
from defenses.secure_aggregation.shamir import (
    PRIME,
    lagrange_coefficients,
    reconstruct_secret,
    split_secret,
)

__all__ = [
    "CHECK_NAMES",
    "PRIME",
    "ActiveRound",
    "ClientChecks",
    "ClientRefused",
    "DropoutStage",
    "EncryptedShare",
    "KeyAdvertisement",
    "MaskExpander",
    "MaskedInput",
    "ProtocolConfig",
    "ProtocolResult",
    "ProtocolViolation",
    "RingEncoding",
    "SecAggClient",
    "SecAggServer",
    "SecureAggregation",
    "SecureAggregationAborted",
    "SecureAggregationPlus",
    "SigningKey",
    "Stage",
    "SurvivorSignature",
    "UnmaskingResponse",
    "complete_graph",
    "default_degree",
    "architecture_digest",
    "expand_mask",
    "fewest_corrupt",
    "harary_graph",
    "identities",
    "key_substitution",
    "lagrange_coefficients",
    "model_digest",
    "reconstruct_secret",
    "ring_dtype",
    "run_protocol",
    "split_secret",
    "survivor_split",
    "sybil_fill",
]
