"""Scoring a user's own model given as is: torchvision's resnet18, batch norm and running statistics included."""

from __future__ import annotations

import pytest
import torch
import torchvision

from leakage.quantify import parse_spec, score

pytestmark = pytest.mark.slow  # resnet18 has 11.2M parameters: about a minute and several GB here


def test_a_torchvision_resnet18_instance_is_scored_at_two_and_twenty_clients() -> None:
    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=10)  # as is: BatchNorm2d with running statistics
    spec = parse_spec({
        "name": "resnet18",
        "schemes": ["plain", "secagg"],
        # resnet18 at its initialisation on 32x32 patches in batches of 4 moves single
        # coordinates by up to about 10 at lr 0.001: the fixed-point range must cover them
        "scheme_options": {"secagg": {"clip_range": 64.0}},
        "observers": ["participant"],
        "task": {
            "dataset": "sample_patches", "model": net, "algorithm": "fedsgd", "batch_size": 4, "lr": 0.001,
            "rounds": 1, "partition_options": {"samples_per_client": 4},
        },
        "deployments": [{"name": "two", "n_clients": 2}, {"name": "twenty", "n_clients": 20}],
        "attacks": [{"name": "round_difference"}],
        "audit": False,
    })
    report = score(spec)
    rows = {(r.key.deployment, r.key.scheme): r.row for r in report.results if r.row.attack == "round_difference"}
    assert rows[("two", "plain")].value > 0.999
    assert rows[("two", "secagg")].value >= 0.999  # the mission's claim, on the user's own model
    assert rows[("two", "secagg")].leakage > 0.9
    for scheme in ("plain", "secagg"):
        assert rows[("twenty", scheme)].leakage <= 0.25, rows[("twenty", scheme)]
    assert report.spec.to_dict()["task"]["model"] == "<instance torchvision.models.resnet.ResNet>"
