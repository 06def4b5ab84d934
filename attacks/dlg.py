"""DLG and iDLG: invert a gradient (or unrolled update) by L-BFGS on dummy inputs.

Zhu, Liu, Han, "Deep Leakage from Gradients" (NeurIPS 2019): draw dummy inputs
``x'`` and dummy label logits ``y'``, and minimise ``|| grad_theta CE(f(x'), softmax(y'))
- g ||^2`` over both with L-BFGS. Zhao, Mopuri, Bilen, "iDLG: Improved Deep Leakage
from Gradients" (2020): for one sample the label is read exactly from the last
layer's gradient (:mod:`attacks.labels`), then only ``x'`` is optimised.

Against a FedAvg update the same search runs on the unrolled local steps
(:func:`attacks.objective.make_upload_function`), matching the observed update.
Restarts run one after another and stop as soon as one converges (relative
objective below ``tolerance``); the best restart is returned.

Warm start: for one sample and a model that is a chain of linear and convolutional
layers with invertible activations (the DLG paper's sigmoid LeNet, sigmoid MLPs,
logistic regression), the first restart starts from the closed-form recursive
inversion of :mod:`attacks.warm_start` (R-GAP, Zhu and Blaschko, ICLR 2021) instead of
noise; the L-BFGS search then only polishes it against the exact objective.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import torch
from torch import Tensor
from tqdm.auto import tqdm

from attacks.base import ATTACKS, Attack, AttackResult, Knowledge, Observation
from attacks.batch_norm import use_batch_statistics
from attacks.labels import recover_labels
from attacks.lbfgs import minimize_lbfgs
from attacks.objective import make_single_upload_function, observed_target
from attacks.warm_start import invert_recursively, is_recursively_invertible
from leakage.checks import require_choice, require_int, require_positive_float
from leakage.errors import ThreatModelError
from leakage.models import ParameterLayout

__all__ = ["DLGAttack", "IDLGAttack"]

_DTYPES = {"float32": torch.float32, "float64": torch.float64}
# "mixed" searches in float32 until the objective is within this factor of the
# tolerance (or float32 stalls), then polishes in float64
_MIXED_SWITCH = 100.0


@dataclass(frozen=True)
class _Matching:
    """The gradient-matching objective in one precision: ``sum_i w_i (upload(x)_i - g_i)^2``."""

    evaluate: Callable[[Tensor], tuple[float, Tensor]]
    dtype: torch.dtype


@ATTACKS.register("dlg")
class DLGAttack(Attack):
    """Deep Leakage from Gradients: L-BFGS on dummy inputs and soft dummy labels.

    Two choices differ from the paper's code and are options: the squared error of
    each layer is divided by that layer's observed squared norm (``objective="layer_l2"``;
    ``"l2"`` is the paper's plain sum, dominated by the largest layer), and dummy inputs
    start uniform in the valid box (``init="uniform"``; ``"randn"`` is the paper's).
    Both make L-BFGS converge in fewer evaluations on the sigmoid LeNet.

    Args:
        restarts: at most this many starts; the run stops at the first that converges.
        tolerance: convergence when the (normalised) objective falls below it.
        history_size: L-BFGS memory (pairs kept).
        objective: ``"layer_l2"`` or ``"l2"``.
        init: ``"uniform"`` (in the valid box) or ``"randn"``: how random starts are drawn.
        max_evals: objective evaluations allowed per restart (the paper's 300 L-BFGS
            steps of up to 20 evaluations are at most 6000).
        dtype: ``"float32"``, ``"float64"``, or ``"mixed"``: float32 until the objective is
            within 100x of ``tolerance`` or stops improving, then float64. Float32
            evaluations are cheaper but stall near ``1e-9`` on the sigmoid LeNet, short of
            the default tolerance.
        warm_start: ``"auto"`` starts the first restart from the recursive inversion
            (:func:`attacks.warm_start.invert_recursively`) where it applies (one sample, a
            chain of linear/convolutional layers with invertible activations), ``"rgap"``
            requires it, ``"none"`` starts from noise. ``details["warm_start"]`` is 1.0
            where it ran, and ``details["warm_start_seconds"]`` what it cost.
    """

    name = "dlg"
    optimise_labels = True

    def __init__(
        self,
        *,
        restarts: int = 2,
        tolerance: float = 1e-9,
        history_size: int = 300,
        objective: Literal["layer_l2", "l2"] = "layer_l2",
        init: Literal["uniform", "randn"] = "uniform",
        max_evals: int = 3000,
        dtype: Literal["float32", "float64", "mixed"] = "float64",
        warm_start: Literal["auto", "rgap", "none"] = "none",
    ) -> None:
        self.restarts = require_int("restarts", restarts, minimum=1)
        self.tolerance = require_positive_float("tolerance", tolerance)
        self.history_size = require_int("history_size", history_size, minimum=1)
        self.objective = require_choice("objective", objective, ("layer_l2", "l2"))
        self.init = require_choice("init", init, ("uniform", "randn"))
        self.max_evals = require_int("max_evals", max_evals, minimum=1)
        self.dtype = require_choice("dtype", dtype, ("float32", "float64", "mixed"))
        self.warm_start = require_choice("warm_start", warm_start, ("auto", "rgap", "none"))

    def _fixed_labels(
        self, observation: Observation, knowledge: Knowledge, generator: torch.Generator
    ) -> Tensor | None:
        return knowledge.labels

    def _run(
        self, observation: Observation, knowledge: Knowledge, *, generator: torch.Generator, show_progress: bool
    ) -> AttackResult:
        started = time.perf_counter()
        device = observation.params.device
        observed = observed_target(observation, knowledge).detach()
        fixed = self._fixed_labels(observation, knowledge, generator)
        fixed = None if fixed is None else fixed.to(device)
        precisions = ("float32", "float64") if self.dtype == "mixed" else (self.dtype,)
        draw_dtype = _DTYPES[precisions[-1]]
        low, high = knowledge.bounds(observed.to(draw_dtype))
        warm_started = time.perf_counter()
        warm = self._warm_start(observation, knowledge)
        warm_seconds = time.perf_counter() - warm_started
        shape = (knowledge.num_samples, *knowledge.input_shape)
        logits_shape = (knowledge.num_samples, knowledge.num_classes)
        with _fast_float32_convolutions(device):
            matchings = [
                self._matching(observation, knowledge, observed, _DTYPES[name], fixed, shape) for name in precisions
            ]
            evals = 0
            trace: list[tuple[int, float]] = []
            finals: list[float] = []
            best: tuple[float, Tensor] | None = None
            progress = tqdm(desc=f"{self.name} iterations", disable=not show_progress)
            for restart in range(self.restarts):
                # drawn even when the warm start replaces it, so later restarts start alike either way
                if self.init == "uniform":
                    start = low + torch.rand(shape, generator=generator, dtype=draw_dtype).to(device) * (high - low)
                else:
                    start = torch.randn(shape, generator=generator, dtype=draw_dtype).to(device)
                if restart == 0 and warm is not None:
                    start = torch.minimum(torch.maximum(warm.to(draw_dtype), low), high)
                logits = torch.randn(logits_shape, generator=generator, dtype=draw_dtype).to(device)
                initial = start.reshape(-1) if fixed is not None else torch.cat([start.reshape(-1), logits.reshape(-1)])
                value, found, spent = self._search(initial, matchings, progress)
                evals += spent
                finals.append(value)
                if best is None or (math.isfinite(value) and value < best[0]):
                    best = (value, found)
                trace.append((evals, best[0]))
                if best[0] < self.tolerance:
                    break
            progress.close()
        assert best is not None
        value, flat = best
        size = math.prod(shape)
        found = flat[:size].reshape(shape).to(observation.params.dtype)
        labels = fixed if fixed is not None else flat[size:].reshape(logits_shape).argmax(-1)
        return AttackResult(
            attack=self.name,
            inputs=found,
            raw_inputs=knowledge.denormalize(found),
            labels=labels.to(torch.int64),
            objective=value,
            trace=tuple(trace),
            restarts=tuple(finals),
            objective_evals=evals,
            seconds=time.perf_counter() - started,
            converged=value < self.tolerance,
            details={"warm_start": float(warm is not None), "warm_start_seconds": warm_seconds},
        )

    def _warm_start(self, observation: Observation, knowledge: Knowledge) -> Tensor | None:
        """Return the recursive inversion of the one sample, or ``None`` where it does not apply.

        Any nonzero multiple of a gradient inverts alike, so a FedSGD update needs no learning
        rate; a one-sample FedAvg update of several steps is close to a multiple of the first
        gradient when the steps are small, which is all a warm start needs.

        Raises:
            ThreatModelError: ``warm_start="rgap"`` where the inversion does not apply.
        """
        if self.warm_start == "none":
            return None
        applies = knowledge.num_samples == 1 and is_recursively_invertible(knowledge.model, knowledge.input_shape)
        if not applies:
            if self.warm_start == "rgap":
                raise ThreatModelError(
                    "warm_start='rgap' needs one sample and a chain of nn.Linear/nn.Conv2d layers with sigmoid, tanh "
                    "or leaky ReLU activations ending in nn.Linear with a bias; use warm_start='auto' or 'none'"
                )
            return None
        estimate = invert_recursively(knowledge.model, knowledge.input_shape, observation.params, observation.value)
        if not bool(torch.isfinite(estimate).all()):  # e.g. an all-zero classifier gradient
            if self.warm_start == "rgap":
                raise ThreatModelError("the recursive inversion gave non-finite inputs (is the gradient all zeros?)")
            return None
        return estimate

    def _matching(
        self,
        observation: Observation,
        knowledge: Knowledge,
        observed: Tensor,
        dtype: torch.dtype,
        fixed: Tensor | None,
        shape: tuple[int, ...],
    ) -> _Matching:
        """Return the objective over the flat unknowns (inputs, then DLG's label logits) in ``dtype``."""
        device = observation.params.device
        model = use_batch_statistics(copy.deepcopy(knowledge.model)).to(device=device, dtype=dtype)
        upload = make_single_upload_function(replace(knowledge, model=model))
        layout = ParameterLayout.of(model)
        # leaves that require grad once, instead of on every evaluation
        params = {
            name: value.to(dtype).detach().requires_grad_(knowledge.algorithm == "fedsgd")
            for name, value in layout.unflatten(observation.params.detach()).items()
        }
        target = observed.to(dtype)
        weights = _objective_weights(target, layout.sizes, per_layer=self.objective == "layer_l2")
        size = math.prod(shape)

        def evaluate(flat: Tensor) -> tuple[float, Tensor]:
            flat = flat.detach().requires_grad_(True)
            inputs = flat[:size].reshape(shape)
            targets = fixed if fixed is not None else torch.softmax(flat[size:].reshape(shape[0], -1), dim=-1)
            value = (weights * (upload(params, inputs, targets) - target).pow(2)).sum()
            (gradient,) = torch.autograd.grad(value, flat)
            return float(value.detach()), gradient

        return _Matching(evaluate, dtype)

    def _search(
        self,
        initial: Tensor,
        matchings: Sequence[_Matching],
        progress: tqdm,  # type: ignore[type-arg]
    ) -> tuple[float, Tensor, int]:
        """One restart, precision after precision; returns ``(objective, unknowns, evaluations)``.

        Every precision but the last stops within ``_MIXED_SWITCH`` of the tolerance and
        hands its point on; the last runs to the tolerance or the budget.
        """
        spent = 0
        flat = initial
        value = math.inf
        for position, matching in enumerate(matchings):
            is_last = position == len(matchings) - 1
            result = minimize_lbfgs(
                matching.evaluate,
                flat.to(matching.dtype),
                max_evals=self.max_evals - spent,
                memory=self.history_size,
                tolerance=self.tolerance if is_last else self.tolerance * _MIXED_SWITCH,
                on_iteration=_ticker(progress),
            )
            spent += result.evaluations
            flat, value = result.x, result.value
            if value < self.tolerance or spent >= self.max_evals:
                break
        return value, flat.detach().to(initial.dtype), spent


@contextlib.contextmanager
def _fast_float32_convolutions(device: torch.device) -> Iterator[None]:
    """Turn oneDNN (MKLDNN) off on CPU while the search runs.

    For the batch-1 convolutions of DLG, oneDNN's float32 kernels cost more in set-up
    than they save: float32 objective evaluations of the sigmoid LeNet ran 1.3-1.5x faster
    without it (one thread). The flag is process-wide and restored on exit; it changes
    speed, never results beyond rounding.
    """
    if device.type != "cpu":
        yield
        return
    # set the one flag: the flags() context also resets oneDNN's TF32 setting and warns
    previous = bool(torch.backends.mkldnn.enabled)
    setattr(torch.backends.mkldnn, "enabled", False)  # noqa: B010 (typed as a descriptor, set as a bool)
    try:
        yield
    finally:
        setattr(torch.backends.mkldnn, "enabled", previous)  # noqa: B010


def _ticker(progress: tqdm) -> Callable[[int, float], None]:  # type: ignore[type-arg]
    """Return a callback that advances ``progress`` by one iteration."""

    def tick(evaluations: int, value: float) -> None:
        progress.update(1)

    return tick


def _objective_weights(observed: Tensor, sizes: Sequence[int], *, per_layer: bool) -> Tensor:
    """Per-coordinate weights: ``1 / ||g_layer||^2`` per layer, or ``1 / ||g||^2`` for all.

    A layer observed as all zeros (pruned away, or frozen) falls back to the global norm
    instead of an infinite weight.
    """
    total = max(float(observed.pow(2).sum()), 1e-300)
    if not per_layer:
        return torch.full_like(observed, 1.0 / total)
    pieces = torch.split(observed, list(sizes))
    norms = [float(piece.pow(2).sum()) or total for piece in pieces]
    weights = [torch.full_like(piece, 1.0 / (norm * len(pieces))) for piece, norm in zip(pieces, norms, strict=True)]
    return torch.cat(weights)


@ATTACKS.register("idlg")
class IDLGAttack(DLGAttack):
    """iDLG: labels recovered from the last layer first, then DLG on the inputs alone.

    For one sample the label is the class whose last-layer bias gradient is negative;
    for ``B > 1`` the per-class counts are estimated (:func:`attacks.labels.recover_labels`).
    Known labels in ``knowledge.labels`` are used as they are. Options as for DLG; the
    defaults differ, each measured on the DLG paper's setting (sigmoid LeNet, one 32x32
    image, 10 seeds, one thread; ``benchmarks/gradient_inversion.py``):

    - ``warm_start="auto"``: the recursive inversion alone reaches about 100 dB on every
      seed, so the search stops at its first evaluation (10/10 seeds >= 30 dB, against
      8/10 from noise).
    - ``restarts=1, max_evals=6000`` (the paper's 300 steps of up to 20 evaluations): from
      noise, a hard seed is hard from every start (second restarts ended within 2.5x of the
      first's objective), while continuing one restart turned both failed seeds into
      successes (23.7 and 22.9 dB with two restarts of 3000, 32.9 and 36.5 dB with one of 6000).
    - ``dtype="mixed"``: same reconstructions as float64 at 1.16x less CPU time from noise.
    """

    name = "idlg"

    def __init__(
        self,
        *,
        restarts: int = 1,
        tolerance: float = 1e-9,
        history_size: int = 300,
        objective: Literal["layer_l2", "l2"] = "layer_l2",
        init: Literal["uniform", "randn"] = "uniform",
        max_evals: int = 6000,
        dtype: Literal["float32", "float64", "mixed"] = "mixed",
        warm_start: Literal["auto", "rgap", "none"] = "auto",
    ) -> None:
        super().__init__(
            restarts=restarts, tolerance=tolerance, history_size=history_size, objective=objective, init=init,
            max_evals=max_evals, dtype=dtype, warm_start=warm_start,
        )

    def _fixed_labels(
        self, observation: Observation, knowledge: Knowledge, generator: torch.Generator
    ) -> Tensor | None:
        if knowledge.labels is not None:
            return knowledge.labels
        return recover_labels(observation, knowledge, generator=generator)
