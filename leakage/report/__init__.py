"""The self-contained HTML report of ``leakage score``, and the figures it is drawn with.

:func:`render_html_report` turns the dict of ``report.json`` into one HTML page whose
figures are embedded PNGs; :func:`write_html_report` writes that page atomically. The
``draw_*`` functions return each figure as a PNG with its pixel sizes (the width of
every axes box, or of one reconstruction tile), which the page records on each image
so a browser test can check that nothing is shown too small to read.

>>> from leakage.report import REPORT_SCHEMA_VERSION, render_html_report
>>> "<h1>Leakage report: demo</h1>" in render_html_report({"schema_version": REPORT_SCHEMA_VERSION,
...                                                        "spec": {"name": "demo"}})
True
"""

from leakage.report.figures import (
    FIGURE_DPI,
    MIN_AXES_PIXELS,
    MIN_TILE_PIXELS,
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
from leakage.report.html import (
    REPORT_SCHEMA_VERSION,
    render_html_report,
    write_html_report,
)

__all__ = [
    "FIGURE_DPI",
    "MIN_AXES_PIXELS",
    "MIN_TILE_PIXELS",
    "REPORT_SCHEMA_VERSION",
    "GridImage",
    "PlotImage",
    "RocCurve",
    "SweepSeries",
    "UtilityPoint",
    "draw_privacy_utility",
    "draw_reconstruction_grid",
    "draw_roc_curves",
    "draw_sweep",
    "render_html_report",
    "write_html_report",
]
