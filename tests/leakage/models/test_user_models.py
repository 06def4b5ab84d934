"""Models from the user's code: import paths, instances, callables and checkpoints, each through ``simulate``."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

from leakage import simulate
from leakage.errors import ConfigError
from leakage.models import flatten_parameters, is_import_path, load_checkpoint, model_label, resolve_import_path

SMALL = dict(n_clients=3, rounds=1, algorithm="fedsgd", batch_size=None, partition_options={"samples_per_client": 4})

NETS = '''
import torch
from torch import nn


def build(input_shape, num_classes, width=8):
    return nn.Sequential(nn.Flatten(), nn.Linear(int(torch.tensor(input_shape).prod()), width), nn.Tanh(),
                         nn.Linear(width, num_classes))


def constant(input_shape, num_classes):
    net = build(input_shape, num_classes)
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(0.01)
    return net


def not_a_module(input_shape, num_classes):
    return "a string"


def broken(input_shape, num_classes):
    raise RuntimeError("out of coffee")


NUMBER = 3
'''


@pytest.fixture
def user_module(tmp_path: Path) -> Iterator[str]:
    """A module ``user_nets_<n>`` on ``sys.path`` holding builders, as a lab's package would."""
    name = f"user_nets_{abs(hash(tmp_path)) % 10**8}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(NETS))
    sys.path.insert(0, str(tmp_path))
    try:
        yield name
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(name, None)


def test_an_import_path_is_told_from_a_registered_name() -> None:
    assert is_import_path("pkg.nets:build")
    assert not is_import_path("mlp")
    assert not is_import_path(":build")


def test_a_user_builder_keeps_its_own_initialisation(user_module: str) -> None:
    transcript = simulate(model=f"{user_module}:constant", **SMALL)
    assert bool((transcript.initial_params == 0.01).all())  # never re-drawn by the toolkit's init


def test_a_user_builder_is_seeded_by_the_run(user_module: str) -> None:
    first = simulate(model=f"{user_module}:build", seed=4, **SMALL)
    again = simulate(model=f"{user_module}:build", seed=4, **SMALL)
    other = simulate(model=f"{user_module}:build", seed=5, **SMALL)
    assert torch.equal(first.initial_params, again.initial_params)
    assert not torch.equal(first.initial_params, other.initial_params)
    state = torch.get_rng_state()
    simulate(model=f"{user_module}:build", seed=4, **SMALL)
    assert torch.equal(state, torch.get_rng_state())  # the caller's global generator is left alone


def test_model_options_reach_the_builder_and_unknown_ones_are_refused(user_module: str) -> None:
    wide = simulate(model=f"{user_module}:build", model_options={"width": 16}, **SMALL)
    assert wide.layout.shapes[0] == (16, 64)
    with pytest.raises(ConfigError, match="'depth' not accepted by 'build'"):
        simulate(model=f"{user_module}:build", model_options={"depth": 2}, **SMALL)


def test_an_instance_keeps_its_starting_vector_and_is_not_modified() -> None:
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    before = flatten_parameters(net)
    transcript = simulate(model=net, rounds=2, **{k: v for k, v in SMALL.items() if k != "rounds"})
    assert torch.equal(transcript.initial_params, before)
    assert torch.equal(flatten_parameters(net), before)
    assert not torch.equal(transcript.final_params, before)  # it trained
    assert transcript.settings["model"] == "<instance torch.nn.modules.container.Sequential>"
    rebuilt = transcript.build_model()
    assert torch.equal(flatten_parameters(rebuilt), transcript.final_params)


def test_a_callable_builds_the_model() -> None:
    def build(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.Linear(input_shape[-1] * input_shape[-2], num_classes))

    transcript = simulate(model=build, **SMALL)
    assert transcript.layout.shapes == ((10, 64), (10,))


def test_a_checkpoint_sets_the_starting_weights(tmp_path: Path) -> None:
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    state = {name: torch.full_like(value, 0.5) for name, value in net.state_dict().items()}
    torch.save(state, tmp_path / "start.pt")
    transcript = simulate(model=net, checkpoint=str(tmp_path / "start.pt"), **SMALL)
    assert bool((transcript.initial_params == 0.5).all())
    # a registered model takes a checkpoint too
    registered = simulate(model="logreg", **SMALL)
    torch.save(registered.build_model().state_dict(), tmp_path / "logreg.pt")
    again = simulate(model="logreg", checkpoint=str(tmp_path / "logreg.pt"), seed=9, **SMALL)
    assert torch.equal(again.initial_params, registered.final_params)


class _Unsafe:
    """Not a tensor: a pickle of it runs code on load, which ``weights_only`` refuses."""


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("missing", "checkpoint: no such file"),
        ({"0.weight": torch.zeros(10, 64)}, r"does not match the model: missing keys \['1.bias'"),
        ({"1.weight": torch.zeros(10, 64), "1.bias": torch.zeros(10), "extra": torch.zeros(1)},
         r"unexpected keys \['extra'\]"),
        ({"1.weight": torch.zeros(5, 64), "1.bias": torch.zeros(10)}, r"'1.weight' has shape \(5, 64\), the model's is"),
        (_Unsafe(), "is not a safe state_dict file"),
        ([1, 2], "must hold a state_dict"),
    ],
)
def test_a_bad_checkpoint_is_one_line(tmp_path: Path, content: object, message: str) -> None:
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    path = tmp_path / "start.pt"
    if content != "missing":
        torch.save(content, path)
    with pytest.raises(ConfigError, match=message) as caught:
        load_checkpoint(net, path)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("attribute", "message"),
    [
        ("missing_module_xyz:build", "cannot import module 'missing_module_xyz'"),
        ("{module}:nothing", "has no attribute 'nothing'"),
        ("{module}:NUMBER", "'NUMBER' is a int, not a callable"),
        ("{module}:not_a_module", "must return a torch.nn.Module, got str"),
        ("{module}:broken", "raised RuntimeError: out of coffee"),
    ],
)
def test_a_bad_import_path_is_one_line(user_module: str, attribute: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        simulate(model=attribute.format(module=user_module), **SMALL)
    assert "\n" not in str(caught.value)


def test_labels_name_what_was_given(user_module: str) -> None:
    assert model_label("mlp") == "mlp"
    assert callable(resolve_import_path(f"{user_module}:build"))
    assert model_label(resolve_import_path(f"{user_module}:build")) == f"{user_module}:build"
