"""Schemes built from client-side mechanisms in front of an aggregation protocol.

A composition is an ordered list of names: every entry but the last is a client
mechanism (``compression``, ``ldp``, ``ddp``), applied in order on each client; the
last is the protocol that aggregates (``plain``, ``secagg``, ``secagg+``, ``he``...).
A lone mechanism name runs in front of ``plain``. In strings the names are separated
by commas (``"compression,secagg"``); ``+`` is part of the name ``secagg+``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import torch

from leakage.aggregation.base import (
    SCHEMES,
    AggregationScheme,
    Deployment,
    RoundContext,
    RoundOutcome,
    Weighting,
)
from leakage.aggregation.mechanism import MECHANISMS, ClientMechanism
from leakage.aggregation.plain import PlainAggregation
from leakage.errors import ConfigError, UnknownNameError
from leakage.views import PublicValue, parse_client_observer

__all__ = ["ComposedScheme", "create_scheme", "scheme_names", "split_scheme_name"]


class ComposedScheme(AggregationScheme):
    """Clients apply ``mechanisms`` in order, then ``protocol`` aggregates the result.

    Each client's own view keeps its true ``update`` and adds ``sent``, the transformed
    vector it handed to the protocol; every other observer sees only what the protocol
    shows of the transformed vectors.

    >>> from leakage.aggregation.plain import PlainAggregation
    >>> ComposedScheme([], PlainAggregation()).name
    'plain'
    """

    def __init__(self, mechanisms: Sequence[ClientMechanism], protocol: AggregationScheme) -> None:
        self.mechanisms = tuple(mechanisms)
        self.protocol = protocol

    @property
    def name(self) -> str:  # type: ignore[override]  # a composition is named by its parts
        return ",".join([m.name for m in self.mechanisms] + [self.protocol.name])

    @property
    def needs_client_batches(self) -> bool:
        return self.protocol.needs_client_batches

    def prepare(self, deployment: Deployment) -> None:
        self.protocol.prepare(deployment)
        if self.mechanisms and self.protocol.needs_client_batches:
            raise ConfigError(
                f"scheme {self.protocol.name!r} trains on secret-shared data, so client mechanisms "
                f"({', '.join(m.name for m in self.mechanisms)}) placed in front of it would never apply; "
                "drop them or choose a protocol that aggregates updates"
            )
        for mechanism in self.mechanisms:
            mechanism.prepare(deployment, self.protocol)

    def min_summands(self, deployment: Deployment) -> int:
        return self.protocol.min_summands(deployment)

    def lattice_step(self) -> float | None:
        return self.protocol.lattice_step()

    def weighting(self) -> Weighting:
        if any(mechanism.uniform_weights for mechanism in self.mechanisms):
            return "uniform"
        return self.protocol.weighting()

    def public_parameters(self) -> dict[str, PublicValue]:
        public: dict[str, PublicValue] = {}
        for mechanism in self.mechanisms:
            public.update(mechanism.public_parameters())
        public.update(self.protocol.public_parameters())
        return public

    def run_round(self, context: RoundContext) -> RoundOutcome:
        transformed = context
        public: dict[str, PublicValue] = {}
        metrics: dict[str, float] = {}
        for mechanism in self.mechanisms:
            output = mechanism.apply(transformed, self.protocol)
            public.update(output.public)
            metrics.update(output.metrics)
            weights = torch.ones_like(context.weights) if mechanism.uniform_weights else transformed.weights
            transformed = replace(
                transformed,
                updates=output.updates,
                weights=weights,
                public={**transformed.public, **output.public},
            )
        outcome = self.protocol.run_round(transformed)
        views = dict(outcome.views)
        if self.mechanisms:
            for observer, view in outcome.views.items():
                if observer.startswith("client:") and "update" in view.own:
                    row = context.row(parse_client_observer(observer))
                    own = {**view.own, "update": context.updates[row], "sent": transformed.updates[row]}
                    views[observer] = replace(view, own=own)
        return replace(
            outcome,
            views=views,
            public={**public, **outcome.public},
            metrics={**metrics, **outcome.metrics},
        )


def split_scheme_name(name: str | Sequence[str]) -> tuple[str, ...]:
    """Return the stage names of a scheme given as a name, a comma list or a sequence.

    >>> split_scheme_name("compression, secagg+")
    ('compression', 'secagg+')
    """
    parts = name.split(",") if isinstance(name, str) else list(name)
    stages = tuple(str(part).strip() for part in parts)
    if not stages or any(not stage for stage in stages):
        raise ConfigError(f"scheme must name at least one scheme, with no empty entries, got {name!r}")
    return stages


def scheme_names() -> list[str]:
    """Return every name a scheme list may use: protocols and client mechanisms."""
    return sorted(set(SCHEMES.names()) | set(MECHANISMS.names()))


def create_scheme(name: str | Sequence[str], /, **options: Any) -> AggregationScheme:
    """Build a registered scheme, or a composition of mechanisms and one protocol.

    Args:
        name: a registered name (``"secagg"``), or an ordered list of names, as a
            sequence or a comma-separated string: mechanisms first, the protocol last.
        options: keyword options. A single name takes them directly; a composition
            takes one table per stage, keyed by the stage's name.

    Raises:
        UnknownNameError: a name is neither a scheme nor a mechanism.
        ConfigError: an option is unknown, or a protocol stands before the last place.

    >>> create_scheme("plain").name
    'plain'
    >>> create_scheme(["compression", "secagg"], compression={"keep": 0.1}).name
    'compression,secagg'
    """
    stages = split_scheme_name(name)
    for stage in stages:
        if stage not in SCHEMES and stage not in MECHANISMS:
            raise UnknownNameError(f"unknown scheme {stage!r}; choose one of: {', '.join(scheme_names())}")
    if len(stages) == 1:
        if stages[0] in SCHEMES:
            scheme: AggregationScheme = SCHEMES.create(stages[0], **options)
            return scheme
        return ComposedScheme([MECHANISMS.create(stages[0], **options)], PlainAggregation())
    if len(set(stages)) != len(stages):
        raise ConfigError(f"scheme lists a stage twice: {', '.join(stages)}")
    unknown = sorted(set(options) - set(stages))
    if unknown:
        raise ConfigError(
            f"scheme option {unknown[0]!r} is not a stage of {','.join(stages)}; "
            f"give each stage its own table of options, keyed by its name"
        )
    for stage, table in options.items():
        if not isinstance(table, Mapping):
            raise ConfigError(f"scheme options for stage {stage!r} must be a table, got {table!r}")
    *front, last = stages
    for stage in front:
        if stage not in MECHANISMS:
            raise ConfigError(
                f"scheme {stage!r} aggregates by itself, so it can only be the last stage; "
                f"stages before it must be client mechanisms: {', '.join(MECHANISMS.names())}"
            )
    mechanisms = [MECHANISMS.create(stage, **options.get(stage, {})) for stage in front]
    if last in SCHEMES:
        protocol: AggregationScheme = SCHEMES.create(last, **options.get(last, {}))
    else:
        mechanisms.append(MECHANISMS.create(last, **options.get(last, {})))
        protocol = PlainAggregation()
    return ComposedScheme(mechanisms, protocol)
