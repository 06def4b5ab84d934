import dataclasses
import json
import math

import pytest
import torch
import torch.nn.functional as F

from attacks import Knowledge, create_attack
from attacks.disaggregation import DisaggregationAttack, disaggregate
from leakage import simulate
from leakage.errors import ConfigError, ThreatModelError
from leakage.views import RoundView

PARAMS = 7


def _participation(rounds: int, clients: int, per_round: int, seed: int = 0) -> list[tuple[int, ...]]:
    generator = torch.Generator().manual_seed(seed)
    return [tuple(sorted(torch.randperm(clients, generator=generator)[:per_round].tolist())) for _ in range(rounds)]


def _views(
    sets: list[tuple[int, ...]],
    update_of,
    weights: list[float],
    *,
    observer: str = "server",
    server_lr: float = 0.5,
    public: str = "total_weight",
) -> list[RoundView]:
    """Noiseless views of a sample-count weighted aggregation; ``update_of(t, j)`` gives u_j(t)."""
    params = torch.linspace(-1, 1, PARAMS, dtype=torch.float64)
    views = []
    for t, members in enumerate(sets):
        total = sum(weights[j] for j in members)
        delta = sum(weights[j] * update_of(t, j) for j in members) / total
        after = params + server_lr * delta
        told: dict = {"weighting": "sample_count", "server_lr": server_lr, "algorithm": "fedsgd", "batch_size": 4}
        received: dict = {}
        if public == "total_weight":
            told["total_weight"] = float(total)
            received["aggregate"] = delta
        elif public == "weights":
            told["weights"] = {str(j): float(weights[j]) for j in members}
        elif public == "uniform":
            told["weighting"] = "uniform"
        if observer == "eavesdropper":  # sees the model change and who took part, nothing decoded
            told, received = {}, {}
        views.append(RoundView(t, observer, params, after, received, participants=frozenset(members), public=told))
        params = after
    return views


def _constant(seed: int = 0, clients: int = 5):
    table = torch.randn(clients, PARAMS, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return table, lambda t, j: table[j]


WEIGHTS = [3.0, 5.0, 2.0, 7.0, 4.0]


def test_noiseless_constant_updates_are_recovered_exactly_from_secure_sums() -> None:
    table, update_of = _constant()
    views = _views(_participation(12, 5, 3), update_of, WEIGHTS)

    estimate = DisaggregationAttack().run(views)

    assert sorted(next(iter(item.clients)) for item in estimate.recovered) == [0, 1, 2, 3, 4]
    for client in range(5):
        (item,) = estimate.of_client(client)
        assert torch.allclose(item.update, table[client], atol=1e-10)
        assert item.weight == WEIGHTS[client]  # solved from the summed weights, snapped to integers
        assert item.rounds == tuple(t for t, view in enumerate(views) if client in view.participants)
        assert torch.equal(item.params_before, views[item.rounds[0]].params_before)
    assert estimate.details["rank"] == 5 and estimate.details["identifiable_clients"] == 5
    assert estimate.details["relative_residual"] < 1e-12 and estimate.details["weight_residual"] < 1e-9
    assert estimate.observation(3).value is estimate.of_client(3)[0].update


@pytest.mark.parametrize("public", ["weights", "uniform"])
def test_the_model_change_and_the_public_rule_give_the_same_exact_answer(public: str) -> None:
    table, update_of = _constant(1)
    weights = WEIGHTS if public == "weights" else [1.0] * 5
    views = _views(_participation(10, 5, 2, seed=3), update_of, weights, server_lr=2.0, public=public)

    estimate = DisaggregationAttack().run(views)

    assert estimate.details["identifiable_clients"] == 5
    for client in range(5):
        assert torch.allclose(estimate.of_client(client)[0].update, table[client], atol=1e-9)
    assert estimate.assumptions == ("every client's update is constant over all rounds",)


def test_linear_drift_recovers_the_mean_update_over_each_clients_rounds() -> None:
    start, _ = _constant(2)
    slope = torch.randn(5, PARAMS, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    views = _views(_participation(20, 5, 3, seed=4), lambda t, j: start[j] + 0.1 * t * slope[j], WEIGHTS)

    linear = DisaggregationAttack(drift="linear").run(views)
    constant = DisaggregationAttack().run(views)

    for client in range(5):
        (item,) = linear.of_client(client)
        truth = torch.stack([start[client] + 0.1 * t * slope[client] for t in item.rounds]).mean(0)
        assert torch.allclose(item.update, truth, atol=1e-9)
        assert not torch.allclose(constant.of_client(client)[0].update, truth, atol=1e-3)
    assert linear.details["rank"] == 10 and linear.details["relative_residual"] < 1e-12


def test_windows_follow_updates_that_change_between_windows() -> None:
    tables = [_constant(seed)[0] for seed in (5, 6, 7)]
    views = _views(_participation(30, 5, 3, seed=2), lambda t, j: tables[t // 10][j], WEIGHTS)

    estimate = DisaggregationAttack(window=10).run(views)
    whole = DisaggregationAttack().run(views)

    assert estimate.details["windows"] == 3
    for item in estimate.recovered:
        block = item.rounds[0] // 10
        assert all(t // 10 == block for t in item.rounds)
        assert torch.allclose(item.update, tables[block][next(iter(item.clients))], atol=1e-9)
    assert whole.details["relative_residual"] > 0.1  # one window cannot fit three different updates


def test_an_eavesdropper_needs_the_weights_declared(tiny_model: torch.nn.Module) -> None:
    table, update_of = _constant(3)
    sets = _participation(12, 5, 3, seed=5)
    views = _views(sets, update_of, WEIGHTS, observer="eavesdropper", server_lr=1.0)
    knowledge = Knowledge(tiny_model, (1, 8, 8), 10, client_weights=dict(enumerate(WEIGHTS)))

    with pytest.raises(ThreatModelError, match="client_weights"):
        DisaggregationAttack().run(views)
    estimate = DisaggregationAttack().run(views, knowledge)

    assert estimate.observer == "eavesdropper" and estimate.details["identifiable_clients"] == 5
    assert torch.allclose(estimate.of_client(2)[0].update, table[2], atol=1e-9)
    assert any("learning rate is 1" in line for line in estimate.assumptions)
    assert any("knowledge.client_weights" in line for line in estimate.assumptions)


def test_fedsgd_without_disclosed_weights_assumes_full_batches() -> None:
    table, update_of = _constant(4)
    views = _views(_participation(12, 5, 3, seed=6), update_of, [4.0] * 5, public="none")

    estimate = DisaggregationAttack().run(views)

    assert "every participant drew a full FedSGD batch of 4 samples" in estimate.assumptions
    assert torch.allclose(estimate.of_client(0)[0].update, table[0], atol=1e-9)


def test_only_identifiable_clients_are_returned() -> None:
    _, update_of = _constant(5, clients=6)
    sets = [(0, 1, 2), (3, 4, 5), (0, 1, 3), (3, 4), (4, 5)]  # 0 and 1 always take part together
    views = _views(sets, update_of, [1.0] * 6, public="uniform")

    estimate = DisaggregationAttack().run(views)

    assert sorted(next(iter(item.clients)) for item in estimate.recovered) == [2, 3, 4, 5]
    assert estimate.details["identifiable_clients"] == 4 and estimate.details["rank"] == 5


def test_too_few_rounds_identify_nobody() -> None:
    _, update_of = _constant(6, clients=6)
    views = _views([(0, 1, 2), (3, 4, 5), (0, 1, 3)], update_of, [1.0] * 6, public="uniform")

    with pytest.raises(ThreatModelError, match="rank at most 3 for 6 unknowns"):
        DisaggregationAttack().run(views)


def test_constant_participation_identifies_nobody() -> None:
    _, update_of = _constant(7)
    views = _views([(0, 1, 2, 3, 4)] * 6, update_of, WEIGHTS)

    with pytest.raises(ThreatModelError, match="participation never varies"):
        DisaggregationAttack().run(views)


def test_summed_weights_that_fit_no_constant_counts_are_rejected() -> None:
    _, update_of = _constant(8)
    views = _views(_participation(12, 5, 3, seed=7), update_of, WEIGHTS)
    bumped = {**views[4].public, "total_weight": views[4].public["total_weight"] + 1.5}
    views[4] = dataclasses.replace(views[4], public=bumped)

    with pytest.raises(ThreatModelError, match="sample counts"):
        DisaggregationAttack().run(views)


def test_integrality_snaps_solved_weights_and_rejects_fractional_ones() -> None:
    _, update_of = _constant(11)
    sets = [(0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 0), (4, 0, 1)]  # square and invertible: no residual to check
    views = _views(sets, update_of, WEIGHTS)

    def with_totals(shift: list[float]) -> list[RoundView]:
        return [
            dataclasses.replace(view, public={**view.public, "total_weight": view.public["total_weight"] + extra})
            for view, extra in zip(views, shift)
        ]

    estimate = DisaggregationAttack().run(with_totals([1e-9] * 5))
    assert [estimate.of_client(c)[0].weight for c in range(5)] == WEIGHTS
    with pytest.raises(ThreatModelError, match="positive integer sample counts"):
        DisaggregationAttack().run(with_totals([0.5, 0, 0, 0, 0]))


def test_ridge_shrinks_the_estimates() -> None:
    _, update_of = _constant(9)
    views = _views(_participation(12, 5, 3, seed=8), update_of, WEIGHTS)

    plain = DisaggregationAttack().run(views)
    shrunk = DisaggregationAttack(ridge=0.1).run(views)

    for client in range(5):
        assert shrunk.of_client(client)[0].update.norm() < plain.of_client(client)[0].update.norm()


def test_same_views_give_the_same_estimate_and_stay_unchanged() -> None:
    _, update_of = _constant(10)
    views = _views(_participation(12, 5, 3, seed=9), update_of, WEIGHTS)
    copies = [(v.params_before.clone(), v.params_after.clone(), v.received["aggregate"].clone()) for v in views]
    attack = DisaggregationAttack(window=6)

    first = attack.run(views)
    second = attack.run(list(reversed(views)))

    assert [item.rounds for item in first.recovered] == [item.rounds for item in second.recovered]
    assert all(torch.equal(a.update, b.update) for a, b in zip(first.recovered, second.recovered))
    for view, (before, after, aggregate) in zip(views, copies):
        assert torch.equal(view.params_before, before) and torch.equal(view.params_after, after)
        assert torch.equal(view.received["aggregate"], aggregate)
    assert attack.window == 6 and attack.drift == "constant"
    json.dumps(first.to_dict())


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"window": 0}, "window"),
        ({"window": True}, "window"),
        ({"window": 2.5}, "window"),
        ({"drift": "quadratic"}, "drift"),
        ({"ridge": -1.0}, "ridge"),
        ({"ridge": math.nan}, "ridge"),
        ({"tolerance": 0.0}, "tolerance"),
        ({"tolerance": 1.0}, "tolerance"),
        ({"windw": 3}, "windw"),
    ],
)
def test_bad_options_are_rejected_by_name(options: dict, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        create_attack("disaggregation", **options)


def test_views_without_aggregates_or_participants_are_refused() -> None:
    released = [RoundView(t, "server", None, torch.zeros(3), public={"weighting": "sample_count"}) for t in range(3)]

    with pytest.raises(ThreatModelError, match="MPC"):
        DisaggregationAttack().run(released)


def test_a_participants_views_are_refused() -> None:
    transcript = simulate(n_clients=3, rounds=1, algorithm="fedsgd", batch_size=4)

    with pytest.raises(ThreatModelError, match="server or an eavesdropper"):
        DisaggregationAttack().run(transcript.views_of("client:0"))


def test_disaggregate_checks_shapes() -> None:
    with pytest.raises(ValueError, match="share R rounds"):
        disaggregate(torch.ones(3, 2), torch.ones(4, 5))
    with pytest.raises(ValueError, match="times"):
        disaggregate(torch.ones(3, 2), torch.ones(3, 5), times=torch.ones(2))


def _cosines(transcript, estimate) -> tuple[list[float], list[float]]:
    """Cosine of each estimate, and of the naive guess (the mean aggregate), to the true mean update."""
    views = {view.round_index: view for view in transcript.views_of("server")}
    found, naive = [], []
    for item in estimate.recovered:
        client = next(iter(item.clients))
        truth = torch.stack([transcript.truth.rounds[r].update_of(client) for r in item.rounds]).double()
        guess = torch.stack([views[r].received["aggregate"] for r in item.rounds]).double()
        truth, guess = truth.mean(0), guess.mean(0)
        found.append(float(F.cosine_similarity(item.update, truth, dim=0)))
        naive.append(float(F.cosine_similarity(guess, truth, dim=0)))
    return found, naive


def _secagg(dataset, **settings):
    base = {
        "dataset": dataset, "scheme": "secagg", "n_clients": 6, "clients_per_round": 3, "algorithm": "fedsgd",
        "batch_size": None, "lr": 0.01, "partition": "dirichlet", "partition_options": {"alpha": 0.5}, "seed": 0,
    }
    return simulate(**{**base, **settings})


def test_a_secagg_server_recovers_slowly_changing_updates(tiny_digits) -> None:
    transcript = _secagg(tiny_digits, rounds=30)

    estimate = create_attack("disaggregation").run(transcript.views_of("server"))

    found, naive = _cosines(transcript, estimate)
    assert estimate.details["identifiable_clients"] == 6
    assert min(found) > 0.99 and max(naive) < 0.95
    truth = transcript.truth.rounds[0]
    for client in truth.client_ids:  # the solved sample counts are the true ones
        assert estimate.of_client(client)[0].weight == float(truth.weights[truth.client_ids.index(client)])


def test_a_secagg_server_with_too_few_rounds_or_fixed_participants_learns_no_single_update(tiny_digits) -> None:
    few = _secagg(tiny_digits, rounds=2)
    everyone = _secagg(tiny_digits, rounds=4, clients_per_round=None)

    with pytest.raises(ThreatModelError, match="rank at most 2 for 4 unknowns"):  # the 4 clients it saw
        DisaggregationAttack().run(few.views_of("server"))
    with pytest.raises(ThreatModelError, match="participation never varies"):
        DisaggregationAttack().run(everyone.views_of("server"))


@pytest.mark.slow
def test_fast_changing_updates_break_the_constant_window_assumption(digits) -> None:
    slow = _secagg(digits, rounds=40, n_clients=10, clients_per_round=5)
    fast = _secagg(digits, rounds=40, n_clients=10, clients_per_round=5, lr=1.0)

    slow_found, _ = _cosines(slow, DisaggregationAttack().run(slow.views_of("server")))
    fast_estimate = DisaggregationAttack().run(fast.views_of("server"))
    fast_found, _ = _cosines(fast, fast_estimate)

    assert min(slow_found) > 0.95
    assert sorted(fast_found)[len(fast_found) // 2] < 0.9 and fast_estimate.details["relative_residual"] > 0.3
