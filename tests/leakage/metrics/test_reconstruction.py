"""Tests for scoring reconstructed batches against the truth after optimal matching."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch

from attacks.base import AttackResult
from leakage.data import Dataset, load_dataset
from leakage.errors import ConfigError
from leakage.metrics import (
    ReconstructionScore,
    match_reconstructions,
    mse,
    psnr,
    score_against_dataset,
    score_reconstruction,
    ssim,
)


def _score_images(
    reconstructions: torch.Tensor, originals: torch.Tensor, labels: torch.Tensor, true: torch.Tensor
) -> ReconstructionScore:
    return score_reconstruction(
        reconstructions, originals, reconstructed_labels=labels, true_labels=true, data_range=1.0, kind="image"
    )


def test_a_shuffled_exact_batch_scores_perfectly_and_labels_follow_their_inputs(generator: torch.Generator) -> None:
    originals = torch.rand(5, 1, 8, 8, generator=generator)
    true = torch.tensor([0, 1, 2, 3, 4])
    shuffle = torch.tensor([3, 0, 4, 1, 2])

    score = _score_images(originals[shuffle], originals, true[shuffle], true)

    assert score.kind == "image" and score.num_samples == 5
    assert score.mse == 0.0 and score.psnr == math.inf and score.ssim == 1.0
    assert score.label_accuracy == 1.0 and score.label_multiset_accuracy == 1.0
    assert score.feature_mse is None
    assert torch.equal(shuffle[torch.tensor(score.permutation)], torch.arange(5))


def test_labels_in_the_wrong_order_lose_positional_but_not_multiset_accuracy(generator: torch.Generator) -> None:
    originals = torch.rand(4, 1, 8, 8, generator=generator)
    true = torch.tensor([0, 1, 2, 3])
    shuffle = torch.tensor([1, 0, 3, 2])

    # The labels stay in the originals' order while the inputs come shuffled.
    score = _score_images(originals[shuffle], originals, true, true)

    assert score.label_accuracy == 0.0
    assert score.label_multiset_accuracy == 1.0


def test_per_sample_scores_are_the_metrics_of_the_matched_pairs(generator: torch.Generator) -> None:
    originals = torch.rand(6, 3, 12, 12, generator=generator)
    noise = 0.05 * torch.randn(originals.shape, generator=generator)
    reconstructions = (originals + noise).clamp(0, 1)[torch.randperm(6, generator=generator)]
    labels = torch.zeros(6, dtype=torch.int64)

    score = _score_images(reconstructions, originals, labels, labels)

    matched = reconstructions[match_reconstructions(reconstructions, originals)]
    assert score.mse_per_sample == pytest.approx(mse(matched, originals).tolist(), rel=1e-12)
    assert score.psnr_per_sample == pytest.approx(psnr(matched, originals, data_range=1.0).tolist(), rel=1e-12)
    assert score.ssim_per_sample == pytest.approx(ssim(matched, originals, data_range=1.0).tolist(), rel=1e-12)
    assert score.mse == pytest.approx(sum(score.mse_per_sample) / 6)
    assert score.psnr == pytest.approx(sum(score.psnr_per_sample) / 6)
    assert score.ssim == pytest.approx(sum(score.ssim_per_sample or ()) / 6)


def test_tabular_scores_have_feature_mse_and_no_ssim() -> None:
    originals = torch.tensor([[0.0, 10.0], [5.0, 5.0]])
    reconstructions = torch.tensor([[5.0, 6.0], [1.0, 10.0]])

    score = score_reconstruction(
        reconstructions,
        originals,
        reconstructed_labels=torch.tensor([1, 0]),
        true_labels=torch.tensor([0, 1]),
        data_range=10.0,
        kind="tabular",
    )

    assert score.permutation == (1, 0)
    assert score.mse_per_sample == pytest.approx((0.5, 0.5))
    assert score.feature_mse == score.mse == pytest.approx(0.5)
    assert score.ssim is None and score.ssim_per_sample is None
    assert score.label_accuracy == 1.0


def test_success_rate_counts_samples_at_or_above_the_psnr_threshold() -> None:
    originals = torch.zeros(4, 1)
    reconstructions = torch.tensor([[0.0], [0.01], [0.1], [0.5]])  # inf, 40, 20, ~6 dB
    labels = torch.zeros(4, dtype=torch.int64)

    score = score_reconstruction(
        reconstructions, originals, reconstructed_labels=labels, true_labels=labels, data_range=1.0, kind="tabular"
    )

    assert score.success_rate() == 0.5
    assert score.success_rate(psnr_threshold=15.0) == 0.75
    assert score.success_rate(psnr_threshold=math.inf) == 0.25


def test_to_dict_is_json_ready(generator: torch.Generator) -> None:
    originals = torch.rand(3, 1, 8, 8, generator=generator)
    labels = torch.tensor([2, 0, 1])
    score = _score_images(originals.flip(0), originals, labels, labels)

    record = json.loads(json.dumps(score.to_dict()))

    assert record["kind"] == "image" and record["num_samples"] == 3
    assert record["permutation"] == [2, 1, 0]
    assert record["ssim_per_sample"] == [1.0, 1.0, 1.0] and record["feature_mse"] is None
    assert record["success_rate"] == 1.0 and record["success_psnr_threshold"] == 30.0
    assert record["label_accuracy"] == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    ("reconstructions", "originals", "labels", "kind", "message"),
    [
        (
            torch.zeros(3, 1, 8, 8),
            torch.zeros(2, 1, 8, 8),
            2,
            "image",
            "raw_reconstructions and raw_originals must have the same shape",
        ),
        (torch.zeros(2, 64), torch.zeros(2, 64), 2, "image", r"raw_originals of kind 'image' must be \[B, C, H, W\]"),
        (
            torch.zeros(2, 1, 8, 8),
            torch.zeros(2, 1, 8, 8),
            2,
            "tabular",
            r"raw_originals of kind 'tabular' must be \[B, D\]",
        ),
        (
            torch.zeros(2, 4),
            torch.zeros(2, 4),
            3,
            "tabular",
            r"reconstructed_labels must hold one label per sample \(2\), got 3",
        ),
        (torch.full((2, 4), math.nan), torch.zeros(2, 4), 2, "tabular", "raw_reconstructions contains NaN or Inf"),
        (torch.zeros(2, 4), torch.zeros(2, 4), 2, "video", "kind must be one of image, tabular, got 'video'"),
    ],
)
def test_score_reconstruction_names_the_bad_field(
    reconstructions: torch.Tensor, originals: torch.Tensor, labels: int, kind: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        score_reconstruction(
            reconstructions,
            originals,
            reconstructed_labels=torch.zeros(labels, dtype=torch.int64),
            true_labels=torch.zeros(2, dtype=torch.int64),
            data_range=1.0,
            kind=kind,  # type: ignore[arg-type]
        )


def test_score_reconstruction_names_mismatched_true_labels() -> None:
    with pytest.raises(ConfigError, match="true_labels must hold one label per sample"):
        score_reconstruction(
            torch.zeros(2, 4),
            torch.zeros(2, 4),
            reconstructed_labels=torch.zeros(2, dtype=torch.int64),
            true_labels=torch.zeros(5, dtype=torch.int64),
            data_range=1.0,
            kind="tabular",
        )


# --- score_against_dataset --------------------------------------------------------------


def _attack_result(digits: Dataset, indices: list[int], labels: list[int]) -> AttackResult:
    inputs = digits.inputs[indices]
    return AttackResult(
        attack="dlg", inputs=inputs, raw_inputs=digits.denormalize(inputs), labels=torch.tensor(labels), objective=0.0
    )


def test_score_against_dataset_scores_an_attack_result_in_one_call(digits: Dataset) -> None:
    result = _attack_result(digits, [10, 3, 7], [int(digits.targets[i]) for i in (10, 3, 7)])

    score = score_against_dataset(result, digits, torch.tensor([3, 7, 10]))

    assert score.kind == "image"
    assert score.permutation == (1, 2, 0)
    assert score.psnr == math.inf and score.ssim == 1.0 and score.label_accuracy == 1.0


def test_score_against_dataset_uses_the_raw_range_and_kind_of_tabular_data() -> None:
    cancer = load_dataset("breast_cancer")
    originals = cancer.denormalize(cancer.inputs[:2])
    low, high = cancer.value_range
    result = SimpleNamespace(raw_inputs=originals + 1.0, labels=cancer.targets[:2])

    score = score_against_dataset(result, cancer, [0, 1])

    assert score.kind == "tabular" and score.ssim is None
    assert score.feature_mse == pytest.approx(1.0)
    assert score.psnr == pytest.approx(10 * math.log10((high - low) ** 2))


def test_score_against_dataset_rejects_label_only_results_and_mismatched_indices(digits: Dataset) -> None:
    label_only = SimpleNamespace(raw_inputs=torch.zeros(0, 1, 8, 8), labels=torch.tensor([1, 2]))
    result = _attack_result(digits, [0, 1], [0, 1])
    wrong_shape = SimpleNamespace(raw_inputs=torch.zeros(2, 64), labels=torch.tensor([0, 1]))

    with pytest.raises(ConfigError, match="label-only attack has no inputs to score"):
        score_against_dataset(label_only, digits, [0, 1])
    with pytest.raises(ConfigError, match="indices selects 3 samples but result.raw_inputs holds 2 reconstructions"):
        score_against_dataset(result, digits, [0, 1, 2])
    with pytest.raises(ConfigError, match=r"indices must lie in \[0, 1797\)"):
        score_against_dataset(result, digits, [0, 5000])
    with pytest.raises(
        ConfigError,
        match=r"result.raw_inputs has sample shape \(64,\) but dataset 'digits' has input_shape \(1, 8, 8\)",
    ):
        score_against_dataset(wrong_shape, digits, [0, 1])
