"""Contracts every registered scheme and mechanism keeps, checked on one shared round."""

from typing import Any

import pytest
import torch

from leakage.aggregation import (
    MECHANISMS,
    SCHEMES,
    Deployment,
    RoundContext,
    create_scheme,
    weighted_mean,
)
from leakage.views import EAVESDROPPER, PUBLIC, SERVER

NO_NOISE = {"clip_norm": 10.0, "noise_multiplier": 1e-9}  # nothing clipped, noise std 1e-8

# name, options, weights the aggregate uses, tolerance (None: the scheme's lattice step)
CASES: list[tuple[Any, dict[str, Any], str, float | None]] = [
    ("plain", {}, "samples", 0.0),
    ("secagg", {"clip_range": 1.0}, "samples", None),
    ("secagg+", {"clip_range": 1.0, "neighbours": 2}, "samples", None),
    ("he", {}, "samples", 1e-6),
    ("mpc", {}, "samples", 0.0),
    ("dp", NO_NOISE, "uniform", 1e-6),
    ("compression", {"keep": 1.0}, "samples", 0.0),
    ("ldp", NO_NOISE, "uniform", 1e-6),
    ("ddp", NO_NOISE, "uniform", 1e-6),
    (("ddp", "secagg"), {"ddp": {"clip_norm": 10.0, "noise_multiplier": 1e-9}, "secagg": {"clip_range": 1.0}}, "uniform", None),
    (("compression", "secagg+"), {"compression": {"keep": 1.0}}, "samples", None),
]
HIDING = {"secagg", "secagg+", "he", "mpc", "ddp,secagg", "compression,secagg+"}


def _deployment(clients: int, dim: int, weights: torch.Tensor) -> Deployment:
    return Deployment(
        n_clients=clients,
        clients_per_round=clients,
        client_sampling="fixed",
        rounds=1,
        num_parameters=dim,
        client_weights=tuple(float(w) for w in weights),
    )


def _context(seed: int = 0) -> RoundContext:
    generator = torch.Generator().manual_seed(11)
    updates = torch.randn(5, 20, generator=generator) * 0.1
    weights = torch.tensor([1.0, 4.0, 2.0, 5.0, 3.0], dtype=torch.float64)
    return RoundContext(
        round_index=0,
        is_final_round=True,
        params_before=torch.linspace(-1, 1, 20),
        client_ids=(0, 1, 2, 3, 4),
        updates=updates,
        weights=weights,
        dropped=frozenset(),
        server_lr=1.0,
        public={"algorithm": "fedavg"},
        client_data={c: torch.tensor([c]) for c in range(5)},
        generator=torch.Generator().manual_seed(seed),
    )


def _run(name: Any, options: dict[str, Any], context: RoundContext) -> tuple[Any, Any]:
    scheme = create_scheme(name, **options)
    scheme.prepare(_deployment(len(context.client_ids), context.updates.shape[1], context.weights))
    return scheme, scheme.run_round(context)


def _case_id(case: tuple[Any, ...]) -> str:
    return case[0] if isinstance(case[0], str) else ",".join(case[0])


def test_every_registered_name_has_a_contract_case() -> None:
    covered = {name for case in CASES for name in ((case[0],) if isinstance(case[0], str) else case[0])}
    assert covered == set(SCHEMES.names()) | set(MECHANISMS.names())


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_the_aggregate_is_the_plain_weighted_mean_within_the_schemes_error(case: tuple[Any, ...]) -> None:
    name, options, weighting, tolerance = case
    context = _context()

    scheme, outcome = _run(name, options, context)

    weights = context.weights if weighting == "samples" else torch.ones(5, dtype=torch.float64)
    expected = context.params_before + weighted_mean(context.updates, weights)
    bound = scheme.lattice_step() * 2 + 1e-6 if tolerance is None else tolerance + 1e-7
    assert outcome.aborted is None and outcome.survivors == context.client_ids
    assert (outcome.params_after - expected).abs().max() <= bound


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_a_round_does_not_mutate_its_inputs_and_repeats_under_the_same_seed(case: tuple[Any, ...]) -> None:
    name, options, _, _ = case
    context = _context(seed=3)
    updates, params = context.updates.clone(), context.params_before.clone()

    _, first = _run(name, options, context)
    _, second = _run(name, options, _context(seed=3))

    assert torch.equal(context.updates, updates) and torch.equal(context.params_before, params)
    if name == "he":  # SEAL's randomness cannot be seeded: equal within CKKS error
        assert torch.allclose(first.params_after, second.params_after, atol=1e-6)
    else:
        assert torch.equal(first.params_after, second.params_after)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_every_observer_has_a_view_and_the_public_gets_the_final_model(case: tuple[Any, ...]) -> None:
    name, options, _, _ = case
    context = _context()

    _, outcome = _run(name, options, context)

    assert {SERVER, EAVESDROPPER, PUBLIC} | {f"client:{c}" for c in context.client_ids} <= set(outcome.views)
    assert torch.equal(outcome.views[PUBLIC].params_after, outcome.params_after)
    assert all(view.round_index == 0 for view in outcome.views.values())


@pytest.mark.parametrize("case", [c for c in CASES if _case_id(c) in HIDING], ids=_case_id)
def test_hiding_schemes_show_the_server_and_the_wire_no_plaintext_update(case: tuple[Any, ...]) -> None:
    name, options, _, _ = case
    context = _context()

    _, outcome = _run(name, options, context)

    for observer in (SERVER, EAVESDROPPER):
        for value in outcome.views[observer].received.values():
            if isinstance(value, torch.Tensor) and value.shape == context.updates[0].shape:
                assert not any(torch.allclose(value, u, atol=1e-6) for u in context.updates)
            elif isinstance(value, bytes):
                assert all(u.numpy().tobytes() not in value for u in context.updates)
