import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from attacks import Knowledge, RoundDifferenceAttack, create_attack, target_observations
from leakage import simulate
from leakage.errors import ThreatModelError
from leakage.metrics import psnr, relative_error, update_cosine
from leakage.views import RoundView, client_observer


def _fedsgd(tiny_digits, scheme: str, n_clients: int = 2, rounds: int = 2, **options):
    return simulate(
        dataset=tiny_digits, model="mlp", model_options={"hidden": (16,)}, n_clients=n_clients, rounds=rounds,
        algorithm="fedsgd", batch_size=4, lr=0.1, scheme=scheme, **options,
    )


def _coalition_views(transcript, clients):
    return [view for c in clients for view in transcript.views_of(client_observer(c))]


@pytest.mark.parametrize("scheme", ["plain", "secagg", "secagg+", "he"])
def test_two_participants_recover_each_others_update_whatever_the_aggregation_hides(tiny_digits, scheme) -> None:
    transcript = _fedsgd(tiny_digits, scheme)

    estimate = create_attack("round_difference").run(transcript.views_of("client:0"))

    for truth in transcript.truth.rounds:
        recovered = estimate.observation(1, truth.round_index)
        # exact up to the float32 rounding of the released model (and CKKS/fixed-point noise below it)
        assert relative_error(recovered.value, truth.update_of(1)) < 1e-5
        assert recovered.client == 1 and recovered.kind == "update"
        assert torch.equal(recovered.params, transcript.rounds[truth.round_index].params_before)


def test_nine_colluders_among_ten_recover_the_honest_clients_exact_update(tiny_digits) -> None:
    transcript = _fedsgd(tiny_digits, "secagg", n_clients=10)

    estimate = RoundDifferenceAttack().run(_coalition_views(transcript, range(1, 10)))

    assert estimate.observer == "+".join(f"client:{c}" for c in range(1, 10))
    for truth in transcript.truth.rounds:
        (item,) = [i for i in estimate.recovered if i.round_index == truth.round_index]
        assert item.clients == frozenset({0}) and item.is_individual
        assert relative_error(item.update, truth.update_of(0)) < 1e-5


def test_a_single_attacker_among_many_gets_only_the_mean_of_the_others(tiny_digits) -> None:
    transcript = _fedsgd(tiny_digits, "secagg", n_clients=10)

    estimate = RoundDifferenceAttack().run(transcript.views_of("client:0"))

    truth = transcript.truth.rounds[0]
    (item,) = [i for i in estimate.recovered if i.round_index == 0]
    assert item.count == 9 and not item.is_individual
    assert all(not estimate.of_client(c) for c in range(1, 10))
    with pytest.raises(ThreatModelError, match="not one client's"):
        item.observation()
    others = truth.updates[1:].double()
    assert relative_error(item.update, others.mean(dim=0)) < 1e-5  # the oracle: the mean of the nine
    cosines = [update_cosine(item.update, truth.update_of(c)) for c in range(1, 10)]
    assert max(cosines) < 0.9  # no single update is recovered


def test_under_mpc_the_subtraction_gets_nothing(tiny_digits) -> None:
    transcript = _fedsgd(tiny_digits, "mpc")

    with pytest.raises(ThreatModelError, match="MPC"):
        RoundDifferenceAttack().run(transcript.views_of("client:0"))


def test_under_central_dp_the_estimate_carries_exactly_the_released_noise(tiny_digits) -> None:
    clip_norm, noise_multiplier = 1.0, 0.05
    transcript = _fedsgd(tiny_digits, "dp", scheme_options={"clip_norm": clip_norm, "noise_multiplier": noise_multiplier})

    estimate = RoundDifferenceAttack().run(transcript.views_of("client:0"))

    item = estimate.recovered[0]
    true_update = transcript.truth.rounds[0].update_of(1).double()
    clipped = true_update * min(1.0, clip_norm / float(true_update.norm()))
    residual = item.update - clipped  # = the Gaussian noise of the release, N(0, (sigma C)^2) per coordinate
    assert item.is_individual and item.clients is None  # the DP server tells nobody who took part
    assert abs(float(residual.std()) / (noise_multiplier * clip_norm) - 1) < 0.1
    assert any("expected 2 clients" in note for note in estimate.assumptions)


def test_fedavg_weights_hidden_by_secagg_must_be_declared(tiny_digits) -> None:
    transcript = simulate(
        dataset=tiny_digits.subset(torch.arange(99)), model="mlp", model_options={"hidden": (16,)}, n_clients=2,
        rounds=1, algorithm="fedavg", batch_size=10, scheme="secagg",
    )
    sizes = {c: float(len(part)) for c, part in enumerate(transcript.truth.partition)}
    assert sizes[0] != sizes[1]

    with pytest.raises(ThreatModelError, match="client_weights"):
        RoundDifferenceAttack().run(transcript.views_of("client:0"))
    model = transcript.build_model()
    knowledge = Knowledge(model=model, input_shape=(1, 8, 8), num_classes=10, client_weights={1: sizes[1]})
    estimate = RoundDifferenceAttack().run(transcript.views_of("client:0"), knowledge)

    assert relative_error(estimate.observation(1).value, transcript.truth.rounds[0].update_of(1)) < 1e-5
    assert estimate.assumptions == ("aggregation weights of the other participants from knowledge.client_weights",)


def test_rounds_the_attacker_missed_are_skipped_not_guessed(tiny_digits) -> None:
    transcript = _fedsgd(tiny_digits, "plain", n_clients=4, rounds=6, clients_per_round=2, dropout=0.3)
    seen = [r.round_index for r in transcript.rounds if 0 in r.survivors and len(r.survivors) > 1]
    assert 0 < len(seen) < 6  # the seed gives rounds of both kinds

    estimate = RoundDifferenceAttack().run(transcript.views_of("client:0"))

    assert [item.round_index for item in estimate.recovered] == seen


def test_server_views_are_refused_and_inputs_are_not_mutated(tiny_digits) -> None:
    transcript = _fedsgd(tiny_digits, "plain")
    views = transcript.views_of("client:0")
    before = [view.params_after.clone() for view in views]

    with pytest.raises(ThreatModelError, match="participant"):
        RoundDifferenceAttack().run(transcript.views_of("server"))
    RoundDifferenceAttack().run(views)

    assert all(torch.equal(a, view.params_after) for a, view in zip(before, views, strict=True))


def test_target_observations_read_the_server_view_or_subtract_for_a_peer(tiny_digits) -> None:
    transcript = _fedsgd(tiny_digits, "plain")

    from_server = target_observations(transcript.views_of("server"), 1)
    from_peer = target_observations(transcript.views_of("client:0"), 1)

    assert len(from_server) == len(from_peer) == 2
    for direct, subtracted in zip(from_server, from_peer, strict=True):
        assert relative_error(subtracted.value, direct.value) < 1e-5
    with pytest.raises(ThreatModelError, match="client 1"):
        target_observations(_fedsgd(tiny_digits, "secagg", n_clients=3).views_of("server"), 1)


def test_the_recovered_update_chains_into_a_reconstruction_of_the_peers_image(digits) -> None:
    transcript = simulate(
        dataset=digits.subset(torch.arange(8)), model="mlp", model_options={"hidden": (32,), "activation": "sigmoid"},
        n_clients=2, rounds=1, algorithm="fedsgd", batch_size=1, lr=0.1, scheme="secagg",
    )
    observation = RoundDifferenceAttack().run(transcript.views_of("client:0")).observation(1)
    knowledge = Knowledge.from_dataset(digits, transcript.build_model(observation.params), lr=0.1)

    result = create_attack("idlg", max_evals=1000, restarts=1).run(observation, knowledge)

    index = transcript.truth.rounds[0].sample_order[1]
    original = digits.denormalize(digits.inputs[index])
    guess = torch.rand(original.shape, generator=torch.Generator().manual_seed(0))
    reconstruction_db = float(psnr(result.raw_inputs.clamp(0, 1), original, data_range=1.0)[0])
    guess_db = float(psnr(guess, original, data_range=1.0)[0])
    assert reconstruction_db > guess_db + 15
    assert result.labels.tolist() == digits.targets[index].tolist()


@settings(max_examples=40, deadline=None)
@given(
    weights=st.lists(st.integers(1, 50), min_size=2, max_size=6),
    coalition_mask=st.integers(1, 2**6 - 2),
    server_lr=st.sampled_from([0.5, 1.0, 2.0]),
    seed=st.integers(0, 2**16),
)
def test_the_subtraction_is_exact_for_any_weights_and_coalition(weights, coalition_mask, server_lr, seed) -> None:
    clients = list(range(len(weights)))
    coalition = [c for c in clients if coalition_mask >> c & 1]
    if not coalition or len(coalition) == len(clients):
        return
    generator = torch.Generator().manual_seed(seed)
    updates = torch.randn(len(clients), 5, generator=generator, dtype=torch.float64)
    before = torch.randn(5, generator=generator, dtype=torch.float64)
    weight = torch.tensor(weights, dtype=torch.float64)
    after = before + server_lr * (weight @ updates) / weight.sum()
    public = {"weighting": "sample_count", "server_lr": server_lr, "algorithm": "fedavg",
              "weights": {str(c): float(w) for c, w in zip(clients, weights, strict=True)}}
    views = [
        RoundView(0, client_observer(c), before, after, own={"update": updates[c], "data_indices": torch.arange(weights[c])},
                  participants=frozenset(clients), public=public)
        for c in coalition
    ]

    (item,) = RoundDifferenceAttack().run(views).recovered

    rest = [c for c in clients if c not in coalition]
    expected = (weight[rest] @ updates[rest]) / weight[rest].sum()
    assert item.clients == frozenset(rest) and item.count == len(rest)
    assert torch.allclose(item.update, expected, atol=1e-9, rtol=1e-9)
