"""Flat parameter vectors: the form in which FL clients and protocols exchange models."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

__all__ = [
    "BufferLayout",
    "ParameterLayout",
    "flatten_buffers",
    "flatten_parameters",
    "load_flat_buffers",
    "load_flat_parameters",
]


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


@dataclass(frozen=True)
class BufferLayout:
    """Names, shapes and dtypes of a model's buffers (batch-norm running statistics...), in flat order.

    FL frameworks send buffers with the parameters (a ``state_dict``) and average them
    like parameters; here they travel as one float32 vector ``[B]`` beside the flat
    parameters. Integer buffers (``num_batches_tracked``) are carried as floats and
    rounded back when loaded.
    """

    names: tuple[str, ...] = ()
    shapes: tuple[tuple[int, ...], ...] = ()
    dtypes: tuple[str, ...] = ()

    @classmethod
    def of(cls, model: nn.Module) -> BufferLayout:
        """Return the layout of ``model``'s buffers that its ``state_dict`` holds (persistent ones)."""
        state = model.state_dict()
        named = [(name, b) for name, b in model.named_buffers() if name in state]
        return cls(
            tuple(name for name, _ in named),
            tuple(tuple(b.shape) for _, b in named),
            tuple(str(b.dtype).removeprefix("torch.") for _, b in named),
        )

    @property
    def num_entries(self) -> int:
        """Length of the flat buffer vector (0 for a model without buffers)."""
        return sum(math.prod(shape) for shape in self.shapes)

    def unflatten(self, flat: Tensor) -> dict[str, Tensor]:
        """Split ``flat`` (``[B]`` or ``[..., B]``) into named buffers of their own dtypes.

        >>> layout = BufferLayout(("mean", "count"), ((2,), ()), ("float32", "int64"))
        >>> {k: v.tolist() for k, v in layout.unflatten(torch.tensor([0.5, 1.5, 2.6])).items()}
        {'mean': [0.5, 1.5], 'count': 3}
        """
        batch = flat.shape[:-1]
        pieces = torch.split(flat, [math.prod(shape) for shape in self.shapes], dim=-1)
        values = {}
        for name, piece, shape, dtype in zip(self.names, pieces, self.shapes, self.dtypes, strict=True):
            kind = getattr(torch, dtype)
            value = piece.reshape((*batch, *shape))
            values[name] = value.round().to(kind) if not kind.is_floating_point else value.to(kind)
        return values

    def to_dict(self) -> dict[str, object]:
        """Plain-data form for serialisation."""
        return {"names": list(self.names), "shapes": [list(s) for s in self.shapes], "dtypes": list(self.dtypes)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BufferLayout:
        """Inverse of :meth:`to_dict`."""
        return cls(
            tuple(str(n) for n in data["names"]),
            tuple(tuple(int(d) for d in s) for s in data["shapes"]),
            tuple(str(d) for d in data["dtypes"]),
        )


def flatten_buffers(model: nn.Module) -> Tensor:
    """Return ``model``'s ``state_dict`` buffers as one float32 vector ``[B]`` (empty without buffers)."""
    layout = BufferLayout.of(model)
    named = dict(model.named_buffers())
    if not layout.names:
        return torch.zeros(0)
    return torch.cat([named[name].detach().reshape(-1).to(torch.float32) for name in layout.names]).clone()


def load_flat_buffers(model: nn.Module, flat: Tensor) -> nn.Module:
    """Copy the flat buffer vector ``flat`` (``[B]``) into ``model``'s buffers, in place; returns the model."""
    layout = BufferLayout.of(model)
    if flat.shape != (layout.num_entries,):
        raise ValueError(f"flat buffers must have shape ({layout.num_entries},), got {tuple(flat.shape)}")
    values = layout.unflatten(flat.detach())
    named = dict(model.named_buffers())
    with torch.no_grad():
        for name, value in values.items():
            named[name].copy_(value)
    return model
