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
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Literal

import torch
from torch import Tensor
from tqdm.auto import tqdm

from attacks.base import ATTACKS, Attack, AttackResult, Knowledge, Observation
from attacks.labels import recover_labels
from attacks.lbfgs import minimize_lbfgs
from attacks.objective import UploadFunction, make_upload_function, observed_target
from leakage.checks import require_choice, require_int, require_positive_float
from leakage.models import ParameterLayout

__all__ = ["DLGAttack", "IDLGAttack"]


@ATTACKS.register("dlg")
class DLGAttack(Attack):
    """Deep Leakage from Gradients: L-BFGS on dummy inputs and soft dummy labels.

    Two choices differ from the paper's code and are options: the squared error of
    each layer is divided by that layer's observed squared norm (``objective="layer_l2"``;
    ``"l2"`` is the paper's plain sum, dominated by the largest layer), and dummy inputs
    start uniform in the valid box (``init="uniform"``; ``"randn"`` is the paper's).
    Both make L-BFGS converge in fewer evaluations on the sigmoid LeNet; the search runs
    in float64 so that it can reach errors far below what images need.

    Args:
        restarts: at most this many random starts; the run stops at the first that converges.
        tolerance: convergence when the (normalised) objective falls below it.
        history_size: L-BFGS memory (pairs kept).
        objective: ``"layer_l2"`` or ``"l2"``.
        init: ``"uniform"`` (in the valid box) or ``"randn"``.
        max_evals: objective evaluations allowed per restart (the paper's 300 L-BFGS
            steps of up to 20 evaluations are at most 6000).
        dtype: ``"float32"`` or ``"float64"`` for the search.
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
        dtype: Literal["float32", "float64"] = "float64",
    ) -> None:
        self.restarts = require_int("restarts", restarts, minimum=1)
        self.tolerance = require_positive_float("tolerance", tolerance)
        self.history_size = require_int("history_size", history_size, minimum=1)
        self.objective = require_choice("objective", objective, ("layer_l2", "l2"))
        self.init = require_choice("init", init, ("uniform", "randn"))
        self.max_evals = require_int("max_evals", max_evals, minimum=1)
        self.dtype = getattr(torch, require_choice("dtype", dtype, ("float32", "float64")))

    def _fixed_labels(
        self, observation: Observation, knowledge: Knowledge, generator: torch.Generator
    ) -> Tensor | None:
        return knowledge.labels

    def _run(
        self, observation: Observation, knowledge: Knowledge, *, generator: torch.Generator, show_progress: bool
    ) -> AttackResult:
        started = time.perf_counter()
        dtype = self.dtype
        device = observation.params.device
        model = copy.deepcopy(knowledge.model).to(device=device, dtype=dtype)
        search = replace(knowledge, model=model)
        layout = ParameterLayout.of(model)
        params = {k: v.to(dtype) for k, v in layout.unflatten(observation.params.detach()).items()}
        observed = observed_target(observation, knowledge).detach().to(dtype)
        weights = _objective_weights(observed, layout.sizes, per_layer=self.objective == "layer_l2")
        upload = make_upload_function(search)
        fixed = self._fixed_labels(observation, knowledge, generator)
        fixed = None if fixed is None else fixed.to(device)
        low, high = knowledge.bounds(observed)
        evals = 0
        trace: list[tuple[int, float]] = []
        finals: list[float] = []
        best: tuple[float, Tensor, Tensor] | None = None
        progress = tqdm(desc=f"{self.name} iterations", disable=not show_progress)
        for _ in range(self.restarts):
            shape = (knowledge.num_samples, *knowledge.input_shape)
            if self.init == "uniform":
                start = low + torch.rand(shape, generator=generator, dtype=dtype).to(device) * (high - low)
            else:
                start = torch.randn(shape, generator=generator, dtype=dtype).to(device)
            logits_shape = (knowledge.num_samples, knowledge.num_classes)
            logits = torch.randn(logits_shape, generator=generator, dtype=dtype).to(device)
            value, inputs, labels, spent = self._search(
                start, logits, fixed, upload, params, observed, weights, progress
            )
            evals += spent
            finals.append(value)
            if best is None or (math.isfinite(value) and value < best[0]):
                best = (value, inputs, labels)
            trace.append((evals, best[0]))
            if best[0] < self.tolerance:
                break
        progress.close()
        assert best is not None
        value, found, labels = best
        found = found.to(observation.params.dtype)
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
        )

    def _search(
        self,
        start: Tensor,
        logits: Tensor,
        fixed: Tensor | None,
        upload: UploadFunction,
        params: dict[str, Tensor],
        observed: Tensor,
        weights: Tensor,
        progress: tqdm,  # type: ignore[type-arg]
    ) -> tuple[float, Tensor, Tensor, int]:
        """One L-BFGS restart; returns ``(objective, inputs, labels, evaluations)``.

        The unknowns are one flat vector: the inputs, then (DLG) the label logits.
        """
        size = start.numel()

        def split(flat: Tensor) -> tuple[Tensor, Tensor | None]:
            inputs = flat[:size].reshape(start.shape)
            return inputs, (None if fixed is not None else flat[size:].reshape(logits.shape))

        def objective(flat: Tensor) -> tuple[float, Tensor]:
            flat = flat.detach().requires_grad_(True)
            inputs, label_logits = split(flat)
            targets = torch.softmax(label_logits, dim=-1) if label_logits is not None else fixed
            assert targets is not None
            value = (weights * (upload(params, inputs, targets) - observed).pow(2)).sum()
            (gradient,) = torch.autograd.grad(value, flat)
            return float(value.detach()), gradient

        initial = start.reshape(-1) if fixed is not None else torch.cat([start.reshape(-1), logits.reshape(-1)])
        result = minimize_lbfgs(
            objective,
            initial,
            max_evals=self.max_evals,
            memory=self.history_size,
            tolerance=self.tolerance,
            on_iteration=_ticker(progress),
        )
        inputs, label_logits = split(result.x)
        if label_logits is not None:
            labels = label_logits.argmax(-1)
        else:
            assert fixed is not None
            labels = fixed
        return result.value, inputs.detach().clone(), labels.clone(), result.evaluations


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
    Known labels in ``knowledge.labels`` are used as they are. Options as for DLG.
    """

    name = "idlg"

    def _fixed_labels(
        self, observation: Observation, knowledge: Knowledge, generator: torch.Generator
    ) -> Tensor | None:
        if knowledge.labels is not None:
            return knowledge.labels
        return recover_labels(observation, knowledge, generator=generator)
