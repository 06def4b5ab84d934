"""Up-front checks of a spec, run before any job starts or any output file exists.

``load_spec`` checks each field on its own; some mistakes only show when the pieces
meet: model options the model refuses, a partition that cannot split the dataset for
some deployment, a scheme option no deployment can satisfy (a ``secagg`` threshold above
the clients of a round), or a spec so large that it would run for months or exhaust
memory. :func:`preflight` tries each of them once, cheaply, so that the mistake is one
line naming the field, not a failed job after output folders were made and time spent:

1. builds the model with the task's dataset and runs one forward pass on 2 samples;
2. partitions every deployment's clients exactly as its jobs will (same split, same
   seeds);
3. prepares every scheme with the deployment each job gives it;
4. estimates the work and memory of the planned jobs and refuses a spec that would
   need more memory than this machine has or train longer than a limit (``force``
   skips this bound, never the other checks).

The estimate counts training only (attacks and audits' games come on top): a job
trains ``rounds x clients per round`` client updates of ``P`` parameters each; its
memory is the round's ``[clients, P]`` block of float32 updates plus what the transcript
keeps of every round (up to every upload an observer saw, the released model and the
target's true update) plus the dataset. The time multiplies each client update's local
steps by the measured time of one step of the model on one torch thread (training
clients together is faster, so the estimate errs long).
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from leakage.aggregation import Deployment, create_scheme
from leakage.checks import require_bool, require_choice, require_int, require_positive_float
from leakage.data import Dataset, load_dataset, partition_dataset
from leakage.errors import ConfigError
from leakage.models import ParameterLayout, build_user_model, create_model, flatten_parameters, load_checkpoint
from leakage.quantify.runner import Job, _settings, plan_jobs, split_test_data
from leakage.quantify.spec import DeploymentSpec, TaskSpec
from leakage.seeding import Stream, numpy_rng
from leakage.simulation import SimulationSettings, batch_schedule, make_loss, scheme_deployment, train_client

__all__ = ["DEFAULT_TIME_LIMIT_SECONDS", "Estimate", "preflight"]

#: The longest training a spec may need before :func:`preflight` refuses it (a day).
DEFAULT_TIME_LIMIT_SECONDS = 24 * 3600.0
_BYTES_PER_VALUE = 4  # float32 updates and models
_FORWARD_SAMPLES = 2
_MAX_TIMED_BATCH = 256  # larger batches are timed at this size and scaled by their size
_TIMING_BUDGET_SECONDS = 0.5  # per batch size timed, after one warm-up step


@dataclass(frozen=True)
class Estimate:
    """What the planned jobs of a spec would cost in training, estimated before any runs.

    Attributes:
        jobs: jobs planned (:func:`~leakage.quantify.runner.plan_jobs`).
        num_parameters: ``P``, the length of one client's update.
        client_updates: one client's local training in one round, summed over jobs.
        update_floats: floats of updates trained, ``client_updates x P``.
        seconds_per_client_update: measured seconds of one client update, averaged over
            the jobs' client updates.
        seconds: estimated wall-clock seconds of training with ``workers`` jobs side by side.
        peak_memory_bytes: estimated peak memory of the ``workers`` largest jobs together.
        machine_memory_bytes: the memory compared with (this machine's, unless given).
        time_limit_seconds: the longest training allowed.
        workers: jobs run side by side.
        largest_job: the label of the job that trains the most floats.
    """

    jobs: int
    num_parameters: int
    client_updates: int
    update_floats: int
    seconds_per_client_update: float
    seconds: float
    peak_memory_bytes: int
    machine_memory_bytes: int
    time_limit_seconds: float
    workers: int
    largest_job: str

    @property
    def fits(self) -> bool:
        """Whether the estimate stays within both the machine's memory and the time limit."""
        return self.peak_memory_bytes <= self.machine_memory_bytes and self.seconds <= self.time_limit_seconds


@dataclass(frozen=True)
class _Run:
    """A planned job, the settings it will simulate with and its clients' sample counts."""

    job: Job
    settings: SimulationSettings
    sizes: tuple[int, ...]


@dataclass(frozen=True)
class _JobCost:
    label: str
    rounds: int
    clients: int
    client_updates: int
    seconds: float
    memory_bytes: int


def preflight(
    spec: DeploymentSpec,
    *,
    force: bool = False,
    workers: int = 1,
    memory_bytes: int | None = None,
    time_limit_seconds: float = DEFAULT_TIME_LIMIT_SECONDS,
) -> Estimate:
    """Check that every job of ``spec`` can start, and that together they fit; return the estimate.

    Args:
        spec: a validated spec (:func:`~leakage.quantify.spec.load_spec`), ``--quick``
            already applied where it applies.
        force: skip the resource bound (the estimate is still returned); the other
            checks always run.
        workers: jobs run side by side (their memory adds up, their time is shared).
        memory_bytes: the memory to compare with; ``None``: this machine's physical memory.
        time_limit_seconds: the longest estimated training allowed.

    Returns:
        The :class:`Estimate` of the planned jobs' training.

    Raises:
        ConfigError: one line naming the field: the model cannot be built from
            ``spec.task.model`` and ``spec.task.model_options`` for the dataset, or
            fails a forward pass; the partition fails for a deployment
            (``spec.task.partition_options``); a scheme refuses a deployment
            (``spec.scheme_options.<scheme>``, or the scheme's entry in ``spec.schemes``
            or ``spec.sweeps``); or, without ``force``, the estimate exceeds the memory
            or the time limit.

    >>> from leakage.quantify.spec import load_spec
    >>> estimate = preflight(load_spec())
    >>> estimate.jobs, estimate.num_parameters, estimate.fits
    (25, 2410, True)
    """
    require_bool("force", force)
    workers = require_int("workers", workers, minimum=1)
    limit = require_positive_float("time_limit_seconds", time_limit_seconds)
    machine = _machine_memory() if memory_bytes is None else require_int("memory_bytes", memory_bytes, minimum=1)
    task = spec.task
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each job runs; it also keeps the timed steps steady
    try:
        dataset = _load(task)
        model = _build_model(task, dataset)
        num_parameters = ParameterLayout.of(model).num_parameters
        runs = _partitioned_runs(spec, dataset)
        _prepare_schemes(spec, runs, num_parameters, dataset.num_classes)
        timer = _StepTimer(model, task, dataset)
        costs = [_job_cost(run, num_parameters, dataset, timer) for run in runs]
    finally:
        torch.set_num_threads(threads)
    estimate = _estimate(costs, num_parameters, workers, machine, limit)
    if not force and not estimate.fits:
        largest = max(costs, key=lambda cost: cost.client_updates)
        raise ConfigError(_too_large(estimate, largest))
    return estimate


def _machine_memory() -> int:
    return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))


def _load(task: TaskSpec) -> Dataset:
    try:
        return load_dataset(task.dataset, **task.dataset_options)
    except (ValueError, TypeError, FileNotFoundError) as error:
        raise _refusal(
            error, "spec.task.dataset", "spec.task.dataset_options", task.dataset_options,
            f"dataset {task.dataset!r}", "cannot be loaded",
        ) from None


def _build_model(task: TaskSpec, dataset: Dataset) -> nn.Module:
    """Build the task's model for the dataset and run it on a few samples."""
    shape = f"for dataset {task.dataset!r} (input_shape {dataset.input_shape}, {dataset.num_classes} classes)"
    try:
        if isinstance(task.model, str):
            model = create_model(
                task.model, input_shape=dataset.input_shape, num_classes=dataset.num_classes,
                generator=torch.Generator(), **task.model_options,
            )
        else:  # a model object or callable given from Python
            model = build_user_model(
                task.model, input_shape=dataset.input_shape, num_classes=dataset.num_classes,
                generator=torch.Generator(), options=task.model_options,
            )
    except Exception as error:  # a model plugin may raise anything; the spec is at fault either way
        raise _refusal(
            error, "spec.task.model", "spec.task.model_options", task.model_options,
            f"model {task.model_label!r}", f"cannot be built {shape}",
        ) from None
    if task.checkpoint is not None:
        load_checkpoint(model, task.checkpoint, field="spec.task.checkpoint")
    try:
        with torch.no_grad():
            outputs = model(dataset.inputs[:_FORWARD_SAMPLES])
    except Exception as error:
        raise _refusal(
            error, "spec.task.model", "spec.task.model_options", task.model_options,
            f"model {task.model_label!r}", f"fails a forward pass on {_FORWARD_SAMPLES} samples {shape}",
        ) from None
    expected = (min(_FORWARD_SAMPLES, len(dataset)), dataset.num_classes)
    found = tuple(outputs.shape) if isinstance(outputs, Tensor) else type(outputs).__name__
    if found != expected:
        raise ConfigError(
            f"spec.task.model: model {task.model_label!r} returns {found} for {expected[0]} samples {shape}, "
            f"expected {expected} (one logit per class)"
        )
    if task.loss == "taylor_logistic" and dataset.num_classes != 2:
        raise ConfigError(
            f"spec.task.loss 'taylor_logistic' needs a two-class dataset; {task.dataset!r} has "
            f"{dataset.num_classes} classes"
        )
    return model


def _refusal(
    error: BaseException, name_field: str, options_field: str, options: Mapping[str, Any], subject: str, failure: str
) -> ConfigError:
    """One line for an error of a registered constructor, blaming its options or its name.

    A message that already names a spec field stays as it is. The options are blamed
    when the message names one of them, or when the constructor broke on them in a way
    of its own (any error but a ``ConfigError``); otherwise the name is.
    """
    message = " ".join(str(error).split())
    if isinstance(error, ConfigError) and message.startswith("spec."):
        return ConfigError(message)
    if not isinstance(error, ConfigError):
        message = f"{type(error).__name__}: {message}"
    named = any(re.search(rf"\b{re.escape(str(key))}\b", message) for key in options)
    if options and (named or not isinstance(error, ConfigError)):
        return ConfigError(f"{options_field}: {subject} with {dict(options)!r} {failure}: {message}")
    return ConfigError(f"{name_field}: {subject} {failure}: {message}")


def _job_settings(spec: DeploymentSpec, job: Job) -> SimulationSettings:
    """The simulation settings ``job`` will run with (the runner's own mapping)."""
    try:
        return _settings(spec, job, spec.audit if job.kind == "audit" else None)
    except ConfigError as error:
        raise ConfigError(f"spec: job {job.label}: {error}") from None


def _where(job: Job, settings: SimulationSettings) -> str:
    """The deployment a job runs, as a person names it in an error."""
    clients = f"({settings.n_clients} clients, {settings.sampled_per_round} per round)"
    if job.kind == "audit":
        return f"the audit of deployment {job.deployment.name!r} {clients}"
    if job.sweep is not None:
        return f"sweep point {job.deployment.name!r} {clients}"
    return f"deployment {job.deployment.name!r} {clients}"


def _partitioned_runs(spec: DeploymentSpec, dataset: Dataset) -> list[_Run]:
    """Every planned job with its settings, its clients partitioned as its simulator will partition them."""
    training = {seed: split_test_data(dataset, spec.task.test_fraction, seed)[0] for seed in spec.seeds}
    partitions: dict[tuple[int, int, bool], tuple[int, ...]] = {}  # audits partition their own way
    runs = []
    for job in plan_jobs(spec):
        settings = _job_settings(spec, job)
        key = (job.seed, settings.n_clients, job.kind == "audit")
        if key not in partitions:
            partitions[key] = _partition_sizes(job, settings, training[job.seed])
        runs.append(_Run(job, settings, partitions[key]))
    return runs


def _partition_sizes(job: Job, settings: SimulationSettings, training: Dataset) -> tuple[int, ...]:
    """Partition ``training`` as the job's simulator will (same seed stream); return each client's size."""
    options = dict(settings.partition_options)
    try:
        if "property" in options:  # named in specs, passed to the partitioner as flags
            name = require_choice(
                f"partition_options.property for dataset {training.name!r}", options.pop("property"),
                sorted(training.properties),
            )
            options["has_property"] = training.properties[name]
        parts = partition_dataset(
            settings.partition, training.targets, settings.n_clients,
            rng=numpy_rng(settings.seed, Stream.PARTITION), **options,
        )
    except (ValueError, TypeError) as error:
        if job.kind == "audit":
            field = "spec.audit"
        else:
            field = "spec.task.partition_options" if settings.partition_options else "spec.task.partition"
        message = " ".join(str(error).split())
        given = f" with {dict(settings.partition_options)!r}" if settings.partition_options else ""
        raise ConfigError(
            f"{field}: partition {settings.partition!r}{given} fails for {_where(job, settings)}, "
            f"seed {settings.seed}: {message}"
        ) from None
    return tuple(len(part) for part in parts)


def _deployment(run: _Run, num_parameters: int, num_classes: int) -> Deployment:
    """The :class:`Deployment` the simulator gives the job's scheme."""
    return scheme_deployment(run.settings, run.sizes, num_parameters, num_classes)


def _schedule(settings: SimulationSettings, num_samples: int) -> list[slice]:
    return batch_schedule(
        num_samples, batch_size=settings.batch_size, local_epochs=settings.local_epochs, algorithm=settings.algorithm
    )


def _prepare_schemes(spec: DeploymentSpec, runs: Sequence[_Run], num_parameters: int, num_classes: int) -> None:
    """Prepare each job's scheme with its deployment, as the simulator does before the first round."""
    prepared: set[tuple[str, Deployment]] = set()
    for run in runs:
        job, deployment = run.job, _deployment(run, num_parameters, num_classes)
        if (job.scheme, deployment) in prepared:
            continue
        try:
            create_scheme(job.scheme, **run.settings.scheme_options).prepare(deployment)
        except ValueError as error:
            message = " ".join(str(error).split())
            raise ConfigError(
                f"{_scheme_field(spec, job)}: scheme {job.scheme!r} cannot run {_where(job, run.settings)}: {message}"
            ) from None
        prepared.add((job.scheme, deployment))


def _scheme_field(spec: DeploymentSpec, job: Job) -> str:
    if job.scheme in spec.scheme_options:
        return f"spec.scheme_options.{job.scheme}"
    if job.sweep is not None:
        return f"spec.sweeps[{[sweep.name for sweep in spec.sweeps].index(job.sweep)}].scheme"
    return f"spec.schemes[{spec.schemes.index(job.scheme)}]"


class _StepTimer:
    """Measured seconds of one local step of the model, per batch size (timed once each)."""

    def __init__(self, model: nn.Module, task: TaskSpec, dataset: Dataset) -> None:
        device = torch.device(task.device)
        self._model = model.to(device)
        self._device = device
        self._loss = make_loss(self._model, task.loss)
        self._layout = ParameterLayout.of(self._model)
        self._params = flatten_parameters(self._model).to(device)
        self._lr = task.lr
        self._dataset = dataset
        self._seconds: dict[int, float] = {}

    def __call__(self, batch: int) -> float:
        if batch > _MAX_TIMED_BATCH:
            return self(_MAX_TIMED_BATCH) * batch / _MAX_TIMED_BATCH
        if batch not in self._seconds:
            self._seconds[batch] = self._time(batch)
        return self._seconds[batch]

    def _time(self, batch: int) -> float:
        rows = torch.arange(batch) % len(self._dataset)
        batches = [(self._dataset.inputs[rows].to(self._device), self._dataset.targets[rows].to(self._device))]
        self._step(batches)  # warm-up: first-call allocations are not a step's cost
        fastest, started = math.inf, time.perf_counter()
        for _ in range(3):
            before = time.perf_counter()
            self._step(batches)
            fastest = min(fastest, time.perf_counter() - before)
            if time.perf_counter() - started > _TIMING_BUDGET_SECONDS:
                break
        return fastest

    def _step(self, batches: list[tuple[Tensor, Tensor]]) -> None:
        train_client(self._loss, self._layout, self._params, batches, lr=self._lr)
        if self._device.type == "cuda":
            torch.cuda.synchronize(self._device)


def _job_cost(run: _Run, num_parameters: int, dataset: Dataset, step_seconds: Callable[[int], float]) -> _JobCost:
    """Work, time and memory of one job's training, from a typical (mean-sized) client.

    Raises:
        ConfigError: the model fails a local training step on the job's batch (as the job would).
    """
    job, settings = run.job, run.settings
    typical = max(1, round(sum(run.sizes) / len(run.sizes)))
    steps = _schedule(settings, typical)
    batch = steps[0].stop - steps[0].start
    try:
        client_seconds = len(steps) * step_seconds(batch)
    except Exception as error:  # the job's local training would fail the same way
        raise _refusal(
            error, "spec.task.model", "spec.task.model_options", settings.model_options, f"model {settings.model!r}",
            f"fails a local training step on a batch of {batch} for {_where(job, settings)}",
        ) from None
    clients, rounds = settings.sampled_per_round, settings.rounds
    row = num_parameters * _BYTES_PER_VALUE
    truth_rows = clients if settings.record_truth == "all" else len(settings.truth_clients)
    # what the transcript keeps each round: the uploads the views hold, the global model, the truth
    kept_per_round = (_upload_rows(job.scheme) * clients + 2 + truth_rows) * row
    data = dataset.inputs.numel() * dataset.inputs.element_size()
    return _JobCost(
        label=job.label,
        rounds=rounds,
        clients=clients,
        client_updates=rounds * clients,
        seconds=rounds * clients * client_seconds,
        memory_bytes=int(clients * row + rounds * kept_per_round + data),
    )


# Per client and round, the upload the views keep, in float32 rows of the model (measured on
# the default spec's mlp): in the clear under plain and dp; 32-bit ring words under secure
# aggregation (1.0); serialised CKKS ciphertexts under he (18.3); nothing under mpc, where
# no view holds an update.
_UPLOAD_ROWS: dict[str, float] = {"mpc": 0.0, "secagg": 1.0, "secagg+": 1.0, "he": 18.5}


def _upload_rows(scheme: str) -> float:
    """How many float32 model rows each client's upload costs the transcript under ``scheme`` (its protocol)."""
    protocol = scheme.split(",")[-1].strip()
    return _UPLOAD_ROWS.get(protocol, 1.0)


def _estimate(costs: Sequence[_JobCost], num_parameters: int, workers: int, machine: int, limit: float) -> Estimate:
    client_updates = sum(cost.client_updates for cost in costs)
    total_seconds = sum(cost.seconds for cost in costs)
    side_by_side = min(workers, len(costs))
    heaviest = sorted((cost.memory_bytes for cost in costs), reverse=True)[:side_by_side]
    return Estimate(
        jobs=len(costs),
        num_parameters=num_parameters,
        client_updates=client_updates,
        update_floats=client_updates * num_parameters,
        seconds_per_client_update=total_seconds / client_updates,
        seconds=max(total_seconds / side_by_side, max(cost.seconds for cost in costs)),
        peak_memory_bytes=sum(heaviest),
        machine_memory_bytes=machine,
        time_limit_seconds=limit,
        workers=workers,
        largest_job=max(costs, key=lambda cost: cost.client_updates).label,
    )


def _too_large(estimate: Estimate, largest: _JobCost) -> str:
    return (
        f"spec: too large to run here: an estimated {_duration(estimate.seconds)} of training "
        f"(limit {_duration(estimate.time_limit_seconds)}) and {_size(estimate.peak_memory_bytes)} of peak memory "
        f"(this machine has {_size(estimate.machine_memory_bytes)}) for {estimate.jobs} jobs; the largest, "
        f"{largest.label}, trains {largest.rounds} rounds x {largest.clients} clients x "
        f"{estimate.num_parameters} parameters; lower spec.task.rounds, the clients or the model, "
        "or pass --force to skip this bound"
    )


def _duration(seconds: float) -> str:
    """``42 s``, ``3.5 h`` or ``1.2e+04 days``: a duration a person can compare."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.3g} h"
    return f"{seconds / 86400:.3g} days"


def _size(size: float) -> str:
    """Bytes in binary units: ``512 B``, ``1.5 GiB``, ``3.1e+03 EiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if size < 1024:
            return f"{size:.3g} {unit}"
        size /= 1024
    return f"{size:.3g} EiB"
