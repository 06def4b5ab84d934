"""The deployment spec that ``leakage score`` reads: a short TOML file, validated up front.

A spec names one learning task (dataset, model, partition, algorithm and its
hyper-parameters), the deployments to score it on (how many clients, how many per
round), the aggregation schemes to compare, the observers and attacks to run, the
target client, the privacy audit and the seeds. Every field is checked before any work
starts; a wrong one raises :class:`~leakage.errors.ConfigError` with one line naming the
field (``spec.deployments[1].n_clients``) and what it accepts.
"""

from __future__ import annotations

import importlib
import os
import sys
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args

from leakage.checks import (
    require_choice,
    require_device,
    require_in_interval,
    require_int,
    require_positive_float,
)
from leakage.errors import ConfigError
from leakage.plain_data import plain_data

__all__ = [
    "OBSERVER_KINDS",
    "SWEEP_SIZES",
    "AttackSpec",
    "AuditSpec",
    "DeploymentSize",
    "DeploymentSpec",
    "ObserverKind",
    "SweepSpec",
    "TaskSpec",
    "default_spec_path",
    "import_plugins",
    "load_spec",
    "plugin_roots",
    "parse_spec",
]

ObserverKind = Literal["server", "participant", "coalition", "eavesdropper", "public", "malicious_server"]
OBSERVER_KINDS: tuple[str, ...] = get_args(ObserverKind)
#: The sizes a sweep scores when it names none: from two participants to a hundred.
SWEEP_SIZES: tuple[int, ...] = (2, 3, 5, 10, 20, 50, 100)


@dataclass(frozen=True)
class TaskSpec:
    """The learning task every deployment of the spec runs (see ``SimulationSettings``)."""

    dataset: str = "digits"
    dataset_options: Mapping[str, Any] = field(default_factory=dict)
    model: Any = "mlp"  # a registered name, an import path, or (from Python) an nn.Module or a callable
    model_options: Mapping[str, Any] = field(default_factory=dict)
    partition: str = "iid"
    partition_options: Mapping[str, Any] = field(default_factory=dict)
    algorithm: Literal["fedsgd", "fedavg"] = "fedsgd"
    local_epochs: int = 1
    batch_size: int | None = 1
    lr: float = 0.1
    rounds: int = 2
    loss: Literal["cross_entropy", "taylor_logistic"] = "cross_entropy"
    test_fraction: float = 0.2
    device: str = "cpu"
    checkpoint: str | None = None
    python_path: tuple[str, ...] = ()
    record_truth: Literal["targets", "all"] = "targets"

    @property
    def model_label(self) -> str:
        """The model as reports name it (see :func:`leakage.models.model_label`)."""
        from leakage.models import model_label

        return model_label(self.model)


@dataclass(frozen=True)
class DeploymentSize:
    """One deployment of the task: a name and its clients."""

    name: str
    n_clients: int
    clients_per_round: int | None = None
    dropout: float = 0.0


@dataclass(frozen=True)
class AttackSpec:
    """One attack to run, by registry name, with its options (its budget)."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SweepSpec:
    """One scheme scored over a range of deployment sizes (every client takes part each round).

    Each size is a deployment of its own (named ``"<name> n=<size>"``) scored with the
    spec's update-recovery attacks only, so the report can draw leakage against the
    number of clients and say from which size an observer's estimate of the target's
    update is no better than the released model's direction.
    """

    name: str
    scheme: str
    n_clients: tuple[int, ...] = SWEEP_SIZES

    def deployments(self) -> tuple[DeploymentSize, ...]:
        """The sweep's points as deployments."""
        return tuple(DeploymentSize(f"{self.name} n={size}", size) for size in self.n_clients)


@dataclass(frozen=True)
class AuditSpec:
    """The distinguishing-game audit: ``trials`` rounds, confidence of the epsilon bound.

    ``deployments`` names the deployments to audit (``None``: all of them); each trial
    is one simulated round, so a large deployment under ``secagg`` costs the most.
    """

    trials: int = 64
    confidence: float = 0.95
    delta: float = 1e-5
    deployments: tuple[str, ...] | None = None


@dataclass(frozen=True)
class DeploymentSpec:
    """Everything ``leakage score`` runs, validated.

    Attributes:
        name: a label for the report.
        task: the learning task.
        deployments: the sizes to score the task on.
        schemes: aggregation schemes to compare (``mpc`` is always added: it is the baseline).
        scheme_options: per scheme, its options (``{"dp": {"clip_norm": 1.0}}``).
        observers: who attacks: ``server``, ``participant`` (one other client alone),
            ``coalition`` (every participant but the target, colluding),
            ``eavesdropper``, ``public`` (the released model only).
        target: the client whose data the attacks go after.
        attacks: attacks to run on each observer's view.
        audit: the privacy audit, or ``None`` to skip it.
        seeds: one full run per seed.
        sweeps: schemes scored over a range of deployment sizes.
        plugins: modules imported before anything is looked up, here and in every
            worker, so the attacks, schemes, datasets and models they register can be
            named in the spec (``plugins = ["my_lab.attacks"]``, importable from ``sys.path``).
    """

    name: str = "deployment"
    task: TaskSpec = field(default_factory=TaskSpec)
    deployments: tuple[DeploymentSize, ...] = (DeploymentSize("two-clients", 2),)
    schemes: tuple[str, ...] = ("plain", "secagg", "mpc")
    scheme_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    observers: tuple[str, ...] = ("server", "participant", "public")
    target: int = 0
    attacks: tuple[AttackSpec, ...] = (AttackSpec("round_difference"),)
    audit: AuditSpec | None = field(default_factory=AuditSpec)
    seeds: tuple[int, ...] = (0,)
    sweeps: tuple[SweepSpec, ...] = ()
    plugins: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists, dicts) for ``report.json``; a model object becomes its label and weights digest."""
        model = self.task.model
        if isinstance(model, str):
            plain: dict[str, Any] = plain_data(asdict(self))
            return plain
        plain = plain_data(asdict(replace(self, task=replace(self.task, model=self.task.model_label))))
        plain["task"]["model_digest"] = _model_digest(model)
        return plain


def _model_digest(model: Any) -> str:
    """SHA-256 of an ``nn.Module``'s state (so resumed runs and reports tell weights apart), or of a callable's name."""
    import hashlib

    from torch import nn

    digest = hashlib.sha256()
    if isinstance(model, nn.Module):
        for name, value in model.state_dict().items():
            digest.update(name.encode())
            digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    else:
        digest.update(repr(model).encode())
    return digest.hexdigest()[:16]


def default_spec_path() -> Path:
    """Return the path of the built-in default spec shipped inside the package."""
    return Path(str(resources.files("leakage.quantify") / "default.toml"))


def load_spec(path: str | os.PathLike[str] | None = None) -> DeploymentSpec:
    """Read and validate a spec file (the built-in default when ``path`` is ``None``).

    Raises:
        ConfigError: the file is missing, is not valid TOML, or a field is wrong.

    >>> load_spec().deployments[1].n_clients
    100
    """
    source = Path(path) if path is not None else default_spec_path()
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"spec file {str(source)!r} does not exist") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as error:
        raise ConfigError(f"spec file {str(source)!r} cannot be read: {error}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"spec file {str(source)!r} is not valid TOML: {error}") from None
    return parse_spec(data, base=source.resolve().parent)


def parse_spec(data: Mapping[str, Any], *, base: str | os.PathLike[str] | None = None) -> DeploymentSpec:
    """Validate plain data (a parsed TOML table) into a :class:`DeploymentSpec`.

    Names (datasets, models, schemes, attacks) are checked against the registries, so a
    typo fails here, before any simulation. Relative paths in the task
    (``checkpoint``, ``python_path``, ``dataset_options.path``) are taken from ``base``
    (the spec file's folder; the working directory when ``None``) and stored absolute.

    Raises:
        ConfigError: a field is unknown, missing or invalid; the message names it.

    >>> parse_spec({"schemes": ["plain"], "deployments": [{"name": "a", "n_clients": 3}]}).schemes
    ('plain', 'mpc')
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"spec must be a table, got {type(data).__name__}")
    _check_keys("spec", data, ("name", "task", "deployments", "schemes", "scheme_options", "observers", "target",
                               "attacks", "audit", "seeds", "sweeps", "plugins", "threat"))
    defaults = DeploymentSpec()
    plugins = _plugins(data.get("plugins", []))
    name = _string("spec.name", data.get("name", defaults.name))
    task = _task(data.get("task", {}), Path(base) if base is not None else Path.cwd())
    deployments = _deployments(data.get("deployments", [asdict(d) for d in defaults.deployments]))
    schemes = _schemes(data.get("schemes", list(defaults.schemes)))
    sweeps = _sweeps(data.get("sweeps", []), [size.name for size in deployments])
    scheme_options = _scheme_options(data.get("scheme_options", {}), (*schemes, *(s.scheme for s in sweeps)))
    observers = _names("spec.observers", data.get("observers", list(defaults.observers)), OBSERVER_KINDS)
    # threat = "active": the server may also deviate (leakage.quantify.active); its rows are the malicious_server's
    threat = require_choice("spec.threat", data.get("threat", "passive"), ("passive", "active"))
    if threat == "active" and "malicious_server" not in observers:
        observers = (*observers, "malicious_server")
    target = require_int("spec.target", data.get("target", defaults.target), minimum=0)
    smallest = min(size.n_clients for size in (*deployments, *(d for s in sweeps for d in s.deployments())))
    if target >= smallest:
        raise ConfigError(
            f"spec.target must be a client id below every deployment's n_clients ({smallest}), got {target}"
        )
    attacks = _attacks(data.get("attacks", [{"name": a.name} for a in defaults.attacks]))
    audit = _audit(data.get("audit", {}), [size.name for size in deployments])
    seeds_value = data.get("seeds", list(defaults.seeds))
    if not isinstance(seeds_value, list) or not seeds_value:
        raise ConfigError(f"spec.seeds must be a non-empty list of integers >= 0, got {seeds_value!r}")
    seeds = tuple(require_int(f"spec.seeds[{i}]", s, minimum=0) for i, s in enumerate(seeds_value))
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"spec.seeds must not repeat a seed, got {list(seeds)}")
    return DeploymentSpec(
        name, task, deployments, schemes, scheme_options, observers, target, attacks, audit, seeds, sweeps, plugins
    )


def _task(value: object, base: Path) -> TaskSpec:
    from leakage.data import DATASETS, PARTITIONS
    from leakage.simulation import ALGORITHMS, LOSSES

    table = _table("spec.task", value)
    fields = TaskSpec.__dataclass_fields__
    _check_keys("spec.task", table, tuple(fields))
    defaults = TaskSpec()
    python_path = _python_path(table.get("python_path", []), base)
    dataset = require_choice("spec.task.dataset", table.get("dataset", defaults.dataset), DATASETS.names())
    model = _model(table.get("model", defaults.model))
    checkpoint = table.get("checkpoint")
    if checkpoint is not None:
        checkpoint = str(_path("spec.task.checkpoint", checkpoint, base, must_exist=True))
    partition = require_choice("spec.task.partition", table.get("partition", defaults.partition), PARTITIONS.names())
    algorithm = require_choice("spec.task.algorithm", table.get("algorithm", defaults.algorithm), ALGORITHMS)
    loss = require_choice("spec.task.loss", table.get("loss", defaults.loss), LOSSES)
    local_epochs = require_int("spec.task.local_epochs", table.get("local_epochs", defaults.local_epochs), minimum=1)
    if algorithm == "fedsgd" and local_epochs != 1:
        raise ConfigError(f"spec.task.local_epochs must be 1 for fedsgd, got {local_epochs}")
    batch = table.get("batch_size", defaults.batch_size)
    batch_size = None if batch is None else require_int("spec.task.batch_size", batch, minimum=1)
    lr = require_positive_float("spec.task.lr", table.get("lr", defaults.lr))
    rounds = require_int("spec.task.rounds", table.get("rounds", defaults.rounds), minimum=1)
    test_fraction = table.get("test_fraction", defaults.test_fraction)
    test_fraction = require_in_interval("spec.task.test_fraction", test_fraction, 0, 1, inclusive="left")
    device = require_device("spec.task.device", table.get("device", defaults.device))
    record_truth: Literal["targets", "all"] = require_choice(
        "spec.task.record_truth", table.get("record_truth", "targets"), ("targets", "all")
    )
    options = {
        key: dict(_table(f"spec.task.{key}", table.get(key, {})))
        for key in ("dataset_options", "model_options", "partition_options")
    }
    if "path" in options["dataset_options"]:  # the user's data folder or file, next to the spec
        options["dataset_options"]["path"] = str(
            _path("spec.task.dataset_options.path", options["dataset_options"]["path"], base, must_exist=False)
        )
    return TaskSpec(
        dataset=dataset, model=model, partition=partition, algorithm=algorithm,  # type: ignore[arg-type]
        local_epochs=local_epochs, batch_size=batch_size, lr=lr, rounds=rounds, loss=loss,  # type: ignore[arg-type]
        test_fraction=test_fraction, device=device, checkpoint=checkpoint, python_path=python_path,
        record_truth=record_truth, **options,
    )


def _model(value: object) -> Any:
    """A registered model name, an import path (imported now, so a typo fails here), or a model object."""
    from torch import nn

    from leakage.models import MODELS, is_import_path, resolve_import_path

    if isinstance(value, str) and is_import_path(value):
        resolve_import_path(value, field="spec.task.model")
        return value
    if isinstance(value, nn.Module) or (callable(value) and not isinstance(value, str)):
        return value
    if isinstance(value, str) and value in MODELS:
        return value
    raise ConfigError(
        f"spec.task.model must be one of {', '.join(MODELS.names())} or an import path 'module:callable', "
        f"got {value!r:.80}"
    )


def _path(name: str, value: object, base: Path, *, must_exist: bool) -> Path:
    """``value`` as an absolute path, relative ones taken from ``base``."""
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        raise ConfigError(f"{name} must be a path, got {value!r:.80}")
    path = Path(value).expanduser()
    path = path if path.is_absolute() else (base / path)
    if must_exist and not path.is_file():
        raise ConfigError(f"{name}: no such file {str(path)!r}")
    return path.resolve() if path.exists() else path


def _python_path(value: object, base: Path) -> tuple[str, ...]:
    """Folders (relative to the spec's) put on ``sys.path`` here and in every worker, for the user's modules."""
    if isinstance(value, str) or not isinstance(value, list):
        raise ConfigError(f"spec.task.python_path must be a list of folders, got {value!r:.80}")
    folders = []
    for index, entry in enumerate(value):
        folder = _path(f"spec.task.python_path[{index}]", entry, base, must_exist=False)
        if not folder.is_dir():
            raise ConfigError(f"spec.task.python_path[{index}]: no such folder {str(folder)!r}")
        folders.append(str(folder))
    for entry_path in reversed(folders):
        if entry_path not in sys.path:
            sys.path.insert(0, entry_path)
    return tuple(folders)


def _deployments(value: object) -> tuple[DeploymentSize, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"spec.deployments must be a non-empty list of tables, got {value!r:.80}")
    sizes = []
    for index, item in enumerate(value):
        where = f"spec.deployments[{index}]"
        table = _table(where, item)
        _check_keys(where, table, ("name", "n_clients", "clients_per_round", "dropout"))
        if "name" not in table or "n_clients" not in table:
            raise ConfigError(f"{where} needs a name and n_clients")
        n_clients = require_int(f"{where}.n_clients", table["n_clients"], minimum=2)
        per_round = table.get("clients_per_round")
        if per_round is not None:
            per_round = require_int(f"{where}.clients_per_round", per_round, minimum=2)
            if per_round > n_clients:
                raise ConfigError(f"{where}.clients_per_round must be <= n_clients ({n_clients}), got {per_round}")
        dropout = require_in_interval(
            f"{where}.dropout", table.get("dropout", 0.0), 0, 1, inclusive="left", what="a probability"
        )
        sizes.append(DeploymentSize(_string(f"{where}.name", table["name"]), n_clients, per_round, dropout))
    names = [size.name for size in sizes]
    if len(set(names)) != len(names):
        raise ConfigError(f"spec.deployments names must be unique, got {names}")
    return tuple(sizes)


def _schemes(value: object, *, where: str = "spec.schemes", add_mpc: bool = True) -> tuple[str, ...]:
    from leakage.aggregation import scheme_names, split_scheme_name

    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where} must be a non-empty list of scheme names, got {value!r:.80}")
    known = scheme_names()
    for index, name in enumerate(value):
        for stage in split_scheme_name(name):
            if stage not in known:
                at = f"{where}[{index}]" if add_mpc else where
                raise ConfigError(f"{at} has unknown stage {stage!r}; choose from: {', '.join(known)}")
    schemes = [str(v) for v in value]
    if len(set(schemes)) != len(schemes):
        raise ConfigError(f"{where} must not repeat a scheme, got {schemes}")
    return tuple(schemes) if "mpc" in schemes or not add_mpc else (*schemes, "mpc")


def import_plugins(plugins: Sequence[str], roots: Sequence[str] = ()) -> None:
    """Import each plugin module (registering what it defines); Python caches repeated imports.

    ``roots`` (see :func:`plugin_roots`) are put on ``sys.path`` first where missing.

    Raises:
        ConfigError: a module cannot be imported (the message names it and why).
    """
    import sys

    for root in roots:
        if root not in sys.path:
            sys.path.insert(0, root)
    for index, module in enumerate(plugins):
        try:
            importlib.import_module(module)
        except Exception as error:  # any failure to import is the spec's fault, said in one line
            raise ConfigError(
                f"spec.plugins[{index}]: cannot import {module!r}: {type(error).__name__}: {error}"
            ) from None


def plugin_roots(plugins: Sequence[str]) -> tuple[str, ...]:
    """The ``sys.path`` folders the (imported) plugin modules were found under.

    A worker started before the caller extended ``sys.path`` can then find them too.

    >>> plugin_roots(["leakage.quantify.spec"]) == (str(Path(__file__).parents[2]),)
    True
    """
    import sys

    roots = []
    for name in plugins:
        origin = getattr(sys.modules.get(name), "__file__", None)
        if origin is None:
            continue
        path = Path(origin).resolve()
        depth = name.count(".") + (2 if path.name == "__init__.py" else 1)
        roots.append(str(path.parents[depth - 1]))
    return tuple(dict.fromkeys(roots))


def _plugins(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"spec.plugins must be a list of module names, got {value!r:.80}")
    plugins = tuple(str(v) for v in value)
    import_plugins(plugins)  # before the names they register are checked
    return plugins


def _sweeps(value: object, deployment_names: Sequence[str]) -> tuple[SweepSpec, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"spec.sweeps must be a list of tables, got {value!r:.80}")
    sweeps = []
    for index, item in enumerate(value):
        where = f"spec.sweeps[{index}]"
        table = _table(where, item)
        _check_keys(where, table, ("name", "scheme", "n_clients"))
        if "scheme" not in table:
            raise ConfigError(f"{where} needs a scheme")
        (scheme,) = _schemes([table["scheme"]], where=f"{where}.scheme", add_mpc=False)
        name = _string(f"{where}.name", table.get("name", f"{scheme} sweep"))
        sizes_value = table.get("n_clients", list(SWEEP_SIZES))
        if not isinstance(sizes_value, list) or len(sizes_value) < 2:
            raise ConfigError(
                f"{where}.n_clients must be a list of at least two integers >= 2, got {sizes_value!r:.80}"
            )
        sizes = [require_int(f"{where}.n_clients[{i}]", size, minimum=2) for i, size in enumerate(sizes_value)]
        if sizes != sorted(set(sizes)):
            raise ConfigError(f"{where}.n_clients must be increasing without repeats, got {sizes}")
        sweeps.append(SweepSpec(name, scheme, tuple(sizes)))
    names = [sweep.name for sweep in sweeps]
    if len(set(names)) != len(names):
        raise ConfigError(f"spec.sweeps names must be unique, got {names}")
    clash = sorted(set(names) & set(deployment_names))
    if clash:
        raise ConfigError(f"spec.sweeps name {clash[0]!r} is also a deployment's name")
    return tuple(sweeps)


def _scheme_options(value: object, schemes: Sequence[str]) -> dict[str, dict[str, Any]]:
    from leakage.aggregation import create_scheme

    table = _table("spec.scheme_options", value)
    options: dict[str, dict[str, Any]] = {}
    for scheme, stage_options in table.items():
        if scheme not in schemes:
            raise ConfigError(
                f"spec.scheme_options.{scheme} names no scheme of spec.schemes or spec.sweeps ({', '.join(schemes)})"
            )
        options[scheme] = _table(f"spec.scheme_options.{scheme}", stage_options)
        try:  # options are checked now, not when the scheme's first job runs
            create_scheme(scheme, **options[scheme])
        except ConfigError as error:
            raise ConfigError(f"spec.scheme_options.{scheme}: {error}") from error
    return options


def _attacks(value: object) -> tuple[AttackSpec, ...]:
    from attacks import ATTACKS

    if not isinstance(value, list) or not value:
        raise ConfigError(f"spec.attacks must be a non-empty list of tables, got {value!r:.80}")
    supported = _scored_attacks(ATTACKS.names())
    attacks = []
    for index, item in enumerate(value):
        where = f"spec.attacks[{index}]"
        table = _table(where, item)
        _check_keys(where, table, ("name", "options"))
        name = require_choice(f"{where}.name", table.get("name"), supported)
        options = _table(f"{where}.options", table.get("options", {}))
        try:  # a typo in an option fails here, not inside every job
            ATTACKS.create(name, **options)
        except ConfigError as error:
            raise ConfigError(f"{where}.options: {error}") from None
        attacks.append(AttackSpec(name, options))
    return tuple(attacks)


def _scored_attacks(registered: Sequence[str]) -> tuple[str, ...]:
    """Attacks ``leakage score`` can score: those whose declared product has a scorer."""
    from attacks import ATTACKS
    from leakage.quantify.scoring import scored_products

    products = scored_products()
    return tuple(name for name in registered if ATTACKS.get(name).produces in products)


def _audit(value: object, deployment_names: Sequence[str]) -> AuditSpec | None:
    if value is False or value is None:  # false in TOML, null in a report's JSON copy
        return None
    table = _table("spec.audit", value)
    _check_keys("spec.audit", table, ("trials", "confidence", "delta", "deployments"))
    audited = table.get("deployments")
    if audited is not None:
        audited = _names("spec.audit.deployments", audited, deployment_names)
    defaults = AuditSpec()
    trials = require_int("spec.audit.trials", table.get("trials", defaults.trials), minimum=4)
    confidence = require_in_interval(
        "spec.audit.confidence", table.get("confidence", defaults.confidence), 0.5, 1, inclusive="left"
    )
    delta = require_in_interval("spec.audit.delta", table.get("delta", defaults.delta), 0, 1, inclusive="left")
    return AuditSpec(trials, confidence, delta, audited)


def _check_keys(where: str, table: Mapping[str, Any], allowed: Sequence[str]) -> None:
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise ConfigError(f"{where} has unknown key {unknown[0]!r}; choose from: {', '.join(allowed)}")


def _table(where: str, value: object) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a table, got {value!r:.80}")
    return dict(value)


def _string(where: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where} must be a non-empty string, got {value!r}")
    return value


def _names(where: str, value: object, choices: Sequence[str]) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where} must be a non-empty list drawn from {', '.join(choices)}, got {value!r:.80}")
    for index, item in enumerate(value):
        require_choice(f"{where}[{index}]", item, choices)
    if len(set(value)) != len(value):
        raise ConfigError(f"{where} must not repeat a name, got {value}")
    return tuple(value)
