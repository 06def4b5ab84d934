"""The `Dataset` record every loader returns, and the dataset registry."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor

from leakage.registry import Registry

__all__ = ["DATASETS", "Dataset", "load_dataset"]


@dataclass(frozen=True)
class Dataset:
    """A labelled dataset held in memory as normalised tensors.

    Attributes:
        name: registry name, e.g. ``"digits"``.
        inputs: float32 tensor ``[num_samples, *input_shape]``, already normalised:
            ``inputs = (raw - mean) / std`` with ``mean``/``std`` broadcast per channel
            (images, shape ``[C, 1, 1]``) or per feature (tabular, shape ``[D]``).
        targets: int64 tensor ``[num_samples]`` of class indices in ``[0, num_classes)``.
        num_classes: number of classes of the main task.
        mean, std: the normalisation, so attacks can map back to the raw range.
        value_range: ``(low, high)`` of raw (denormalised) inputs, e.g. ``(0.0, 1.0)``.
        kind: ``"image"`` (inputs ``[C, H, W]``) or ``"tabular"`` (inputs ``[D]``).
        properties: boolean tensors ``[num_samples]`` marking samples that carry a
            property which is *not* the main label (for property inference).
        class_names: one readable name per class.
    """

    name: str
    inputs: Tensor
    targets: Tensor
    num_classes: int
    mean: Tensor
    std: Tensor
    value_range: tuple[float, float]
    kind: Literal["image", "tabular"]
    properties: Mapping[str, Tensor] = field(default_factory=dict)
    class_names: tuple[str, ...] = ()

    @classmethod
    def from_tensors(
        cls,
        inputs: Tensor,
        targets: Tensor,
        *,
        name: str = "tensors",
        num_classes: int | None = None,
        kind: Literal["image", "tabular"] | None = None,
        class_names: Sequence[str] = (),
        properties: Mapping[str, Tensor] | None = None,
        value_range: tuple[float, float] | None = None,
        normalise: bool = True,
    ) -> Dataset:
        """Return raw ``inputs`` (``[N, C, H, W]`` or ``[N, D]``) and integer ``targets`` as a dataset.

        Normalisation comes from the data itself; see `leakage.data.user.dataset_from_tensors`
        for every argument and check.

        >>> data = Dataset.from_tensors(torch.tensor([[0.0], [4.0]]), torch.tensor([0, 1]))
        >>> data.inputs.flatten().tolist(), data.mean.tolist(), data.std.tolist()
        ([-1.0, 1.0], [2.0], [2.0])
        """
        from leakage.data.user import dataset_from_tensors  # imported here: user.py imports this module

        return dataset_from_tensors(
            inputs,
            targets,
            name=name,
            num_classes=num_classes,
            kind=kind,
            class_names=class_names,
            properties=properties,
            value_range=value_range,
            normalise=normalise,
        )

    @classmethod
    def from_torch(
        cls,
        torch_dataset: torch.utils.data.Dataset[Any],
        *,
        name: str = "torch",
        num_classes: int | None = None,
        limit: int | None = None,
        kind: Literal["image", "tabular"] | None = None,
        class_names: Sequence[str] = (),
        properties: Mapping[str, Tensor] | None = None,
        value_range: tuple[float, float] | None = None,
        normalise: bool = True,
    ) -> Dataset:
        """Return the ``(input, label)`` items of a map-style torch dataset as a dataset.

        Inputs are tensors ``[C, H, W]`` / ``[D]`` of raw values or PIL images (scaled to
        ``[0, 1]``); see `leakage.data.user.dataset_from_torch` for every argument.

        >>> pairs = torch.utils.data.TensorDataset(torch.rand(6, 1, 4, 4), torch.tensor([0, 1] * 3))
        >>> Dataset.from_torch(pairs, limit=4).input_shape, len(Dataset.from_torch(pairs, limit=4))
        ((1, 4, 4), 4)
        """
        from leakage.data.user import dataset_from_torch  # imported here: user.py imports this module

        return dataset_from_torch(
            torch_dataset,
            name=name,
            num_classes=num_classes,
            limit=limit,
            kind=kind,
            class_names=class_names,
            properties=properties,
            value_range=value_range,
            normalise=normalise,
        )

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input, without the batch dimension."""
        return tuple(self.inputs.shape[1:])

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def denormalize(self, inputs: Tensor) -> Tensor:
        """Map normalised inputs ``[..., *input_shape]`` back to the raw value range."""
        return inputs * self.std.to(inputs) + self.mean.to(inputs)

    def normalize(self, raw: Tensor) -> Tensor:
        """Map raw inputs ``[..., *input_shape]`` to the normalised space the models see."""
        return (raw - self.mean.to(raw)) / self.std.to(raw)

    def subset(self, indices: Tensor) -> Dataset:
        """Return the samples at ``indices`` (int64 tensor) as a new dataset."""
        return Dataset(
            name=self.name,
            inputs=self.inputs[indices],
            targets=self.targets[indices],
            num_classes=self.num_classes,
            mean=self.mean,
            std=self.std,
            value_range=self.value_range,
            kind=self.kind,
            properties={key: flags[indices] for key, flags in self.properties.items()},
            class_names=self.class_names,
        )


DATASETS: Registry[Callable[..., Dataset]] = Registry("dataset")


def load_dataset(name: str, /, **options: object) -> Dataset:
    """Load the registered dataset ``name``; ``options`` go to its loader.

    Raises:
        UnknownNameError: ``name`` is not registered (the message lists the valid names).
    """
    dataset: Dataset = DATASETS.create(name, **options)
    return dataset


