"""Secure aggregation: SecAgg (Bonawitz et al. 2017) and SecAgg+ (Bell et al. 2020), run for real."""

from defenses.secure_aggregation.graph import (
    complete_graph,
    default_degree,
    harary_graph,
)
from defenses.secure_aggregation.prg import MaskExpander, expand_mask
from defenses.secure_aggregation.protocol import (
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
    "PRIME",
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
    "Stage",
    "UnmaskingResponse",
    "complete_graph",
    "default_degree",
    "expand_mask",
    "harary_graph",
    "lagrange_coefficients",
    "reconstruct_secret",
    "ring_dtype",
    "run_protocol",
    "split_secret",
]
