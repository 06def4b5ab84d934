"""Flat parameter vectors: the form in which FL clients and protocols exchange models."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["ParameterLayout", "flatten_parameters", "load_flat_parameters"]


@dataclass(frozen=True)
class ParameterLayout:
    """Names and shapes of a model's parameters, in the order of the flat vector."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]

    @classmethod
    def of(cls, model: nn.Module) -> ParameterLayout:
        """Return the layout of ``model``'s parameters (``named_parameters`` order)."""
        named = list(model.named_parameters())
        return cls(tuple(name for name, _ in named), tuple(tuple(p.shape) for _, p in named))

    @property
    def sizes(self) -> tuple[int, ...]:
        """Number of entries of each parameter."""
        return tuple(math.prod(shape) for shape in self.shapes)

    @property
    def num_parameters(self) -> int:
        """Length of the flat vector."""
        return sum(self.sizes)

    def unflatten(self, flat: Tensor) -> dict[str, Tensor]:
        """Split ``flat`` (``[P]``, or ``[..., P]`` for a batch) into named views.

        >>> layout = ParameterLayout(("w", "b"), ((2, 2), (2,)))
        >>> {k: tuple(v.shape) for k, v in layout.unflatten(torch.arange(6.0)).items()}
        {'w': (2, 2), 'b': (2,)}
        """
        batch = flat.shape[:-1]
        pieces = torch.split(flat, list(self.sizes), dim=-1)
        return {
            name: piece.reshape(*batch, *shape)
            for name, piece, shape in zip(self.names, pieces, self.shapes, strict=True)
        }

    def to_dict(self) -> dict[str, object]:
        """Plain-data form for serialisation."""
        return {"names": list(self.names), "shapes": [list(s) for s in self.shapes]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ParameterLayout:
        """Inverse of :meth:`to_dict`."""
        names = tuple(str(n) for n in data["names"])
        shapes = tuple(tuple(int(d) for d in s) for s in data["shapes"])
        return cls(names, shapes)


def flatten_parameters(model: nn.Module) -> Tensor:
    """Return ``model``'s parameters concatenated into one detached float vector ``[P]``."""
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).clone()


def load_flat_parameters(model: nn.Module, flat: Tensor) -> nn.Module:
    """Copy the flat vector ``flat`` (``[P]``) into ``model``'s parameters, in place.

    Returns:
        The same model, for chaining.

    Raises:
        ValueError: ``flat`` does not have the model's number of parameters.
    """
    layout = ParameterLayout.of(model)
    if flat.shape != (layout.num_parameters,):
        raise ValueError(
            f"flat parameters must have shape ({layout.num_parameters},), got {tuple(flat.shape)}"
        )
    values = layout.unflatten(flat.detach())
    with torch.no_grad():
        for name, param in model.named_parameters():
            param.copy_(values[name])
    return model
