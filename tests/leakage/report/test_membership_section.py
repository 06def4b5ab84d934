"""Membership rows carry their ROC, and the HTML report draws it per deployment on log-log axes."""

from __future__ import annotations

import numpy as np

from leakage.quantify import parse_spec, score
from leakage.report import render_html_report

SPEC = {
    "name": "membership",
    "schemes": ["plain"],
    "observers": ["server", "public"],
    "task": {
        "dataset": "digits", "model": "mlp", "model_options": {"hidden": [16]}, "algorithm": "fedavg",
        "local_epochs": 3, "batch_size": 10, "lr": 0.5, "rounds": 2, "partition_options": {"samples_per_client": 20},
    },
    "deployments": [{"name": "three", "n_clients": 3}],
    "attacks": [{"name": "loss_threshold"}],
    "audit": False,
}


def test_membership_rows_carry_a_roc_and_the_report_draws_it() -> None:
    report = score(parse_spec(SPEC)).to_dict()
    rows = [r for r in report["results"] if r["attack"] == "loss_threshold" and r["status"] == "ok"]
    assert rows
    for row in rows:
        fpr, tpr = np.array(row["roc"]["fpr"]), np.array(row["roc"]["tpr"])
        assert fpr[0] == 0 and fpr[-1] == 1 and tpr[-1] == 1
        assert (np.diff(fpr) >= 0).all() and (np.diff(tpr) >= 0).all()
        assert row["metrics"]["members"] == 20
        assert 0 <= row["metrics"]["tpr@0.001"] <= 1 and row["metrics"]["fpr@0.001"] <= 0.001
    html = render_html_report(report)
    section = html[html.index('<section id="membership">'):]
    section = section[: section.index("</section>")]
    assert "Membership ROC curves: three" in section and "data:image/png;base64," in section
    assert "TPR at 0.1% FPR" in section
