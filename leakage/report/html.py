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
from leakage.errors import ConfigError
from leakage.files import write_atomically
from leakage.report.figures import (
    RocCurve,
    leakage_versus_clients_png,
    reconstruction_grid_png,
    roc_curves_png,
)

__all__ = ["REPORT_SCHEMA_VERSION", "render_html_report", "write_html_report"]

REPORT_SCHEMA_VERSION = 1
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
tr.not_applicable td { color: #777; } tr.alert td { background: #fff1e6; } tr.ideal td { font-style: italic; }
.grids { display: flex; flex-wrap: wrap; gap: 1rem; }
figure { margin: 0.5rem 0; } figcaption { font-size: 0.8rem; color: #444; max-width: 22rem; }
img { max-width: 100%; height: auto; } .grids img { image-rendering: pixelated; border: 1px solid #ddd; }
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
    against the number of clients, reconstructions, privacy audits, FL versus MPC, every
    result, then environment, timings and the spec.

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
    sections = [
        headlines,
        _clients_section(root),
        _reconstruction_section(root),
        _audit_section(root),
        costs,
        results,
        environment,
        timings,
        spec_section,
    ]
    navigation = "".join(f'<li><a href="#{item.anchor}">{_escape(item.heading)}</a></li>' for item in sections)
    body = "\n".join(
        f'<section id="{item.anchor}">\n<h2>{_escape(item.heading)}</h2>\n{item.body}\n</section>' for item in sections
    )
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f'<meta http-equiv="Content-Security-Policy" content="{_CONTENT_SECURITY_POLICY}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"<header>\n<h1>{_escape(title)}</h1>\n{_written_by(root)}"
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


def _headline_cell(row: _Fields | None) -> str:
    if row is None:
        return '<td class="muted">&mdash;</td>'
    leakage = row.number("leakage")
    who = f"{row.text('observer')} · {row.text('attack')}"
    measured = f"{row.text('metric')} = {_general(row.number('value'))}"
    if row.optional_text("status") == "not_applicable":  # no observer could run any attack
        who, measured = "no attack applies", "nothing beyond the released model"
    return (
        f'<td class="heat" style="{_heat_style(leakage)}"><span class="score">{_fixed(leakage, 2)}</span>'
        f'<span class="who">{_escape(who)}</span><span class="who">{_escape(measured)}</span></td>'
    )


def _clients_section(root: _Fields) -> _Section:
    heading = "Leakage versus number of clients"
    points: dict[str, list[tuple[int, float]]] = {}
    for row in root.rows("headlines"):
        points.setdefault(row.text("scheme"), []).append((row.integer("n_clients"), row.number("leakage")))
    if not points:
        return _Section("clients", heading, _empty("No headline scores, so there is nothing to plot."))
    alt = "Headline leakage of each scheme against the number of clients"
    return _Section("clients", heading, f"<figure>{_image(leakage_versus_clients_png(points), alt)}</figure>")


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
        png = reconstruction_grid_png(
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
    image = _image(png, f"Originals above reconstructions: {title}")
    return f"<figure>{image}<figcaption>{caption}</figcaption></figure>"


def _pixels(images: _Fields, key: str) -> np.ndarray[tuple[int, ...], np.dtype[np.float64]]:
    try:
        return np.asarray(images.raw(key), dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"{images.name(key)} must be nested lists of numbers shaped [B, C, H, W]") from None


def _audit_section(root: _Fields) -> _Section:
    heading = "Privacy audits"
    audits = root.rows("audits")
    if not audits:
        return _Section("audits", heading, _empty("No privacy audit was run."))
    keys = [(row.text("deployment"), row.text("scheme"), row.text("observer")) for row in audits]
    repeated = Counter(keys)
    panels: dict[str, list[RocCurve]] = {}
    rows, classes = [], []
    for row, key in zip(audits, keys, strict=True):
        deployment, scheme, observer = key
        label = f"{scheme} / {observer}" + (f" / seed {row.integer('seed')}" if repeated[key] > 1 else "")
        auc = row.optional_number("auc")
        roc = row.optional_mapping("roc")
        if roc is not None:
            false_positives, true_positives = roc.numbers("fpr"), roc.numbers("tpr")
            if len(false_positives) != len(true_positives) or not false_positives:
                raise ConfigError(f"{roc.where}.fpr and .tpr must be non-empty lists of one length")
            curve_label = label if auc is None else f"{label} (AUC {_fixed(auc, 2)})"
            panels.setdefault(deployment, []).append(RocCurve(curve_label, false_positives, true_positives))
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
    alt = "ROC curves of the audits, one panel per deployment"
    if panels:
        figure = f"<figure>{_image(roc_curves_png(panels), alt)}</figure>"
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


def _cost_section(root: _Fields) -> _Section:
    heading = "Federated learning versus MPC"
    costs = root.rows("costs")
    if not costs:
        return _Section("costs", heading, _empty("No costs were measured."))
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
            str(row.integer("rounds")), _escape(note),
        ])
    intro = "<p>What each scheme cost to run and how much it leaked; MPC training reveals only the final model.</p>"
    headers = ["deployment", "clients", "scheme", "leakage", "seconds", "upload per client", "rounds", "notes"]
    return _Section("costs", heading, intro + _table(headers, rows, classes))


def _results_section(root: _Fields) -> _Section:
    heading = "All results"
    results = root.rows("results")
    if not results:
        return _Section("results", heading, _empty("No attack results were recorded."))
    rows, classes = [], []
    for row in results:
        status = row.text("status")
        if status not in _RESULT_STATUSES:
            raise ConfigError(f"{row.name('status')} must be one of {list(_RESULT_STATUSES)}, got {status!r}")
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


def _image(png: bytes, alt: str) -> str:
    return f'<img src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}" alt="{_escape(alt)}">'


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
