"""Render the ``report.json`` of ``leakage score`` as one self-contained HTML page.

The page needs nothing but itself: the styles are inline, every figure is a PNG embedded
as a ``data:`` URI, and a Content-Security-Policy forbids scripts and every fetch, so the
file can be archived, mailed or opened offline and still shows exactly what was measured.
Every string taken from the report is HTML-escaped.

A section may be absent from the report or empty (no audits were run, say); the page
then says so in one sentence. What is present must be well formed: a wrong type or a
missing field raises :class:`~leakage.errors.ConfigError` naming it, e.g.
``report.results[3].leakage``.
"""

from __future__ import annotations

import base64
import html
import json
import math
import numbers
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import to_hex

from defenses.mpc import MPC_BACKENDS, describe_mpc_backend
from leakage.checks import require_choice
from leakage.errors import ConfigError
from leakage.files import write_atomically
from leakage.quantify.report import HIDES_AT_MOST, REPORT_SCHEMA_VERSION  # the report owns its schema
from leakage.report.figures import (
    GridImage,
    PlotImage,
    RocCurve,
    SweepSeries,
    UtilityPoint,
    draw_privacy_utility,
    draw_reconstruction_grid,
    draw_roc_curves,
    draw_sweep,
)

__all__ = ["REPORT_SCHEMA_VERSION", "render_html_report", "write_html_report"]

"""The version of ``report.json`` this renderer reads."""

_RESULT_STATUSES = ("ok", "not_applicable")

_SCALE_EXPLANATION = (
    "Every attack is scored on a scale from 0 to 1. A score of 0 means the attack learned nothing beyond what "
    "the MPC baseline reveals, where only the final model is released; a score of 1 means it learned as much "
    "as it would from the target client's update sent in the clear. In between, the score is "
    "(metric &minus; baseline) / (reference &minus; baseline), clipped to [0, 1], where the metric is the "
    "attack's headline measure (cosine similarity of a recovered update, or PSNR of reconstructed inputs), "
    "the baseline is that measure under MPC and the reference is its value on the update in the clear. "
    "Headlines take the worst case over every observer and attack."
)

# No scripts, no fetches of any kind: only inline styles and data: images.
_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
)

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 2rem auto;
       max-width: 78rem; padding: 0 1rem; color: #1d1d1f; line-height: 1.45; }
h1 { margin-bottom: 0.2rem; } h2 { margin-top: 2.4rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; }
.subtitle, .empty, .muted { color: #666; }
nav ul { display: flex; flex-wrap: wrap; gap: 0.3rem 1.2rem; padding: 0; list-style: none; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ddd; padding: 0.3rem 0.55rem; text-align: left; vertical-align: top; }
th { background: #f4f4f6; }
td.heat { text-align: center; min-width: 7rem; } .score { display: block; font-size: 1.15rem; font-weight: 600; }
.who { display: block; font-size: 0.75rem; opacity: 0.85; }
td.failed, tr.failed td { background: #eee; color: #a00; }
tr.not_applicable td { color: #777; } tr.alert td { background: #fff1e6; } tr.ideal td { font-style: italic; }
.grids, .plots { display: flex; flex-wrap: wrap; gap: 1rem 2rem; align-items: flex-start; }
figure { margin: 0.5rem 0; } figcaption { font-size: 0.8rem; color: #444; max-width: 22rem; }
figure.plot figcaption { max-width: 40rem; }
img { max-width: 100%; height: auto; } .grids img { image-rendering: pixelated; border: 1px solid #ddd; }
details { margin: 0.5rem 0 1rem; } summary { cursor: pointer; color: #444; }
pre { background: #f6f8fa; padding: 0.8rem; overflow: auto; font-size: 0.8rem; }
"""


@dataclass(frozen=True)
class _Fields:
    """A mapping read from the report and where it sits (``report.results[3]``), so errors name the field."""

    where: str
    data: Mapping[str, Any]

    def name(self, key: str) -> str:
        return f"{self.where}.{key}"

    def raw(self, key: str) -> Any:
        if key not in self.data:
            raise ConfigError(f"{self.name(key)} is missing")
        return self.data[key]

    def text(self, key: str) -> str:
        value = self.raw(key)
        if not isinstance(value, str):
            raise ConfigError(f"{self.name(key)} must be a string, got {value!r}")
        return value

    def optional_text(self, key: str) -> str | None:
        return None if self.data.get(key) is None else self.text(key)

    def number(self, key: str) -> float:
        return _as_number(self.name(key), self.raw(key))

    def optional_number(self, key: str) -> float | None:
        return None if self.data.get(key) is None else self.number(key)

    def integer(self, key: str) -> int:
        value = self.raw(key)
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ConfigError(f"{self.name(key)} must be an integer, got {value!r}")
        return int(value)

    def optional_integer(self, key: str) -> int | None:
        return None if self.data.get(key) is None else self.integer(key)

    def mapping(self, key: str) -> _Fields:
        value = self.raw(key)
        if not isinstance(value, Mapping):
            raise ConfigError(f"{self.name(key)} must be a mapping (a JSON object), got {type(value).__name__}")
        return _Fields(self.name(key), value)

    def optional_mapping(self, key: str) -> _Fields | None:
        return None if self.data.get(key) is None else self.mapping(key)

    def numbers(self, key: str) -> list[float]:
        values = self.raw(key)
        if not _is_list(values):
            raise ConfigError(f"{self.name(key)} must be a list of numbers, got {type(values).__name__}")
        return [_as_number(f"{self.name(key)}[{index}]", value) for index, value in enumerate(values)]

    def rows(self, key: str) -> list[_Fields]:
        """Return the mappings listed under ``key``; an absent or null list has none."""
        values = self.data.get(key)
        if values is None:
            return []
        if not _is_list(values):
            raise ConfigError(f"{self.name(key)} must be a list, got {type(values).__name__}")
        rows = []
        for index, value in enumerate(values):
            where = f"{self.name(key)}[{index}]"
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where} must be a mapping (a JSON object), got {type(value).__name__}")
            rows.append(_Fields(where, value))
        return rows


@dataclass(frozen=True)
class _Section:
    anchor: str
    heading: str
    body: str  # HTML, every report string in it already escaped


def render_html_report(report: Mapping[str, Any]) -> str:
    """Return the report of ``leakage score`` (the dict in ``report.json``) as one self-contained HTML page.

    Sections, in order: the scale, worst-case leakage per deployment and scheme, leakage
    against the number of clients (when the report has sweeps), privacy against utility
    (when costs carry the released model's test accuracy), reconstructions, privacy
    audits, FL versus MPC, every result, then environment, timings and the spec. Reports
    written before sweeps and test accuracies existed simply lack those two sections.

    Raises:
        ConfigError: ``report["schema_version"]`` is not 1, or a field present in the
            report has the wrong type or misses a required entry; the message names it.

    >>> page = render_html_report({"schema_version": 1, "spec": {"name": "two hospitals"}})
    >>> page.startswith("<!DOCTYPE html>"), "Leakage report: two hospitals" in page
    (True, True)
    >>> "No privacy audit was run." in page
    True
    """
    root = _check_schema_version(report)
    spec = root.optional_mapping("spec")
    spec_name = spec.optional_text("name") if spec is not None else None
    title = "Leakage report" if spec_name is None else f"Leakage report: {spec_name}"
    # The tables are built first: they read every field, so a malformed report fails
    # before any (slow) figure is drawn.
    headlines, costs, results = _headline_section(root), _cost_section(root), _results_section(root)
    environment, timings, spec_section = _environment_section(root), _timings_section(root), _spec_section(spec)
    sweeps, utility, failures = _sweep_section(root), _utility_section(root), _failure_section(root)
    optional = [
        failures,
        headlines,
        sweeps,
        utility,
        _reconstruction_section(root),
        _membership_section(root),
        _audit_section(root),
        costs,
        results,
        environment,
        timings,
        spec_section,
    ]
    sections = [section for section in optional if section is not None]
    navigation = "".join(f'<li><a href="#{item.anchor}">{_escape(item.heading)}</a></li>' for item in sections)
    body = "\n".join(
        f'<section id="{item.anchor}">\n<h2>{_escape(item.heading)}</h2>\n{item.body}\n</section>' for item in sections
    )
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f'<meta http-equiv="Content-Security-Policy" content="{_CONTENT_SECURITY_POLICY}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"<header>\n<h1>{_escape(title)}</h1>\n{_written_by(root)}{_recording_line(root)}"
        f'<p id="scale">{_SCALE_EXPLANATION}</p>\n<nav><ul>{navigation}</ul></nav>\n</header>\n'
        f"{body}\n</body>\n</html>\n"
    )


def write_html_report(report: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Render ``report`` (see :func:`render_html_report`) and write it to ``path`` atomically; return the path.

    The page is rendered in memory first, then written with
    :func:`~leakage.files.write_atomically`, so a failed render or a crash never leaves
    a partial report and an existing file stays intact. Missing parent folders are created.

    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     written = write_html_report({"schema_version": 1}, pathlib.Path(folder) / "report.html")
    ...     written.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    True
    """
    return write_atomically(path, render_html_report(report))


def _check_schema_version(report: Mapping[str, Any]) -> _Fields:
    if not isinstance(report, Mapping):
        raise ConfigError(f"report must be a mapping (the JSON object of report.json), got {type(report).__name__}")
    version = report.get("schema_version")
    # bool is an int and 1.0 == 1: neither is the integer 1 that report.json holds.
    if isinstance(version, bool) or not isinstance(version, int) or version != REPORT_SCHEMA_VERSION:
        raise ConfigError(
            f"report.schema_version must be {REPORT_SCHEMA_VERSION} (the version this renderer reads), got {version!r}"
        )
    return _Fields("report", report)


def _written_by(root: _Fields) -> str:
    tool = root.optional_mapping("tool")
    if tool is None:
        return ""
    words = " ".join(part for part in (tool.optional_text("name"), tool.optional_text("version")) if part)
    return f'<p class="subtitle">Written by {_escape(words)}</p>\n' if words else ""


def _recording_line(root: _Fields) -> str:
    """One line under the title when the report scored a recording of a real run, not a simulation."""
    recording = root.optional_mapping("recording")
    if recording is None:
        return ""
    framework = recording.optional_mapping("framework")
    ran = ""
    if framework is not None:
        words = " ".join(part for part in (framework.optional_text("name"), framework.optional_text("version")) if part)
        ran = f" run by {words}" if words else ""
    canaries = ", ".join(str(int(c)) for c in recording.numbers("canaries"))
    return (
        f'<p class="subtitle" id="recording">Scored from a recording of a real run{_escape(ran)}: '
        f"{_escape(recording.text('folder'))}, scheme {_escape(recording.text('scheme'))}, "
        f"{recording.integer('rounds')} rounds; ground truth from canary clients {_escape(canaries)}</p>\n"
    )


def _headline_section(root: _Fields) -> _Section:
    heading = "Worst-case leakage per deployment and scheme"
    headlines = root.rows("headlines")
    if not headlines:
        return _Section("headlines", heading, _empty("No headline scores were recorded."))
    sizes = {row.text("name"): row for row in root.rows("deployments")}
    cells: dict[tuple[str, str], _Fields] = {}
    for row in headlines:
        key = (row.text("deployment"), row.text("scheme"))
        if key in cells:
            raise ConfigError(f"{row.where} repeats deployment {key[0]!r} with scheme {key[1]!r}; one row per pair")
        cells[key] = row
    clients = {deployment: row.integer("n_clients") for (deployment, _), row in cells.items()}
    deployments = _unique([*sizes, *clients])
    schemes = _unique([scheme for _, scheme in cells])
    rows = []
    for deployment in deployments:
        size = sizes.get(deployment)
        if size is None:
            detail = f"{clients[deployment]} clients"
        else:
            detail = f"{size.integer('n_clients')} clients, {size.integer('clients_per_round')} per round"
        header = f'<th scope="row">{_escape(deployment)}<span class="who">{_escape(detail)}</span></th>'
        row_cells = [_headline_cell(cells.get((deployment, scheme))) for scheme in schemes]
        rows.append(f"<tr>{header}{''.join(row_cells)}</tr>")
    head = "".join(f'<th scope="col">{_escape(scheme)}</th>' for scheme in schemes)
    table = f"<table>\n<tr><th>deployment</th>{head}</tr>\n" + "\n".join(rows) + "\n</table>"
    note = "<p>Each cell: the worst leakage, then the observer and attack that reached it and its raw metric.</p>"
    return _Section("headlines", heading, note + table)


def _failure_section(root: _Fields) -> _Section | None:
    """Return the jobs that failed after their retries (``--keep-going``), or ``None`` when none did."""
    if not root.data.get("failures"):
        return None
    rows = []
    for row in root.rows("failures"):
        cells = [
            row.text("kind"), row.text("deployment"), row.text("scheme"), str(row.integer("seed")),
            row.text("failure").replace("_", " "), str(row.integer("attempts")), row.text("reason"),
        ]
        rows.append('<tr class="failed">' + "".join(f"<td>{_escape(cell)}</td>" for cell in cells) + "</tr>")
    head = "".join(f"<th>{name}</th>" for name in ("job", "deployment", "scheme", "seed", "failure", "attempts", "why"))
    note = (
        "<p>These jobs have no result: they raised an error (not retried) or their worker died on every "
        "attempt. Their cells below are marked failed; every other number comes from the jobs that finished.</p>"
    )
    return _Section("failures", "Failed jobs", f"{note}<table>\n<tr>{head}</tr>\n" + "\n".join(rows) + "\n</table>")


def _headline_cell(row: _Fields | None) -> str:
    if row is None:
        return '<td class="muted">&mdash;</td>'
    if row.optional_text("status") == "failed":  # every scoring job of the cell failed (--keep-going)
        return '<td class="failed"><span class="score">failed</span><span class="who">see Failed jobs</span></td>'
    leakage = row.number("leakage")
    who = f"{row.text('observer')} · {row.text('attack')}"
    measured = f"{row.text('metric')} = {_general(row.number('value'))}"
    if row.optional_text("status") == "not_applicable":  # no observer could run any attack
        who, measured = "no attack applies", "nothing beyond the released model"
    return (
        f'<td class="heat" style="{_heat_style(leakage)}"><span class="score">{_fixed(leakage, 2)}</span>'
        f'<span class="who">{_escape(who)}</span><span class="who">{_escape(measured)}</span></td>'
    )


def _sweep_section(root: _Fields) -> _Section | None:
    """Return leakage against the number of clients, one figure per sweep; ``None`` when the report has no sweeps.

    Deployments of different sizes differ in more than their size, so without a sweep
    the page draws no line between them: the headline table compares them instead.
    """
    if "sweeps" not in root.data:
        return None
    heading = "Leakage versus number of clients"
    sweeps: dict[str, list[_SweepEntry]] = {}
    for entry in root.rows("sweeps"):  # every entry is read before anything is drawn
        sweeps.setdefault(entry.text("name"), []).append(_read_sweep_entry(entry))
    if not sweeps:
        return _Section("clients", heading, _empty("No sweep over the number of clients was run."))
    intro = (
        "<p>Each sweep runs one scheme at growing numbers of clients and reports means over seeds. The first "
        "panel shows each observer's leakage; at or below the dotted line "
        f"({HIDES_AT_MOST}) its estimate of the target's update is no better than the released model's "
        "direction. The other panels show the attack's raw metric under the scheme (solid) against the MPC "
        "baseline at the same size (dashed).</p>"
    )
    return _Section("clients", heading, intro + "".join(_sweep(name, entries) for name, entries in sweeps.items()))


@dataclass(frozen=True)
class _SweepEntry:
    """One observer's curve of a sweep, read and checked, with the rows of its table."""

    scheme: str
    observer: str
    curve: SweepSeries
    hides_from: int | None
    rows: list[list[str]]


def _read_sweep_entry(entry: _Fields) -> _SweepEntry:
    scheme, observer, attack, metric = (entry.text(key) for key in ("scheme", "observer", "attack", "metric"))
    points = entry.rows("points")
    if not points:
        raise ConfigError(f"{entry.name('points')} must list at least one point")
    counts = [point.integer("n_clients") for point in points]
    if counts[0] < 1 or any(later <= earlier for earlier, later in zip(counts, counts[1:], strict=False)):
        raise ConfigError(f"{entry.name('points')} must be sorted by n_clients >= 1 without repeats, got {counts}")
    leakage = [point.number("leakage") for point in points]
    value, baseline = [point.number("value") for point in points], [point.number("baseline") for point in points]
    rows = [
        [
            _escape(observer), _escape(attack), str(count), str(point.integer("clients_per_round")),
            f'<span style="{_heat_style(leak)}">&nbsp;{_fixed(leak, 2)}&nbsp;</span>', _escape(metric),
            _general(measured), _general(base), _percent(point.optional_number("test_accuracy")),
        ]
        for point, count, leak, measured, base in zip(points, counts, leakage, value, baseline, strict=True)
    ]
    curve = SweepSeries(f"{observer} ({attack})", metric, counts, leakage, value, baseline)
    return _SweepEntry(scheme, observer, curve, entry.optional_integer("hides_from"), rows)


def _sweep(name: str, entries: Sequence[_SweepEntry]) -> str:
    schemes = ", ".join(_unique(entry.scheme for entry in entries))
    title = f"{name}: {schemes}"
    image = draw_sweep(title, [entry.curve for entry in entries], hiding_leakage=HIDES_AT_MOST)
    findings = "".join(f"<li>{_escape(_hiding_sentence(entry))}</li>" for entry in entries)
    headers = [
        "observer", "attack", "clients", "per round", "leakage", "metric", "value", "MPC baseline",
        "test accuracy",
    ]
    table = _table(headers, [row for entry in entries for row in entry.rows])
    return (
        f"<h3>{_escape(title)}</h3>\n<ul>{findings}</ul>\n"
        f"{_plot(image, f'Leakage of each observer against the number of clients: {title}')}\n"
        f"<details><summary>The numbers behind the figure</summary>{table}</details>\n"
    )


def _hiding_sentence(entry: _SweepEntry) -> str:
    """Return "<scheme>: a <observer>'s estimate is no better than the released model's direction from N clients"."""
    article = "an" if entry.observer[:1].lower() in "aeiou" else "a"
    where = "at no swept size" if entry.hides_from is None else f"from {entry.hides_from} clients"
    estimate = f"{article} {entry.observer}'s estimate is no better than the released model's direction"
    return f"{entry.scheme}: {estimate} {where}"


def _utility_section(root: _Fields) -> _Section | None:
    """Return each scheme's mean leakage against its released model's test accuracy; ``None`` for older reports."""
    costs = root.rows("costs")
    if not any("test_accuracy" in row.data for row in costs):
        return None
    heading = "Privacy against utility"
    measured: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    for row in costs:
        accuracy = row.optional_number("test_accuracy")
        if accuracy is None or row.data.get("sweep") is not None:  # a sweep's sizes have their own section
            continue
        leakages, accuracies = measured.setdefault(row.text("deployment"), {}).setdefault(row.text("scheme"), ([], []))
        leakages.append(row.number("leakage"))
        accuracies.append(accuracy)
    if not measured:
        return _Section("utility", heading, _empty("No released model's test accuracy was measured."))
    figures, rows = [], []
    for deployment, schemes in measured.items():
        points = [
            UtilityPoint(scheme, float(np.mean(leakages)), float(np.mean(accuracies)))
            for scheme, (leakages, accuracies) in schemes.items()
        ]
        alt = f"Mean leakage against test accuracy of each scheme: {deployment}"
        figures.append(_plot(draw_privacy_utility(deployment, points), alt))
        rows += [
            [_escape(deployment), _escape(point.label), _fixed(point.leakage, 2), _percent(point.test_accuracy),
             str(len(schemes[point.label][0]))]
            for point in points
        ]
    intro = (
        "<p>What each scheme gives up for its privacy: the mean leakage of its worst-case observer (x) against "
        "the test accuracy of the model it released (y), means over seeds. Up and to the left is better.</p>"
    )
    table = _table(["deployment", "scheme", "mean leakage", "mean test accuracy", "seeds"], rows)
    return _Section("utility", heading, f'{intro}<div class="plots">{"".join(figures)}</div>\n{table}')


def _reconstruction_section(root: _Fields) -> _Section:
    heading = "Reconstructions"
    figures: dict[str, list[str]] = {}
    for row in root.rows("results"):
        if row.data.get("images") is not None:
            figures.setdefault(row.text("scheme"), []).append(_reconstruction_figure(row))
    if not figures:
        return _Section("reconstructions", heading, _empty("No attack returned images to show."))
    body = "<p>In each grid the originals are on top and the attack's reconstructions below them.</p>" + "".join(
        f'<h3>{_escape(scheme)}</h3>\n<div class="grids">{"".join(items)}</div>\n' for scheme, items in figures.items()
    )
    return _Section("reconstructions", heading, body)


def _reconstruction_figure(row: _Fields) -> str:
    images = row.mapping("images")
    value_range = images.numbers("value_range")
    if len(value_range) != 2:
        raise ConfigError(f"{images.name('value_range')} must be [low, high], got {value_range!r}")
    try:
        grid = draw_reconstruction_grid(
            _pixels(images, "original"), _pixels(images, "reconstruction"), value_range=(value_range[0], value_range[1])
        )
    except ConfigError as error:
        raise ConfigError(f"{images.where}: {error}") from None
    names = [row.text(key) for key in ("deployment", "scheme", "observer", "attack")]
    title = " · ".join([*names, f"seed {row.integer('seed')}"])
    metrics = row.optional_mapping("metrics")
    psnr = None if metrics is None else metrics.optional_number("psnr")
    quality = "PSNR not measured" if psnr is None else f"PSNR {_fixed(psnr, 1)} dB"
    caption = f"{_escape(title)}<br>{quality}, leakage {_fixed(row.number('leakage'), 2)}"
    image = _grid_image(grid, f"Originals above reconstructions: {title}")
    return f"<figure>{image}<figcaption>{caption}</figcaption></figure>"


def _pixels(images: _Fields, key: str) -> np.ndarray[tuple[int, ...], np.dtype[np.float64]]:
    try:
        return np.asarray(images.raw(key), dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"{images.name(key)} must be nested lists of numbers shaped [B, C, H, W]") from None


def _membership_section(root: _Fields) -> _Section | None:
    """Membership inference per observer: a log-log ROC panel per deployment and the low-FPR figures."""
    heading = "Membership inference"
    scored = [row for row in root.rows("results") if row.optional_mapping("roc") is not None]
    if not scored:
        return None
    panels: dict[str, _RocPanel] = {}
    rows = []
    for row in scored:
        deployment, scheme = row.text("deployment"), row.text("scheme")
        roc = row.optional_mapping("roc")
        assert roc is not None
        false_positives, true_positives = roc.numbers("fpr"), roc.numbers("tpr")
        if len(false_positives) != len(true_positives) or not false_positives:
            raise ConfigError(f"{roc.where}.fpr and .tpr must be non-empty lists of one length")
        metrics = row.optional_mapping("metrics")
        non_members = int(metrics.number("non_members")) if metrics is not None and "non_members" in metrics.data else 2
        who = f"{row.text('observer')} via {row.text('attack')}"
        panels.setdefault(deployment, _RocPanel()).add(
            scheme, who, false_positives, true_positives, row.number("value"), trials=non_members
        )
        figures = []
        for key in ("0.0001", "0.001", "0.01"):
            tpr = metrics.data.get(f"tpr@{key}") if metrics is not None else None
            fpr = metrics.data.get(f"fpr@{key}") if metrics is not None else None
            figures.append("" if tpr is None or fpr is None else f"{_fixed(float(tpr), 3)} (FPR {float(fpr):.2g})")
        members = metrics.data.get("members") if metrics is not None else None
        rows.append([
            _escape(deployment), _escape(scheme), _escape(row.text("observer")), _escape(row.text("attack")),
            _fixed(row.number("value"), 3), _fixed(row.number("baseline"), 3), *figures,
            "" if members is None else f"{int(float(members))} / {non_members}",
        ])
    intro = (
        "<p>How well each observer tells the target's training records from records no client trained on. "
        "The curves are on log-log axes, where what matters shows: the true positive rate at low false "
        "positive rates. The released model's AUC is what <code>mpc</code> reveals, so it is every "
        "scheme's baseline; a TPR at a false positive rate below one over the non-members is not "
        "measurable, hence the realised rate beside each figure.</p>"
    )
    figure = '<div class="plots">' + "".join(
        _membership_figure(deployment, panel) for deployment, panel in panels.items()
    ) + "</div>"
    headers = [
        "deployment", "scheme", "observer", "attack", "AUC", "released model's AUC", "TPR at 0.01% FPR",
        "TPR at 0.1% FPR", "TPR at 1% FPR", "members / non-members",
    ]
    return _Section("membership", heading, intro + figure + _table(headers, rows, [None] * len(rows)))


def _membership_figure(deployment: str, panel: _RocPanel) -> str:
    floor = panel.floor()
    caption = (
        f"{_escape(deployment)}: membership ROC curves on log-log axes; a false positive rate of 0 is drawn at "
        f"{floor:.3g} (one non-member in {panel.trials}). Curves that coincide are drawn once and named together."
    )
    image = draw_roc_curves(deployment, panel.roc_curves(), false_positive_floor=floor, log_true_positives=True)
    return _plot(image, f"Membership ROC curves: {deployment}", caption)


def _audit_section(root: _Fields) -> _Section:
    heading = "Privacy audits"
    audits = root.rows("audits")
    if not audits:
        return _Section("audits", heading, _empty("No privacy audit was run."))
    keys = [(row.text("deployment"), row.text("scheme"), row.text("observer")) for row in audits]
    repeated = Counter(keys)
    panels: dict[str, _RocPanel] = {}
    rows, classes = [], []
    for row, key in zip(audits, keys, strict=True):
        deployment, scheme, observer = key
        who = observer + (f" (seed {row.integer('seed')})" if repeated[key] > 1 else "")
        auc = row.optional_number("auc")
        roc = row.optional_mapping("roc")
        if roc is not None:
            false_positives, true_positives = roc.numbers("fpr"), roc.numbers("tpr")
            if len(false_positives) != len(true_positives) or not false_positives:
                raise ConfigError(f"{roc.where}.fpr and .tpr must be non-empty lists of one length")
            panel = panels.setdefault(deployment, _RocPanel())
            panel.add(scheme, who, false_positives, true_positives, auc, trials=row.integer("trials"))
        bound, accountant = row.number("epsilon_lower_bound"), row.optional_number("accountant_epsilon")
        exceeds = accountant is not None and bound > accountant
        classes.append("alert" if exceeds else None)
        rows.append([
            _escape(deployment), str(row.integer("n_clients")), _escape(scheme), _escape(observer),
            str(row.integer("seed")), str(row.integer("trials")), _fixed(row.number("tpr"), 3),
            _fixed(row.number("fpr"), 3), _fixed(bound, 2) + (" (above the accountant's &epsilon;)" if exceeds else ""),
            f"{_fixed(100 * row.number('confidence'), 0)}%", _fixed(accountant, 2), _fixed(auc, 3),
        ])
    intro = (
        "<p>Each audit plays a distinguishing game: over many trials the observer guesses whether the target "
        "took part. Its true and false positive rates bound the privacy loss from below; with the stated "
        "confidence no mechanism with a smaller &epsilon; could produce them. A bound above the accountant's "
        "&epsilon; means the accounting, or its implementation, is wrong.</p>"
    )
    if panels:
        figure = '<div class="plots">' + "".join(
            _roc_figure(deployment, panel) for deployment, panel in panels.items()
        ) + "</div>"
    else:
        figure = _empty("The audits recorded no ROC curves.")
    headers = [
        "deployment", "clients", "scheme", "observer", "seed", "trials", "TPR", "FPR",
        "empirical &epsilon; lower bound", "confidence", "accountant &epsilon;", "AUC",
    ]
    return _Section("audits", heading, intro + figure + _table(headers, rows, classes))


def _mpc_note(row: _Fields) -> str:
    """Return how MPC ran for one costs row: the description the report recorded, else the backend's own."""
    backend = row.optional_text("mpc_backend")
    if backend is None:
        return ""
    recorded = row.optional_text("mpc_backend_description")
    if recorded is not None:
        return recorded
    # A report written by another installation may name a backend this one lacks.
    return describe_mpc_backend(backend) if backend in MPC_BACKENDS else f"MPC backend: {backend}"


class _RocPanel:
    """One deployment's ROC curves; audits whose curves coincide share one curve and one legend entry."""

    def __init__(self) -> None:
        self.curves: dict[tuple[tuple[float, ...], tuple[float, ...]], dict[str, list[str]]] = {}
        self.aucs: dict[tuple[tuple[float, ...], tuple[float, ...]], float | None] = {}
        self.trials = 0
        self.smallest_rate = 1.0  # the smallest false positive rate above 0

    def add(
        self, scheme: str, who: str, fpr: list[float], tpr: list[float], auc: float | None, *, trials: int
    ) -> None:
        key = (tuple(fpr), tuple(tpr))
        self.curves.setdefault(key, {}).setdefault(scheme, []).append(who)
        self.aucs.setdefault(key, auc)
        self.trials = max(self.trials, trials)
        self.smallest_rate = min([self.smallest_rate, *(rate for rate in fpr if rate > 0)])

    def floor(self) -> float:
        """Where a false positive rate of 0 is drawn: ``1 / trials``, or lower if a measured rate is lower."""
        floor = 1.0 / max(self.trials, 2)
        return floor if floor < self.smallest_rate else self.smallest_rate / 2

    def roc_curves(self) -> list[RocCurve]:
        curves = []
        for key, observers in self.curves.items():
            label = "; ".join(f"{scheme}: {', '.join(who)}" for scheme, who in observers.items())
            auc = self.aucs[key]
            curves.append(RocCurve(label if auc is None else f"{label} (AUC {auc:.2f})", key[0], key[1]))
        return curves


def _roc_figure(deployment: str, panel: _RocPanel) -> str:
    floor = panel.floor()
    reason = (
        f"1/{panel.trials}: one false positive in {panel.trials} trials, below any rate the audit can measure"
        if floor == 1.0 / max(panel.trials, 2)
        else "half the smallest measured rate"
    )
    caption = (
        f"{_escape(deployment)}: a false positive rate of 0 is drawn at {floor:.3g} ({reason}), since a "
        "logarithmic axis cannot show 0. Curves that coincide are drawn once and named together, by scheme "
        "and then observer."
    )
    image = draw_roc_curves(deployment, panel.roc_curves(), false_positive_floor=floor)
    return _plot(image, f"ROC curves of the audits: {deployment}", caption)


def _cost_section(root: _Fields) -> _Section:
    heading = "Federated learning versus MPC"
    costs = root.rows("costs")
    if not costs:
        return _Section("costs", heading, _empty("No costs were measured."))
    has_accuracy = any("test_accuracy" in row.data for row in costs)
    rows, classes = [], []
    for row in costs:
        backend = row.optional_text("mpc_backend")
        note = _mpc_note(row)
        classes.append("ideal" if backend == "ideal" else None)
        leakage = row.number("leakage")
        rows.append([
            _escape(row.text("deployment")), str(row.integer("n_clients")), _escape(row.text("scheme")),
            f'<span style="{_heat_style(leakage)}">&nbsp;{_fixed(leakage, 2)}&nbsp;</span>',
            _general(row.number("seconds")), _bytes(row.optional_number("upload_bytes_per_client")),
            str(row.integer("rounds")), _escape(_truth_note(row)), _escape(note),
        ])
        if has_accuracy:
            rows[-1].insert(4, _percent(row.optional_number("test_accuracy")))
    intro = "<p>What each scheme cost to run and how much it leaked; MPC training reveals only the final model.</p>"
    intro += _data_note(costs[0])
    headers = [
        "deployment", "clients", "scheme", "leakage", "seconds", "upload per client", "rounds", "truth kept", "notes",
    ]
    if has_accuracy:
        headers.insert(4, "test accuracy")
    return _Section("costs", heading, intro + _table(headers, rows, classes))


def _truth_note(row: _Fields) -> str:
    """``"2 of 40 updates (0.1 MB), record_truth=targets"``: the ground truth a run held."""
    kept = row.optional_mapping("truth_kept")
    if kept is None:
        return ""
    size = kept.number("update_bytes") / 2**20
    return (
        f"{kept.integer('updates_kept')} of {kept.integer('updates_sampled')} updates ({size:.1f} MB), "
        f"record_truth={kept.text('record_truth')}"
    )


def _data_note(row: _Fields) -> str:
    """One sentence on the training data and the normalisation computed from it."""
    data = row.optional_mapping("data")
    if data is None:
        return ""
    return (
        f"<p>Data: {_escape(data.text('dataset'))}, {data.integer('training_samples')} training and "
        f"{data.integer('test_samples')} held-out samples; normalisation computed from the data: "
        f"{_escape(json.dumps(data.data.get('normalisation')))}.</p>"
    )


def _results_section(root: _Fields) -> _Section:
    heading = "All results"
    results = root.rows("results")
    if not results:
        return _Section("results", heading, _empty("No attack results were recorded."))
    rows, classes = [], []
    for row in results:
        status = row.text("status")
        require_choice(row.name("status"), status, _RESULT_STATUSES)
        classes.append(status)
        metric = row.optional_text("metric")
        metrics = row.optional_mapping("metrics")
        measured = {} if metrics is None else {key: metrics.number(key) for key in metrics.data}
        others = ", ".join(f"{key} = {_general(value)}" for key, value in measured.items() if key != metric)
        rows.append([
            _escape(row.text("deployment")), str(row.integer("n_clients")), _escape(row.text("scheme")),
            _escape(row.text("observer")), _escape(row.text("attack")), str(row.integer("seed")), _escape(status),
            _escape(metric or ""), _general(measured.get(metric) if metric else None),
            _general(row.optional_number("baseline")), _general(row.optional_number("reference")),
            _fixed(row.number("leakage"), 2), _escape(others), _escape(row.optional_text("note") or ""),
        ])
    headers = [
        "deployment", "clients", "scheme", "observer", "attack", "seed", "status", "metric", "value",
        "baseline", "reference", "leakage", "other metrics", "note",
    ]
    return _Section("results", heading, _table(headers, rows, classes))


def _environment_section(root: _Fields) -> _Section:
    environment = root.optional_mapping("environment")
    if environment is None or not environment.data:
        return _Section("environment", "Environment", _empty("No environment was recorded."))
    rows = [
        [_escape(str(key)), _escape(_plain(environment.name(str(key)), value))]
        for key, value in environment.data.items()
    ]
    return _Section("environment", "Environment", _table(["name", "value"], rows))


def _timings_section(root: _Fields) -> _Section:
    timings = root.optional_mapping("timings")
    if timings is None or not timings.data:
        return _Section("timings", "Timings", _empty("No timings were recorded."))
    seconds = {str(stage): timings.number(str(stage)) for stage in timings.data}
    total = seconds.get("total")
    rows = [
        [_escape(stage), _general(value), "" if not total or stage == "total" else f"{_fixed(100 * value / total, 0)}%"]
        for stage, value in seconds.items()
    ]
    return _Section("timings", "Timings", _table(["stage", "seconds", "share of total"], rows))


def _spec_section(spec: _Fields | None) -> _Section:
    if spec is None:
        return _Section("spec", "Spec", _empty("No spec was recorded."))
    try:
        text = json.dumps(spec.data, indent=2, ensure_ascii=False)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{spec.where} must be plain JSON data: {error}") from None
    return _Section("spec", "Spec", f"<pre>{_escape(text)}</pre>")


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], classes: Sequence[str | None] = ()) -> str:
    """Return an HTML table; ``headers`` and the cells are HTML already, ``classes`` style whole rows."""
    head = "".join(f'<th scope="col">{header}</th>' for header in headers)
    lines = []
    for index, cells in enumerate(rows):
        row_class = classes[index] if index < len(classes) else None
        opening = "<tr>" if row_class is None else f'<tr class="{_escape(row_class)}">'
        lines.append(opening + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    return f"<table>\n<tr>{head}</tr>\n" + "\n".join(lines) + "\n</table>"


def _plot(image: PlotImage, alt: str, caption: str = "") -> str:
    """Return a plot as a figure; ``data-axes-width`` is its narrowest axes box in the PNG's own pixels."""
    attributes = f'data-axes-width="{min(image.axes_widths, default=0)}"'
    figcaption = f"<figcaption>{caption}</figcaption>" if caption else ""
    return f'<figure class="plot">{_img(image.png, image.width, image.height, alt, attributes)}{figcaption}</figure>'


def _grid_image(image: GridImage, alt: str) -> str:
    """Return a reconstruction grid's image; ``data-tile-width`` is one enlarged image's width in its pixels."""
    return _img(image.png, image.width, image.height, alt, f'data-tile-width="{image.tile_width}"')


def _img(png: bytes, width: int, height: int, alt: str, attributes: str) -> str:
    # width and height are the PNG's own: the page reserves the space before decoding and shows it 1:1.
    source = base64.b64encode(png).decode("ascii")
    return (
        f'<img src="data:image/png;base64,{source}" width="{width}" height="{height}" {attributes} '
        f'alt="{_escape(alt)}">'
    )


def _heat_style(leakage: float) -> str:
    """Return the inline style that shades a cell from white (leakage 0) to deep red (leakage 1)."""
    if not math.isfinite(leakage):
        return "background-color: #dddddd"
    share = min(max(leakage, 0.0), 1.0)
    # Stop short of the colormap's darkest red so the text on it stays readable.
    background = to_hex(colormaps["Reds"](0.85 * share))
    return f"background-color: {background}; color: {'#ffffff' if share > 0.55 else '#1d1d1f'}"


def _escape(text: str) -> str:
    return html.escape(text, quote=True)


def _empty(sentence: str) -> str:
    return f'<p class="empty">{_escape(sentence)}</p>'


def _fixed(value: float | None, digits: int) -> str:
    if value is None:
        return "&mdash;"
    return f"{value:.{digits}f}" if math.isfinite(value) else str(value)


def _general(value: float | None) -> str:
    return "&mdash;" if value is None else f"{value:.4g}"


def _percent(fraction: float | None) -> str:
    return "&mdash;" if fraction is None else f"{_fixed(100 * fraction, 1)}%"


def _bytes(value: float | None) -> str:
    if value is None:
        return "not measured"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(value) >= size:
            return f"{value:,.0f} B ({value / size:.1f} {unit})"
    return f"{value:,.0f} B"


def _plain(name: str, value: object) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{name} must be plain JSON data: {error}") from None


def _as_number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    return float(value)


def _is_list(value: object) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def _unique(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))
