"""A recorded ``state_dict`` in the toolkit's flat layout: parameters ``[P]`` and buffers ``[B]``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from leakage.errors import ConfigError
from leakage.models import BufferLayout, ParameterLayout

__all__ = ["FlatModel", "state_dict_to_flat"]


@dataclass(frozen=True)
class FlatModel:
    """A recorded ``state_dict`` in the toolkit's flat layout: parameters ``[P]`` and buffers ``[B]``."""

    params: Tensor
    buffers: Tensor


def state_dict_to_flat(
    state: Mapping[str, Tensor], model: nn.Module, *, source: str = "state_dict"
) -> FlatModel:
    """Return ``state`` as the flat parameters and buffers of ``model``'s layout.

    Parameters follow ``model.named_parameters()``; buffers are the persistent ones of
    its ``state_dict`` (batch-norm running statistics and counters), as float32, the way
    :class:`~leakage.models.BufferLayout` carries them. Every key of the model's
    ``state_dict`` must be present with its shape, and nothing else.

    Raises:
        ConfigError: a key is missing or unknown, or a shape differs; one line naming
            ``source`` and the key.

    >>> model = nn.Linear(2, 1)
    >>> flat = state_dict_to_flat({"weight": torch.ones(1, 2), "bias": torch.zeros(1)}, model)
    >>> flat.params.tolist(), flat.buffers.numel()
    ([1.0, 1.0, 0.0], 0)
    """
    expected = model.state_dict()
    missing = [name for name in expected if name not in state]
    if missing:
        raise ConfigError(f"{source}: the model's {missing[0]!r} is missing ({len(missing)} key(s) missing)")
    unknown = [name for name in state if name not in expected]
    if unknown:
        raise ConfigError(f"{source}: {unknown[0]!r} is not in the model's state_dict")
    for name, value in expected.items():
        if tuple(state[name].shape) != tuple(value.shape):
            raise ConfigError(
                f"{source}: {name!r} has shape {tuple(state[name].shape)}, the model's is {tuple(value.shape)}"
            )
    layout, buffers = ParameterLayout.of(model), BufferLayout.of(model)
    params = torch.cat([state[name].detach().reshape(-1).to(torch.float32) for name in layout.names])
    flat_buffers = (
        torch.cat([state[name].detach().reshape(-1).to(torch.float32) for name in buffers.names])
        if buffers.names else torch.zeros(0)
    )
    return FlatModel(params, flat_buffers)
