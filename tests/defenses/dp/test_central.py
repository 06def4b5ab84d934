import math

import pytest
import torch

import defenses.dp  # noqa: F401  # registers dp, ldp, ddp
from defenses.dp import CentralDP, compute_epsilon
from leakage import simulate
from leakage.aggregation import SCHEMES, Deployment, RoundContext, create_scheme
from leakage.errors import ConfigError
from leakage.views import EAVESDROPPER, PUBLIC, SERVER


def _deployment(
    *, n_clients: int = 10, clients_per_round: int = 4, sampling: str = "poisson", num_parameters: int = 3
) -> Deployment:
    return Deployment(
        n_clients=n_clients,
        clients_per_round=clients_per_round,
        client_sampling=sampling,  # type: ignore[arg-type]
        rounds=5,
        num_parameters=num_parameters,
        client_weights=(1.0,) * n_clients,
    )


def _context(
    updates: torch.Tensor,
    *,
    client_ids: tuple[int, ...] | None = None,
    dropped: frozenset[int] = frozenset(),
    round_index: int = 0,
    final: bool = False,
    seed: int = 0,
    weights: torch.Tensor | None = None,
) -> RoundContext:
    client_ids = tuple(range(len(updates))) if client_ids is None else client_ids
    return RoundContext(
        round_index=round_index,
        is_final_round=final,
        params_before=torch.zeros(updates.shape[1]),
        client_ids=client_ids,
        updates=updates,
        weights=torch.ones(len(client_ids), dtype=torch.float64) if weights is None else weights,
        dropped=dropped,
        server_lr=1.0,
        public={"lr": 0.1},
        client_data={c: torch.tensor([c]) for c in client_ids},
        generator=torch.Generator().manual_seed(seed),
    )


def _prepared(deployment: Deployment | None = None, **options: float) -> CentralDP:
    scheme = create_scheme("dp", **{"clip_norm": 1.0, "noise_multiplier": 1.0, **options})
    assert isinstance(scheme, CentralDP)
    scheme.prepare(deployment or _deployment())
    return scheme


def test_dp_is_registered_as_a_scheme() -> None:
    assert SCHEMES.get("dp") is CentralDP


def test_sum_of_clipped_arrivals_is_divided_by_the_expected_clients_not_the_arrivals() -> None:
    updates = torch.tensor([[3.0, 4.0, 0.0], [0.1, 0.2, 0.3], [0.0, 0.0, 5.0]], dtype=torch.float64)
    scheme = _prepared(_deployment(clients_per_round=4), clip_norm=1.0, noise_multiplier=1e-12)

    outcome = scheme.run_round(_context(updates, dropped=frozenset({1})))

    expected = torch.tensor([0.6, 0.8, 1.0]) / 4
    torch.testing.assert_close(outcome.params_after, expected, rtol=0, atol=1e-6)
    assert outcome.survivors == (0, 2)
    assert outcome.metrics["clipped_clients"] == 2.0


def test_a_round_where_nobody_arrives_still_releases_noise_and_counts() -> None:
    scheme = _prepared(_deployment(clients_per_round=2, num_parameters=4))

    outcome = scheme.run_round(_context(torch.ones(2, 4), dropped=frozenset({0, 1}), round_index=1))

    assert outcome.survivors == () and outcome.metrics["clipped_clients"] == 0.0
    assert not torch.equal(outcome.params_after, torch.zeros(4))
    assert outcome.public["epsilon"] == compute_epsilon(
        noise_multiplier=1.0, steps=2, delta=1e-5, sampling_rate=0.2, client_sampling="poisson"
    )


def test_weights_are_ignored_every_client_counts_once() -> None:
    updates = torch.tensor([[0.5, 0.0], [0.0, 0.5]], dtype=torch.float64)
    scheme = _prepared(_deployment(clients_per_round=2, num_parameters=2))

    equal = scheme.run_round(_context(updates, seed=3))
    skewed = scheme.run_round(_context(updates, seed=3, weights=torch.tensor([1.0, 100.0], dtype=torch.float64)))

    assert torch.equal(equal.params_after, skewed.params_after)


def test_noise_on_the_sum_has_std_noise_multiplier_times_clip_norm() -> None:
    size = 40_000
    scheme = _prepared(_deployment(clients_per_round=5, num_parameters=size), clip_norm=0.5, noise_multiplier=2.0)

    outcome = scheme.run_round(_context(torch.zeros(3, size)))

    noise_on_sum = outcome.params_after.double() * 5
    assert float(noise_on_sum.mean()) == pytest.approx(0.0, abs=5 * 1.0 / math.sqrt(size))
    assert float(noise_on_sum.std()) == pytest.approx(2.0 * 0.5, rel=0.02)


def test_noise_comes_from_the_context_generator_only() -> None:
    updates = torch.randn(4, 6, generator=torch.Generator().manual_seed(0))
    scheme = _prepared(_deployment(num_parameters=6))
    global_state = torch.random.get_rng_state()

    first = scheme.run_round(_context(updates, seed=9))
    again = scheme.run_round(_context(updates, seed=9))
    other = scheme.run_round(_context(updates, seed=10))

    assert torch.equal(first.params_after, again.params_after)
    assert not torch.equal(first.params_after, other.params_after)
    assert torch.equal(torch.random.get_rng_state(), global_state)


def test_inputs_are_not_mutated() -> None:
    updates = torch.randn(4, 6, generator=torch.Generator().manual_seed(0)) * 5
    before = updates.clone()

    _prepared(_deployment(num_parameters=6)).run_round(_context(updates))

    assert torch.equal(updates, before)


def test_server_and_eavesdropper_see_clipped_updates_others_only_the_noisy_model() -> None:
    updates = torch.tensor([[3.0, 4.0], [0.3, 0.4], [6.0, 8.0]])
    scheme = _prepared(_deployment(clients_per_round=3, num_parameters=2), clip_norm=1.0)

    outcome = scheme.run_round(_context(updates, dropped=frozenset({2}), final=True))

    server = outcome.views[SERVER]
    assert set(server.received) == {"update:client:0", "update:client:1"}
    torch.testing.assert_close(server.received["update:client:0"], torch.tensor([0.6, 0.8]))
    assert server.participants == frozenset({0, 1})
    assert server.public["epsilon"] == outcome.public["epsilon"]
    eavesdropper = outcome.views[EAVESDROPPER]
    assert eavesdropper.received.keys() == server.received.keys() and eavesdropper.own == {}
    client = outcome.views["client:1"]
    assert client.received == {} and client.participants == frozenset()
    assert torch.equal(client.params_after, outcome.params_after)
    assert torch.equal(client.own["update"], updates[1]) and torch.equal(client.own["sent"], updates[1])
    dropped = outcome.views["client:2"]
    assert dropped.params_after is None and "epsilon" not in dropped.public
    torch.testing.assert_close(dropped.own["sent"], torch.tensor([0.6, 0.8]))
    public = outcome.views[PUBLIC]
    assert public.params_before is None and public.received == {}
    assert torch.equal(public.params_after, outcome.params_after)


def test_public_reports_the_cumulative_epsilon_of_the_deployment_sampling() -> None:
    scheme = _prepared(_deployment(n_clients=10, clients_per_round=4), noise_multiplier=1.5, delta=1e-6)
    updates = torch.zeros(2, 3)

    outcomes = [scheme.run_round(_context(updates, round_index=r)) for r in range(3)]

    epsilons = [o.public["epsilon"] for o in outcomes]
    assert epsilons[2] == compute_epsilon(
        noise_multiplier=1.5, steps=3, delta=1e-6, sampling_rate=0.4, client_sampling="poisson"
    )
    assert epsilons[0] < epsilons[1] < epsilons[2]  # type: ignore[operator]
    assert outcomes[0].public["delta"] == 1e-6
    assert outcomes[0].public["clip_norm"] == 1.0 and outcomes[0].public["noise_multiplier"] == 1.5


def test_fixed_size_sampling_is_accounted_without_replacement() -> None:
    scheme = _prepared(_deployment(n_clients=10, clients_per_round=4, sampling="fixed"), noise_multiplier=2.0)

    outcome = scheme.run_round(_context(torch.zeros(4, 3)))

    assert outcome.public["epsilon"] == compute_epsilon(
        noise_multiplier=2.0, steps=1, delta=1e-5, population=10, sample_size=4, client_sampling="fixed"
    )


def test_pld_cannot_account_fixed_size_sampling_and_says_so_before_round_zero() -> None:
    scheme = create_scheme("dp", clip_norm=1.0, noise_multiplier=1.0, accountant="pld")

    with pytest.raises(ConfigError, match="pld"):
        scheme.prepare(_deployment(sampling="fixed"))
    scheme.prepare(_deployment(sampling="poisson"))


def test_running_a_round_before_prepare_is_an_error() -> None:
    scheme = create_scheme("dp", clip_norm=1.0, noise_multiplier=1.0)

    with pytest.raises(RuntimeError, match="prepare"):
        scheme.run_round(_context(torch.zeros(2, 3)))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"clip_norm": 0.0}, "clip_norm"),
        ({"clip_norm": -1.0}, "clip_norm"),
        ({"noise_multiplier": 0.0}, "noise_multiplier"),
        ({"delta": 0.0}, "delta"),
        ({"delta": 1.5}, "delta"),
        ({"accountant": "moments"}, "accountant must be one of rdp, pld"),
        ({"epsilon": 1.0}, "unknown option 'epsilon'"),
    ],
)
def test_bad_options_name_the_option(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        create_scheme("dp", **{"clip_norm": 1.0, "noise_multiplier": 1.0, **options})


def test_simulation_reports_a_growing_epsilon(tiny_digits) -> None:
    transcript = simulate(
        dataset=tiny_digits,
        scheme="dp",
        scheme_options={"clip_norm": 1.0, "noise_multiplier": 1.0},
        n_clients=10,
        clients_per_round=5,
        client_sampling="poisson",
        rounds=3,
        model="logreg",
    )

    epsilons = [record.public["epsilon"] for record in transcript.rounds]
    print(f"dp simulation epsilons: {epsilons}")
    assert epsilons[0] < epsilons[1] < epsilons[2]
    assert all("clipped_clients" in record.metrics for record in transcript.rounds)
    assert transcript.rounds[-1].scheme == "dp"


def test_same_seed_same_transcript(tiny_digits) -> None:
    def run(seed: int) -> torch.Tensor:
        return simulate(
            dataset=tiny_digits, scheme="dp", scheme_options={"clip_norm": 1.0, "noise_multiplier": 1.0},
            n_clients=4, clients_per_round=2, rounds=2, model="logreg", seed=seed,
        ).final_params

    assert torch.equal(run(0), run(0))
    assert not torch.equal(run(0), run(1))
