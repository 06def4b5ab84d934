"""A lean L-BFGS for gradient inversion: compact two-matrix form, backtracking line search.

DLG-style attacks spend thousands of iterations on a few thousand unknowns, where
``torch.optim.LBFGS`` pays more for its Python two-loop recursion over the history
than for the objective itself. Here the memory is a ring of ``m`` pairs ``(s_i, y_i)``
kept as two ``[m, n]`` tensors, and the search direction ``-H g`` comes from the
compact representation of Byrd, Nocedal and Schnabel (Math. Programming 1994):

    ``H g = gamma g + S p + gamma Y q``,  ``u = R^{-1} S^T g``,  ``q = -u``,
    ``p = R^{-T} ((D + gamma Y^T Y) u - gamma Y^T g)``

with ``R`` the upper triangle of ``S^T Y`` (chronological order), ``D`` its diagonal and
``gamma = s^T y / y^T y`` of the newest pair: a few small matrix products per step.
Steps use Armijo backtracking from the unit step; pairs with ``s^T y <= 0`` are skipped.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["LBFGSResult", "minimize_lbfgs"]

# f(x) -> (value, gradient); x and the gradient are flat [n] tensors
Objective = Callable[[Tensor], tuple[float, Tensor]]


@dataclass(frozen=True)
class LBFGSResult:
    """Where the search ended: point, value, evaluations, and the value after each iteration."""

    x: Tensor
    value: float
    evaluations: int
    history: tuple[float, ...]


def minimize_lbfgs(
    objective: Objective,
    start: Tensor,
    *,
    max_evals: int,
    memory: int = 100,
    tolerance: float = 0.0,
    on_iteration: Callable[[int, float], None] | None = None,
) -> LBFGSResult:
    """Minimise ``objective`` from ``start``; stop after ``max_evals`` evaluations, below
    ``tolerance``, or after twenty iterations without measurable progress.

    >>> def rosenbrock(x):
    ...     x = x.detach().requires_grad_(True)
    ...     value = (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
    ...     (grad,) = torch.autograd.grad(value, x)
    ...     return float(value.detach()), grad
    >>> result = minimize_lbfgs(rosenbrock, torch.tensor([-1.2, 1.0], dtype=torch.float64), max_evals=500)
    >>> [round(v, 6) for v in result.x.tolist()]
    [1.0, 1.0]
    """
    x = start.detach().clone()
    n = x.numel()
    # The pairs are stored in float32: the ring is read several times per step and
    # those reads, not the arithmetic, bound the step time; the small Gram matrices
    # and the iterate stay in the objective's precision.
    s_ring = torch.zeros(memory, n, dtype=torch.float32, device=x.device)
    y_ring = torch.zeros(memory, n, dtype=torch.float32, device=x.device)
    sy = x.new_zeros(memory, memory)  # sy[i, j] = s_i . y_j (ring slots)
    yy = x.new_zeros(memory, memory)
    sg = x.new_zeros(memory)  # s_i . g and y_i . g for the current gradient, kept up to date
    yg = x.new_zeros(memory)
    stored = 0
    newest = -1
    value, grad = objective(x)
    evals = 1
    history = [value]
    while evals < max_evals and value > tolerance and math.isfinite(value):
        # direction . y_j for every slot j, from the Gram matrices (saves one pass over the ring)
        direction_dot_y = -yg
        if stored == 0:
            direction = -grad
            step = min(1.0, 1.0 / max(float(grad.abs().sum()), 1e-300))
        else:
            order = torch.tensor([(newest - stored + 1 + k) % memory for k in range(stored)], device=x.device)
            sy_c = sy[order][:, order]
            yy_c = yy[order][:, order]
            gamma = float(sy_c[-1, -1] / yy_c[-1, -1])
            upper = torch.triu(sy_c)
            u = torch.linalg.solve_triangular(upper, sg[order][:, None], upper=True)[:, 0]
            inner = torch.diagonal(sy_c) * u + gamma * (yy_c @ u) - gamma * yg[order]
            p = torch.linalg.solve_triangular(upper.T, inner[:, None], upper=False)[:, 0]
            coefficients = torch.zeros(2, memory, dtype=torch.float32, device=x.device)
            coefficients[0, order] = p.float()
            coefficients[1, order] = (-gamma * u).float()
            correction = coefficients[0] @ s_ring + coefficients[1] @ y_ring
            direction = -(gamma * grad + correction.to(grad.dtype))
            direction_dot_y = -(gamma * yg + coefficients[0].to(x.dtype) @ sy + coefficients[1].to(x.dtype) @ yy)
            step = 1.0
        slope = float(grad @ direction)
        if slope >= 0:  # not a descent direction: forget the memory and use the gradient
            stored = 0
            direction = -grad
            direction_dot_y = -yg
            slope = float(grad @ direction)
            step = min(1.0, 1.0 / max(float(grad.abs().sum()), 1e-300))
        accepted = False
        while evals < max_evals:
            candidate = x + step * direction
            new_value, new_grad = objective(candidate)
            evals += 1
            if math.isfinite(new_value) and new_value <= value + 1e-4 * step * slope:
                accepted = True
                break
            step *= 0.5
            if step < 1e-20:
                break
        if not accepted:
            if stored == 0:
                break  # no progress even along the gradient
            stored = 0
            continue
        s_vec = candidate - x
        y_vec = new_grad - grad
        y32 = y_vec.float()
        s_dot_y_ring = (s_ring @ y32).to(x.dtype)  # s_i . y_new
        y_dot_y_ring = (y_ring @ y32).to(x.dtype)  # y_i . y_new
        sg += s_dot_y_ring  # s_i . g_new = s_i . g + s_i . y_new
        yg += y_dot_y_ring
        curvature = float(s_vec @ y_vec)
        if curvature > 1e-10 * float(s_vec.norm() * y_vec.norm()):
            newest = (newest + 1) % memory
            s_ring[newest] = s_vec.float()
            y_ring[newest] = y32
            stored = min(stored + 1, memory)
            sy[:, newest] = s_dot_y_ring
            sy[newest, :] = step * direction_dot_y  # s_new . y_j with s_new = step * direction
            sy[newest, newest] = curvature
            yy[newest, :] = y_dot_y_ring
            yy[:, newest] = y_dot_y_ring
            yy[newest, newest] = float(y_vec @ y_vec)
            sg[newest] = float(s_vec @ new_grad)
            yg[newest] = float(y_vec @ new_grad)
        x, value, grad = candidate, new_value, new_grad
        history.append(value)
        if on_iteration is not None:
            on_iteration(evals, value)
        if len(history) > 20 and history[-21] - value <= 1e-14 * abs(history[-21]):
            break  # twenty iterations without measurable progress
    return LBFGSResult(x=x, value=value, evaluations=evals, history=tuple(history))
