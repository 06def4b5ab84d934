import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from leakage.models import ParameterLayout, create_model, flatten_parameters
from leakage.simulation import make_loss, train_client, train_clients_vectorised


def _setup(seed: int = 0):
    model = create_model("mlp", input_shape=(6,), num_classes=3, generator=torch.Generator().manual_seed(seed), hidden=(5,))
    layout = ParameterLayout.of(model)
    return model, layout, make_loss(model), flatten_parameters(model)


def test_one_step_is_exactly_minus_lr_times_the_autograd_gradient() -> None:
    model, layout, loss, params = _setup()
    inputs = torch.randn(4, 6, generator=torch.Generator().manual_seed(1))
    targets = torch.tensor([0, 2, 1, 2])

    update, first_loss = train_client(loss, layout, params, [(inputs, targets)], lr=0.3)

    model.zero_grad()
    reference_loss = torch.nn.functional.cross_entropy(model(inputs), targets)
    reference_loss.backward()
    gradient = torch.cat([p.grad.flatten() for p in model.parameters()])
    torch.testing.assert_close(update, -0.3 * gradient, rtol=0, atol=1e-7)
    torch.testing.assert_close(first_loss, reference_loss.detach())


def test_several_steps_match_torch_sgd() -> None:
    model, layout, loss, params = _setup()
    generator = torch.Generator().manual_seed(2)
    batches = [(torch.randn(3, 6, generator=generator), torch.randint(0, 3, (3,), generator=generator)) for _ in range(4)]

    update, _ = train_client(loss, layout, params, batches, lr=0.1)

    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for inputs, targets in batches:
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(inputs), targets).backward()
        optimizer.step()
    torch.testing.assert_close(update, flatten_parameters(model) - params, rtol=1e-5, atol=1e-6)


@settings(max_examples=15, deadline=None)
@given(
    clients=st.integers(1, 6),
    batch_sizes=st.lists(st.integers(1, 5), min_size=1, max_size=4),
    seed=st.integers(0, 2**16),
)
def test_vectorised_clients_equal_the_per_client_loop(clients: int, batch_sizes: list[int], seed: int) -> None:
    _, layout, loss, params = _setup()
    generator = torch.Generator().manual_seed(seed)
    batches = [
        (torch.randn(clients, size, 6, generator=generator), torch.randint(0, 3, (clients, size), generator=generator))
        for size in batch_sizes
    ]

    updates, first_losses = train_clients_vectorised(loss, layout, params, batches, lr=0.5)

    for client in range(clients):
        own = [(inputs[client], targets[client]) for inputs, targets in batches]
        update, first_loss = train_client(loss, layout, params, own, lr=0.5)
        torch.testing.assert_close(updates[client], update, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(first_losses[client], first_loss, rtol=1e-5, atol=1e-6)
