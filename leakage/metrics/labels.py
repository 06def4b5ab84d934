"""How many labels an attack recovered: position by position, or as a multiset."""

from __future__ import annotations

import torch
from torch import Tensor

from leakage.errors import ConfigError
from leakage.metrics._validation import check_labels

__all__ = ["label_accuracy", "label_multiset_accuracy"]


def label_accuracy(predicted: Tensor, true: Tensor) -> float:
    """Return the fraction of positions where ``predicted`` equals ``true``, in ``[0, 1]``.

    ``accuracy = (1 / B) * sum_i [predicted_i == true_i]``. For batch reconstructions,
    permute ``predicted`` by the matching of the inputs first (see
    :func:`~leakage.metrics.match_reconstructions`), so each label is compared with the
    original its reconstruction was matched to.

    Args:
        predicted: ``[B]`` recovered class indices.
        true: ``[B]`` true class indices.

    Raises:
        ConfigError: the labels are not non-empty 1-D integer tensors of one length.

    >>> label_accuracy(torch.tensor([3, 1, 2, 2]), torch.tensor([3, 1, 0, 0]))
    0.5
    """
    _check_pair(predicted, true)
    return float((predicted == true.to(predicted.device)).to(torch.float64).mean())


def label_multiset_accuracy(predicted: Tensor, true: Tensor) -> float:
    """Return the fraction of the true label multiset that ``predicted`` recovers, order ignored, in ``[0, 1]``.

    ``accuracy = (1 / B) * sum_c min(count_c(predicted), count_c(true))``: each true
    label can be claimed once. This is how label-recovery attacks that return an
    unordered set of labels (iDLG for one sample, Wainakh et al. 2022 "User-level label
    leakage from gradients in federated learning" for batches) are scored.

    Args:
        predicted: ``[B]`` recovered class indices (non-negative).
        true: ``[B]`` true class indices (non-negative).

    Raises:
        ConfigError: the labels are not non-empty 1-D integer tensors of one length,
            or hold negative classes.

    >>> label_multiset_accuracy(torch.tensor([2, 0, 0, 5]), torch.tensor([0, 2, 2, 0]))
    0.75
    """
    _check_pair(predicted, true)
    true = true.to(predicted.device)
    if int(predicted.min()) < 0 or int(true.min()) < 0:
        raise ConfigError("label_multiset_accuracy needs class indices >= 0")
    num_classes = int(torch.maximum(predicted.max(), true.max())) + 1
    predicted_counts = torch.bincount(predicted.to(torch.int64), minlength=num_classes)
    true_counts = torch.bincount(true.to(torch.int64), minlength=num_classes)
    recovered = torch.minimum(predicted_counts, true_counts).sum()
    return float(recovered) / int(true.numel())


def _check_pair(predicted: Tensor, true: Tensor) -> None:
    check_labels("predicted", predicted)
    check_labels("true", true)
    if predicted.shape != true.shape:
        raise ConfigError(
            f"predicted and true must hold the same number of labels, got {predicted.numel()} and {true.numel()}"
        )
