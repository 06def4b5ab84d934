"""Analytic inversion: read inputs straight out of a first fully connected layer's gradient.

For a first layer ``z = W x + b`` (inputs flattened, ``W`` is ``[H, D]``) the gradient of
one sample is ``dL/dW = delta x^T`` and ``dL/db = delta`` with ``delta = dL/dz``, so every
row ``k`` with ``dL/db_k != 0`` holds the input: ``x = (dL/dW)_k / (dL/db_k)``. Using all
rows, the least-squares solution is ``x = sum_k g_b,k g_W,k / sum_k g_b,k^2`` (exact for one
sample; Phong et al., "Privacy-Preserving Deep Learning via Additively Homomorphic
Encryption", 2018). The ratio is scale-free, so a FedSGD update ``-lr * gradient`` works
without knowing ``lr``, and so does a several-step update of one sample (every step adds
another multiple of ``x^T`` to each row).

Batches, first layer followed by ReLU: a unit active for exactly one sample ``i`` has
``delta_jk = 0`` for every other ``j``, so its row gives ``x_i`` exactly. This is the
observation behind Fowl et al., "Robbing the Fed" (ICLR 2022) and Boenisch et al., "When
the Curious Abandon Honesty" (EuroS&P 2023); here the model is honest (random). Rows
active for several samples give mixtures. The attack groups the candidate rows
``c_k = G_W[k] / g_b[k]`` that coincide; a group of two or more rows is evidence of one
input. Mixtures of two samples with similar predictions (same label, random model)
coincide too, and an input may own a single row, so groups are not simply taken by
size: a set of ``B`` candidates must explain the rows through its own ReLU pattern
``W x + b > 0`` (a row is zero iff no chosen input activates it; a row activated by one
chosen input holds that input) and, among the most consistent sets, reproduce
``[G_W, g_b]`` best when each row mixes only the inputs active there. The search starts
from the largest groups and swaps one input at a time for any other group while the fit
improves; inputs backed by a single row are accepted only if the fit is then exact.

Logistic regression (the first layer is the last): with distinct labels, row ``c`` of a
class held by sample ``i`` is ``(1/B)[(p_ic - 1) x_i + sum_{j != i} p_jc x_j]``, so its
ratio is ``x_i + sum_{j != i} p_jc (x_i - x_j) / (1 - sum_j p_jc)``: approximate (see
:func:`class_row_estimate`). The attack then solves the exact gradient equations
``dL/dW = s (P(X) - Y)^T X`` by fixed-point iteration, recomputing ``P(X)`` from the model.
"""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass, replace
from typing import Literal, get_args

import torch
from torch import Tensor, nn
from torch.func import functional_call

from attacks.base import ATTACKS, Attack, AttackResult, Knowledge, Observation
from attacks.labels import last_layer, recover_labels
from leakage.checks import require_choice, require_int, require_positive_float
from leakage.errors import ConfigError, ThreatModelError
from leakage.models import ParameterLayout

__all__ = [
    "AnalyticInversion",
    "AnalyticMethod",
    "FirstLayer",
    "class_row_estimate",
    "first_layer",
    "invert_rank_one",
]

AnalyticMethod = Literal["auto", "single", "relu_rows", "class_rows"]
_METHODS: tuple[AnalyticMethod, ...] = get_args(AnalyticMethod)

_CONVERGED = 1e-6  # relative residual below which the fit is exact up to float32 rounding
_ROW_FLOOR = 1e-9  # rows whose |g_b| is below this fraction of the largest are not candidates
_MIN_ROWS = 2  # a lone row is indistinguishable from a mixture; two coinciding rows are evidence
_MAX_SUBSETS = 5000  # bound on the B-subsets of candidate groups checked for consistency
_MAX_FITS = 16  # equally consistent subsets compared by their least-squares residual
_CHUNK_ENTRIES = 1 << 22  # [subsets, B, H] activity entries scored at once
_HARMLESS = (nn.Flatten, nn.Identity)  # modules allowed before the first layer


@dataclass(frozen=True)
class FirstLayer:
    """Where the first fully connected layer sits in the flat parameter vector."""

    name: str
    weight: slice
    bias: slice
    in_features: int
    out_features: int
    is_last: bool  # no parametrised layer follows: the first layer is the classifier
    has_relu: bool  # the next module applied is nn.ReLU


def first_layer(model: nn.Module, input_shape: tuple[int, ...]) -> FirstLayer:
    """Return the first parametrised layer of ``model`` (module order) if it is ``nn.Linear`` with bias.

    Raises:
        ThreatModelError: the first parametrised layer is not ``nn.Linear`` with a bias,
            something other than ``nn.Flatten`` transforms the input before it, or its
            ``in_features`` is not the flattened ``input_shape``.

    >>> first_layer(nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)), (1, 2, 2)).has_relu
    True
    """
    leaves = [(name, module) for name, module in model.named_modules() if not list(module.children())]
    position = next((i for i, (_, m) in enumerate(leaves) if list(m.parameters(recurse=False))), None)
    if position is None:
        raise ThreatModelError("analytic inversion needs a model with parameters; this one has none")
    name, layer = leaves[position]
    if not isinstance(layer, nn.Linear) or layer.bias is None:
        kind = type(layer).__name__ + (" without bias" if isinstance(layer, nn.Linear) else "")
        raise ThreatModelError(
            f"analytic inversion needs the first parametrised layer to be nn.Linear with a bias, "
            f"got {kind} {name!r}"
        )
    for before, module in leaves[:position]:
        if not isinstance(module, _HARMLESS):
            raise ThreatModelError(
                f"analytic inversion recovers the input of the first linear layer, but {type(module).__name__} "
                f"{before!r} transforms the input before it"
            )
    if layer.in_features != math.prod(input_shape):
        raise ThreatModelError(
            f"the first linear layer {name!r} takes {layer.in_features} features, "
            f"not the flattened input_shape {input_shape}"
        )
    offsets: dict[str, slice] = {}
    start = 0
    layout = ParameterLayout.of(model)
    for param, size in zip(layout.names, layout.sizes, strict=True):
        offsets[param], start = slice(start, start + size), start + size
    prefix = f"{name}." if name else ""
    later = leaves[position + 1 :]
    return FirstLayer(
        name=name,
        weight=offsets[f"{prefix}weight"],
        bias=offsets[f"{prefix}bias"],
        in_features=layer.in_features,
        out_features=layer.out_features,
        is_last=not any(list(m.parameters(recurse=False)) for _, m in later),
        has_relu=bool(later) and isinstance(later[0][1], nn.ReLU),
    )


def invert_rank_one(weight_grad: Tensor, bias_grad: Tensor) -> tuple[Tensor, float]:
    """Return ``(x, residual)``: the least-squares ``x`` with ``weight_grad ~ bias_grad x^T``.

    ``x = sum_k g_b,k g_W,k / sum_k g_b,k^2``; ``residual = ||G_W - g_b x^T|| / ||G_W||``
    is 0 for one sample.

    Args:
        weight_grad: ``[H, D]`` gradient (or update) of the first layer's weight.
        bias_grad: ``[H]`` gradient (or update) of its bias, same scale.

    >>> x, residual = invert_rank_one(torch.tensor([[2.0, 4.0], [-1.0, -2.0]]), torch.tensor([2.0, -1.0]))
    >>> x.tolist(), residual
    ([1.0, 2.0], 0.0)
    """
    x = bias_grad @ weight_grad / (bias_grad @ bias_grad)
    residual = (weight_grad - torch.outer(bias_grad, x)).norm() / weight_grad.norm()
    return x, float(residual)


def class_row_estimate(weight_grad: Tensor, bias_grad: Tensor, labels: Tensor) -> Tensor:
    """Return ``[B, D]`` estimates ``G_W[c] / g_b[c]`` of the samples holding the distinct ``labels``.

    For softmax regression the row of class ``c = y_i`` is ``(1/B)[(p_ic - 1) x_i +
    sum_{j != i} p_jc x_j]`` and its bias entry ``(1/B)[p_ic - 1 + sum_{j != i} p_jc]``,
    so the estimate is approximate::

        G_W[c] / g_b[c] = x_i + sum_{j != i} p_jc (x_i - x_j) / (1 - sum_j p_jc)

    exact for one sample and close when the other samples give class ``c`` little
    probability (a trained model), far when predictions are near uniform.

    >>> class_row_estimate(torch.tensor([[3.0, 6.0], [0.0, 1.0]]), torch.tensor([3.0, 1.0]), torch.tensor([0])).tolist()
    [[1.0, 2.0]]
    """
    return weight_grad[labels] / bias_grad[labels, None]


@ATTACKS.register("analytic")
class AnalyticInversion(Attack):
    """Closed-form input recovery from the first fully connected layer (see the module docstring).

    Args:
        method: ``"single"`` (one sample, any first ``nn.Linear`` with bias),
            ``"relu_rows"`` (a batch, first layer followed by ReLU), ``"class_rows"``
            (a batch of distinct labels, the first layer is the classifier), or ``"auto"``
            (``single`` for one sample, else ``class_rows`` if the first layer is the
            last, else ``relu_rows``).
        tolerance: relative distance ``||c_k - c_l|| / mean(||c_k||, ||c_l||)`` under
            which two candidate rows count as one input (``relu_rows``). Rows of one input
            agree to float32 rounding (measured <= 2e-7 on digits); the default 1e-5
            leaves a 50x margin. Mixtures of two inputs with similar predictions can
            coincide even closer, which the activation-pattern check resolves.
        refine_steps: fixed-point iterations that solve the softmax regression
            gradient equations exactly (``class_rows``); 0 keeps the approximate
            :func:`class_row_estimate`. The equations determine the inputs only for
            ``B < num_classes``; with ``B = num_classes`` the estimate is returned
            unrefined and never reported as converged.

    Labels: ``single`` returns ``knowledge.labels`` if declared, else the one negative
    bias-gradient entry. ``class_rows`` returns the declared labels or the ``B`` most
    negative entries, sorted, each aligned with its sample. ``relu_rows`` ignores declared
    labels and assigns each recovered input its own: with the inputs known, the
    penultimate features ``F`` follow, and the last layer's gradient ``(1/B)(P - Y)^T F``
    times the pseudo-inverse of ``F`` gives ``(P - Y)^T / B``, whose only negative entry per
    sample is its label (exact for one step, scale-free, so no ``lr`` is needed).

    Result: ``objective`` is the relative residual of the first layer's gradient
    explained by the recovered inputs (rank one for ``single``; per row only the inputs
    active there for ``relu_rows``; ``s (P - Y)^T [X, 1]`` for ``class_rows``), and
    ``converged`` says it is below 1e-6, i.e. exact up to float32 rounding. ``relu_rows``
    returns the inputs by decreasing group size and reports, in ``details``, each one's
    number of rows (``rows_sample_<i>``), the groups of two or more rows
    (``isolated_inputs``) and the rows its ReLU pattern leaves unexplained
    (``inconsistent_rows``). After several local steps on a batch (FedAvg), a row that
    one input alone activated in every step still holds that input exactly, but one
    activation pattern no longer explains the whole update: the residual stays large
    and the result is not reported as converged even when the inputs are right.

    >>> from leakage import load_dataset, create_model
    >>> data = load_dataset("digits")
    >>> net = create_model("mlp", input_shape=data.input_shape, num_classes=10, generator=torch.Generator())
    >>> loss = nn.functional.cross_entropy(net(data.inputs[:1]), data.targets[:1])
    >>> observation = Observation.from_gradients(net, torch.autograd.grad(loss, list(net.parameters())))
    >>> result = AnalyticInversion().run(observation, Knowledge.from_dataset(data, net))
    >>> bool(torch.allclose(result.inputs, data.inputs[:1], atol=1e-5)), result.converged
    (True, True)
    """

    name = "analytic"

    def __init__(
        self,
        *,
        method: AnalyticMethod = "auto",
        tolerance: float = 1e-5,
        refine_steps: int = 20,
    ) -> None:
        self.method: AnalyticMethod = require_choice("method", method, _METHODS)
        self.tolerance = require_positive_float("tolerance", tolerance)
        if self.tolerance >= 1:
            raise ConfigError(f"tolerance must be a relative distance in (0, 1), got {tolerance!r}")
        self.refine_steps = require_int("refine_steps", refine_steps, minimum=0)

    def _run(
        self, observation: Observation, knowledge: Knowledge, *, generator: torch.Generator, show_progress: bool
    ) -> AttackResult:
        layer = first_layer(knowledge.model, knowledge.input_shape)
        count = knowledge.num_samples
        method = self.method
        if method == "auto":
            method = "single" if count == 1 else "class_rows" if layer.is_last else "relu_rows"
        value = observation.value.detach()
        weight_grad = value[layer.weight].double().reshape(layer.out_features, layer.in_features)
        bias_grad = value[layer.bias].double()
        if not bool(bias_grad.any()):
            raise ThreatModelError("the first layer's bias gradient is zero: no unit was active, nothing to invert")
        if method == "single":
            if count != 1:
                raise ConfigError(f"method 'single' inverts one sample, but knowledge.num_samples is {count}")
            sample, residual = invert_rank_one(weight_grad, bias_grad)
            labels = knowledge.labels if knowledge.labels is not None else recover_labels(
                observation, _scale_free(observation, knowledge), strategy="single", generator=generator
            )
            details = {"rows_used": float(int(bias_grad.ne(0).sum()))}
            return self._result(sample[None], labels, residual, 0, knowledge, observation, details)
        if method == "relu_rows":
            if not layer.has_relu:
                raise ThreatModelError(f"method 'relu_rows' needs nn.ReLU right after the first layer {layer.name!r}")
            params = observation.params.detach()
            weight = params[layer.weight].double().reshape(layer.out_features, layer.in_features)
            bias = params[layer.bias].double()
            samples, residual, details = self._relu_rows(weight_grad, bias_grad, weight, bias, count)
            labels = _aligned_labels(samples, observation, knowledge)
            return self._result(samples, labels, residual, 0, knowledge, observation, details)
        if not layer.is_last:
            raise ThreatModelError(f"method 'class_rows' needs the first layer {layer.name!r} to be the classifier")
        return self._class_rows(observation, knowledge, weight_grad, bias_grad, generator)

    def _result(
        self,
        samples: Tensor,
        labels: Tensor,
        residual: float,
        evals: int,
        knowledge: Knowledge,
        observation: Observation,
        details: dict[str, float],
        *,
        is_identifiable: bool = True,
    ) -> AttackResult:
        inputs = samples.to(observation.params.dtype).reshape(-1, *knowledge.input_shape)
        return AttackResult(
            attack=self.name,
            inputs=inputs,
            raw_inputs=knowledge.denormalize(inputs),
            labels=labels.to(torch.int64).cpu(),
            objective=residual,
            objective_evals=evals,
            converged=is_identifiable and residual < _CONVERGED,
            details=details,
        )

    def _relu_rows(
        self, weight_grad: Tensor, bias_grad: Tensor, weight: Tensor, bias: Tensor, count: int
    ) -> tuple[Tensor, float, dict[str, float]]:
        """Return ``(samples [B, D], residual, details)`` from rows active for a single sample."""
        rows = torch.nonzero(bias_grad.abs() > _ROW_FLOOR * bias_grad.abs().max()).flatten()
        candidates = weight_grad[rows] / bias_grad[rows, None]
        norms = candidates.norm(dim=1)
        distance = torch.cdist(candidates, candidates) / (0.5 * (norms[:, None] + norms[None, :])).clamp_min(1e-30)
        component = _connected_components(distance <= self.tolerance)
        # Groups by decreasing size; each group's input is the rank-one fit over its rows.
        sizes = torch.bincount(component, minlength=len(rows))
        order = torch.argsort(-sizes, stable=True)
        order = order[sizes[order] > 0]
        sizes = sizes[order]
        position = torch.empty_like(component)  # component id -> rank of its group
        position[order] = torch.arange(len(order), device=order.device)
        group = position[component]
        numerator = torch.zeros(len(order), weight_grad.shape[1], dtype=weight_grad.dtype, device=weight_grad.device)
        numerator.index_add_(0, group, bias_grad[rows, None] * weight_grad[rows])
        denominator = torch.zeros(len(order), dtype=bias_grad.dtype, device=bias_grad.device)
        denominator.index_add_(0, group, bias_grad[rows] ** 2)
        points = numerator / denominator[:, None]
        strong = int((sizes >= _MIN_ROWS).sum())
        if strong + int((sizes == 1).sum()) < count:
            raise ThreatModelError(_isolation_message(count, strong))
        row_group = torch.full_like(bias_grad, -1, dtype=torch.int64)  # -1: a row too small to be a candidate
        row_group[rows] = group
        check = _Consistency(points, weight, bias, weight_grad, bias_grad, row_group, sizes)
        initial = _initial_subsets(strong, count).to(order.device)
        chosen, residual = check.best(initial, check.inconsistent(initial))
        # Swap inputs for other groups of two or more rows while the fit improves; single
        # rows carry no evidence of their own, so a swap to them must make the fit exact.
        is_strong = sizes >= _MIN_ROWS
        if strong >= count:
            chosen, residual = check.climb(chosen, residual, is_strong)
        if not residual < _CONVERGED:
            trial, trial_residual = check.climb(chosen, residual, torch.ones_like(is_strong))
            if trial_residual < _CONVERGED or strong < count:
                chosen, residual = trial, trial_residual
        if not bool(is_strong[chosen].all()) and not residual < _CONVERGED:
            reason = ", and no choice among single rows reproduces the gradient"
            raise ThreatModelError(_isolation_message(count, strong, reason))
        details = {
            "candidate_rows": float(len(rows)),
            "isolated_inputs": float(strong),
            "inconsistent_rows": float(int(check.inconsistent(chosen[None])[0])),
            **{f"rows_sample_{i}": float(int(sizes[g])) for i, g in enumerate(chosen.tolist())},
        }
        return points[chosen], residual, details

    def _class_rows(
        self,
        observation: Observation,
        knowledge: Knowledge,
        weight_grad: Tensor,
        bias_grad: Tensor,
        generator: torch.Generator,
    ) -> AttackResult:
        count = knowledge.num_samples
        if count > knowledge.num_classes:
            raise ConfigError(
                f"method 'class_rows' needs distinct labels, so knowledge.num_samples={count} can be at most "
                f"num_classes={knowledge.num_classes}"
            )
        if knowledge.labels is not None:
            labels = torch.sort(knowledge.labels).values
            if bool((labels[1:] == labels[:-1]).any()):
                raise ConfigError(f"method 'class_rows' needs distinct labels, got knowledge.labels {labels.tolist()}")
        else:
            labels = recover_labels(
                observation, _scale_free(observation, knowledge), strategy="distinct", generator=generator
            )
        labels = labels.to(weight_grad.device)
        targets = nn.functional.one_hot(labels, knowledge.num_classes).double()
        params = ParameterLayout.of(knowledge.model).unflatten(observation.params.detach().double())

        def fit(samples: Tensor) -> tuple[float, Tensor]:
            """Return the relative residual of ``[G_W, g_b] ~ s (P - Y)^T [X, 1]`` and ``s (P - Y)^T``."""
            logits = functional_call(knowledge.model, params, (samples.reshape(count, *knowledge.input_shape),))
            mixing = (torch.softmax(logits, -1) - targets).T  # [C, B]
            direction = mixing.sum(1)
            scale = (direction @ bias_grad) / (direction @ direction)
            observed = torch.cat([weight_grad, bias_grad[:, None]], 1)
            predicted = scale * mixing @ torch.cat([samples, torch.ones_like(samples[:, :1])], 1)
            return float((observed - predicted).norm() / observed.norm()), scale * mixing

        # Every row of P - Y sums to zero, so the C rows of dL/dW carry C - 1 equations:
        # with B = num_classes one direction of the inputs is left undetermined.
        is_identifiable = count < knowledge.num_classes
        samples = class_row_estimate(weight_grad, bias_grad, labels)
        with torch.no_grad():
            residual, mixing = fit(samples)
            evals, accepted = 1, 0
            for _ in range(self.refine_steps if is_identifiable else 0):
                refined = torch.linalg.lstsq(mixing, weight_grad).solution
                new_residual, new_mixing = fit(refined)
                evals += 1
                if not new_residual < residual:
                    break
                samples, residual, mixing, accepted = refined, new_residual, new_mixing, accepted + 1
        details = {"refine_steps": float(accepted)}
        return self._result(
            samples, labels, residual, evals, knowledge, observation, details, is_identifiable=is_identifiable
        )


def _scale_free(observation: Observation, knowledge: Knowledge) -> Knowledge:
    """Return ``knowledge`` usable by sign-based label recovery without a learning rate.

    Strategies ``single`` and ``distinct`` only rank the bias entries, which any
    positive step size leaves in place, so an unknown ``lr`` may be set to 1.
    """
    if observation.kind == "gradient" or knowledge.lr is not None:
        return knowledge
    return replace(knowledge, lr=1.0)


def _connected_components(adjacency: Tensor) -> Tensor:
    """Return ``[K]`` component ids (the smallest member index) of a symmetric boolean ``[K, K]`` graph."""
    size = adjacency.shape[0]
    labels = torch.arange(size, device=adjacency.device)
    while True:  # each pass spreads the smallest id one hop; components here are tiny
        spread = torch.where(adjacency, labels[None, :], size).min(1).values
        spread = torch.minimum(spread, labels)
        if torch.equal(spread, labels):
            return labels
        labels = spread


def _isolation_message(count: int, strong: int, reason: str = "") -> str:
    return (
        f"could not isolate {count} samples: only {strong} inputs were each seen by {_MIN_ROWS} or more ReLU "
        f"units active for that input alone{reason} (a wider first layer or a smaller batch helps)"
    )


def _initial_subsets(strong: int, count: int) -> Tensor:
    """Return ``[M, count]`` subsets of group positions to start from.

    With enough groups of two or more rows: every subset of the largest of them (as
    many as keep ``M <= _MAX_SUBSETS``). Otherwise all of them, filled up with the
    first single-row groups for the swap search to replace.
    """
    if strong < count:
        return torch.arange(count)[None]
    size = count
    while size < strong and math.comb(size + 1, count) <= _MAX_SUBSETS:
        size += 1
    return torch.tensor(list(itertools.combinations(range(size), count)), dtype=torch.int64).reshape(-1, count)


class _Consistency:
    """Scores subsets of candidate inputs by how well their ReLU pattern explains the rows.

    A row is zero exactly when no chosen input activates it, and a row active for
    exactly one chosen input must belong to that input's group: rows breaking either
    rule are *inconsistent*, cheap to count for thousands of subsets. The subsets with
    the fewest are then compared by :func:`_masked_residual`.
    """

    def __init__(
        self,
        points: Tensor,
        weight: Tensor,
        bias: Tensor,
        weight_grad: Tensor,
        bias_grad: Tensor,
        row_group: Tensor,
        sizes: Tensor,
    ) -> None:
        self.points, self.weight, self.bias = points, weight, bias
        self.weight_grad, self.bias_grad = weight_grad, bias_grad
        self.activity = (points @ weight.T + bias > 0).to(torch.int32)  # [G, H]
        self.is_zero = (bias_grad == 0) & (weight_grad == 0).all(1)
        self.row_group, self.sizes = row_group.to(torch.int32), sizes

    def _count(self, active_count: Tensor, active_sum: Tensor) -> Tensor:
        """Inconsistent rows from per-row active counts and sums of active group ids ``[..., H]``."""
        wrong_zero = self.is_zero & (active_count > 0)
        wrong_active = ~self.is_zero & (active_count == 0)
        # Where one input is active, the sum of active group ids is that input's group.
        wrong_group = (active_count == 1) & (self.row_group >= 0) & (active_sum != self.row_group)
        return (wrong_zero | wrong_active | wrong_group).sum(-1)

    def inconsistent(self, subsets: Tensor) -> Tensor:
        """Return ``[M]`` counts of inconsistent rows of each subset ``[M, B]``."""
        subsets = subsets.to(self.activity.device)
        step = max(1, _CHUNK_ENTRIES // (subsets.shape[1] * self.activity.shape[1]))
        counts = []
        for start in range(0, len(subsets), step):  # bounded memory: [step, B, H] at a time
            block = subsets[start : start + step]
            activity = self.activity[block]  # [M, B, H]
            ids = block.to(torch.int32)[:, :, None]
            counts.append(self._count(activity.sum(1), (activity * ids).sum(1)))
        return torch.cat(counts)

    def climb(self, chosen: Tensor, residual: float, allowed: Tensor) -> tuple[Tensor, float]:
        """Swap one member of ``chosen`` at a time for an ``allowed`` group while the residual drops."""
        for _ in range(len(chosen)):
            if residual < _CONVERGED:
                break
            subsets, inconsistent = self.swaps(chosen, allowed)
            if not len(subsets):
                break
            swapped, swapped_residual = self.best(subsets, inconsistent)
            if not swapped_residual < residual:
                break
            chosen, residual = swapped, swapped_residual
        return chosen, residual

    def swaps(self, chosen: Tensor, allowed: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(subsets [M, B], inconsistent [M])``.

        Each subset is ``chosen`` with one member replaced by an ``allowed`` group.
        """
        outside = allowed.clone()
        outside[chosen] = False
        others = torch.nonzero(outside).flatten()
        members = self.activity[chosen]
        base_count = members.sum(0)
        base_sum = (members * chosen.to(torch.int32)[:, None]).sum(0)
        subsets, counts = [], []
        for slot, member in enumerate(chosen.tolist()):  # over the B members, not the rows
            active_count = base_count - members[slot] + self.activity[others]
            active_sum = base_sum - members[slot] * member + self.activity[others] * others.to(torch.int32)[:, None]
            swapped = chosen.repeat(len(others), 1)
            swapped[:, slot] = others
            subsets.append(swapped)
            counts.append(self._count(active_count, active_sum))
        return torch.cat(subsets), torch.cat(counts)

    def best(self, subsets: Tensor, inconsistent: Tensor) -> tuple[Tensor, float]:
        """Return the subset with the least residual among the most consistent, largest ones."""
        tied = torch.nonzero(inconsistent == inconsistent.min()).flatten()
        totals = self.sizes[subsets[tied]].sum(1)
        tied = tied[torch.argsort(-totals, stable=True)][:_MAX_FITS]
        fits = [self.residual(subsets[i]) for i in tied.tolist()]
        best = min(range(len(fits)), key=fits.__getitem__)
        return subsets[int(tied[best])], fits[best]

    def residual(self, subset: Tensor) -> float:
        return _masked_residual(self.points[subset], self.weight, self.bias, self.weight_grad, self.bias_grad)


def _masked_residual(samples: Tensor, weight: Tensor, bias: Tensor, weight_grad: Tensor, bias_grad: Tensor) -> float:
    """Return ``||[G_W, g_b] - D [X, 1]|| / ||[G_W, g_b]||``, each row mixing only the inputs active there.

    Row ``k`` of ``D`` is the least-squares ``d`` with ``d_i = 0`` where input ``i`` leaves
    unit ``k`` inactive (``W_k x_i + b_k <= 0``): the rank-``B`` analogue of the
    single-sample residual.
    """
    active = samples @ weight.T + bias > 0
    design = torch.cat([samples, torch.ones_like(samples[:, :1])], 1)  # [B, D + 1]
    observed = torch.cat([weight_grad, bias_grad[:, None]], 1)  # [H, D + 1]
    mask = active.T.to(design.dtype)  # [H, B]
    gram = (design @ design.T)[None] * mask[:, :, None] * mask[:, None, :]
    right = (observed @ design.T) * mask
    mixing = (torch.linalg.pinv(gram, hermitian=True) @ right[:, :, None]).squeeze(-1)
    return float((observed - mixing @ design).norm() / observed.norm())


def _aligned_labels(samples: Tensor, observation: Observation, knowledge: Knowledge) -> Tensor:
    """Return ``[B]`` labels of the recovered ``samples`` from the last layer's gradient.

    The last layer ``z = V f + c`` has gradient ``(1/B)(P - Y)^T [F, 1]`` over features
    ``F``; with ``F`` computed from the recovered inputs, multiplying by the pseudo-inverse
    of ``[F, 1]`` leaves ``(P - Y)^T / B``, negative only at each sample's label.
    """
    location = last_layer(knowledge.model, knowledge.num_classes)
    model = copy.deepcopy(knowledge.model)
    heads = [m for m in model.modules() if isinstance(m, nn.Linear) and m.out_features == knowledge.num_classes]
    classifier = heads[-1]
    captured: list[Tensor] = []
    hook = classifier.register_forward_hook(lambda _m, inputs, _out: captured.append(inputs[0]))
    params = ParameterLayout.of(model).unflatten(observation.params.detach().double())
    with torch.no_grad():
        functional_call(model, params, (samples.reshape(-1, *knowledge.input_shape),))
    hook.remove()
    features = torch.cat([captured[0].reshape(len(samples), -1), torch.ones_like(samples[:, :1])], 1)
    value = observation.value.detach()
    gradient = value[location.weight].double().reshape(location.num_classes, location.in_features)
    bias = value[location.bias].double() if location.bias is not None else torch.zeros_like(gradient[:, 0])
    # A gradient is (P - Y)^T F / B; an update is a negative multiple of it.
    sign = 1.0 if observation.kind == "gradient" else -1.0
    scores: Tensor = sign * torch.cat([gradient, bias[:, None]], 1) @ torch.linalg.pinv(features)  # [C, B]
    return scores.argmin(0)
