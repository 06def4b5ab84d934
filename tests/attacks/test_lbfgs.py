import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

from attacks.lbfgs import minimize_lbfgs


def _objective(matrix: torch.Tensor, target: torch.Tensor):
    def value_and_grad(x: torch.Tensor) -> tuple[float, torch.Tensor]:
        x = x.detach().requires_grad_(True)
        value = (torch.tanh(matrix @ x) - target).pow(2).sum()
        (grad,) = torch.autograd.grad(value, x)
        return float(value.detach()), grad

    return value_and_grad


def test_it_reaches_the_same_minimum_as_scipys_lbfgs() -> None:
    generator = torch.Generator().manual_seed(0)
    matrix = torch.randn(80, 30, generator=generator, dtype=torch.float64)
    target = 0.5 * torch.randn(80, generator=generator, dtype=torch.float64)
    objective = _objective(matrix, target)

    ours = minimize_lbfgs(objective, torch.zeros(30, dtype=torch.float64), max_evals=3000, memory=20)
    reference = minimize(
        lambda z: objective(torch.from_numpy(z))[0], np.zeros(30),
        jac=lambda z: objective(torch.from_numpy(z))[1].numpy(), method="L-BFGS-B",
        options={"maxiter": 5000, "gtol": 1e-12, "ftol": 1e-16},
    )

    assert abs(ours.value - reference.fun) <= 1e-8 * max(1.0, abs(reference.fun))


def test_a_consistent_least_squares_problem_is_solved_to_machine_precision() -> None:
    generator = torch.Generator().manual_seed(1)
    matrix = torch.randn(50, 20, generator=generator, dtype=torch.float64)
    truth = torch.rand(20, generator=generator, dtype=torch.float64) * 0.5
    objective = _objective(matrix, torch.tanh(matrix @ truth))

    result = minimize_lbfgs(objective, torch.zeros(20, dtype=torch.float64), max_evals=2000, memory=50, tolerance=1e-24)

    assert torch.allclose(result.x, truth, atol=1e-8)
    assert result.evaluations < 2000


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), memory=st.integers(1, 40), evals=st.integers(2, 200))
def test_the_value_never_increases_and_the_budget_holds(seed: int, memory: int, evals: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    matrix = torch.randn(30, 10, generator=generator, dtype=torch.float64)
    objective = _objective(matrix, torch.randn(30, generator=generator, dtype=torch.float64))

    result = minimize_lbfgs(objective, torch.randn(10, generator=generator, dtype=torch.float64), max_evals=evals, memory=memory)

    assert all(later <= earlier for earlier, later in zip(result.history, result.history[1:]))
    assert result.evaluations <= evals
