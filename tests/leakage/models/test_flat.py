import pytest
import torch

from leakage.models import ParameterLayout, flatten_parameters, load_flat_parameters


def test_flatten_then_load_round_trips(tiny_model: torch.nn.Module) -> None:
    flat = flatten_parameters(tiny_model)
    layout = ParameterLayout.of(tiny_model)

    load_flat_parameters(tiny_model, torch.zeros_like(flat))
    assert float(flatten_parameters(tiny_model).abs().sum()) == 0.0
    load_flat_parameters(tiny_model, flat)

    assert torch.equal(flatten_parameters(tiny_model), flat)
    assert flat.shape == (layout.num_parameters,) == (64 * 16 + 16 + 16 * 10 + 10,)


def test_unflatten_gives_named_views_for_a_batch_of_vectors(tiny_model: torch.nn.Module) -> None:
    layout = ParameterLayout.of(tiny_model)
    batch = torch.randn(5, layout.num_parameters)

    pieces = layout.unflatten(batch)

    assert list(pieces) == list(layout.names)
    assert pieces["1.weight"].shape == (5, 16, 64)
    assert ParameterLayout.from_dict(layout.to_dict()) == layout


def test_loading_a_vector_of_the_wrong_length_names_the_expected_shape(tiny_model: torch.nn.Module) -> None:
    with pytest.raises(ValueError, match=r"flat parameters must have shape \(1210,\), got \(3,\)"):
        load_flat_parameters(tiny_model, torch.zeros(3))
