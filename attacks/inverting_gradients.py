"""Inverting Gradients: cosine gradient matching with a total-variation prior, restarts batched.

Geiping, Bauermeister, Droege, Moeller, "Inverting Gradients - How easy is it to break
privacy in federated learning?" (NeurIPS 2020). For dummy inputs ``x`` in the valid box
the attack minimises

    ``1 - cos(upload(x, y), observed) + tv_weight * TV(x)``

with signed Adam steps, the learning rate divided by 10 at 3/8, 5/8 and 7/8 of the
iterations, and ``x`` projected back into the box after every step. ``upload`` is the
gradient for FedSGD or the update after unrolling the client's local steps for FedAvg
(:func:`attacks.objective.make_upload_function`). Labels come from ``knowledge.labels``
or from the last layer (:func:`attacks.labels.recover_labels`).

Restarts run batched: ``torch.func.vmap`` evaluates all ``R`` candidates in one call,
and since Adam and the projection act elementwise the restarts stay independent. The
restart with the smallest gradient distance is returned. ``batched=False`` runs the
same loop one restart after another (the reference the benchmark compares against).

Batch normalisation in the attacker's copy always uses the statistics of the candidate
batch, as the client's training step used its batch's (running averages are dropped),
and each restart gets its own under ``vmap``.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import replace

import torch
from torch import Tensor
from torch.func import vmap
from tqdm.auto import tqdm

from attacks.base import ATTACKS, Attack, AttackResult, Knowledge, Observation
from attacks.batch_norm import use_batch_statistics
from attacks.labels import recover_labels
from attacks.objective import (
    cosine_distance,
    make_upload_function,
    observed_target,
    total_variation,
)
from leakage.checks import require_bool, require_int, require_positive_float
from leakage.errors import ConfigError
from leakage.models import ParameterLayout

__all__ = ["InvertingGradientsAttack"]


@ATTACKS.register("inverting_gradients")
class InvertingGradientsAttack(Attack):
    """Geiping et al.'s attack with batched random restarts.

    Args:
        iterations: Adam steps per restart.
        lr: Adam step size (on signed gradients).
        tv_weight: weight of the total-variation prior (0 for tabular inputs).
        restarts: random starts; the best by gradient distance is returned.
        batched: run the restarts together under ``vmap`` (else one after another).
        tolerance: stop early once every restart's gradient distance is below it.
        signed: step on the sign of the gradient, as Geiping et al. do.
    """

    name = "inverting_gradients"

    def __init__(
        self,
        *,
        iterations: int = 1000,
        lr: float = 0.1,
        tv_weight: float = 1e-4,
        restarts: int = 4,
        batched: bool = True,
        tolerance: float = 1e-7,
        signed: bool = True,
    ) -> None:
        self.iterations = require_int("iterations", iterations, minimum=1)
        self.lr = require_positive_float("lr", lr)
        if isinstance(tv_weight, bool) or not isinstance(tv_weight, (int, float)) or not tv_weight >= 0:
            raise ConfigError(f"tv_weight must be a number >= 0, got {tv_weight!r}")
        self.tv_weight = float(tv_weight)
        self.restarts = require_int("restarts", restarts, minimum=1)
        self.batched = require_bool("batched", batched)
        self.tolerance = require_positive_float("tolerance", tolerance)
        self.signed = require_bool("signed", signed)

    def _run(
        self, observation: Observation, knowledge: Knowledge, *, generator: torch.Generator, show_progress: bool
    ) -> AttackResult:
        started = time.perf_counter()
        model = copy.deepcopy(knowledge.model).to(device=observation.params.device, dtype=observation.params.dtype)
        use_batch_statistics(model)
        search = replace(knowledge, model=model)
        params = {k: v.detach() for k, v in ParameterLayout.of(model).unflatten(observation.params).items()}
        observed = observed_target(observation, knowledge).detach()
        labels = knowledge.labels
        if labels is None:
            labels = recover_labels(observation, knowledge, generator=generator)
        labels = labels.to(observed.device)
        upload = make_upload_function(search)
        low, high = knowledge.bounds(observed)
        tv_weight = self.tv_weight if len(knowledge.input_shape) == 3 else 0.0

        def distance(inputs: Tensor) -> Tensor:
            return cosine_distance(upload(params, inputs, labels), observed)

        def objective(inputs: Tensor) -> Tensor:
            return distance(inputs) + tv_weight * total_variation(inputs)

        shape = (self.restarts, knowledge.num_samples, *knowledge.input_shape)
        starts = low + torch.rand(shape, generator=generator, dtype=observed.dtype).to(observed.device) * (high - low)
        groups = [starts] if self.batched else list(torch.split(starts, 1))
        finals: list[Tensor] = []
        found: list[Tensor] = []
        trace: list[tuple[int, float]] = []
        evals = 0
        progress = tqdm(total=self.iterations * len(groups), desc=self.name, disable=not show_progress)
        for group in groups:
            inputs, final, spent, group_trace = self._optimise(group, objective, distance, low, high, progress)
            finals.append(final)
            found.append(inputs)
            evals += spent
            trace += [(evals - spent + at, value) for at, value in group_trace]
        progress.close()
        distances = torch.cat(finals)
        candidates = torch.cat(found)
        best = int(torch.argmin(distances))
        reconstruction = candidates[best]
        return AttackResult(
            attack=self.name,
            inputs=reconstruction,
            raw_inputs=knowledge.denormalize(reconstruction),
            labels=labels.clone(),
            objective=float(distances[best]),
            trace=tuple(trace),
            restarts=tuple(float(d) for d in distances),
            objective_evals=evals,
            seconds=time.perf_counter() - started,
            converged=float(distances[best]) < self.tolerance,
        )

    def _optimise(
        self,
        starts: Tensor,
        objective: Callable[[Tensor], Tensor],
        distance: Callable[[Tensor], Tensor],
        low: Tensor,
        high: Tensor,
        progress: tqdm,  # type: ignore[type-arg]
    ) -> tuple[Tensor, Tensor, int, list[tuple[int, float]]]:
        """Run Adam on a group of restarts ``[R, B, ...]``; return inputs, final distances, evals, trace.

        A group of one restart runs the plain function, without ``vmap``: the
        straightforward loop the batched path is measured against.
        """
        batched_objective: Callable[[Tensor], Tensor]
        batched_distance: Callable[[Tensor], Tensor]
        if self.batched:
            batched_objective = vmap(objective)
            batched_distance = vmap(distance)
        else:
            batched_objective = _single(objective)
            batched_distance = _single(distance)
        inputs = starts.clone().requires_grad_(True)
        optimizer = torch.optim.Adam([inputs], lr=self.lr)
        milestones = [math.floor(self.iterations * f) for f in (3 / 8, 5 / 8, 7 / 8)]
        schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
        count = starts.shape[0]
        trace: list[tuple[int, float]] = []
        evals = 0
        for iteration in range(self.iterations):
            optimizer.zero_grad()
            values = batched_objective(inputs)
            (gradient,) = torch.autograd.grad(values.sum(), [inputs])
            evals += count
            inputs.grad = gradient.sign() if self.signed else gradient
            optimizer.step()
            schedule.step()
            with torch.no_grad():
                inputs.copy_(torch.maximum(torch.minimum(inputs, high), low))
            progress.update(1)
            if iteration % 50 == 0 or iteration == self.iterations - 1:
                with torch.no_grad():
                    current = batched_distance(inputs)
                trace.append((evals, float(current.min())))
                if bool((current < self.tolerance).all()):
                    break
        with torch.no_grad():
            final = batched_distance(inputs)
        return inputs.detach(), final, evals, trace


def _single(function: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    """Apply ``function`` to the only restart of a ``[1, B, ...]`` group, keeping the leading axis."""

    def apply(inputs: Tensor) -> Tensor:
        return function(inputs[0]).reshape(1)

    return apply
