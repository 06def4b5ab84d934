import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from leakage.models import ParameterLayout, create_model, flatten_parameters
from leakage.simulation import (
    make_loss,
    make_weighted_loss,
    mixes_samples,
    train_client,
    train_clients_masked,
    train_clients_vectorised,
)


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


@pytest.mark.parametrize("name", ["cross_entropy", "taylor_logistic"])
def test_the_weighted_loss_with_equal_weights_is_the_mean_loss(name: str) -> None:
    model = create_model("mlp", input_shape=(6,), num_classes=2, generator=torch.Generator().manual_seed(0), hidden=(5,))
    params = dict(model.named_parameters())
    inputs = torch.randn(5, 6, generator=torch.Generator().manual_seed(1))
    targets = torch.tensor([0, 1, 1, 0, 1])

    weighted = make_weighted_loss(model, name)(params, inputs, targets, torch.full((5,), 0.2))
    padded = make_weighted_loss(model, name)(params, inputs, targets, torch.tensor([0.5, 0.5, 0.0, 0.0, 0.0]))

    torch.testing.assert_close(weighted, make_loss(model, name)(params, inputs, targets))
    torch.testing.assert_close(padded, make_loss(model, name)(params, inputs[:2], targets[:2]))


@settings(max_examples=25, deadline=None)
@given(
    step_sizes=st.lists(st.lists(st.integers(1, 5), min_size=3, max_size=3), min_size=1, max_size=5),
    seed=st.integers(0, 2**16),
)
def test_masked_clients_equal_the_per_client_loop_on_their_own_samples(step_sizes: list[list[int]], seed: int) -> None:
    """``step_sizes[c][s]``: the real samples of client ``c`` in step ``s``; batches padded to each step's largest."""
    model, layout, _, params = _setup()
    loss, weighted = make_loss(model), make_weighted_loss(model)
    generator = torch.Generator().manual_seed(seed)
    widths = [max(sizes[step] for sizes in step_sizes) for step in range(3)]
    clients = len(step_sizes)
    padded = []
    for step, width in enumerate(widths):
        inputs = torch.randn(clients, width, 6, generator=generator)
        targets = torch.randint(0, 3, (clients, width), generator=generator)
        counts = torch.tensor([sizes[step] for sizes in step_sizes])[:, None]
        weights = (torch.arange(width)[None, :] < counts).float() / counts
        padded.append((inputs, targets, weights))

    updates, first_losses = train_clients_masked(weighted, layout, params, padded, lr=0.5)

    for client, sizes in enumerate(step_sizes):
        own = [(inputs[client, :size], targets[client, :size]) for (inputs, targets, _), size in zip(padded, sizes)]
        update, first_loss = train_client(loss, layout, params, own, lr=0.5)
        torch.testing.assert_close(updates[client], update, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(first_losses[client], first_loss, rtol=1e-5, atol=1e-6)


def test_a_workspace_is_reused_and_changes_nothing() -> None:
    _, layout, loss, params = _setup()
    generator = torch.Generator().manual_seed(3)
    batches = [(torch.randn(4, 2, 6, generator=generator), torch.randint(0, 3, (4, 2), generator=generator)) for _ in range(3)]
    workspace: dict[str, torch.Tensor] = {}

    without, _ = train_clients_vectorised(loss, layout, params, batches, lr=0.2)
    first, _ = train_clients_vectorised(loss, layout, params, batches, lr=0.2, workspace=workspace)
    buffers = {name: buffer.data_ptr() for name, buffer in workspace.items()}
    fewer, _ = train_clients_vectorised(loss, layout, params, [(x[:3], y[:3]) for x, y in batches], lr=0.2,
                                        workspace=workspace)

    assert torch.equal(first, without) and torch.equal(fewer, without[:3])
    assert sorted(workspace) == sorted(layout.names)
    assert {name: buffer.data_ptr() for name, buffer in workspace.items()} == buffers


def test_batch_normalisation_mixes_samples_and_an_mlp_does_not() -> None:
    model, *_ = _setup()
    convnet = create_model("convnet", input_shape=(1, 8, 8), num_classes=3, generator=torch.Generator(), batch_norm=True)

    assert not mixes_samples(model) and mixes_samples(convnet)
