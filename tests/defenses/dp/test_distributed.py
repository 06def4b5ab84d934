import math
from dataclasses import replace

import pytest
import torch

import defenses.dp  # noqa: F401  # registers dp, ldp, ddp
from defenses.dp import DistributedDP, compute_epsilon, local_privacy_spent
from leakage import simulate
from leakage.aggregation import (
    MECHANISMS,
    ComposedScheme,
    Deployment,
    PlainAggregation,
    RoundContext,
    RoundOutcome,
    create_scheme,
)
from leakage.errors import ConfigError


class _GridProtocol(PlainAggregation):
    """Plain aggregation that claims a lattice and a summand threshold, as secure aggregation does."""

    def __init__(self, *, step: float | None, summands: int) -> None:
        self.step = step
        self.summands = summands

    def lattice_step(self) -> float | None:
        return self.step

    def min_summands(self, deployment: Deployment) -> int:
        return self.summands

    def run_round(self, context: RoundContext) -> RoundOutcome:
        # Like secure aggregation, decode into the model's dtype (inputs on a grid are float64).
        return super().run_round(replace(context, updates=context.updates.to(context.params_before.dtype)))


def _deployment(
    *, n_clients: int = 20, clients_per_round: int = 4, sampling: str = "poisson", num_parameters: int = 3
) -> Deployment:
    return Deployment(
        n_clients=n_clients,
        clients_per_round=clients_per_round,
        client_sampling=sampling,  # type: ignore[arg-type]
        rounds=5,
        num_parameters=num_parameters,
        client_weights=(1.0,) * n_clients,
    )


def _context(updates: torch.Tensor, *, round_index: int = 0, seed: int = 0) -> RoundContext:
    client_ids = tuple(range(len(updates)))
    return RoundContext(
        round_index=round_index,
        is_final_round=False,
        params_before=torch.zeros(updates.shape[1]),
        client_ids=client_ids,
        updates=updates,
        weights=torch.ones(len(client_ids), dtype=torch.float64),
        dropped=frozenset(),
        server_lr=1.0,
        public={},
        client_data={c: torch.tensor([c]) for c in client_ids},
        generator=torch.Generator().manual_seed(seed),
    )


def _sent(
    updates: torch.Tensor,
    protocol: _GridProtocol,
    *,
    clip_norm: float = 1.0,
    noise_multiplier: float = 1.0,
    deployment: Deployment | None = None,
    round_index: int = 0,
) -> tuple[torch.Tensor, dict[str, object]]:
    mechanism = DistributedDP(clip_norm=clip_norm, noise_multiplier=noise_multiplier)
    mechanism.prepare(deployment or _deployment(num_parameters=updates.shape[1]), protocol)
    output = mechanism.apply(_context(updates, round_index=round_index), protocol)
    return output.updates, dict(output.public)


def test_ddp_is_a_uniform_weight_mechanism() -> None:
    assert MECHANISMS.get("ddp") is DistributedDP and DistributedDP.uniform_weights


@pytest.mark.parametrize("step", [2.0**-6, 0.01, 3e-11])
def test_sent_vectors_lie_on_the_protocol_grid(step: float) -> None:
    updates = torch.randn(5, 300, generator=torch.Generator().manual_seed(0))

    sent, _ = _sent(updates, _GridProtocol(step=step, summands=3))

    grid = sent / step
    assert sent.dtype == torch.float64  # float32 cannot hold fine grids exactly
    torch.testing.assert_close(grid, grid.round(), rtol=0, atol=1e-4)  # float64 rounding of k * step


def test_rounding_is_within_one_step_of_the_clipped_update_when_noise_is_negligible() -> None:
    step = 2.0**-8
    updates = torch.tensor([[3.0, 4.0, 0.0], [0.1, -0.2, 0.05]])

    sent, _ = _sent(updates, _GridProtocol(step=step, summands=1), noise_multiplier=1e-9)

    clipped = torch.tensor([[0.6, 0.8, 0.0], [0.1, -0.2, 0.05]])
    assert torch.all((sent - clipped).abs() < step)


@pytest.mark.parametrize("step", [None, 2.0**-10])
def test_each_share_scales_as_one_over_sqrt_min_summands_and_m_shares_carry_the_full_noise(step: float | None) -> None:
    size, clip_norm, noise_multiplier = 20_000, 0.5, 2.0
    full_std = noise_multiplier * clip_norm

    for summands in (1, 4, 9):
        sent, _ = _sent(
            torch.zeros(summands, size), _GridProtocol(step=step, summands=summands),
            clip_norm=clip_norm, noise_multiplier=noise_multiplier,
        )

        per_client = sent.double().std(dim=1)
        assert torch.allclose(per_client, torch.full_like(per_client, full_std / math.sqrt(summands)), rtol=0.03)
        assert float(sent.double().sum(dim=0).std()) == pytest.approx(full_std, rel=0.03)


def test_plain_protocol_means_full_local_noise_and_server_epsilon_equals_local_dp() -> None:
    size = 20_000
    mechanism = DistributedDP(clip_norm=1.0, noise_multiplier=3.0)
    mechanism.prepare(_deployment(num_parameters=size), PlainAggregation())

    output = mechanism.apply(_context(torch.zeros(2, size), round_index=1), PlainAggregation())

    assert float(output.updates[0].std()) == pytest.approx(3.0, rel=0.03)
    assert output.public["ddp_min_summands"] == 1 and output.public["ddp_lattice_step"] is None
    assert output.public["epsilon_vs_server"] == local_privacy_spent(noise_multiplier=3.0, steps=2, delta=1e-5).epsilon


def test_epsilons_grow_and_amplification_only_helps_against_model_observers() -> None:
    protocol = _GridProtocol(step=None, summands=3)
    deployment = _deployment(n_clients=100, clients_per_round=5)

    publics = [_sent(torch.zeros(3, 3), protocol, deployment=deployment, round_index=r)[1] for r in range(3)]

    epsilons = [p["epsilon"] for p in publics]
    server = [p["epsilon_vs_server"] for p in publics]
    print(f"ddp epsilons: model observers {epsilons}, server {server}")
    assert epsilons[0] < epsilons[1] < epsilons[2]  # type: ignore[operator]
    assert server[0] < server[1] < server[2]  # type: ignore[operator]
    assert epsilons[2] == compute_epsilon(
        noise_multiplier=1.0, steps=3, delta=1e-5, sampling_rate=0.05, client_sampling="poisson"
    )
    assert all(e < s for e, s in zip(epsilons, server))  # type: ignore[operator]


def test_rounding_slack_enters_the_sensitivity_and_the_accounting() -> None:
    step, size = 2.0**-4, 64
    _, public = _sent(torch.zeros(2, size), _GridProtocol(step=step, summands=2))

    sensitivity = 1.0 + step * math.sqrt(size)
    assert public["ddp_sensitivity"] == pytest.approx(sensitivity)
    assert public["epsilon"] == pytest.approx(
        compute_epsilon(
            noise_multiplier=1.0 / sensitivity, steps=1, delta=1e-5, sampling_rate=0.2, client_sampling="poisson"
        )
    )


def test_same_generator_same_output_and_inputs_untouched() -> None:
    updates = torch.randn(4, 50, generator=torch.Generator().manual_seed(3))
    before = updates.clone()
    protocol = _GridProtocol(step=2.0**-6, summands=2)
    mechanism = DistributedDP(clip_norm=1.0, noise_multiplier=1.0)
    mechanism.prepare(_deployment(num_parameters=50), protocol)
    global_state = torch.random.get_rng_state()

    first = mechanism.apply(_context(updates, seed=1), protocol).updates
    again = mechanism.apply(_context(updates, seed=1), protocol).updates
    other = mechanism.apply(_context(updates, seed=2), protocol).updates

    assert torch.equal(first, again) and not torch.equal(first, other)
    assert torch.equal(updates, before)
    assert torch.equal(torch.random.get_rng_state(), global_state)


def test_apply_before_prepare_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="prepare"):
        DistributedDP(clip_norm=1.0, noise_multiplier=1.0).apply(_context(torch.zeros(1, 2)), PlainAggregation())


def test_pld_refuses_fixed_size_sampling_at_prepare() -> None:
    mechanism = DistributedDP(clip_norm=1.0, noise_multiplier=1.0, accountant="pld")

    with pytest.raises(ConfigError, match="pld"):
        mechanism.prepare(_deployment(sampling="fixed"), PlainAggregation())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"clip_norm": -1.0}, "clip_norm"),
        ({"noise_multiplier": 0.0}, "noise_multiplier"),
        ({"delta": -0.1}, "delta"),
        ({"accountant": "zcdp"}, "accountant must be one of rdp, pld"),
    ],
)
def test_bad_options_name_the_option(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        create_scheme(["ddp", "plain"], ddp={"clip_norm": 1.0, "noise_multiplier": 1.0, **options})


def test_simulation_with_a_grid_protocol(tiny_digits) -> None:
    scheme = ComposedScheme(
        [DistributedDP(clip_norm=1.0, noise_multiplier=1.0)], _GridProtocol(step=2.0**-12, summands=2)
    )

    transcript = simulate(
        dataset=tiny_digits, scheme=scheme, n_clients=6, clients_per_round=3, client_sampling="poisson",
        rounds=2, model="logreg",
    )

    first, second = transcript.rounds
    assert first.public["epsilon"] < second.public["epsilon"]
    assert first.public["epsilon_vs_server"] < second.public["epsilon_vs_server"]
    sent = [view.own["sent"] for observer, view in second.views.items() if observer.startswith("client:")]
    assert sent and all(vector.dtype == torch.float64 for vector in sent)
    grid = torch.stack(sent) * 2**12
    assert torch.equal(grid, grid.round())
    assert second.params_after.dtype == transcript.initial_params.dtype
