import copy

import pytest

from leakage.errors import ConfigError
from leakage.quantify import Estimate, load_spec, parse_spec, plan_jobs, preflight, quick_spec

SMALL = {
    "name": "small",
    "task": {
        "dataset": "digits", "model": "mlp", "model_options": {"hidden": [8]},
        "algorithm": "fedsgd", "batch_size": 1, "rounds": 2,
    },
    "deployments": [{"name": "two", "n_clients": 2}, {"name": "ten", "n_clients": 10, "clients_per_round": 4}],
    "schemes": ["plain", "secagg"],
    "attacks": [{"name": "round_difference"}],
    "audit": False,
}


def _spec(**changes: dict) -> dict:
    """SMALL with the given sections updated key by key."""
    data = copy.deepcopy(SMALL)
    for section, values in changes.items():
        data[section] = {**data[section], **values} if isinstance(data.get(section), dict) else values
    return data


def test_the_default_spec_passes_and_counts_every_planned_client_update() -> None:
    spec = load_spec()

    estimate = preflight(spec)

    jobs = plan_jobs(spec)
    assert isinstance(estimate, Estimate) and estimate.fits
    assert estimate.jobs == len(jobs) == 25 and estimate.num_parameters == 2410
    # the audit's rounds are its trials; every job samples all of its clients
    assert estimate.client_updates == sum(
        (spec.audit.trials if job.kind == "audit" else spec.task.rounds) * job.deployment.n_clients for job in jobs
    )
    assert estimate.update_floats == estimate.client_updates * estimate.num_parameters
    assert estimate.seconds > 0 and estimate.peak_memory_bytes > 0 and estimate.largest_job.startswith("score ")


def test_the_quick_default_spec_passes() -> None:
    assert preflight(quick_spec(load_spec())).fits


def test_the_estimate_grows_linearly_with_rounds() -> None:
    estimates = [preflight(parse_spec(_spec(task={"rounds": rounds}))) for rounds in (1, 2, 4)]

    one, two, four = estimates
    assert two.client_updates == 2 * one.client_updates and four.client_updates == 4 * one.client_updates
    assert four.update_floats == 4 * one.update_floats
    # memory: a fixed part (one round's block, the dataset) plus the same amount kept per round
    assert four.peak_memory_bytes - two.peak_memory_bytes == 2 * (two.peak_memory_bytes - one.peak_memory_bytes) > 0


def test_side_by_side_jobs_add_their_memory() -> None:
    spec = parse_spec(SMALL)

    alone, together = preflight(spec), preflight(spec, workers=2)

    assert together.peak_memory_bytes > alone.peak_memory_bytes and together.workers == 2


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"task": {"model_options": {"hidden": [-4]}}},
            "spec.task.model_options: model 'mlp' with {'hidden': [-4]} cannot be built for dataset 'digits' "
            "(input_shape (1, 8, 8), 10 classes): hidden must be a non-empty list of positive widths, got [-4]",
        ),
        (
            {"task": {"model_options": {"hidden": ["wide"]}}},
            "spec.task.model_options: model 'mlp' with {'hidden': ['wide']} cannot be built for dataset 'digits' "
            "(input_shape (1, 8, 8), 10 classes): ValueError: invalid literal for int() with base 10: 'wide'",
        ),
        (
            {"task": {"dataset": "breast_cancer", "model": "lenet", "model_options": {}}},
            "spec.task.model: model 'lenet' cannot be built for dataset 'breast_cancer' (input_shape (30,), "
            "2 classes): model 'lenet' needs image inputs [C, H, W], got input_shape (30,)",
        ),
        (
            {"task": {"loss": "taylor_logistic"}},
            "spec.task.loss 'taylor_logistic' needs a two-class dataset; 'digits' has 10 classes",
        ),
        (
            {"task": {"partition": "dirichlet", "partition_options": {"alpha": -1}}},
            "spec.task.partition_options: partition 'dirichlet' with {'alpha': -1} fails for deployment 'two' "
            "(2 clients, 2 per round), seed 0: alpha must be a finite number > 0, got -1",
        ),
        (
            {"task": {"partition_options": {"samples_per_client": 200}}},
            "spec.task.partition_options: partition 'iid' with {'samples_per_client': 200} fails for deployment "
            "'ten' (10 clients, 4 per round), seed 0: samples_per_client=200 for 10 clients needs 2000 samples but "
            "there are 1438; lower samples_per_client or pass replacement=True",
        ),
        (
            {"scheme_options": {"secagg": {"threshold": 3}}},
            "spec.scheme_options.secagg: scheme 'secagg' cannot run deployment 'two' (2 clients, 2 per round): "
            "threshold must be between 2 and the 2 shareholders of each client (every client of the round), got 3",
        ),
    ],
    ids=["negative-width", "width-not-a-number", "model-for-images", "loss", "dirichlet", "too-many-samples",
         "threshold"],
)
def test_each_bad_combination_is_refused_in_one_line_naming_the_field(changes, message) -> None:
    spec = parse_spec(_spec(**changes))

    with pytest.raises(ConfigError) as refused:
        preflight(spec, force=True)

    assert str(refused.value) == message


def test_a_threshold_above_a_later_deployments_round_names_that_deployment() -> None:
    spec = parse_spec(_spec(scheme_options={"secagg": {"threshold": 5}}, deployments=[
        {"name": "big", "n_clients": 10}, {"name": "sampled", "n_clients": 10, "clients_per_round": 4},
    ]))

    with pytest.raises(ConfigError, match=r"^spec\.scheme_options\.secagg: scheme 'secagg' cannot run deployment "
                                          r"'sampled' \(10 clients, 4 per round\): threshold .* got 5$"):
        preflight(spec)


def test_a_sweep_point_too_small_for_the_threshold_is_named() -> None:
    spec = parse_spec(_spec(
        schemes=["plain"], scheme_options={"secagg": {"threshold": 3}},
        deployments=[{"name": "four", "n_clients": 4}], sweeps=[{"scheme": "secagg", "n_clients": [2, 4]}],
    ))

    with pytest.raises(ConfigError, match=r"^spec\.scheme_options\.secagg: .* sweep point 'secagg sweep n=2' "):
        preflight(spec)


def test_a_billion_rounds_are_refused_with_the_estimate_and_the_way_out() -> None:
    spec = parse_spec(_spec(task={"rounds": 1_000_000_000}))

    with pytest.raises(ConfigError) as refused:
        preflight(spec)

    message = str(refused.value)
    assert message.startswith("spec: too large to run here: an estimated ")
    assert "days of training (limit 24 h)" in message and "of peak memory (this machine has " in message
    assert "trains 1000000000 rounds x 4 clients x 610 parameters" in message
    assert message.endswith("or pass --force to skip this bound") and "\n" not in message


def test_force_skips_the_bound_and_still_returns_the_estimate() -> None:
    spec = parse_spec(_spec(task={"rounds": 1_000_000_000}))

    estimate = preflight(spec, force=True)

    assert not estimate.fits and estimate.peak_memory_bytes > estimate.machine_memory_bytes
    assert estimate.client_updates == 1_000_000_000 * 3 * (2 + 4)  # plain, secagg and mpc on both deployments


def test_force_never_skips_the_other_checks() -> None:
    spec = parse_spec(_spec(task={"rounds": 1_000_000_000, "model_options": {"hidden": [-4]}}))

    with pytest.raises(ConfigError, match=r"^spec\.task\.model_options: "):
        preflight(spec, force=True)


def test_memory_and_time_limits_are_each_enforced() -> None:
    spec = parse_spec(SMALL)

    with pytest.raises(ConfigError, match=r"of peak memory \(this machine has 1 B\)"):
        preflight(spec, memory_bytes=1)
    with pytest.raises(ConfigError, match=r"of training \(limit 0 s\)"):
        preflight(spec, time_limit_seconds=1e-9)
    assert preflight(spec, memory_bytes=1, time_limit_seconds=1e-9, force=True).peak_memory_bytes > 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"workers": 0}, "workers must be an integer >= 1, got 0"),
        ({"memory_bytes": 0}, "memory_bytes must be an integer >= 1, got 0"),
        ({"time_limit_seconds": -1.0}, "time_limit_seconds must be a finite number > 0, got -1.0"),
        ({"force": "yes"}, "force must be true or false, got 'yes'"),
    ],
)
def test_bad_arguments_are_refused(options, message) -> None:
    with pytest.raises(ConfigError) as refused:
        preflight(parse_spec(SMALL), **options)

    assert str(refused.value) == message


def test_the_memory_estimate_counts_what_each_scheme_keeps_and_the_truth_asked_for() -> None:
    def peak(schemes: list[str], record_truth: str) -> int:
        spec = _spec(schemes=schemes, task={"record_truth": record_truth, "rounds": 20})
        spec["deployments"] = [{"name": "many", "n_clients": 50}]
        spec.pop("sweeps", None)
        spec["audit"] = False
        return preflight(parse_spec(spec)).peak_memory_bytes

    # mpc: no view holds an update, so only the truth asked for grows with the rounds
    assert peak(["mpc"], "targets") < peak(["mpc"], "all")
    # plain: the server's view holds every upload, whatever record_truth says
    assert peak(["plain"], "targets") > peak(["mpc"], "targets")
    assert peak(["he"], "targets") > peak(["plain"], "targets")
