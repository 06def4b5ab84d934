"""Canary clients: the wrapper adds exactly the inserted, sampled canaries; the audit reads only views."""

import numpy as np
import pytest
import torch

from defenses.dp import CentralDP
from leakage.aggregation import PlainAggregation
from leakage.errors import ConfigError
from leakage.quantify import (
    CanarySpec,
    GuessRule,
    WithCanaries,
    audit_canaries,
    audit_with_canaries,
    canary_scores,
)
from leakage.simulation import SimulationSettings, Simulator
from leakage.transcript import Transcript

N_CLIENTS = 6


def _run(scheme: WithCanaries, **overrides: object) -> Transcript:
    options: dict[str, object] = {"n_clients": N_CLIENTS, "rounds": 2, "algorithm": "fedsgd", "seed": 3}
    options.update(overrides)
    return Simulator(SimulationSettings(**options), scheme=scheme).run()  # type: ignore[arg-type]


def _present(scheme: WithCanaries, round_index: int) -> np.ndarray:
    return scheme.sampled(round_index) & scheme.truth().inserted


def test_plain_adds_exactly_the_inserted_canaries() -> None:
    # arrange
    scheme = WithCanaries(PlainAggregation(), CanarySpec(m=8, norm=2.0, seed=1))
    # act
    transcript = _run(scheme)
    # assert: (model change) * total weight - sum_i w_i u_i = w_canary * sum of the present canaries
    truth = scheme.truth()
    assert 0 < truth.inserted.sum() < 8  # some canaries stay out, and those must never enter
    for record, real in zip(transcript.rounds, transcript.truth.rounds, strict=True):
        present = _present(scheme, record.round_index)
        total = float(real.weights.sum()) + scheme.canary_weight * present.sum()
        change = (record.params_after - record.params_before).to(torch.float64)
        residual = change * total - real.weights.to(torch.float64) @ real.updates.to(torch.float64)
        expected = scheme.canary_weight * 2.0 * truth.directions[torch.from_numpy(present)].sum(dim=0)
        torch.testing.assert_close(residual, expected, atol=2e-5, rtol=0)


def test_dp_clips_the_canaries_like_real_clients() -> None:
    # arrange: noise far below the tolerance, canaries 10 times the clip norm
    clip = 0.5
    scheme = WithCanaries(CentralDP(clip_norm=clip, noise_multiplier=1e-9), CanarySpec(m=8, norm=5.0, seed=1))
    # act
    transcript = _run(scheme, clients_per_round=3, client_sampling="poisson", rounds=4)
    # assert
    truth = scheme.truth()
    for record, real in zip(transcript.rounds, transcript.truth.rounds, strict=True):
        present = torch.from_numpy(_present(scheme, record.round_index))
        updates = real.updates.to(torch.float64)
        clipped = updates * (clip / updates.norm(dim=1, keepdim=True)).clamp(max=1.0)
        expected = clipped.sum(dim=0) + clip * truth.directions[present].sum(dim=0)
        change = (record.params_after - record.params_before).to(torch.float64) * 3
        torch.testing.assert_close(change, expected, atol=1e-5, rtol=0)


def test_canaries_are_poisson_sampled_at_the_real_rate() -> None:
    # arrange
    scheme = WithCanaries(PlainAggregation(), CanarySpec(m=200, norm=1.0, seed=2))
    # act
    transcript = _run(scheme, n_clients=20, clients_per_round=5, client_sampling="poisson", rounds=20)
    # assert: rate 5 / 20 over 4000 draws, and each round enters exactly the sampled inserted ones
    rate = np.mean([scheme.sampled(r) for r in range(20)])
    assert abs(rate - 0.25) < 0.03
    for record in transcript.rounds:
        assert record.metrics["canaries_sampled"] == _present(scheme, record.round_index).sum()


def test_membership_is_hidden_from_every_view() -> None:
    # arrange
    scheme = WithCanaries(PlainAggregation(), CanarySpec(m=8, norm=1.0, seed=1))
    # act
    transcript = _run(scheme)
    # assert: no canary observer, upload, participant, weight or survivor
    for record in transcript.rounds:
        assert all(client < N_CLIENTS for client in record.survivors)
        for observer, view in record.views.items():
            assert not (observer.startswith("client:") and int(observer.split(":")[1]) >= N_CLIENTS)
            assert all(client < N_CLIENTS for client in view.participants)
            assert all(int(key.rsplit(":", 1)[1]) < N_CLIENTS for key in view.received if key.startswith("update:"))
            weights = view.public.get("weights", {})
            assert isinstance(weights, dict)
            assert all(int(client) < N_CLIENTS for client in weights)


def test_small_non_private_run_gives_a_bound_above_one() -> None:
    # arrange
    settings = SimulationSettings(n_clients=10, rounds=2, algorithm="fedsgd", seed=0)
    # act
    result = audit_with_canaries(settings, CanarySpec(m=40, norm=1.0, seed=0))
    # assert
    fixed = result.audit("fixed", "steinke")
    assert fixed.epsilon_lower_bound > 1.0
    assert fixed.correct == fixed.guesses == 32
    assert result.audit("fixed", "gdp").epsilon_lower_bound > fixed.epsilon_lower_bound
    assert result.accountant_epsilon is None
    assert result.to_dict()["estimate"]["kind"] == "estimate"
    assert "delta = 1e-05" in result.summary()


def test_dirac_canaries_on_set_aside_coordinates_separate_exactly() -> None:
    # arrange
    scheme = WithCanaries(PlainAggregation(), CanarySpec(m=20, kind="dirac", norm=1.0, seed=4))
    # act
    transcript = _run(scheme)
    scores = canary_scores(transcript, scheme.truth())
    # assert: the set-aside coordinates move only by the present canaries
    inserted = scheme.truth().inserted
    assert scores[~inserted].max() == 0.0
    assert scores[inserted].min() > 0.0
    assert all(record.metrics["canary_coordinates_real_max"] >= 0 for record in transcript.rounds)
    result = audit_canaries(transcript, scheme.truth(), rule=GuessRule(top_k=int(inserted.sum())))
    assert result.audit("fixed", "steinke").correct == inserted.sum()
    assert result.isolated_coordinates


def test_same_seed_gives_the_same_audit() -> None:
    # arrange
    settings = SimulationSettings(n_clients=5, rounds=2, algorithm="fedsgd", seed=1)
    spec = CanarySpec(m=20, norm=1.0, seed=7)
    # act
    first, second = (audit_with_canaries(settings, spec) for _ in range(2))
    other = audit_with_canaries(settings, CanarySpec(m=20, norm=1.0, seed=8))
    # assert
    assert first.scores == second.scores
    assert first.to_dict() == second.to_dict()
    assert other.scores != first.scores


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"m": 1}, "m"),
        ({"m": 4, "kind": "gaussian"}, "kind"),
        ({"m": 4, "coordinates": (0, 1, 2, 3)}, "coordinates"),
        ({"m": 3, "kind": "dirac", "coordinates": (0, 0, 1)}, "coordinates"),
        ({"m": 4, "norm": -1.0}, "norm"),
    ],
)
def test_bad_canary_specs_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        CanarySpec(**options)  # type: ignore[arg-type]


def test_a_scheme_without_clip_norm_needs_a_norm() -> None:
    with pytest.raises(ConfigError, match="norm"):
        _run(WithCanaries(PlainAggregation(), CanarySpec(m=4)))
