import pytest
import torch

from leakage import (
    ConfigError,
    Dataset,
    NonFiniteUpdateError,
    UnknownNameError,
    simulate,
)
from leakage.aggregation import weighted_mean
from leakage.models import load_flat_parameters
from leakage.views import EAVESDROPPER, PUBLIC, SERVER


def _run(dataset: Dataset, **overrides):
    settings = dict(dataset=dataset, model="mlp", model_options={"hidden": (16,)}, n_clients=6, rounds=3, lr=0.1, seed=3)
    settings.update(overrides)
    return simulate(**settings)


def _assert_same_transcript(first, second, *, exact: bool) -> None:
    check = torch.equal if exact else (lambda a, b: torch.allclose(a, b, rtol=1e-5, atol=1e-5))
    assert len(first.rounds) == len(second.rounds)
    assert check(first.initial_params, second.initial_params)
    for a, b, ta, tb in zip(first.rounds, second.rounds, first.truth.rounds, second.truth.rounds):
        assert a.sampled == b.sampled and a.survivors == b.survivors
        assert check(a.params_after, b.params_after)
        assert ta.client_ids == tb.client_ids
        assert check(ta.updates, tb.updates)
        assert sorted(a.views) == sorted(b.views)
        for name in a.views:
            for key, message in a.views[name].received.items():
                assert check(message, b.views[name].received[key])


def _assert_same_view(first, second) -> None:
    assert (first.round_index, first.observer) == (second.round_index, second.observer)
    assert first.participants == second.participants and first.public == second.public
    for name in ("params_before", "params_after"):
        a, b = getattr(first, name), getattr(second, name)
        assert (a is None and b is None) or torch.equal(a, b)
    for field in ("received", "own"):
        a, b = getattr(first, field), getattr(second, field)
        assert sorted(a) == sorted(b)
        for key in a:
            assert type(a[key]) is type(b[key])
            assert a[key] == b[key] if isinstance(a[key], bytes) else torch.equal(a[key], b[key])


@pytest.mark.parametrize("algorithm", ["fedsgd", "fedavg"])
@pytest.mark.parametrize("partition", [("iid", {}), ("quantity", {"alpha": 1.0})])
def test_vectorised_and_loop_simulations_agree(tiny_digits: Dataset, algorithm: str, partition) -> None:
    name, options = partition
    common = dict(algorithm=algorithm, batch_size=4, partition=name, partition_options=options, clients_per_round=4)

    vectorised = _run(tiny_digits, vectorise=True, **common)
    loop = _run(tiny_digits, vectorise=False, **common)

    _assert_same_transcript(vectorised, loop, exact=False)


def test_same_seed_same_transcript_bit_for_bit(tiny_digits: Dataset) -> None:
    options = dict(clients_per_round=4, dropout=0.3, partition="dirichlet", partition_options={"alpha": 0.5})

    _assert_same_transcript(_run(tiny_digits, **options), _run(tiny_digits, **options), exact=True)
    other = _run(tiny_digits, **{**options, "seed": 4})
    assert not torch.equal(other.final_params, _run(tiny_digits, **options).final_params)


def test_fedsgd_with_one_client_moves_the_model_by_minus_lr_times_its_gradient(tiny_digits: Dataset) -> None:
    transcript = _run(tiny_digits, n_clients=1, rounds=1, algorithm="fedsgd", batch_size=8, lr=0.25)
    record, truth = transcript.rounds[0], transcript.truth.rounds[0]
    batch = truth.sample_order[0]

    model = transcript.build_model(record.params_before)
    torch.nn.functional.cross_entropy(model(tiny_digits.inputs[batch]), tiny_digits.targets[batch]).backward()
    gradient = torch.cat([p.grad.flatten() for p in model.parameters()])

    assert len(batch) == 8
    torch.testing.assert_close(truth.update_of(0), -0.25 * gradient, rtol=0, atol=1e-7)
    assert torch.equal(record.params_after, record.params_before + truth.update_of(0))


def test_fedavg_weights_updates_by_sample_count(tiny_digits: Dataset) -> None:
    transcript = _run(tiny_digits, partition="quantity", partition_options={"alpha": 0.5}, rounds=1, batch_size=4)
    record, truth = transcript.rounds[0], transcript.truth.rounds[0]
    counts = torch.tensor([len(transcript.truth.partition[c]) for c in truth.client_ids], dtype=torch.float64)

    weighted = (counts[:, None] * truth.updates.double()).sum(0) / counts.sum()
    unweighted = truth.updates.double().mean(0)

    assert torch.equal(truth.weights, counts) and len(set(counts.tolist())) > 1
    torch.testing.assert_close((record.params_after - record.params_before).double(), weighted, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(weighted, unweighted, rtol=1e-3, atol=1e-5)


def test_dropped_clients_never_reach_the_aggregate_or_the_server(tiny_digits: Dataset) -> None:
    transcript = _run(tiny_digits, n_clients=10, rounds=6, dropout=0.4, seed=11)
    dropped_somewhere = False
    for record, truth in zip(transcript.rounds, transcript.truth.rounds):
        dropped = set(record.sampled) - set(record.survivors)
        dropped_somewhere |= bool(dropped)
        received = record.views[SERVER].received
        assert set(received) == {f"update:client:{c}" for c in record.survivors}
        rows = [truth.client_ids.index(c) for c in record.survivors]
        expected = record.params_before + weighted_mean(truth.updates[rows], truth.weights[rows])
        assert torch.equal(record.params_after, expected)
        for client in dropped:
            assert record.views[f"client:{client}"].params_after is None
    assert dropped_somewhere


def test_a_round_in_which_everyone_drops_leaves_the_model_unchanged(tiny_digits: Dataset) -> None:
    transcript = _run(tiny_digits, n_clients=2, rounds=8, dropout=0.9, seed=0)
    empty = [r for r in transcript.rounds if not r.survivors]

    assert empty, "with dropout 0.9 and 2 clients some round must lose everyone"
    for record in empty:
        assert torch.equal(record.params_after, record.params_before)
        assert record.views[SERVER].received == {}


def test_clients_are_sampled_and_only_participants_get_views(tiny_digits: Dataset) -> None:
    transcript = _run(tiny_digits, n_clients=12, clients_per_round=3, rounds=4)
    rounds_seen = set()
    for record in transcript.rounds:
        assert len(record.sampled) == 3 and len(set(record.sampled)) == 3
        clients = {name for name in record.views if name.startswith("client:")}
        assert clients == {f"client:{c}" for c in record.sampled}
        rounds_seen.add(record.sampled)
    assert len(rounds_seen) > 1


def test_views_hold_what_each_observer_really_saw_under_plain(tiny_digits: Dataset) -> None:
    transcript = _run(tiny_digits, rounds=2)
    last, truth = transcript.rounds[-1], transcript.truth.rounds[-1]

    server = last.views[SERVER]
    for client in last.survivors:
        assert torch.equal(server.received[f"update:client:{client}"], truth.update_of(client))
        own = last.views[f"client:{client}"].own
        assert torch.equal(own["update"], truth.update_of(client))
        assert torch.equal(own["data_indices"], transcript.truth.partition[client])
    assert torch.equal(last.views[EAVESDROPPER].params_before, last.params_before)
    assert [v.round_index for v in transcript.views_of(PUBLIC)] == [1]
    public = transcript.views_of(PUBLIC)[0]
    assert public.params_before is None and public.received == {} and public.own == {}
    assert torch.equal(public.params_after, transcript.final_params)


def test_transcript_round_trips_through_disk(tiny_digits: Dataset, tmp_path) -> None:
    transcript = _run(tiny_digits, dropout=0.2, clients_per_round=4)
    path = tmp_path / "transcript.pt"

    transcript.save(path)
    loaded = type(transcript).load(path)

    _assert_same_transcript(transcript, loaded, exact=True)
    assert loaded.settings == transcript.settings
    assert loaded.layout == transcript.layout
    for a, b in zip(transcript.rounds, loaded.rounds):
        assert a.public == b.public and a.metrics == b.metrics
        for name, view in a.views.items():
            _assert_same_view(view, b.views[name])
    for a, b in zip(transcript.truth.partition, loaded.truth.partition):
        assert torch.equal(a, b)
    model = loaded.build_model()
    assert torch.equal(torch.cat([p.flatten() for p in model.parameters()]), transcript.final_params)


def test_loaded_model_helper_puts_any_round_into_the_architecture(tiny_digits: Dataset) -> None:
    transcript = _run(tiny_digits, rounds=2)
    model = transcript.build_model(transcript.rounds[0].params_after)
    again = load_flat_parameters(transcript.build_model(), transcript.rounds[0].params_after)

    batch = tiny_digits.inputs[:5]
    assert torch.equal(model(batch), again(batch))


def test_a_non_finite_update_names_round_and_client(tiny_digits: Dataset) -> None:
    inputs = tiny_digits.inputs.clone()
    inputs[7] = float("nan")
    poisoned = Dataset(**{**tiny_digits.__dict__, "inputs": inputs})
    transcript_holder = None
    with pytest.raises(NonFiniteUpdateError, match=r"round 0: update of client \d+ contains NaN or Inf"):
        transcript_holder = _run(poisoned, algorithm="fedavg", batch_size=None)
    assert transcript_holder is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"clients_per_round": 7}, r"clients_per_round must be <= n_clients \(6\), got 7"),
        ({"n_clients": 121}, "n_clients"),
        ({"lr": 0.0}, "lr must be a finite number > 0, got 0.0"),
        ({"lr": -1.0}, "lr must be"),
        ({"rounds": 0}, "rounds must be an integer >= 1, got 0"),
        ({"n_clients": 0}, "n_clients must be an integer >= 1"),
        ({"local_epochs": 0}, "local_epochs must be an integer >= 1"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"dropout": 1.0}, r"dropout must be a probability in \[0, 1\)"),
        ({"algorithm": "fedprox"}, "algorithm must be one of fedsgd, fedavg, got 'fedprox'"),
        ({"algorithm": "fedsgd", "local_epochs": 2}, "local_epochs must be 1 for fedsgd"),
        ({"partition": "dirichlet", "partition_options": {"alpha": 0.0}}, "alpha"),
        ({"partition": "dirichlet", "partition_options": {"alpha": -1}}, "alpha"),
        ({"colour": "red"}, "unknown setting 'colour'"),
        ({"rounds": 2.5}, "rounds must be an integer"),
    ],
)
def test_impossible_settings_raise_value_errors_naming_the_field(tiny_digits, overrides, message) -> None:
    with pytest.raises(ValueError, match=message):
        _run(tiny_digits, **overrides)


@pytest.mark.parametrize(
    ("field", "valid"),
    [
        ("dataset", "breast_cancer"),
        ("model", "convnet, lenet, logreg, mlp, resnet18"),
        ("scheme", "plain"),
        ("partition", "dirichlet, iid, property, quantity"),
    ],
)
def test_unknown_names_list_the_valid_choices(field: str, valid: str) -> None:
    with pytest.raises(UnknownNameError, match=valid):
        simulate(**{field: "nonsense"}, n_clients=2, rounds=1)


def test_a_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError) and issubclass(UnknownNameError, ValueError)


def test_poisson_sampling_includes_each_client_independently_at_the_expected_rate() -> None:
    transcript = simulate(
        n_clients=40, clients_per_round=10, client_sampling="poisson", rounds=30, model="logreg", seed=4
    )

    sizes = [len(record.sampled) for record in transcript.rounds]
    assert len(set(sizes)) > 1  # not a fixed sample size
    assert 7 < sum(sizes) / len(sizes) < 13
    again = simulate(n_clients=40, clients_per_round=10, client_sampling="poisson", rounds=30, model="logreg", seed=4)
    assert [r.sampled for r in again.rounds] == [r.sampled for r in transcript.rounds]


def test_a_round_that_samples_nobody_leaves_the_model_unchanged() -> None:
    transcript = simulate(n_clients=20, clients_per_round=1, client_sampling="poisson", rounds=6, model="logreg", seed=0)

    empty = [r for r in transcript.rounds if not r.sampled]
    assert empty, "seed 0 gives an empty round"
    assert all(torch.equal(r.params_after, r.params_before) for r in empty)


def test_client_sampling_must_be_fixed_or_poisson() -> None:
    with pytest.raises(ConfigError, match="client_sampling must be one of fixed, poisson, got 'stratified'"):
        simulate(client_sampling="stratified")


def test_an_uneven_partition_trains_padded_equal_to_the_loop_and_repeats_bit_for_bit(digits: Dataset) -> None:
    data = digits.subset(torch.arange(240))
    options = dict(n_clients=40, partition="quantity", partition_options={"alpha": 1.0}, local_epochs=2,
                   batch_size=4, rounds=2, dropout=0.1)
    sizes = {len(indices) for indices in simulate(dataset=data, **{**options, "rounds": 1}).truth.partition}

    vectorised = _run(data, **options)
    again = _run(data, **options)
    loop = _run(data, vectorise=False, **options)

    assert len(sizes) > 10  # many sizes: most clients train padded
    _assert_same_transcript(vectorised, again, exact=True)
    _assert_same_transcript(vectorised, loop, exact=False)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"record_truth": "some"}, "record_truth must be one of all, targets, got 'some'"),
        ({"record_truth": "targets"}, r"truth_clients must name at least one client when record_truth is 'targets'"),
        ({"record_truth": "targets", "truth_clients": [6]}, r"truth_clients must be an integer in \[0, 5\], got 6"),
        ({"record_truth": "targets", "truth_clients": 1}, "truth_clients must be a list of client ids, got 1"),
        ({"truth_clients": [1]}, r"truth_clients applies only to record_truth='targets'"),
    ],
)
def test_record_truth_settings_are_checked(tiny_digits: Dataset, overrides, message) -> None:
    with pytest.raises(ConfigError, match=message):
        _run(tiny_digits, **overrides)


def test_truth_clients_are_kept_sorted_and_once_in_the_resolved_settings(tiny_digits: Dataset) -> None:
    transcript = _run(tiny_digits, rounds=1, record_truth="targets", truth_clients=[4, 1, 4])

    assert transcript.settings["record_truth"] == "targets" and transcript.settings["truth_clients"] == [1, 4]
    assert transcript.truth.rounds[0].recorded_ids == (1, 4)
