import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from leakage.aggregation import (
    SCHEMES,
    AggregationScheme,
    RoundContext,
    RoundOutcome,
    create_scheme,
    weighted_mean,
)
from leakage.views import EAVESDROPPER, PUBLIC, SERVER


def _context(updates: torch.Tensor, weights: torch.Tensor, client_ids=None, dropped=frozenset(), final=False):
    client_ids = tuple(range(len(updates))) if client_ids is None else tuple(client_ids)
    return RoundContext(
        round_index=4,
        is_final_round=final,
        params_before=torch.zeros(updates.shape[1]),
        client_ids=client_ids,
        updates=updates,
        weights=weights,
        dropped=frozenset(dropped),
        server_lr=1.0,
        public={"lr": 0.1},
        client_data={c: torch.tensor([c]) for c in client_ids},
    )


def test_weighted_mean_matches_the_fedavg_formula() -> None:
    updates = torch.tensor([[2.0, 0.0], [0.0, 4.0], [1.0, 1.0]])
    weights = torch.tensor([1.0, 3.0, 0.0], dtype=torch.float64)

    assert torch.equal(weighted_mean(updates, weights), torch.tensor([0.5, 3.0]))
    assert torch.equal(weighted_mean(updates[:0], weights[:0]), torch.zeros(2))


@settings(max_examples=25, deadline=None)
@given(clients=st.integers(1, 8), size=st.integers(1, 6), seed=st.integers(0, 1000), data=st.data())
def test_aggregation_ignores_client_order(clients: int, size: int, seed: int, data) -> None:
    generator = torch.Generator().manual_seed(seed)
    updates = torch.randn(clients, size, generator=generator, dtype=torch.float64).float()
    weights = torch.randint(1, 20, (clients,), generator=generator).double()
    order = data.draw(st.permutations(range(clients)))

    straight = create_scheme("plain").run_round(_context(updates, weights))
    shuffled = create_scheme("plain").run_round(
        _context(updates[list(order)], weights[list(order)], client_ids=order)
    )

    torch.testing.assert_close(straight.params_after, shuffled.params_after, rtol=1e-6, atol=1e-6)


def test_plain_views_show_each_observer_what_it_saw() -> None:
    updates = torch.arange(12.0).reshape(3, 4)
    outcome = create_scheme("plain").run_round(
        _context(updates, torch.ones(3, dtype=torch.float64), dropped={1}, final=True)
    )

    assert outcome.survivors == (0, 2)
    assert torch.equal(outcome.params_after, (updates[0] + updates[2]) / 2)
    assert set(outcome.views[SERVER].received) == {"update:client:0", "update:client:2"}
    assert outcome.views[SERVER].public["weights"] == {"0": 1.0, "2": 1.0}
    assert outcome.views[EAVESDROPPER].own == {}
    dropped = outcome.views["client:1"]
    assert dropped.params_after is None and torch.equal(dropped.own["update"], updates[1])
    assert torch.equal(outcome.views[PUBLIC].params_after, outcome.params_after)
    assert outcome.views[PUBLIC].params_before is None


def test_a_new_scheme_plugs_in_by_name_without_touching_the_simulator(tiny_digits) -> None:
    from leakage import simulate

    class HideEverything(AggregationScheme):
        name = "test_nothing_seen"

        def run_round(self, context: RoundContext) -> RoundOutcome:
            return RoundOutcome(params_after=context.params_before, survivors=(), views={})

    SCHEMES.register("test_nothing_seen")(HideEverything)
    try:  # registered for this test only: contract tests iterate over the registry
        transcript = simulate(dataset=tiny_digits, scheme="test_nothing_seen", n_clients=3, rounds=2)

        assert transcript.observers() == []
        assert torch.equal(transcript.final_params, transcript.initial_params)
        with pytest.raises(ValueError, match="already registered"):
            SCHEMES.register("test_nothing_seen")(HideEverything)
    finally:
        SCHEMES.unregister("test_nothing_seen")
