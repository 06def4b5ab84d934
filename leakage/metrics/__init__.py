"""Honest scores: reconstruction errors, label recovery, matching, and recovered-update similarity.

Metrics take raw (denormalised) tensors and the width of their real value range.
Batch reconstructions are matched one to one with the originals (Hungarian method on
MSE) before they are scored, so an attack is neither punished for returning its
samples in another order nor rewarded for reconstructing one sample many times.

>>> import torch
>>> from leakage.metrics import psnr, score_reconstruction
>>> originals = torch.zeros(2, 1, 8, 8)
>>> psnr(originals + 0.1, originals, data_range=1.0)
tensor([20.0000, 20.0000], dtype=torch.float64)
>>> score = score_reconstruction(originals.flip(0), originals, reconstructed_labels=torch.tensor([3, 1]),
...     true_labels=torch.tensor([3, 1]), data_range=1.0, kind="image")
>>> score.ssim, score.label_accuracy
(1.0, 1.0)
"""

from leakage.metrics.grid import GRID_PADDING, save_reconstruction_grid
from leakage.metrics.image import SSIM_WINDOW, default_ssim_window, mse, psnr, ssim
from leakage.metrics.labels import label_accuracy, label_multiset_accuracy
from leakage.metrics.matching import MatchingCost, match_reconstructions, pairwise_mse
from leakage.metrics.membership import LOW_FPRS, TprAtFpr, membership_figures, tpr_at_fpr
from leakage.metrics.reconstruction import (
    DEFAULT_SUCCESS_PSNR,
    ReconstructionLike,
    ReconstructionScore,
    score_against_dataset,
    score_reconstruction,
)
from leakage.metrics.samples import SampleMatch, match_samples
from leakage.metrics.tabular import feature_mse
from leakage.metrics.updates import relative_error, update_cosine

__all__ = [
    "DEFAULT_SUCCESS_PSNR",
    "GRID_PADDING",
    "LOW_FPRS",
    "SSIM_WINDOW",
    "TprAtFpr",
    "MatchingCost",
    "ReconstructionLike",
    "ReconstructionScore",
    "SampleMatch",
    "default_ssim_window",
    "feature_mse",
    "label_accuracy",
    "label_multiset_accuracy",
    "match_reconstructions",
    "match_samples",
    "membership_figures",
    "mse",
    "pairwise_mse",
    "psnr",
    "relative_error",
    "save_reconstruction_grid",
    "score_against_dataset",
    "score_reconstruction",
    "ssim",
    "tpr_at_fpr",
    "update_cosine",
]
