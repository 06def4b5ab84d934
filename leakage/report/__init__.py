"""The self-contained HTML report of ``leakage score``.

:func:`render_html_report` turns the dict of ``report.json`` into one HTML page whose
figures are embedded PNGs; :func:`write_html_report` writes that page atomically.

>>> from leakage.report import REPORT_SCHEMA_VERSION, render_html_report
>>> "<h1>Leakage report: demo</h1>" in render_html_report({"schema_version": REPORT_SCHEMA_VERSION,
...                                                        "spec": {"name": "demo"}})
True
"""

from leakage.report.html import (
    REPORT_SCHEMA_VERSION,
    render_html_report,
    write_html_report,
)

__all__ = ["REPORT_SCHEMA_VERSION", "render_html_report", "write_html_report"]
