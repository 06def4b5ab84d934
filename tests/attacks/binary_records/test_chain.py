"""The ``binary_records`` chain: from per-round gradients to the records, or a verdict it can vouch for."""

import json
from collections import Counter

import numpy as np
import torch

from attacks.binary_records import BinaryRecordsResult, minimum_rounds, recover_records

# The even-weight rows of {0, 1}^3 (two features, then the label): the odd-weight rows
# have the same Gram matrix (every column holds two ones and every pair of columns one
# common one), so the statistics cannot tell the two record sets apart.
EVEN_ROWS = [[0, 0, 0], [1, 1, 0], [1, 0, 1], [0, 1, 1]]


def _gradients(features: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Per-round gradients ``g = -v/2 + A w~ / 4`` of the mean Taylor loss, by autograd."""
    augmented = torch.cat([features, torch.ones(features.shape[0], 1)], dim=1).double()
    signs = 2.0 * labels.double() - 1.0
    rows = []
    for weight in weights:
        point = weight.clone().requires_grad_(True)
        logit = augmented @ point
        loss = (np.log(2.0) - signs * logit / 2.0 + logit**2 / 8.0).mean()
        rows.append(torch.autograd.grad(loss, point)[0])
    return torch.stack(rows)


def _random_records(records: int, features: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    data = (torch.rand(records, features + 1, generator=generator) < 0.5).float()
    return data[:, :features], data[:, features].long()


def _models(rounds: int, features: int, seed: int) -> torch.Tensor:
    return torch.randn(rounds, features + 1, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _multiset(rows: torch.Tensor) -> Counter[tuple[int, ...]]:
    return Counter(tuple(int(v) for v in row) for row in rows.tolist())


# ---------------------------------------------------------------- the chain


def test_recover_records_returns_every_record_exactly() -> None:
    inputs, labels = _random_records(5, 6, seed=9)
    weights = _models(minimum_rounds(6) + 2, 6, seed=10)

    found = recover_records(weights, _gradients(inputs, labels, weights))

    assert found.status == "recovered" and found.num_samples == 5
    assert found.features is not None and found.labels is not None
    recovered = torch.cat([found.features, found.labels[:, None].float()], dim=1).long()
    assert _multiset(recovered) == _multiset(torch.cat([inputs, labels[:, None].float()], dim=1).long())
    assert any("inferred" in text for text in found.assumptions)


def test_recover_records_never_claims_an_ambiguous_record_set() -> None:
    records = torch.tensor(EVEN_ROWS, dtype=torch.float32)
    weights = _models(8, 2, seed=11)

    found = recover_records(weights, _gradients(records[:, :2], records[:, 2].long(), weights), num_samples=4)

    assert found.status == "not_unique" and found.features is None and found.labels is None


def test_recover_records_says_when_the_rounds_are_too_few() -> None:
    inputs, labels = _random_records(3, 8, seed=12)
    weights = _models(minimum_rounds(8) - 1, 8, seed=13)

    found = recover_records(weights, _gradients(inputs, labels, weights))

    assert found.status == "ill_conditioned" and found.features is None
    assert f"at least {minimum_rounds(8)} rounds" in found.reason


def test_recover_records_says_when_inputs_are_not_binary() -> None:
    inputs = torch.rand(4, 5, generator=torch.Generator().manual_seed(14))
    weights = _models(12, 5, seed=15)

    found = recover_records(weights, _gradients(inputs, torch.tensor([0, 1, 1, 0]), weights))

    assert found.status == "ill_conditioned" and "residual" in found.reason


def test_recover_records_is_deterministic_and_serialises() -> None:
    inputs, labels = _random_records(8, 6, seed=16)
    weights = _models(10, 6, seed=17)
    gradients = _gradients(inputs, labels, weights)
    before = gradients.clone()

    first = recover_records(weights, gradients)
    second = recover_records(weights, gradients)

    assert isinstance(first, BinaryRecordsResult)
    timings = ("seconds", "search_seconds")
    assert {k: v for k, v in first.to_dict().items() if k not in timings} == {
        k: v for k, v in second.to_dict().items() if k not in timings
    }
    assert torch.equal(gradients, before)
    assert json.loads(json.dumps(first.to_dict()))["status"] == first.status
