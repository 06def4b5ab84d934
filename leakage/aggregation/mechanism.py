"""Client-side mechanisms: transformations a client applies to its update before upload.

Compression, local noise and the clipping and noise shares of distributed DP change
what a client hands to the aggregation protocol, not how the protocol aggregates.
They are registered in ``MECHANISMS`` and placed in front of a protocol by a
composition (``["compression", "secagg"]``); see :mod:`leakage.aggregation.composition`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from torch import Tensor

from leakage.aggregation.base import AggregationScheme, Deployment, RoundContext
from leakage.registry import Registry
from leakage.views import PublicValue

__all__ = ["MECHANISMS", "ClientMechanism", "MechanismOutput"]


@dataclass(frozen=True)
class MechanismOutput:
    """What a mechanism produced for one round.

    Attributes:
        updates: ``[C, P]`` what each sampled client hands on, rows as in the context.
        public: values every party learns this round (a privacy budget spent so far).
        metrics: measurements no observer is shown (values clipped, bytes saved).
    """

    updates: Tensor
    public: Mapping[str, PublicValue] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)


class ClientMechanism(ABC):
    """Transforms every sampled client's update on the client, before any upload.

    Subclasses take keyword-only hyper-parameters in ``__init__``, validate them and do
    no work there. ``uniform_weights`` says that every client must count once in the
    aggregate (user-level DP bounds each client's influence by the clipping norm, which
    sample-count weights would undo).
    """

    name: ClassVar[str] = ""
    uniform_weights: ClassVar[bool] = False

    def prepare(self, deployment: Deployment, protocol: AggregationScheme) -> None:
        """Check the mechanism against ``deployment`` and the protocol that follows it."""

    @abstractmethod
    def apply(self, context: RoundContext, protocol: AggregationScheme) -> MechanismOutput:
        """Return what each client of ``context`` hands to ``protocol`` this round."""

    def public_parameters(self) -> dict[str, PublicValue]:
        """Return the mechanism's hyper-parameters that every party knows."""
        return {}


MECHANISMS: Registry[type[ClientMechanism]] = Registry("mechanism", plugin_modules=("defenses",))
