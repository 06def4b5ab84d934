"""The model registry: small classifiers from the gradient-leakage literature.

Every builder takes the input shape and number of classes of a dataset plus a
``torch.Generator`` for the initial weights, so model construction never touches
torch's global random state.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
from torch import nn

from leakage.checks import require_bool, require_choice
from leakage.errors import ConfigError
from leakage.models.user import build_user_model, is_import_path
from leakage.registry import Registry

__all__ = ["MODELS", "create_model"]

ModelBuilder = Callable[..., nn.Module]
MODELS: Registry[ModelBuilder] = Registry("model")

# Initialisations that differ from torch's defaults, with the reason in each builder's docstring.
_INIT_SCHEMES: dict[str, Literal["uniform_half", "resnet"]] = {"lenet": "uniform_half", "resnet18": "resnet"}

_ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


def create_model(
    name: str,
    /,
    *,
    input_shape: tuple[int, ...],
    num_classes: int,
    generator: torch.Generator,
    **options: object,
) -> nn.Module:
    """Build the registered model ``name`` for inputs of ``input_shape`` and ``num_classes``.

    Args:
        name: a name in ``MODELS`` (``logreg``, ``mlp``, ``lenet``, ``convnet``, ``resnet18``),
            or an import path ``"module:callable"`` of the user's own builder (see
            :mod:`leakage.models.user`), whose own initialisation is kept.
        input_shape: one input without the batch dimension: ``[C, H, W]`` or ``[D]``.
        num_classes: number of output logits.
        generator: draws the initial weights.
        options: model-specific keyword options (e.g. ``hidden`` for ``mlp``).

    >>> model = create_model("mlp", input_shape=(1, 8, 8), num_classes=10,
    ...                      generator=torch.Generator().manual_seed(0))
    >>> model(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 10])
    """
    if num_classes < 2:
        raise ConfigError(f"num_classes must be >= 2, got {num_classes}")
    if not input_shape or any(int(size) < 1 for size in input_shape):
        raise ConfigError(f"input_shape must be non-empty and positive, got {input_shape}")
    if is_import_path(name):  # the user's own builder: its initialisation is kept
        return build_user_model(
            name, input_shape=tuple(int(s) for s in input_shape), num_classes=int(num_classes), generator=generator,
            options=options,
        )
    model: nn.Module = MODELS.create(name, tuple(int(s) for s in input_shape), int(num_classes), **options)
    _initialize(model, generator, scheme=_INIT_SCHEMES.get(name, "default"))
    return model


def _image_shape(input_shape: tuple[int, ...], model: str) -> tuple[int, int, int]:
    if len(input_shape) != 3:
        raise ConfigError(
            f"model {model!r} needs image inputs [C, H, W], got input_shape {input_shape}"
        )
    return input_shape[0], input_shape[1], input_shape[2]


@MODELS.register("logreg")
def logistic_regression(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Multinomial logistic regression: one linear layer with bias on flattened inputs."""
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), num_classes))


@MODELS.register("mlp")
def multilayer_perceptron(
    input_shape: tuple[int, ...],
    num_classes: int,
    *,
    hidden: tuple[int, ...] = (128,),
    activation: Literal["relu", "sigmoid", "tanh"] = "relu",
) -> nn.Module:
    """Fully connected network; its first layer has a bias, as analytic inversion needs."""
    require_choice("activation", activation, sorted(_ACTIVATIONS))
    if not hidden or any(int(width) < 1 for width in hidden):
        raise ConfigError(f"hidden must be a non-empty list of positive widths, got {hidden}")
    layers: list[nn.Module] = [nn.Flatten()]
    width_in = math.prod(input_shape)
    for width in hidden:
        layers += [nn.Linear(width_in, int(width)), _ACTIVATIONS[activation]()]
        width_in = int(width)
    layers.append(nn.Linear(width_in, num_classes))
    return nn.Sequential(*layers)


@MODELS.register("lenet")
def lenet(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """The sigmoid LeNet of Zhu et al., "Deep Leakage from Gradients" (NeurIPS 2019).

    Three 5x5 convolutions with 12 channels (strides 2, 2, 1, padding 2) and sigmoid
    activations, then one linear layer. Weights start uniform in [-0.5, 0.5], as in the
    paper's code, which keeps gradients informative for the attack.
    """
    channels, height, width = _image_shape(input_shape, "lenet")
    features = nn.Sequential(
        nn.Conv2d(channels, 12, kernel_size=5, padding=2, stride=2),
        nn.Sigmoid(),
        nn.Conv2d(12, 12, kernel_size=5, padding=2, stride=2),
        nn.Sigmoid(),
        nn.Conv2d(12, 12, kernel_size=5, padding=2, stride=1),
        nn.Sigmoid(),
    )
    with torch.device("meta"):
        flat = features(torch.empty(1, channels, height, width)).numel()
    model = nn.Sequential(features, nn.Flatten(), nn.Linear(flat, num_classes))
    return model


@MODELS.register("convnet")
def convnet(
    input_shape: tuple[int, ...],
    num_classes: int,
    *,
    width: int = 32,
    variant: Literal["gap", "geiping"] = "gap",
    batch_norm: bool | None = None,
) -> nn.Module:
    """Small ReLU CNN, or the ConvNet of Geiping et al. with ``variant="geiping"``.

    ``gap`` (the default): conv(w)-conv(2w)-maxpool-conv(2w)-global average pool-linear.
    Averaging away the positions keeps the model small but leaves the last layer's
    gradient without spatial information.

    ``geiping``: the ConvNet of "Inverting Gradients - How easy is it to break privacy in
    federated learning?" (Geiping et al., NeurIPS 2020; ``ConvNet`` in their ``inversefed``
    code): eight 3x3 convolutions with w, 2w, 2w, 4w, 4w, 4w channels at full resolution,
    a 3x3 max pool, two more with 4w, another 3x3 max pool, then a linear layer on the
    flattened ``4w x H/9 x W/9`` features (``36 w`` for 32x32 inputs), so positions reach
    the classifier. Each convolution is followed by batch normalisation and a ReLU.

    Batch normalisation always uses the statistics of the current batch and keeps no
    running buffers (as ``resnet18`` here): a client's training step normalises with its
    batch's statistics, and so does any forward of this model, so an attacker's forward on
    a candidate batch of the same size computes the same function the client did, and the
    parameter vector stays the whole model state.

    Args:
        width: channels of the first convolution ``w``.
        variant: ``gap`` or ``geiping`` (above).
        batch_norm: put batch normalisation after every convolution; by default only the
            ``geiping`` variant has it, as in the paper's model.
    """
    channels, height, image_width = _image_shape(input_shape, "convnet")
    if width < 1:
        raise ConfigError(f"width must be >= 1, got {width}")
    variant = require_choice("variant", variant, ("gap", "geiping"))
    has_batch_norm = variant == "geiping" if batch_norm is None else require_bool("batch_norm", batch_norm)
    if variant == "gap":
        plan: list[int | str] = [width, 2 * width, "pool2", 2 * width, "average"]
    else:
        if height < 9 or image_width < 9:
            raise ConfigError(
                f"convnet variant 'geiping' pools twice by 3 and needs inputs of at least 9x9, got {input_shape}"
            )
        plan = [width, 2 * width, 2 * width, 4 * width, 4 * width, 4 * width, "pool3", 4 * width, 4 * width, "pool3"]
    layers: list[nn.Module] = []
    width_in = channels
    for step in plan:
        if step == "pool2":
            layers.append(nn.MaxPool2d(2))
        elif step == "pool3":
            layers.append(nn.MaxPool2d(3))
        elif step == "average":
            layers.append(nn.AdaptiveAvgPool2d(1))
        else:
            width_out = int(step)
            layers.append(nn.Conv2d(width_in, width_out, 3, padding=1))
            if has_batch_norm:
                layers.append(nn.BatchNorm2d(width_out, track_running_stats=False))
            layers.append(nn.ReLU())
            width_in = width_out
    # max pooling floors: 32x32 inputs leave 3x3 positions after two 3x3 pools
    positions = 1 if variant == "gap" else (height // 3 // 3) * (image_width // 3 // 3)
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(width_in * positions, num_classes))


@MODELS.register("resnet18")
def resnet18(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """torchvision's ResNet-18, random init, adapted to small (32x32) inputs.

    The stem is a 3x3 stride-1 convolution without max pooling, as is usual for CIFAR.
    Batch normalisation always uses the statistics of the current batch and keeps no
    running buffers, so the whole model is a function of its parameters alone: FL
    clients exchange exactly the parameter vector and updates vectorise across clients.
    """
    channels, _, _ = _image_shape(input_shape, "resnet18")
    import torchvision  # imported here: it takes seconds, and only this model needs it

    model: nn.Module = torchvision.models.resnet18(
        weights=None,
        num_classes=num_classes,
        norm_layer=lambda features: nn.BatchNorm2d(features, track_running_stats=False),
    )
    model.conv1 = nn.Conv2d(channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


def _initialize(model: nn.Module, generator: torch.Generator, *, scheme: str) -> None:
    """Re-draw every parameter from ``generator`` (torch's default rules unless noted)."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Linear, nn.Conv2d)):
                if scheme == "uniform_half":
                    module.weight.uniform_(-0.5, 0.5, generator=generator)
                    if module.bias is not None:
                        module.bias.uniform_(-0.5, 0.5, generator=generator)
                    continue
                if scheme == "resnet" and isinstance(module, nn.Conv2d):
                    nn.init.kaiming_normal_(
                        module.weight, mode="fan_out", nonlinearity="relu", generator=generator
                    )
                else:
                    nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
                if module.bias is not None:
                    fan_in = module.weight[0].numel()
                    bound = 1.0 / math.sqrt(fan_in)
                    module.bias.uniform_(-bound, bound, generator=generator)
            elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)):
                if module.weight is not None:
                    module.weight.fill_(1.0)
                    module.bias.fill_(0.0)
