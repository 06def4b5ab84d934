"""Score a batch of reconstructed inputs and labels against the truth, after optimal matching.

:func:`score_reconstruction` is the pure scorer on raw tensors;
:func:`score_against_dataset` scores an attack's result against the dataset samples
it attacked in one call. Both first pair reconstructions with originals one to one
(Hungarian matching on MSE, see :func:`~leakage.metrics.match_reconstructions`), then
score every pair, and carry each reconstructed label along with its input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import torch
from torch import Tensor

from leakage.checks import require_choice
from leakage.data import Dataset
from leakage.errors import ConfigError
from leakage.metrics._validation import (
    check_data_range,
    check_finite,
    check_labels,
    check_same_shape,
)
from leakage.metrics.image import _mse, _psnr, _ssim, default_ssim_window
from leakage.metrics.labels import label_accuracy, label_multiset_accuracy
from leakage.metrics.matching import _match

__all__ = [
    "DEFAULT_SUCCESS_PSNR",
    "ReconstructionLike",
    "ReconstructionScore",
    "score_against_dataset",
    "score_reconstruction",
]

DEFAULT_SUCCESS_PSNR = 30.0
"""PSNR in dB above which a reconstruction counts as a success by default.

30 dB on ``[0, 1]`` pixels is a root-mean-square error of about 0.03 (8 grey levels of
255), where a reconstruction is visually indistinguishable from the original.
"""

_KINDS = ("image", "tabular")


class ReconstructionLike(Protocol):
    """Anything that carries reconstructed raw inputs and labels, such as ``attacks.AttackResult``."""

    @property
    def raw_inputs(self) -> Tensor:
        """``[B, *input_shape]`` reconstructions in the raw value range."""
        ...

    @property
    def labels(self) -> Tensor:
        """``[B]`` reconstructed labels, in the same order as ``raw_inputs``."""
        ...


@dataclass(frozen=True)
class ReconstructionScore:
    """How close a batch of reconstructions came to the originals, pair by pair after matching.

    Attributes:
        kind: ``"image"`` or ``"tabular"``.
        permutation: reconstruction ``permutation[i]`` was matched to original ``i``.
        mse: mean over samples of the per-sample MSE on raw values.
        psnr: mean over samples of the per-sample PSNR in dB (``inf`` if any sample was
            recovered exactly).
        ssim: mean over samples of the per-image SSIM; ``None`` for tabular data.
        feature_mse: mean over rows of the per-row MSE on raw features; ``None`` for
            images. For tabular data it is the same number as ``mse``, under the name
            tabular attacks report.
        label_accuracy: fraction of matched pairs whose reconstructed label is right.
        label_multiset_accuracy: fraction of the true labels recovered, order ignored.
        mse_per_sample, psnr_per_sample: one value per original, in the originals' order.
        ssim_per_sample: one value per original image; ``None`` for tabular data.
    """

    kind: Literal["image", "tabular"]
    permutation: tuple[int, ...]
    mse: float
    psnr: float
    ssim: float | None
    feature_mse: float | None
    label_accuracy: float
    label_multiset_accuracy: float
    mse_per_sample: tuple[float, ...]
    psnr_per_sample: tuple[float, ...]
    ssim_per_sample: tuple[float, ...] | None

    @property
    def num_samples(self) -> int:
        """Number of scored samples ``B``."""
        return len(self.mse_per_sample)

    def success_rate(self, psnr_threshold: float = DEFAULT_SUCCESS_PSNR) -> float:
        """Return the fraction of samples reconstructed with a PSNR of at least ``psnr_threshold`` dB.

        >>> score = score_reconstruction(
        ...     torch.tensor([[0.0, 0.0], [0.5, 0.5]]), torch.tensor([[0.0, 0.0], [0.0, 0.0]]),
        ...     reconstructed_labels=torch.tensor([0, 1]), true_labels=torch.tensor([0, 1]),
        ...     data_range=1.0, kind="tabular")
        >>> score.success_rate(), score.success_rate(psnr_threshold=5.0)
        (0.5, 1.0)
        """
        successes = sum(1 for value in self.psnr_per_sample if value >= psnr_threshold)
        return successes / self.num_samples

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict of every field plus ``success_rate`` at the default threshold.

        An exact recovery keeps its PSNR of ``inf`` (``json.dumps`` writes ``Infinity``)
        rather than a made-up finite number.
        """
        return {
            "kind": self.kind,
            "num_samples": self.num_samples,
            "permutation": list(self.permutation),
            "mse": self.mse,
            "psnr": self.psnr,
            "ssim": self.ssim,
            "feature_mse": self.feature_mse,
            "label_accuracy": self.label_accuracy,
            "label_multiset_accuracy": self.label_multiset_accuracy,
            "success_rate": self.success_rate(),
            "success_psnr_threshold": DEFAULT_SUCCESS_PSNR,
            "mse_per_sample": list(self.mse_per_sample),
            "psnr_per_sample": list(self.psnr_per_sample),
            "ssim_per_sample": None if self.ssim_per_sample is None else list(self.ssim_per_sample),
        }


def score_reconstruction(
    raw_reconstructions: Tensor,
    raw_originals: Tensor,
    *,
    reconstructed_labels: Tensor,
    true_labels: Tensor,
    data_range: float,
    kind: Literal["image", "tabular"],
) -> ReconstructionScore:
    """Return the score of a reconstructed batch against the originals, after optimal matching.

    Reconstructions are first matched one to one with the originals by minimal total
    MSE (:func:`~leakage.metrics.match_reconstructions`); the reconstructed labels
    follow the same permutation. Each matched pair is then scored with MSE and PSNR
    (and SSIM for images) in the raw value range, and the labels with
    :func:`~leakage.metrics.label_accuracy` (after matching) and
    :func:`~leakage.metrics.label_multiset_accuracy` (order ignored).

    Args:
        raw_reconstructions: ``[B, C, H, W]`` images or ``[B, D]`` rows, denormalised.
        raw_originals: the originals, same shape.
        reconstructed_labels: ``[B]`` labels in the reconstructions' order.
        true_labels: ``[B]`` labels in the originals' order.
        data_range: ``high - low`` of the raw value range.
        kind: ``"image"`` or ``"tabular"``.

    Raises:
        ConfigError: a shape does not match (the message names the field), an input
            holds NaN or Inf, ``data_range`` is not a finite number > 0, or ``kind``
            is unknown.

    >>> originals = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    >>> score = score_reconstruction(originals.flip(0), originals, reconstructed_labels=torch.tensor([1, 0]),
    ...     true_labels=torch.tensor([0, 1]), data_range=1.0, kind="tabular")
    >>> score.permutation, score.mse, score.label_accuracy
    ((1, 0), 0.0, 1.0)
    """
    require_choice("kind", kind, _KINDS)
    peak = check_data_range(data_range)
    check_same_shape("raw_reconstructions", raw_reconstructions, "raw_originals", raw_originals, min_dim=2)
    expected_dim = 4 if kind == "image" else 2
    layout = "[B, C, H, W]" if kind == "image" else "[B, D]"
    if raw_originals.dim() != expected_dim:
        raise ConfigError(f"raw_originals of kind {kind!r} must be {layout}, got shape {tuple(raw_originals.shape)}")
    check_finite("raw_reconstructions", raw_reconstructions)
    check_finite("raw_originals", raw_originals)
    batch = int(raw_originals.shape[0])
    for name, labels in (("reconstructed_labels", reconstructed_labels), ("true_labels", true_labels)):
        check_labels(name, labels)
        if labels.numel() != batch:
            raise ConfigError(f"{name} must hold one label per sample ({batch}), got {labels.numel()}")

    reconstructions = raw_reconstructions.detach()
    originals = raw_originals.detach().to(reconstructions.device)
    permutation = _match(reconstructions, originals)
    matched = reconstructions[permutation]
    matched_labels = reconstructed_labels.to(permutation.device)[permutation]

    mse_values = _as_floats(_mse(matched, originals))
    psnr_values = _as_floats(_psnr(matched, originals, data_range=peak))
    ssim_values: tuple[float, ...] | None = None
    if kind == "image":
        window = default_ssim_window(int(originals.shape[-2]), int(originals.shape[-1]))
        ssim_values = _as_floats(_ssim(matched, originals, data_range=peak, win_size=window))
    mean_mse = math.fsum(mse_values) / batch
    return ReconstructionScore(
        kind=kind,
        permutation=tuple(int(index) for index in permutation.tolist()),
        mse=mean_mse,
        psnr=_mean(psnr_values),
        ssim=None if ssim_values is None else _mean(ssim_values),
        feature_mse=mean_mse if kind == "tabular" else None,
        label_accuracy=label_accuracy(matched_labels, true_labels),
        label_multiset_accuracy=label_multiset_accuracy(reconstructed_labels, true_labels),
        mse_per_sample=mse_values,
        psnr_per_sample=psnr_values,
        ssim_per_sample=ssim_values,
    )


def score_against_dataset(
    result: ReconstructionLike, dataset: Dataset, indices: Tensor | Sequence[int]
) -> ReconstructionScore:
    """Return the score of ``result`` against the samples of ``dataset`` at ``indices``.

    The originals are ``dataset.denormalize(dataset.inputs[indices])`` with labels
    ``dataset.targets[indices]``, scored with ``data_range = high - low`` of
    ``dataset.value_range`` and ``dataset.kind`` by :func:`score_reconstruction`.
    ``indices`` are the samples the attacked client trained on, in any order.

    Args:
        result: an attack's result (``attacks.AttackResult`` or anything with
            ``raw_inputs [B, *input_shape]`` and ``labels [B]``).
        dataset: the dataset the client's samples came from.
        indices: the ``B`` dataset indices of those samples.

    Raises:
        ConfigError: ``result`` holds no reconstructed inputs (a label-only attack;
            score it with :func:`~leakage.metrics.label_multiset_accuracy`), the
            number of indices or the input shape does not match, or an index is out
            of range.

    >>> from leakage.data import load_dataset
    >>> from types import SimpleNamespace
    >>> digits = load_dataset("digits")
    >>> exact = SimpleNamespace(raw_inputs=digits.denormalize(digits.inputs[[5, 3]]), labels=digits.targets[[5, 3]])
    >>> score = score_against_dataset(exact, digits, [3, 5])
    >>> score.permutation, score.psnr, score.ssim, score.label_accuracy
    ((1, 0), inf, 1.0, 1.0)
    """
    raw_inputs = result.raw_inputs
    if raw_inputs.numel() == 0:
        raise ConfigError(
            "result.raw_inputs is empty: a label-only attack has no inputs to score; use label_multiset_accuracy"
        )
    index = torch.as_tensor(indices, dtype=torch.int64).reshape(-1)
    if index.numel() != raw_inputs.shape[0]:
        raise ConfigError(
            f"indices selects {index.numel()} samples but result.raw_inputs holds {raw_inputs.shape[0]} reconstructions"
        )
    if int(index.min()) < 0 or int(index.max()) >= len(dataset):
        raise ConfigError(f"indices must lie in [0, {len(dataset)}) for dataset {dataset.name!r}, got {index.tolist()}")
    if tuple(raw_inputs.shape[1:]) != dataset.input_shape:
        raise ConfigError(
            f"result.raw_inputs has sample shape {tuple(raw_inputs.shape[1:])} but dataset {dataset.name!r} "
            f"has input_shape {dataset.input_shape}"
        )
    originals = dataset.denormalize(dataset.inputs[index])
    low, high = dataset.value_range
    return score_reconstruction(
        raw_inputs,
        originals,
        reconstructed_labels=result.labels,
        true_labels=dataset.targets[index],
        data_range=high - low,
        kind=dataset.kind,
    )


def _as_floats(values: Tensor) -> tuple[float, ...]:
    return tuple(float(value) for value in values.cpu().tolist())


def _mean(values: tuple[float, ...]) -> float:
    # A plain sum: math.fsum raises on inf + (-inf), which an overflowing PSNR could produce.
    return sum(values) / len(values)
