import pytest
import torch
from torch import nn

from attacks.warm_start import _chain, _scatter, _solve_layer, invert_recursively, is_recursively_invertible
from leakage import create_model
from leakage.errors import ThreatModelError
from leakage.models import flatten_parameters


def _gradient(model: nn.Module, inputs: torch.Tensor, label: int) -> torch.Tensor:
    loss = nn.functional.cross_entropy(model(inputs), torch.tensor([label]))
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, list(model.parameters()))])


def _small_lenet() -> nn.Module:
    """A LeNet-like sigmoid chain small enough for dense reference solves (3x8x8 inputs)."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1, stride=2), nn.Sigmoid(),
        nn.Conv2d(6, 6, 3, padding=1), nn.Sigmoid(),
        nn.Flatten(), nn.Linear(96, 5),
    ).double()
    for parameter in model.parameters():
        nn.init.uniform_(parameter, -0.5, 0.5)
    return model


def test_it_recovers_the_dlg_papers_lenet_input_from_a_float32_gradient(digits) -> None:
    model = create_model("lenet", input_shape=(3, 32, 32), num_classes=10, generator=torch.Generator().manual_seed(3))
    inputs = torch.rand((1, 3, 32, 32), generator=torch.Generator().manual_seed(4))

    estimate = invert_recursively(model, (3, 32, 32), flatten_parameters(model), _gradient(model, inputs, 7))

    assert estimate.shape == inputs.shape and estimate.dtype == torch.float64
    assert (estimate.float() - inputs).abs().max() < 1e-3


@pytest.mark.parametrize("activation", [nn.Sigmoid(), nn.Tanh(), nn.LeakyReLU(0.2)])
def test_it_inverts_mlps_with_each_invertible_activation(activation: nn.Module) -> None:
    torch.manual_seed(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 16), activation, nn.Linear(16, 8), activation, nn.Linear(8, 4))
    inputs = torch.rand(1, 3, 4)

    estimate = invert_recursively(model.double(), (3, 4), flatten_parameters(model), _gradient(model, inputs.double(), 2))

    assert torch.allclose(estimate, inputs.double(), atol=1e-8)


def test_any_nonzero_multiple_of_the_gradient_inverts_alike() -> None:
    model = _small_lenet()
    inputs = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    gradient = _gradient(model, inputs, 1)
    params = flatten_parameters(model)

    from_gradient = invert_recursively(model, (3, 8, 8), params, gradient)
    from_update = invert_recursively(model, (3, 8, 8), params, -0.1 * gradient)  # a FedSGD update, lr unknown

    assert torch.allclose(from_gradient, inputs, atol=1e-8) and torch.allclose(from_update, from_gradient, atol=1e-10)


def test_the_assembled_normal_equations_match_a_dense_least_squares_solve() -> None:
    model = _small_lenet()
    stage = _chain(model, (3, 8, 8))[0]
    generator = torch.Generator().manual_seed(2)
    matrix = torch.randn(6, 27, generator=generator, dtype=torch.float64)
    delta = torch.randn(6, 16, generator=generator, dtype=torch.float64)
    target = torch.randn(6, 16, generator=generator, dtype=torch.float64)
    row_weight = torch.rand(6, 16, generator=generator, dtype=torch.float64)
    observed = torch.randn(6, 27, generator=generator, dtype=torch.float64)
    conv = model[0]
    # the dense operators of the same layer, column by column from the module itself
    basis = torch.eye(192, dtype=torch.float64).reshape(192, 3, 8, 8)
    kernel = matrix.reshape(6, 3, 3, 3)
    forward = conv._conv_forward(basis, kernel, None).reshape(192, -1).T  # [O*P, n]
    weight_grads = torch.stack([
        torch.autograd.grad(conv._conv_forward(b[None], kernel.requires_grad_(True), None), kernel, delta.reshape(1, 6, 4, 4))[0]
        for b in basis
    ]).reshape(192, -1).T  # [O*C*K, n]
    rows = (row_weight / (row_weight * target).norm()).reshape(-1, 1)
    system = torch.cat([rows * forward, weight_grads / observed.norm()])
    right = torch.cat([(rows[:, 0] * target.reshape(-1)), observed.reshape(-1) / observed.norm()])
    reference = torch.linalg.lstsq(system, right[:, None]).solution[:, 0]

    solution = _solve_layer(stage, matrix, delta, target, row_weight, observed)

    assert torch.allclose(solution, reference, atol=1e-8)
    assert torch.allclose(_scatter(stage, matrix.T @ target, torch.device("cpu")), forward.T @ target.reshape(-1))


_SHARED = nn.Linear(3, 3)  # one layer used twice: its gradient sums two uses


@pytest.mark.parametrize(
    "model, reason",
    [
        (nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)), "cannot invert ReLU"),
        (nn.Sequential(nn.Linear(4, 3), nn.Sigmoid(), nn.Linear(3, 2, bias=False)), "end in nn.Linear with a bias"),
        (nn.Sequential(nn.Linear(4, 3), nn.Sigmoid(), nn.Linear(3, 2), nn.Sigmoid()), "end in nn.Linear with a bias"),
        (nn.Sequential(nn.Linear(4, 3), nn.Sigmoid(), nn.Sigmoid(), nn.Linear(3, 2)), "cannot invert Sigmoid"),
        (nn.Sequential(nn.Linear(4, 3), nn.Sigmoid(), *[_SHARED, nn.Sigmoid()] * 2, nn.Linear(3, 2)), "cannot invert Linear"),
    ],
)
def test_models_it_cannot_invert_are_named(model: nn.Module, reason: str) -> None:
    params = flatten_parameters(model)

    with pytest.raises(ThreatModelError, match=reason):
        invert_recursively(model, (4,), params, torch.ones_like(params))
    assert not is_recursively_invertible(model, (4,))


def test_it_returns_the_estimate_on_the_gradients_device() -> None:
    model = _small_lenet()
    inputs = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    gradient = _gradient(model, inputs, 0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    estimate = invert_recursively(model.to(device), (3, 8, 8), flatten_parameters(model).to(device), gradient.to(device))

    assert estimate.device == gradient.to(device).device
    assert torch.allclose(estimate.cpu(), inputs, atol=1e-8)
