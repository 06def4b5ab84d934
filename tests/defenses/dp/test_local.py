import pytest
import torch

import defenses.dp  # noqa: F401  # registers dp, ldp, ddp
from defenses.dp import LocalDP, local_privacy_spent
from leakage import simulate
from leakage.aggregation import (
    MECHANISMS,
    ComposedScheme,
    PlainAggregation,
    RoundContext,
    create_scheme,
)
from leakage.errors import ConfigError
from leakage.views import SERVER


def _context(updates: torch.Tensor, *, round_index: int = 0, seed: int = 0) -> RoundContext:
    client_ids = tuple(range(len(updates)))
    return RoundContext(
        round_index=round_index,
        is_final_round=False,
        params_before=torch.zeros(updates.shape[1]),
        client_ids=client_ids,
        updates=updates,
        weights=torch.arange(1, len(client_ids) + 1, dtype=torch.float64),
        dropped=frozenset(),
        server_lr=1.0,
        public={"lr": 0.1},
        client_data={c: torch.tensor([c]) for c in client_ids},
        generator=torch.Generator().manual_seed(seed),
    )


def test_ldp_is_a_mechanism_that_runs_in_front_of_plain_by_default() -> None:
    scheme = create_scheme("ldp", clip_norm=1, noise_multiplier=1)

    assert MECHANISMS.get("ldp") is LocalDP and LocalDP.uniform_weights
    assert isinstance(scheme, ComposedScheme) and isinstance(scheme.protocol, PlainAggregation)
    assert scheme.name == "ldp,plain"


def test_each_client_sends_its_clipped_update_plus_full_gaussian_noise() -> None:
    size = 20_000
    updates = torch.zeros(3, size, dtype=torch.float64)
    updates[0, 0] = 10.0  # clipped down to 0.5
    mechanism = LocalDP(clip_norm=0.5, noise_multiplier=3.0)

    output = mechanism.apply(_context(updates), PlainAggregation())

    noise = output.updates - torch.nn.functional.pad(torch.tensor([[0.5], [0.0], [0.0]]), (0, size - 1)).double()
    for row in noise:
        assert float(row.std()) == pytest.approx(3.0 * 0.5, rel=0.03)
    assert output.metrics["clipped_clients"] == 1.0
    assert output.updates.dtype == updates.dtype


def test_plain_server_sees_only_noisy_updates() -> None:
    updates = torch.tensor([[0.3, 0.4], [0.1, 0.0]])
    scheme = create_scheme(["ldp", "plain"], ldp={"clip_norm": 1.0, "noise_multiplier": 1.0})

    outcome = scheme.run_round(_context(updates))

    received = outcome.views[SERVER].received
    for client in (0, 1):
        sent = outcome.views[f"client:{client}"].own["sent"]
        assert torch.equal(received[f"update:client:{client}"], sent)
        assert not torch.allclose(sent, updates[client])
    torch.testing.assert_close(outcome.params_after, (received["update:client:0"] + received["update:client:1"]) / 2)


def test_ldp_epsilon_is_the_unamplified_local_epsilon_of_every_round_so_far() -> None:
    mechanism = LocalDP(clip_norm=1.0, noise_multiplier=4.0, delta=1e-6, accountant="pld")
    updates = torch.zeros(2, 3)

    epsilons = [mechanism.apply(_context(updates, round_index=r), PlainAggregation()).public["ldp_epsilon"] for r in range(3)]

    assert epsilons[2] == local_privacy_spent(noise_multiplier=4.0, steps=3, delta=1e-6, method="pld").epsilon
    assert epsilons[0] < epsilons[1] < epsilons[2]  # type: ignore[operator]


def test_same_generator_same_noise_and_inputs_untouched() -> None:
    updates = torch.randn(3, 5, generator=torch.Generator().manual_seed(1))
    before = updates.clone()
    mechanism = LocalDP(clip_norm=1.0, noise_multiplier=1.0)
    global_state = torch.random.get_rng_state()

    first = mechanism.apply(_context(updates, seed=4), PlainAggregation()).updates
    again = mechanism.apply(_context(updates, seed=4), PlainAggregation()).updates
    other = mechanism.apply(_context(updates, seed=5), PlainAggregation()).updates

    assert torch.equal(first, again) and not torch.equal(first, other)
    assert torch.equal(updates, before)
    assert torch.equal(torch.random.get_rng_state(), global_state)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"clip_norm": 0}, "clip_norm"),
        ({"noise_multiplier": -2.0}, "noise_multiplier"),
        ({"delta": 1.0}, "delta"),
        ({"accountant": "gdp"}, "accountant must be one of rdp, pld"),
    ],
)
def test_bad_options_name_the_option(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        create_scheme("ldp", **{"clip_norm": 1.0, "noise_multiplier": 1.0, **options})


def test_simulation_with_ldp_in_front_of_plain(tiny_digits) -> None:
    transcript = simulate(
        dataset=tiny_digits,
        scheme=["ldp", "plain"],
        scheme_options={"ldp": {"clip_norm": 1.0, "noise_multiplier": 1.0}},
        n_clients=6,
        clients_per_round=3,
        rounds=2,
        model="logreg",
    )

    epsilons = [record.public["ldp_epsilon"] for record in transcript.rounds]
    print(f"ldp simulation epsilons: {epsilons}")
    assert epsilons[0] < epsilons[1]
    assert transcript.rounds[0].scheme == "ldp,plain"
