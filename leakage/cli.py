"""The ``leakage`` command line."""

from __future__ import annotations

import argparse
import ast
import json
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from leakage.checks import require_choice, require_int
from leakage.errors import ConfigError

if TYPE_CHECKING:
    from leakage.transcript import Transcript

__all__ = ["main"]

_OPTION_SECTIONS = ("dataset", "model", "scheme", "partition")
# The commands, and what each does, for the top-level help: listing them needs no import
# of torch or the registries, so `leakage --help` answers at once.
_COMMANDS: dict[str, str] = {
    "simulate": "simulate FL rounds and print a per-round table",
    "score": "score a deployment's schemes against the MPC baseline",
    "attacks": "list the attacks, the observer each runs as and what it produces",
    "datasets": "list the registered datasets",
    "models": "list the registered models",
    "partitions": "list the registered partitions",
    "schemes": "list the aggregation protocols and client mechanisms",
}


def _parse_option(text: str) -> tuple[str, str, Any]:
    """Parse ``section.key=value`` (value as a Python literal, else a string).

    A composed scheme's stages take ``scheme.STAGE.KEY=VALUE``; the key keeps its dot.
    """
    target, sep, raw = text.partition("=")
    section, dot, key = target.partition(".")
    if not sep or not dot or section not in _OPTION_SECTIONS or not key:
        raise ConfigError(
            f"--option must look like SECTION.KEY=VALUE with SECTION one of "
            f"{', '.join(_OPTION_SECTIONS)}, got {text!r}"
        )
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw
    return section, key, value


def _light_parser() -> argparse.ArgumentParser:
    """The top-level parser alone: every command named, none of their options (nothing heavy imported)."""
    parser = argparse.ArgumentParser(prog="leakage", description="Measure privacy leakage in federated learning.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in _COMMANDS.items():
        commands.add_parser(name, help=text, add_help=False)
    return parser


def _build_parser() -> argparse.ArgumentParser:
    from leakage.aggregation import scheme_names
    from leakage.data import DATASETS, PARTITIONS
    from leakage.models import MODELS
    from leakage.quantify.backends import BACKENDS
    from leakage.simulation import ALGORITHMS, CLIENT_SAMPLINGS, SimulationSettings

    parser = argparse.ArgumentParser(
        prog="leakage", description="Measure privacy leakage in federated learning."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    sim = commands.add_parser("simulate", help=_COMMANDS["simulate"])
    defaults = SimulationSettings()
    sim.add_argument("--dataset", default=defaults.dataset, help=f"one of: {', '.join(DATASETS.names())}")
    sim.add_argument("--model", default=defaults.model, help=f"one of: {', '.join(MODELS.names())}")
    sim.add_argument(
        "--scheme",
        default=defaults.scheme,
        help=f"a scheme, or client mechanisms then a protocol separated by commas (compression,secagg); "
        f"names: {', '.join(scheme_names())}",
    )
    sim.add_argument("--partition", default=defaults.partition, help=f"one of: {', '.join(PARTITIONS.names())}")
    sim.add_argument("--algorithm", default=defaults.algorithm, help=f"one of: {', '.join(ALGORITHMS)}")
    sim.add_argument("--n-clients", type=int, default=defaults.n_clients)
    sim.add_argument("--clients-per-round", type=int, default=defaults.clients_per_round)
    sim.add_argument(
        "--client-sampling", default=defaults.client_sampling, help=f"one of: {', '.join(CLIENT_SAMPLINGS)}"
    )
    sim.add_argument("--rounds", type=int, default=defaults.rounds)
    sim.add_argument("--local-epochs", type=int, default=defaults.local_epochs)
    sim.add_argument("--batch-size", type=int, default=defaults.batch_size)
    sim.add_argument("--lr", type=float, default=defaults.lr)
    sim.add_argument("--server-lr", type=float, default=defaults.server_lr)
    sim.add_argument("--dropout", type=float, default=defaults.dropout)
    sim.add_argument("--seed", type=int, default=defaults.seed)
    sim.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="constructor option, e.g. partition.alpha=0.5, model.hidden=(64,), or for a composed "
        "scheme scheme.secagg.clip_range=0.5",
    )
    sim.add_argument("--out", type=Path, help="save the transcript (.pt) and a summary (.json)")
    sim.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    sc = commands.add_parser("score", help=_COMMANDS["score"])
    sc.add_argument("spec", nargs="?", type=Path, help="a deployment spec (TOML); the built-in default if omitted")
    sc.add_argument("--out", type=Path, default=Path("leakage-report"), help="folder for report.json and report.html")
    sc.add_argument("--recording", type=Path, metavar="DIR",
                    help="score a recording of a real run (leakage.recording) instead of simulating; SPEC, if "
                         "given, supplies only the observers, attacks and seed")
    sc.add_argument("--quick", action="store_true", help="first seed only and a 16-trial audit")
    sc.add_argument("--jobs", type=int, default=1, help="jobs run side by side (processes or Ray tasks)")
    sc.add_argument("--backend", default="local", help=f"one of: {', '.join(BACKENDS)}")
    sc.add_argument("--address", help="a Ray cluster address (with --backend ray)")
    sc.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    sc.add_argument("--retries", type=int, default=2,
                    help="run a job whose worker died (killed, out of memory) again, at most this many times")
    sc.add_argument("--resume", action="store_true",
                    help="keep the jobs an interrupted run of the same spec finished (in OUT/jobs) and run the rest")
    sc.add_argument("--fresh", action="store_true", help="discard OUT/jobs, even one of another spec or version")
    sc.add_argument("--keep-going", action="store_true",
                    help="run every job even when some fail; the report marks the failed cells")
    sc.add_argument("--force", action="store_true",
                    help="run a spec whose estimated time or memory exceeds the preflight's bound "
                         "(the other preflight checks still run)")
    for name in ("attacks", "datasets", "models", "partitions", "schemes"):
        commands.add_parser(name, help=_COMMANDS[name])
    return parser


def _simulate(args: argparse.Namespace) -> None:
    from leakage.aggregation import create_scheme, split_scheme_name
    from leakage.data import DATASETS, PARTITIONS, load_dataset
    from leakage.models import MODELS
    from leakage.simulation import SimulationSettings, Simulator
    from leakage.summary import summarize_rounds

    options: dict[str, dict[str, Any]] = {section: {} for section in _OPTION_SECTIONS}
    for text in args.option:
        section, key, value = _parse_option(text)
        stage, dot, stage_key = key.partition(".")
        if section == "scheme" and dot:
            table = options["scheme"].setdefault(stage, {})
            if not isinstance(table, dict):
                raise ConfigError(f"--option scheme.{stage} is both a value and a stage table")
            table[stage_key] = value
        else:
            options[section][key] = value
    settings = SimulationSettings(
        dataset=args.dataset,
        model=args.model,
        scheme=args.scheme,
        partition=args.partition,
        algorithm=args.algorithm,
        n_clients=args.n_clients,
        clients_per_round=args.clients_per_round,
        client_sampling=args.client_sampling,
        rounds=args.rounds,
        local_epochs=args.local_epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        server_lr=args.server_lr,
        dropout=args.dropout,
        seed=args.seed,
        dataset_options=options["dataset"],
        model_options=options["model"],
        scheme_options=options["scheme"],
        partition_options=options["partition"],
    )
    for name, registry in (("dataset", DATASETS), ("model", MODELS), ("partition", PARTITIONS)):
        registry.get(getattr(settings, name))  # fail on a bad name before any work
    create_scheme(settings.scheme, **settings.scheme_options)
    dataset = load_dataset(settings.dataset, **settings.dataset_options)
    transcript = Simulator(settings, dataset=dataset).run(show_progress=not args.no_progress)
    summaries = summarize_rounds(transcript, dataset)
    header = f"{'round':>5} {'sampled':>7} {'arrived':>7} {'train loss':>10} {'|update|':>9} {'accuracy':>8}"
    print(
        f"{settings.algorithm} on {settings.dataset} with {settings.model}, "
        f"scheme {','.join(split_scheme_name(settings.scheme))}, "
        f"{settings.n_clients} clients, seed {settings.seed}"
    )
    print(header)
    for row, record in zip(summaries, transcript.rounds, strict=True):
        note = f"  aborted: {record.public['aborted']}" if "aborted" in record.public else ""
        print(
            f"{row.round_index:>5} {row.sampled:>7} {row.survivors:>7} {row.train_loss:>10.4f} "
            f"{row.update_norm:>9.4f} {row.accuracy:>8.3f}{note}"
        )
    if args.out is not None:
        _save(args.out, transcript, summaries)


class Terminated(BaseException):
    """SIGTERM arrived: stop like Ctrl-C does (a BaseException, so no job catches it)."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def _score_recording(args: argparse.Namespace) -> int:
    """``leakage score --recording DIR``: score a real run's recording against its canaries."""
    from leakage.quantify import load_spec
    from leakage.quantify.recording import score_recording
    from leakage.quantify.table import format_headlines

    for flag, value, default in (("--jobs", args.jobs, 1), ("--backend", args.backend, "local"),
                                 ("--address", args.address, None), ("--quick", args.quick, False),
                                 ("--resume", args.resume, False), ("--fresh", args.fresh, False)):
        if value != default:
            raise ConfigError(f"{flag} does not apply with --recording (a recording is scored in this process)")
    if args.out.exists() and not args.out.is_dir():
        raise ConfigError(f"--out must be a folder, got the file {str(args.out)!r}")
    spec = load_spec(args.spec) if args.spec is not None else None
    report = score_recording(args.recording, spec)
    files = report.write(args.out)
    recording = report.recording or {}
    print(f"{report.spec.name}: leakage of the recorded run against canary clients "
          f"{', '.join(map(str, recording.get('canaries', [])))} (0 = no more than the released model reveals, "
          "1 = the canary's update in the clear)")
    print(format_headlines(report.to_dict()))
    print(f"wrote {files.json}, {files.csv} and {files.html} in {report.timings['total']:.1f} s")
    return 0


def _score(args: argparse.Namespace) -> int:
    if args.recording is not None:
        return _score_recording(args)
    if isinstance(args.jobs, int) and args.jobs > 1 and args.backend == "local":
        from leakage.workers import start_worker_server

        start_worker_server()  # its imports run beside ours, not after them

    from leakage.environment import environment_info
    from leakage.quantify import JobStore, load_spec, plan_jobs, preflight, quick_spec, score
    from leakage.quantify.backends import BACKENDS
    from leakage.quantify.table import format_headlines

    spec = load_spec(args.spec)
    require_int("--jobs", args.jobs, minimum=1)
    require_int("--retries", args.retries, minimum=0)
    require_choice("--backend", args.backend, BACKENDS)
    if args.address is not None and args.backend != "ray":
        raise ConfigError("--address needs --backend ray")
    if args.out.exists() and not args.out.is_dir():
        raise ConfigError(f"--out must be a folder, got the file {str(args.out)!r}")
    effective = quick_spec(spec) if args.quick else spec
    preflight(effective, force=args.force, workers=args.jobs)  # before any folder or job: a bad spec costs nothing
    version = str(environment_info().get("leakage", "unknown"))
    store = JobStore.open(args.out / "jobs", effective, version=version, resume=args.resume, fresh=args.fresh)
    planned = len(plan_jobs(effective))
    if store.kept:
        print(f"resuming: {store.kept} of {planned} jobs already finished (kept in {store.folder})")
    try:
        report = score(
            spec, quick=args.quick, workers=args.jobs, backend=args.backend, address=args.address,
            show_progress=not args.no_progress, retries=args.retries, keep_going=args.keep_going, store=store,
        )
    except (KeyboardInterrupt, Terminated) as stop:
        print(
            f"leakage: interrupted: {store.finished()} of {planned} jobs finished and are kept in {store.folder}; "
            "run the same command with --resume to finish",
            file=sys.stderr,
        )
        return 143 if isinstance(stop, Terminated) else 130
    except Exception as error:  # a job failed after its retries: one line per failed job, no traceback
        if not str(error).startswith("job "):
            raise
        for line in [str(error), *getattr(error, "__notes__", [])]:
            print(f"leakage: error: {line}", file=sys.stderr)
        print(
            f"leakage: {store.finished()} of {planned} jobs finished and are kept in {store.folder}; fix the cause "
            "and run the same command with --resume, or use --keep-going to report the rest",
            file=sys.stderr,
        )
        return 2 if isinstance(error, (ValueError, FileNotFoundError)) else 1
    files = report.write(args.out)
    print(f"{spec.name}: leakage of each scheme (0 = no more than MPC reveals, 1 = the target's update in the clear)")
    print(format_headlines(report.to_dict()))
    for curve in report.sweeps:
        hides = (
            f"no better than the released model's direction from {curve.hides_from} clients"
            if curve.hides_from is not None else "better than the released model's direction at every swept size"
        )
        print(f"{curve.name}: the {curve.observer}'s estimate of the target's update is {hides}")
    run = report.run
    if run is not None and (run.resumed or run.retried):
        print(f"jobs: {run.planned} planned, {run.resumed} kept from the earlier run, {run.ran} run, "
              f"{run.retried} retried after their worker died")
    for failure in report.failures:
        key = failure.key
        print(f"leakage: error: job {failure.kind} {key.deployment}/{key.scheme}/seed {key.seed} failed: "
              f"{failure.reason}", file=sys.stderr)
    print(f"wrote {files.json}, {files.csv} and {files.html} in {report.timings['total']:.1f} s")
    return 1 if report.failures else 0


def _save(out: Path, transcript: Transcript, summaries: Sequence[Any]) -> None:
    """Write the transcript and a JSON summary; never leave a half-written file behind."""
    from leakage.environment import environment_info
    from leakage.files import write_atomically

    out.mkdir(parents=True, exist_ok=True)
    summary = {
        "settings": dict(transcript.settings),
        "environment": environment_info(),
        "rounds": [row.to_dict() for row in summaries],
    }
    transcript.save(out / "transcript.pt")
    write_atomically(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    print(f"wrote {out / 'transcript.pt'} and {out / 'summary.json'}")


def _list(command: str) -> None:
    """Print a registry's names (with what each attack is, and which schemes are mechanisms)."""
    if command == "attacks":
        from attacks import ATTACKS

        for name in ATTACKS.names():
            attack = ATTACKS.get(name)
            implicit = ", implicit in scoring" if attack.is_implicit else ""
            print(f"{name}  (runs as {attack.observer})  produces {attack.produces}{implicit}")
    elif command == "schemes":
        from leakage.aggregation import MECHANISMS, SCHEMES

        print("\n".join([f"{name}  (protocol)" for name in SCHEMES.names()]))
        print("\n".join([f"{name}  (client mechanism: runs before a protocol)" for name in MECHANISMS.names()]))
    else:
        from leakage.data import DATASETS, PARTITIONS
        from leakage.models import MODELS
        from leakage.registry import Registry

        registries: dict[str, Registry[Any]] = {"datasets": DATASETS, "models": MODELS, "partitions": PARTITIONS}
        registry = registries[command]
        print("\n".join(registry.names()))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``leakage`` command; return its exit status (2 on bad input)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    arguments = sys.argv[1:] if argv is None else list(argv)
    try:
        command = next((word for word in arguments if not word.startswith("-")), None)
        if command not in _COMMANDS:  # top-level help, or a bad command: no heavy import
            _light_parser().parse_args(arguments)
        args = _build_parser().parse_args(arguments)
        if args.command == "simulate":
            _simulate(args)
        elif args.command == "score":
            signal.signal(signal.SIGTERM, _terminate)
            return _score(args)
        else:
            _list(args.command)
    except (ValueError, FileNotFoundError) as error:
        print(f"leakage: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
