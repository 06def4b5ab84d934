"""``assert_membership_tpr_below``: a user's regression test on membership inference at low FPR."""

from __future__ import annotations

import pytest

from leakage.errors import ConfigError
from leakage.testing import assert_membership_tpr_below, measure_membership

# FedAvg over each client's own 30 records for several local epochs: the target's model fits them
TASK = {
    "dataset": "digits", "model": "mlp", "model_options": {"hidden": [32]}, "algorithm": "fedavg",
    "local_epochs": 5, "batch_size": 10, "lr": 0.5, "rounds": 3, "partition_options": {"samples_per_client": 30},
}


def test_the_server_under_plain_beats_the_released_model_and_the_check_can_fail() -> None:
    server = measure_membership("plain", 4, observer="server", task=TASK, target_fpr=1e-2)
    public = measure_membership("plain", 4, observer="public", task=TASK, target_fpr=1e-2)
    assert server.members == 30 and server.non_members > 100
    assert server.auc >= public.auc  # the target's own local model fits its records best
    assert server.tpr > 0
    assert server.released_auc == pytest.approx(public.auc)
    with pytest.raises(AssertionError, match=r"membership TPR .* at FPR <= 0.01 \[plain with 4 clients, server"):
        assert_membership_tpr_below("plain", 4, server.tpr / 2 - 1e-9, observer="server", task=TASK)
    assert assert_membership_tpr_below("plain", 4, 1.0, observer="server", task=TASK).tpr == server.tpr


def test_a_rate_the_report_does_not_carry_is_refused() -> None:
    with pytest.raises(ConfigError, match="target_fpr must be one of"):
        measure_membership("plain", 2, target_fpr=0.05)
