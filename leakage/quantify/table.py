"""The terminal table ``leakage score`` prints at the end: each scheme's worst case."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["format_headlines"]


def format_headlines(report: Mapping[str, Any]) -> str:
    """Return a fixed-width table of the headline leakage per deployment and scheme.

    >>> print(format_headlines({"headlines": [{"deployment": "two", "n_clients": 2, "scheme": "plain",
    ...     "leakage": 1.0, "observer": "server", "attack": "plaintext", "metric": "update_cosine", "value": 1.0}]}))
    deployment  clients  scheme  leakage  worst case
    two               2  plain      1.00  server via plaintext (update_cosine 1)
    """
    rows = [
        (
            str(h["deployment"]), str(h["n_clients"]), str(h["scheme"]), f"{h['leakage']:.2f}",
            f"{h['observer']} via {h['attack']} ({h['metric']} {h['value']:.3g})"
            if h.get("status", "ok") == "ok" else "nothing beyond the released model",
        ) if h.get("status") != "failed" else (
            str(h["deployment"]), str(h["n_clients"]), str(h["scheme"]), "failed", "every scoring job failed",
        )
        for h in report["headlines"]
    ]
    header = ("deployment", "clients", "scheme", "leakage", "worst case")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [
            row[0].ljust(widths[0]), row[1].rjust(widths[1]), row[2].ljust(widths[2]), row[3].rjust(widths[3]), row[4]
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
