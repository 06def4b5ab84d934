"""Convert between a model's ``state_dict`` and the list of NumPy arrays Flower sends.

Flower moves a model as a list of arrays; the usual PyTorch pattern sends
``[v.cpu().numpy() for v in net.state_dict().values()]``, so the list follows the
``state_dict``'s key order, and the keys travel nowhere: both ends must know them.

0-d tensors (batch norm's ``num_batches_tracked``) are sent as 1-d arrays of one
entry: Flower 1.42's SecAgg+ unmasking leaves a 0-d array unscaled (its in-place
``vec += offset`` rebinds a NumPy scalar), so the aggregate of a 0-d entry comes back
wrong. :func:`ndarrays_to_state_dict` given ``like`` restores the shapes and dtypes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from leakage.errors import ConfigError
from leakage.recording import StateDict

__all__ = ["ndarrays_to_state_dict", "state_dict_to_ndarrays"]

NDArray = np.ndarray[Any, Any]


def state_dict_to_ndarrays(state: StateDict) -> list[NDArray]:
    """Return the arrays Flower sends for ``state``, in its key order, 0-d entries as 1-d.

    >>> arrays = state_dict_to_ndarrays({"w": torch.ones(2, 3), "steps": torch.tensor(7)})
    >>> [a.shape for a in arrays]
    [(2, 3), (1,)]
    """
    arrays = []
    for value in state.values():
        array = value.detach().cpu().numpy() if isinstance(value, Tensor) else np.asarray(value)
        arrays.append(array.reshape(1) if array.ndim == 0 else array)
    return arrays


def ndarrays_to_state_dict(
    arrays: Sequence[NDArray], keys: Sequence[str], like: StateDict | None = None
) -> dict[str, Tensor]:
    """Return ``arrays`` as a ``state_dict``: ``keys[i]`` names ``arrays[i]``.

    Args:
        arrays: the model as Flower holds it, in the order of ``keys``.
        keys: the ``state_dict`` keys, e.g. ``list(model.state_dict())``.
        like: a ``state_dict`` holding every key; each array takes its shape and dtype
            (Flower's SecAgg+ returns float64, and 0-d tensors travel as 1-d). ``None``:
            the arrays keep theirs.

    Raises:
        ConfigError: the counts differ (naming the first key or array left over), a key
            is missing from ``like``, or an array's size differs from ``like``'s.

    >>> state = ndarrays_to_state_dict([np.zeros((2, 2)), np.ones(1)], ["w", "steps"],
    ...                                like={"w": torch.zeros(2, 2), "steps": torch.tensor(0)})
    >>> state["w"].dtype, state["steps"].shape, int(state["steps"])
    (torch.float32, torch.Size([]), 1)
    >>> ndarrays_to_state_dict([np.zeros(2)], ["w", "b"])
    Traceback (most recent call last):
    ...
    leakage.errors.ConfigError: got 1 arrays for 2 keys: no array for key 'b' (position 1)
    """
    if len(arrays) != len(keys):
        position = min(len(arrays), len(keys))
        which = (
            f"no array for key {keys[position]!r}" if len(keys) > len(arrays)
            else "no key for the array"
        )
        raise ConfigError(f"got {len(arrays)} arrays for {len(keys)} keys: {which} (position {position})")
    state: dict[str, Tensor] = {}
    for position, (key, array) in enumerate(zip(keys, arrays, strict=True)):
        tensor = torch.from_numpy(np.array(array, copy=True))
        if like is not None:
            if key not in like:
                raise ConfigError(f"key {key!r} (position {position}) is not in like's keys {list(like)[:5]}...")
            template = like[key]
            shape = tuple(template.shape)
            if tensor.numel() != int(np.prod(shape)):
                raise ConfigError(
                    f"array {position} for key {key!r} has shape {tuple(tensor.shape)}, "
                    f"but like's {key!r} has shape {shape}"
                )
            dtype = template.dtype if isinstance(template, Tensor) else torch.from_numpy(np.asarray(template)).dtype
            tensor = tensor.reshape(shape).to(dtype)
        state[key] = tensor
    return state
