"""Tests for the self-contained HTML report: figures, escaping, empty sections, atomic writes, a real browser."""

from __future__ import annotations

import base64
import copy
import html
import io
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from leakage.errors import ConfigError
from leakage.report import MIN_AXES_PIXELS, MIN_TILE_PIXELS, render_html_report, write_html_report

SCHEMES = ("plain", "secagg", "secagg+", "he", "dp", "mpc")
DEPLOYMENTS = (("cross-organisation", 2), ("cross-device", 100))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DATA_PNG = "data:image/png;base64,"
BROWSER_TIMEOUT_SECONDS = 90
SCORE_TIMEOUT_SECONDS = 600


def _images(shape: tuple[int, int, int, int], seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    original = rng.random(shape)
    reconstruction = np.clip(original + 0.1 * rng.standard_normal(shape), 0.0, 1.0)
    return {"original": original.tolist(), "reconstruction": reconstruction.tolist(), "value_range": [0.0, 1.0]}


def _leakage(scheme: str, n_clients: int) -> float:
    """Plain leaks everything; aggregation hides an update only among many clients; DP and MPC leak little."""
    if scheme in ("secagg", "secagg+", "he"):
        return 1.0 if n_clients == 2 else 0.02
    return {"plain": 1.0, "dp": 0.1, "mpc": 0.0}[scheme]


def _results() -> list[dict[str, Any]]:
    rows = []
    for deployment, n_clients in DEPLOYMENTS:
        for scheme in SCHEMES:
            leakage = _leakage(scheme, n_clients)
            applicable = scheme != "mpc"
            rows.append({
                "deployment": deployment, "n_clients": n_clients, "scheme": scheme, "observer": "participant",
                "attack": "round_difference", "seed": 0, "status": "ok" if applicable else "not_applicable",
                "note": None if applicable else "under MPC a participant sees only the final model",
                "metric": "update_cosine",
                "metrics": {"update_cosine": 0.37 + 0.63 * leakage, "update_relative_error": 1e-7 + 1 - leakage},
                "baseline": 0.37, "reference": 1.0, "leakage": leakage if applicable else 0.0, "images": None,
            })
            rows.append({
                "deployment": deployment, "n_clients": n_clients, "scheme": scheme, "observer": "server",
                "attack": "dlg", "seed": 0, "status": "ok", "note": None, "metric": "psnr",
                "metrics": {"psnr": 12.0 + 30.0 * leakage, "ssim": leakage, "label_accuracy": 1.0},
                "baseline": 12.0, "reference": 42.0, "leakage": leakage, "images": None,
            })
    rows[1]["images"] = _images((1, 1, 8, 8), seed=1)  # cross-organisation, plain, dlg
    rows[3]["images"] = _images((1, 3, 32, 32), seed=2)  # cross-organisation, secagg, dlg
    rows[15]["images"] = _images((2, 1, 8, 8), seed=3)  # cross-device, plain, dlg
    return rows


def _headlines(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    worst: dict[tuple[str, str], dict[str, Any]] = {}
    for row in results:
        key = (row["deployment"], row["scheme"])
        if key not in worst or row["leakage"] > worst[key]["leakage"]:
            worst[key] = row
    return [
        {"deployment": row["deployment"], "n_clients": row["n_clients"], "scheme": row["scheme"],
         "leakage": row["leakage"], "observer": row["observer"], "attack": row["attack"], "metric": row["metric"],
         "value": row["metrics"][row["metric"]]}
        for row in worst.values()
    ]


def _audits() -> list[dict[str, Any]]:
    audits = []
    for deployment, n_clients in DEPLOYMENTS:
        for scheme, tpr, fpr, bound, accountant in (("plain", 0.95, 0.05, 2.4, None), ("dp", 0.6, 0.4, 0.3, 3.1)):
            audits.append({
                "deployment": deployment, "n_clients": n_clients, "scheme": scheme, "observer": "server", "seed": 0,
                "trials": 64, "tpr": tpr, "fpr": fpr, "epsilon_lower_bound": bound, "confidence": 0.95,
                "accountant_epsilon": accountant,
                "roc": {"fpr": [0.0, fpr, 1.0], "tpr": [0.0, tpr, 1.0]}, "auc": 0.5 + (tpr - fpr) / 2,
            })
    return audits


def _costs() -> list[dict[str, Any]]:
    return [
        {"deployment": deployment, "n_clients": n_clients, "scheme": scheme, "seconds": 0.8,
         "upload_bytes_per_client": None if scheme == "mpc" else 12345.0, "rounds": 2,
         "leakage": _leakage(scheme, n_clients), "mpc_backend": "ideal" if scheme == "mpc" else None,
         "test_accuracy": 0.62 if scheme == "dp" else 0.91}
        for deployment, n_clients in DEPLOYMENTS
        for scheme in SCHEMES
    ]


SWEPT_CLIENTS = (2, 3, 5, 10, 20, 50, 100)


def _sweep_points(leakages: list[float], metric: str) -> list[dict[str, Any]]:
    baseline = 0.37 if metric == "update_cosine" else 12.0
    span = 0.63 if metric == "update_cosine" else 30.0
    return [
        {"n_clients": count, "clients_per_round": count, "leakage": leakage, "value": baseline + span * leakage,
         "baseline": baseline, "test_accuracy": 0.9}
        for count, leakage in zip(SWEPT_CLIENTS, leakages, strict=True)
    ]


def _sweeps() -> list[dict[str, Any]]:
    """One secagg sweep: the server's aggregate hides the target from 10 clients, a participant's never."""
    server = [1.0, 0.6, 0.4, 0.2, 0.1, 0.05, 0.02]
    participant = [1.0, 1.0, 0.9, 0.8, 0.7, 0.5, 0.3]
    return [
        {"name": "secagg sweep", "scheme": "secagg", "observer": "server", "attack": "aggregate",
         "metric": "update_cosine", "points": _sweep_points(server, "update_cosine"), "hides_from": 10},
        {"name": "secagg sweep", "scheme": "secagg", "observer": "eavesdropper", "attack": "aggregate",
         "metric": "update_cosine", "points": _sweep_points(server, "update_cosine"), "hides_from": 10},
        {"name": "secagg sweep", "scheme": "secagg", "observer": "participant", "attack": "round_difference",
         "metric": "update_cosine", "points": _sweep_points(participant, "update_cosine"), "hides_from": None},
    ]


def _report() -> dict[str, Any]:
    """A report.json as ``leakage score`` writes it: two deployments, six schemes, images, audits, costs, a sweep."""
    results = _results()
    return {
        "schema_version": 1,
        "tool": {"name": "leakage", "version": "0.1.0"},
        "spec": {
            "name": "digits <script>alert('x')</script> & co",
            "task": {"dataset": "digits", "model": "mlp", "rounds": 2},
            "deployments": [{"name": name, "n_clients": n, "clients_per_round": n} for name, n in DEPLOYMENTS],
            "schemes": list(SCHEMES),
        },
        "environment": {"python": "3.11.9", "torch": "2.4.0", "platform": "Linux-6.1-x86_64"},
        "timings": {"simulate": 1.2, "attacks": 3.4, "audit": 2.0, "report": 0.1, "total": 7.0},
        "deployments": [{"name": name, "n_clients": n, "clients_per_round": n} for name, n in DEPLOYMENTS],
        "results": results,
        "headlines": _headlines(results),
        "audits": _audits(),
        "costs": _costs(),
        "sweeps": _sweeps(),
    }


def _old_report() -> dict[str, Any]:
    """A report.json from before sweeps and test accuracies."""
    report = _report()
    del report["sweeps"]
    for row in report["costs"]:
        del row["test_accuracy"]
    return report


class _Elements(HTMLParser):
    """Collects every start tag with its attributes, and the text of the page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(page: str) -> _Elements:
    elements = _Elements()
    elements.feed(page)
    elements.close()
    return elements


def _embedded_pngs(page: str) -> list[bytes]:
    sources = [attributes.get("src") or "" for tag, attributes in _parse(page).tags if tag == "img"]
    assert all(source.startswith(DATA_PNG) for source in sources), [source[:40] for source in sources]
    return [base64.b64decode(source.removeprefix(DATA_PNG), validate=True) for source in sources]


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return _report()


@pytest.fixture(scope="module")
def page(report: dict[str, Any]) -> str:
    return render_html_report(report)


def test_page_is_self_contained(page: str) -> None:
    elements = _parse(page)

    assert "http://" not in page and "https://" not in page and "url(" not in page
    assert "<script" not in page.lower()
    for tag, attributes in elements.tags:
        for name, value in attributes.items():
            if name in ("src", "srcset", "poster", "data", "action", "background"):
                assert (value or "").startswith(DATA_PNG), (tag, name, (value or "")[:40])
            if name == "href":
                assert (value or "").startswith("#"), (tag, value)
        assert tag not in ("script", "link", "iframe", "object", "embed")
    assert any(attributes.get("http-equiv") == "Content-Security-Policy" for _, attributes in elements.tags)


def test_every_figure_is_an_embedded_png_that_decodes(page: str) -> None:
    pngs = _embedded_pngs(page)

    # The sweep, privacy against utility per deployment, three reconstruction grids, ROC curves per deployment.
    assert len(pngs) == 1 + 2 + 3 + 2
    for png in pngs:
        assert png.startswith(PNG_SIGNATURE)
        with Image.open(io.BytesIO(png)) as image:
            image.verify()
        with Image.open(io.BytesIO(png)) as image:
            assert image.width > 0 and image.height > 0


def test_reconstruction_grid_puts_originals_above_reconstructions(page: str, report: dict[str, Any]) -> None:
    images = report["results"][15]["images"]  # two 8 x 8 digits
    # Two columns and two rows of tiles (originals, then reconstructions), each enlarged 12x to 96 pixels, 2 apart.
    scale, padding = 12, 2
    tile = 8 * scale
    side = 2 * (tile + padding) + padding
    grids = [_pixels(png) for png in _embedded_pngs(page)]
    pixels = next(grid for grid in grids if grid.shape == (side, side))

    first_original = pixels[padding : padding + tile : scale, padding : padding + tile : scale] / 255.0
    below = 2 * padding + tile
    first_reconstruction = pixels[below : below + tile : scale, padding : padding + tile : scale] / 255.0
    np.testing.assert_allclose(first_original, np.asarray(images["original"])[0, 0], atol=1 / 255)
    np.testing.assert_allclose(first_reconstruction, np.asarray(images["reconstruction"])[0, 0], atol=1 / 255)


def _pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image)


def test_sections_appear_in_order_with_their_content(page: str) -> None:
    order = [
        "<h1>", 'id="scale"', 'id="headlines"', 'id="clients"', 'id="utility"', 'id="reconstructions"', 'id="audits"',
        'id="costs"', 'id="results"', 'id="environment"', 'id="timings"', 'id="spec"',
    ]
    positions = [page.index(marker) for marker in order]

    assert positions == sorted(positions)
    assert "A score of 0 means the attack learned nothing beyond what the MPC baseline reveals" in page
    assert "ideal functionality, not a protocol run" in page
    assert "PSNR 42.0 dB" in page  # grid captions name the PSNR
    assert "under MPC a participant sees only the final model" in page  # a not_applicable row's note
    assert page.count('<tr class="not_applicable">') == 2
    assert "(above the accountant" not in page  # no audit contradicts its accountant here
    assert "12,345 B (12.3 kB)" in page
    assert "&quot;rounds&quot;: 2" in page  # the spec as pretty JSON


def test_headline_table_shades_each_deployment_and_scheme(page: str) -> None:
    table = page[page.index('id="headlines"') : page.index('id="clients"')]

    assert table.count('<td class="heat"') == len(DEPLOYMENTS) * len(SCHEMES)
    assert "cross-device<span class=\"who\">100 clients, 100 per round</span>" in table
    assert "participant · round_difference</span><span class=\"who\">update_cosine = 1</span>" in table


def test_report_strings_are_escaped(page: str) -> None:
    assert "<script>" not in page
    assert "<title>Leakage report: digits &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; co</title>" in page


def test_escapes_notes_names_and_environment() -> None:
    report = _report()
    report["results"][0]["note"] = "<b>bold</b>"
    report["results"][0]["attack"] = 'a"b'
    report["environment"]["<i>"] = "<img src=x>"

    page = render_html_report(report)

    assert "<b>bold</b>" not in page and "&lt;b&gt;bold&lt;/b&gt;" in page
    assert "a&quot;b" in page
    assert "<img src=x>" not in page and "&lt;i&gt;" in page


def test_audit_bound_above_the_accountant_is_flagged() -> None:
    report = _report()
    report["audits"][1]["epsilon_lower_bound"] = 4.0  # above its accountant's 3.1

    page = render_html_report(report)

    assert page.count('<tr class="alert">') == 1
    assert "4.00 (above the accountant's &epsilon;)" in page


def test_missing_sections_degrade_to_a_sentence() -> None:
    page = render_html_report({"schema_version": 1})

    for sentence in (
        "No headline scores were recorded.",
        "No attack returned images to show.",
        "No privacy audit was run.",
        "No costs were measured.",
        "No attack results were recorded.",
        "No environment was recorded.",
        "No timings were recorded.",
        "No spec was recorded.",
    ):
        assert f'<p class="empty">{sentence}</p>' in page
    assert "<img" not in page and "<title>Leakage report</title>" in page
    # Sections for data older reports lack are left out, not announced as empty.
    assert 'id="clients"' not in page and 'id="utility"' not in page


def test_empty_lists_degrade_like_missing_ones() -> None:
    report = _report()
    report.update(audits=[], costs=[])
    for row in report["results"]:
        row["images"] = None

    page = render_html_report(report)

    assert "No privacy audit was run." in page and "No costs were measured." in page
    assert "No attack returned images to show." in page
    assert len(_embedded_pngs(page)) == 1  # only the sweep's figure


@pytest.mark.parametrize("version", [None, 2, "1", 1.0, True])
def test_rejects_other_schema_versions(version: object) -> None:
    report = _report()
    if version is None:
        del report["schema_version"]
    else:
        report["schema_version"] = version

    with pytest.raises(ConfigError, match=r"report\.schema_version must be 1"):
        render_html_report(report)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda report: report["results"][2].pop("leakage"), r"report\.results\[2\]\.leakage is missing"),
        (lambda report: report["results"][0].update(status="failed"), r"report\.results\[0\]\.status must be one"),
        (lambda report: report["headlines"][1].update(leakage="high"), r"report\.headlines\[1\]\.leakage must be"),
        (lambda report: report["audits"][0]["roc"].update(tpr=[0.0]), r"report\.audits\[0\]\.roc\.fpr and \.tpr"),
        (lambda report: report["results"][1]["images"].update(original=[[1, 2], [3]]),
         r"report\.results\[1\]\.images\.original must be nested lists"),
        (lambda report: report["results"][1]["images"].update(reconstruction=np.zeros((1, 1, 4, 4)).tolist()),
         r"report\.results\[1\]\.images: .*shape"),
        (lambda report: report["headlines"].append(dict(report["headlines"][0])), r"report\.headlines\[12\] repeats"),
        (lambda report: report.update(costs={"secagg": 1.0}), r"report\.costs must be a list"),
        (lambda report: report["costs"][0].update(test_accuracy="high"), r"report\.costs\[0\]\.test_accuracy must be"),
        (lambda report: report["sweeps"][0]["points"].reverse(), r"report\.sweeps\[0\]\.points must be sorted"),
        (lambda report: report["sweeps"][1]["points"][2].pop("baseline"),
         r"report\.sweeps\[1\]\.points\[2\]\.baseline is missing"),
        (lambda report: report["sweeps"][2].update(hides_from="ten"), r"report\.sweeps\[2\]\.hides_from must be an"),
        (lambda report: report["sweeps"][0].update(points=[]), r"report\.sweeps\[0\]\.points must list at least"),
    ],
)
def test_malformed_fields_raise_config_error_naming_them(mutate: Any, field: str) -> None:
    report = copy.deepcopy(_report())
    mutate(report)

    with pytest.raises(ConfigError, match=field):
        render_html_report(report)


def test_write_replaces_the_file_atomically(report: dict[str, Any], page: str, tmp_path: Path) -> None:
    target = tmp_path / "out" / "report.html"

    written = write_html_report(report, target)

    assert written == target
    assert target.read_text(encoding="utf-8") == page
    assert [path.name for path in target.parent.iterdir()] == ["report.html"]


def test_failed_render_leaves_the_existing_report_intact(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    target.write_text("previous report", encoding="utf-8")
    broken = _report()
    broken["results"][1]["images"]["original"] = "not pixels"

    with pytest.raises(ConfigError):
        write_html_report(broken, target)

    assert target.read_text(encoding="utf-8") == "previous report"
    assert [path.name for path in tmp_path.iterdir()] == ["report.html"]


def test_failed_write_leaves_the_existing_report_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "report.html"
    target.write_text("previous report", encoding="utf-8")

    def crash(source: object, destination: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        write_html_report(_report(), target)

    assert target.read_text(encoding="utf-8") == "previous report"
    assert [path.name for path in tmp_path.iterdir()] == ["report.html"]


def test_a_hundred_rows_with_images_stay_small() -> None:
    report = _report()
    rows = []
    for index in range(100):
        row = copy.deepcopy(report["results"][1])
        row["seed"] = index
        row["images"] = _images((1, 1, 8, 8) if index % 2 else (1, 3, 32, 32), seed=index)
        rows.append(row)
    report["results"] = rows

    page = render_html_report(report)

    assert len(page.encode("utf-8")) < 2_000_000
    assert len(_embedded_pngs(page)) == 100 + 1 + 2 + 2  # grids, the sweep, utility and ROC per deployment


def _section(page: str, anchor: str) -> str:
    start = page.index(f'<section id="{anchor}">')
    return page[start : page.index("</section>", start)]


def _images_in(section: str) -> list[dict[str, str | None]]:
    return [attributes for tag, attributes in _parse(section).tags if tag == "img"]


def test_every_image_declares_its_own_pixel_size_and_what_must_stay_legible(page: str) -> None:
    images = _images_in(page)

    assert images
    for attributes, png in zip(images, _embedded_pngs(page), strict=True):
        with Image.open(io.BytesIO(png)) as image:
            assert (attributes["width"], attributes["height"]) == (str(image.width), str(image.height))
        if "data-axes-width" in attributes:
            assert int(attributes["data-axes-width"] or 0) >= MIN_AXES_PIXELS
        else:
            assert int(attributes["data-tile-width"] or 0) >= MIN_TILE_PIXELS


def test_old_reports_without_sweeps_or_test_accuracy_skip_those_sections() -> None:
    page = render_html_report(_old_report())

    assert 'id="clients"' not in page and 'href="#clients"' not in page
    assert 'id="utility"' not in page and 'href="#utility"' not in page
    assert "test accuracy" not in _section(page, "costs")
    assert len(_embedded_pngs(page)) == 3 + 2  # grids and ROC curves only


def test_sweep_says_from_how_many_clients_each_observer_is_hidden(page: str) -> None:
    section = _section(page, "clients")

    hidden = "estimate is no better than the released model&#x27;s direction"
    assert "<h3>secagg sweep: secagg</h3>" in section
    assert f"<li>secagg: a server&#x27;s {hidden} from 10 clients</li>" in section
    assert f"<li>secagg: an eavesdropper&#x27;s {hidden} from 10 clients</li>" in section
    assert f"<li>secagg: a participant&#x27;s {hidden} at no swept size</li>" in section
    assert len(_images_in(section)) == 1  # one figure per sweep, whatever the number of observers
    assert section.count("<tr>") == 1 + 3 * len(SWEPT_CLIENTS)  # the numbers: a row per observer and size


def test_an_empty_sweep_list_says_so() -> None:
    report = _report()
    report["sweeps"] = []

    page = render_html_report(report)

    assert '<p class="empty">No sweep over the number of clients was run.</p>' in _section(page, "clients")


def test_privacy_against_utility_means_over_seeds_and_leaves_out_sweep_sizes() -> None:
    report = _report()
    second_seed = [dict(row, seed=1, test_accuracy=row["test_accuracy"] - 0.1) for row in report["costs"]]
    swept = [dict(report["costs"][1], deployment=f"secagg sweep n={count}", n_clients=count, sweep="secagg sweep")
             for count in SWEPT_CLIENTS]
    report["costs"] += second_seed + swept

    page = render_html_report(report)

    section = _section(page, "utility")
    assert len(_images_in(section)) == len(DEPLOYMENTS)  # no panel for the sweep's sizes
    assert "<td>cross-device</td><td>dp</td><td>0.10</td><td>57.0%</td><td>2</td>" in section
    assert "<td>cross-organisation</td><td>plain</td><td>1.00</td><td>86.0%</td><td>2</td>" in section
    assert "secagg sweep n=" not in section


def test_costs_table_shows_the_released_models_test_accuracy(page: str) -> None:
    section = _section(page, "costs")

    assert "<th scope=\"col\">test accuracy</th>" in section
    assert section.count("<td>62.0%</td>") == len(DEPLOYMENTS)  # dp
    assert section.count("<td>91.0%</td>") == len(DEPLOYMENTS) * (len(SCHEMES) - 1)


def test_audits_get_one_roc_figure_per_deployment_with_the_zero_rate_floor_named(page: str) -> None:
    section = _section(page, "audits")

    assert len(_images_in(section)) == len(DEPLOYMENTS)
    # 64 trials: a false positive rate of 0 is drawn at 1/64 on the log axis, and the caption says so.
    assert section.count("a false positive rate of 0 is drawn at 0.0156 (1/64: one false positive in 64 trials") == 2


def test_many_audits_split_by_deployment_and_stay_legible() -> None:
    report = _report()
    deployments = [f"site {index}" for index in range(3)]
    observers = ("server", "participant", "eavesdropper", "public")
    report["audits"] = [
        dict(report["audits"][0], deployment=deployment, scheme=scheme, observer=observer, trials=128,
             roc={"fpr": [0.0, 0.0, rate, 1.0], "tpr": [0.0, rate, 0.9, 1.0]})
        for deployment in deployments
        for index, scheme in enumerate(SCHEMES)
        for rate, observer in zip((0.1 + 0.01 * index, 0.2, 0.3, 0.4), observers, strict=True)
    ]

    page = render_html_report(report)

    images = _images_in(_section(page, "audits"))
    assert len(images) == len(deployments)
    assert all(int(image["data-axes-width"] or 0) >= MIN_AXES_PIXELS for image in images)
    assert "drawn at 0.00781 (1/128" in page


# --- a real browser --------------------------------------------------------------------------------------------------

# Runs in the page once everything has loaded: for every image, whether it decoded, its PNG's own width, the
# width it is shown at, and the widths the page declares for it (axes box or grid tile, in the PNG's pixels).
_IMAGE_CHECK = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images).map((image) => ({
    loaded: image.complete && image.naturalWidth > 0,
    natural: image.naturalWidth,
    shown: image.clientWidth,
    declared: Number(image.getAttribute("width")),
    axes: Number(image.dataset.axesWidth || 0),
    tile: Number(image.dataset.tileWidth || 0),
  }));
  const result = document.createElement("output");
  result.id = "image-check";
  result.textContent = JSON.stringify(images);
  document.body.appendChild(result);
});
</script>"""


def _chromium() -> str:
    """Return the chromium executable; skip without one, except on CI (CI is set), where it must be installed."""
    executable = shutil.which("chromium")
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; CI must run: apt-get install -y --no-install-recommends chromium")
        pytest.skip("chromium is not installed (apt-get install chromium); this test runs it headless")
    return executable


def _run_chromium(executable: str, profile: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    command = [
        executable, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
        f"--user-data-dir={profile}", "--virtual-time-budget=5000", *arguments,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=BROWSER_TIMEOUT_SECONDS, check=False)


@dataclass(frozen=True)
class _ShownImage:
    """One <img> as headless chromium laid it out in a 1280-pixel-wide window."""

    loaded: bool
    natural: int  # the PNG's width in pixels
    shown: int  # CSS pixels on screen
    declared: int  # the width attribute
    axes: int  # data-axes-width: the narrowest axes box, in the PNG's pixels (0: not a plot)
    tile: int  # data-tile-width: one reconstruction, in the PNG's pixels (0: not a grid)

    def on_screen(self, width: int) -> float:
        """Return how many screen pixels ``width`` pixels of the PNG take up."""
        return width * self.shown / self.natural


def _show_in_chromium(page: str, folder: Path, *, screenshot: Path | None = None) -> list[_ShownImage]:
    """Open ``page`` in headless chromium and return its images as laid out; skip without chromium."""
    executable = _chromium()
    # The report is script-free and its policy forbids scripts; the test's copy allows one inline
    # script that measures the images, and keeps "img-src data:" so any external image would fail.
    checked, allowed = re.subn(
        r'(http-equiv="Content-Security-Policy" content=")', r"\1script-src 'unsafe-inline'; ", page
    )
    assert allowed == 1
    probe = folder / "probe.html"
    probe.write_text(checked.replace("</body>", _IMAGE_CHECK + "\n</body>"), encoding="utf-8")
    extra = [] if screenshot is None else [f"--screenshot={screenshot}"]

    browser = _run_chromium(
        executable, folder / "profile", "--dump-dom", *extra, "--window-size=1280,1600", probe.as_uri()
    )

    assert browser.returncode == 0, browser.stderr[-2000:]
    match = re.search(r'<output id="image-check">(.*?)</output>', browser.stdout, flags=re.DOTALL)
    assert match is not None, browser.stderr[-2000:]
    return [_ShownImage(**fields) for fields in json.loads(html.unescape(match[1]))]


def _assert_legible(images: list[_ShownImage]) -> None:
    """Every image loaded at its own size; every plot's axes and every reconstruction are shown wide enough."""
    assert images
    for image in images:
        assert image.loaded and image.natural == image.declared, image
        assert (image.axes > 0) != (image.tile > 0), image  # each image is a plot or a grid, and says which
        if image.axes:
            assert image.on_screen(image.axes) >= MIN_AXES_PIXELS == 300, image
        else:
            assert image.on_screen(image.tile) >= MIN_TILE_PIXELS == 96, image


def test_every_image_loads_in_headless_chromium_and_stays_legible(page: str, tmp_path: Path) -> None:
    screenshot = tmp_path / "screenshot.png"

    images = _show_in_chromium(page, tmp_path, screenshot=screenshot)

    assert len(images) == len(_embedded_pngs(page)) > 0
    _assert_legible(images)
    assert sum(1 for image in images if image.tile) == 3
    assert screenshot.exists()
    with Image.open(screenshot) as shot:
        extrema = shot.convert("RGB").getextrema()
    assert any(low != high for low, high in extrema), "the screenshot is one flat colour"


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    """A real ``leakage score --quick`` run of the built-in spec: its report.json and report.html."""
    _chromium()  # nothing to check without a browser: skip before the run
    out = tmp_path_factory.mktemp("score")
    command = [sys.executable, "-m", "leakage.cli", "score", "--quick", "--no-progress", "--out", str(out)]
    run = subprocess.run(command, capture_output=True, text=True, timeout=SCORE_TIMEOUT_SECONDS, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    return report, (out / "report.html").read_text(encoding="utf-8")


def test_a_real_score_report_is_legible_in_headless_chromium(
    scored: tuple[dict[str, Any], str], tmp_path: Path
) -> None:
    report, page = scored

    images = _show_in_chromium(page, tmp_path)

    _assert_legible(images)
    grids = sum(1 for row in report["results"] if row.get("images"))
    deployments_audited = {row["deployment"] for row in report.get("audits", [])}
    assert sum(1 for image in images if image.tile) == grids > 0
    assert len(_images_in(_section(page, "audits"))) == len(deployments_audited) > 0
    if report.get("sweeps"):
        sweeps = _section(page, "clients")
        assert len(_images_in(sweeps)) == len({entry["name"] for entry in report["sweeps"]})
        assert sweeps.count("estimate is no better than the released model&#x27;s direction") == len(report["sweeps"])
    if any("test_accuracy" in row for row in report["costs"]):
        assert _images_in(_section(page, "utility"))
