"""Backends: in-process, process pool and Ray give the same report; order, errors, bad settings."""

from __future__ import annotations

import math
import operator
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from leakage.errors import ConfigError
from leakage.quantify import DeploymentSpec, parse_spec, run_jobs, score


def _spec() -> DeploymentSpec:
    return parse_spec({
        "name": "backends",
        "task": {"dataset": "digits", "model": "mlp", "model_options": {"hidden": [16], "activation": "sigmoid"},
                 "algorithm": "fedsgd", "batch_size": 1, "rounds": 2},
        "deployments": [{"name": "two", "n_clients": 2}, {"name": "four", "n_clients": 4}],
        "schemes": ["plain", "secagg", "mpc"],
        "observers": ["server", "participant", "public"],
        "attacks": [{"name": "round_difference"}],
        "audit": {"trials": 16, "deployments": ["two"]},
    })


def _without_timings(report: dict[str, Any]) -> dict[str, Any]:
    """The report less what may differ between runs: timings, the machine, the backend's name."""
    kept = {key: value for key, value in report.items() if key not in ("timings", "environment", "backend")}
    kept["costs"] = [{key: value for key, value in cost.items() if key != "seconds"} for cost in report["costs"]]
    return kept


@pytest.fixture(scope="module")
def in_process() -> dict[str, Any]:
    report = score(_spec(), workers=1).to_dict()
    assert report["results"] and report["headlines"] and report["audits"]
    return report


@pytest.fixture
def ray_temp_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep a local Ray instance's session files under pytest's temp folder (a short path: Ray's sockets live there)."""
    pytest.importorskip("ray")
    folder = tmp_path_factory.mktemp("ray")
    monkeypatch.setenv("RAY_TMPDIR", str(folder))
    return folder


def test_a_process_pool_gives_the_same_report(in_process: dict[str, Any]) -> None:
    pooled = score(_spec(), workers=2).to_dict()

    assert pooled["results"] == in_process["results"]
    assert pooled["headlines"] == in_process["headlines"]
    assert pooled["audits"] == in_process["audits"]
    assert _without_timings(pooled) == _without_timings(in_process)


def test_ray_gives_the_same_report(in_process: dict[str, Any], ray_temp_dir: Path) -> None:
    import ray

    assert not ray.is_initialized()  # so run_jobs starts its own local instance
    on_ray = score(_spec(), backend="ray", workers=2).to_dict()

    assert on_ray["backend"] == "ray"
    assert on_ray["results"] == in_process["results"]
    assert on_ray["headlines"] == in_process["headlines"]
    assert on_ray["audits"] == in_process["audits"]
    assert _without_timings(on_ray) == _without_timings(in_process)
    assert not ray.is_initialized()  # the instance run_jobs started is shut down
    assert any(ray_temp_dir.iterdir())  # and it kept its files where it was told


# builtins and the standard library pickle by reference, so worker processes find them
_SLOW_FIRST = [range(20_000_000), range(10), range(20), range(30), range(40)]


@pytest.mark.parametrize("workers", [1, 2])
def test_results_come_back_in_job_order(workers: int) -> None:
    results = run_jobs(sum, _SLOW_FIRST, workers=workers)

    assert results == [sum(job) for job in _SLOW_FIRST]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failing_job_is_named_and_keeps_its_type(workers: int) -> None:
    with pytest.raises(ValueError, match=r"^job -1.0 failed: ValueError: math domain error$") as caught:
        run_jobs(math.sqrt, [4.0, -1.0, 9.0], workers=workers)

    assert isinstance(caught.value.__cause__, ValueError)  # the original, with its traceback


@pytest.mark.parametrize("workers", [1, 2])
def test_an_error_that_cannot_be_rebuilt_becomes_a_runtime_error(workers: int) -> None:
    # KeyError quotes its message, so the job's label would come out garbled: a RuntimeError says it plainly
    with pytest.raises(RuntimeError, match=r"^job \{\} failed: KeyError: 'x'$"):
        run_jobs(operator.itemgetter("x"), [{"x": 1}, {}], workers=workers)


def test_a_failing_spec_job_names_the_deployment_and_scheme() -> None:
    spec = parse_spec({
        "deployments": [{"name": "two", "n_clients": 2}], "schemes": ["plain"], "audit": False,
        "task": {"partition": "dirichlet", "partition_options": {"alpha": -1.0}},  # checked only when a job partitions
    })

    with pytest.raises(ValueError, match=r"^job score two/plain/seed 0 failed: ") as caught:
        score(spec)

    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"backend": "dask"}, r"^backend must be one of local, ray, got 'dask'$"),
        ({"workers": 0}, r"^workers must be an integer >= 1, got 0$"),
        ({"workers": 2.0}, r"^workers must be an integer >= 1, got 2\.0$"),
        ({"workers": True}, r"^workers must be an integer >= 1, got True$"),
        ({"address": "auto"}, r"^address needs backend 'ray', got backend 'local'$"),
        ({"backend": "ray", "address": " "}, r"^address must be a Ray cluster address such as 'auto', got ' '$"),
    ],
)
def test_bad_settings_are_one_line_config_errors(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        run_jobs(math.sqrt, [1.0], **settings)

    assert "\n" not in str(caught.value)


def test_ray_backend_without_ray_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail as if it were not installed

    with pytest.raises(ConfigError, match=r"^backend 'ray' needs Ray: pip install 'leakage\[ray\]'$"):
        run_jobs(math.sqrt, [1.0], backend="ray")


# Below, one Ray instance this process connects to first, as a notebook would: run_jobs
# uses it and leaves it running. Kept last: the instance lives until the module ends.


@pytest.fixture(scope="module")
def connected_ray(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    ray = pytest.importorskip("ray")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_TMPDIR", str(tmp_path_factory.mktemp("ray")))
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_results_come_back_in_job_order(connected_ray: Any) -> None:
    results = run_jobs(sum, _SLOW_FIRST, backend="ray", workers=2)

    assert results == [sum(job) for job in _SLOW_FIRST]
    assert connected_ray.is_initialized()  # not shut down: run_jobs did not start it


@pytest.mark.slow
def test_a_failing_ray_task_is_named_and_keeps_its_type(connected_ray: Any) -> None:
    with pytest.raises(ValueError, match=r"^job -1.0 failed: ValueError: math domain error$") as caught:
        run_jobs(math.sqrt, [4.0, -1.0, 9.0], backend="ray", workers=2)

    assert "\n" not in str(caught.value)  # not Ray's whole remote traceback
    assert connected_ray.is_initialized()
