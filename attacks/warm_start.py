"""Recursive gradient inversion (R-GAP): one input in closed form, layer by layer, top down.

Zhu and Blaschko, "R-GAP: Recursive Gradient Attack on Privacy" (ICLR 2021). Take a chain
of linear layers ``z_k = W_k u_k + b_k`` (fully connected, or convolutional: ``W_k`` applied
to every patch of ``u_k``) joined by invertible elementwise activations ``u_{k+1} =
sigma_k(z_k)`` (sigmoid, tanh, leaky ReLU or none), ending in the classifier ``z_n``. One
sample's cross-entropy gradient gives, top down:

- the classifier's input from its rank-one gradient ``dL/dW_n = delta_n u_n^T`` with
  ``delta_n = dL/db_n``: ``u_n = sum_c delta_c (dL/dW_n)_c / sum_c delta_c^2``;
- then, for ``k = n - 1, ..., 1``, from ``u_{k+1}`` and ``delta_{k+1}``: ``z_k =
  sigma_k^-1(u_{k+1})``, ``delta_k = sigma_k'(z_k) * W_{k+1}^T delta_{k+1}``, and ``u_k`` as the
  least-squares solution of two linear systems in ``u_k``::

      sigma_k'(z_k) * (W_k u_k)     = sigma_k'(z_k) * (z_k - b_k)   (what the layer computed)
      sum_p delta_k[:, p] u_k[patch p]^T = dL/dW_k                  (its observed weight gradient)

The forward rows are weighted by ``sigma'(z)``: an error ``e`` in an activation ``u`` becomes
``e / sigma'(z)`` in ``z = sigma^-1(u)``, huge near saturation, so the weighted rows compare
activations instead. Each block is then divided by the norm of its right-hand side so both
count alike. The normal equations are assembled entry by entry from the patch structure
(a convolution's ``W^T W`` only couples pixels that share a patch) and solved by Cholesky
in float64.

``u_1`` is the input. A strided convolution has fewer forward equations than unknowns; the
weight-gradient equations make up the difference (the DLG paper's sigmoid LeNet is
determined at every layer). Errors still grow through ill-conditioned layers, so the
estimate is a warm start for the gradient-matching optimisation, not its end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from leakage.errors import ThreatModelError
from leakage.models import ParameterLayout

__all__ = ["invert_recursively", "is_recursively_invertible"]

_ACTIVATIONS = (nn.Sigmoid, nn.Tanh, nn.LeakyReLU)
_RESHAPES = (nn.Flatten, nn.Identity)
_OPEN_RANGE = 1e-9  # inverted activations stay this far inside their open range
_REFINEMENTS = 6  # float32-Cholesky refinement steps before float64 takes over
_REFINED = 1e-12  # relative residual at which a refined solution is accepted


@dataclass(frozen=True)
class _Stage:
    """One linear layer of the chain: where its parameters sit, its patches, what follows it.

    A fully connected layer is a convolution with one output position whose single
    patch holds every input feature as a channel: ``channels = in_features``, ``spatial = 1``.
    """

    weight: slice
    bias: slice | None
    out_features: int  # rows of the weight matrix (output channels)
    channels: int  # input channels; weight columns are (channel, kernel offset), channel-major
    spatial: int  # input positions per channel
    pixels: Tensor  # [K, P]: input position under kernel offset k at output position p, -1 in padding
    input_shape: tuple[int, ...]
    activation: nn.Module | None  # applied to the output before the next stage

    @property
    def input_size(self) -> int:
        return self.channels * self.spatial


def is_recursively_invertible(model: nn.Module, input_shape: tuple[int, ...]) -> bool:
    """Return whether :func:`invert_recursively` accepts ``model``.

    >>> is_recursively_invertible(nn.Sequential(nn.Linear(4, 3), nn.Sigmoid(), nn.Linear(3, 2)), (4,))
    True
    >>> is_recursively_invertible(nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)), (4,))
    False
    """
    try:
        _chain(model, input_shape)
    except ThreatModelError:
        return False
    return True


def _chain(model: nn.Module, input_shape: tuple[int, ...]) -> list[_Stage]:
    """Return ``model``'s linear layers with their activations and patch maps.

    Raises:
        ThreatModelError: the model is not a chain (nested ``nn.Sequential``) of
            ``nn.Linear`` and ``nn.Conv2d`` layers, invertible activations and flattens, or it
            does not end in ``nn.Linear`` with a bias that gives the logits.
    """
    offsets: dict[str, slice] = {}
    start = 0
    layout = ParameterLayout.of(model)
    for param, size in zip(layout.names, layout.sizes, strict=True):
        offsets[param], start = slice(start, start + size), start + size
    stages: list[_Stage] = []
    shape = tuple(input_shape)
    has_activation = True  # nothing to attach an activation to before the first layer
    # every use of a module, in call order: an activation instance may serve several layers
    for name, module in model.named_modules(remove_duplicate=False):
        if list(module.children()):
            if not isinstance(module, nn.Sequential):
                kind = type(module).__name__
                raise ThreatModelError(f"recursive inversion needs nn.Sequential chains, got {kind} {name!r}")
            continue
        prefix = f"{name}." if name else ""
        weight, bias = offsets.get(f"{prefix}weight"), offsets.get(f"{prefix}bias")
        if isinstance(module, nn.Linear) and weight is not None and shape == (module.in_features,):
            pixels = torch.zeros((1, 1), dtype=torch.int64)
            stages.append(_Stage(weight, bias, module.out_features, module.in_features, 1, pixels, shape, None))
            shape, has_activation = (module.out_features,), False
        elif isinstance(module, nn.Conv2d) and weight is not None and _is_plain(module) and len(shape) == 3:
            pixels, out_shape = _conv_pixels(module, shape)
            stages.append(_Stage(weight, bias, module.out_channels, shape[0], shape[1] * shape[2], pixels, shape, None))
            shape, has_activation = out_shape, False
        elif isinstance(module, _ACTIVATIONS) and not has_activation:
            stages[-1] = replace(stages[-1], activation=module)
            has_activation = True
        elif isinstance(module, nn.Flatten) and module.start_dim == 1 and module.end_dim == -1:
            shape = (math.prod(shape),)
        elif not isinstance(module, nn.Identity):
            raise ThreatModelError(
                f"recursive inversion cannot invert {type(module).__name__} {name!r} here (it inverts nn.Linear and "
                "nn.Conv2d with zero padding, each followed by one sigmoid, tanh or leaky ReLU, and flattens)"
            )
    if not stages or stages[-1].spatial != 1 or stages[-1].bias is None or has_activation:
        raise ThreatModelError("recursive inversion needs the model to end in nn.Linear with a bias giving the logits")
    return stages  # two linear layers in a row are joined by the identity


def _is_plain(module: nn.Conv2d) -> bool:
    """Whether the convolution is one dense kernel with numeric zero padding (what the patch maps describe)."""
    return module.groups == 1 and module.padding_mode == "zeros" and isinstance(module.padding, tuple)


def _conv_pixels(module: nn.Conv2d, shape: tuple[int, ...]) -> tuple[Tensor, tuple[int, int, int]]:
    """Return ``([kh * kw, P] input position under each kernel offset at each output position, output shape)``."""
    _, height, width = shape
    positions = torch.arange(1, height * width + 1, dtype=torch.float64).reshape(1, 1, height, width)
    padding = tuple(int(p) for p in module.padding)
    pixels = F.unfold(positions, module.kernel_size, module.dilation, padding, module.stride)[0]
    with torch.device("meta"):
        out_shape = F.conv2d(
            torch.empty(1, 1, height, width), torch.empty(1, 1, *module.kernel_size), None, module.stride,
            padding, module.dilation,
        ).shape
    return pixels.round().to(torch.int64) - 1, (module.out_channels, int(out_shape[2]), int(out_shape[3]))


def invert_recursively(model: nn.Module, input_shape: tuple[int, ...], params: Tensor, gradient: Tensor) -> Tensor:
    """Return ``[1, *input_shape]``: the one input whose cross-entropy gradient is ``gradient``, by R-GAP.

    Args:
        model: the architecture: a chain of ``nn.Linear`` / ``nn.Conv2d`` layers, each but
            the last followed by a sigmoid, tanh or leaky ReLU (or nothing), with flattens.
        input_shape: one input without the batch dimension.
        params: flat ``[P]`` parameters at which the gradient was taken.
        gradient: flat ``[P]`` gradient of one sample's loss (any positive multiple works).

    Returns:
        The estimate in the model's input space, in float64 on ``gradient``'s device.

    Raises:
        ThreatModelError: the model is not such a chain.

    >>> net = nn.Sequential(nn.Linear(4, 3), nn.Sigmoid(), nn.Linear(3, 2))
    >>> x = torch.tensor([[0.1, 0.2, 0.3, 0.4]])
    >>> loss = F.cross_entropy(net(x), torch.tensor([1]))
    >>> observed = torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, list(net.parameters()))])
    >>> flat = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
    >>> torch.allclose(invert_recursively(net, (4,), flat, observed).float(), x, atol=1e-4)
    True
    """
    stages = _chain(model, input_shape)
    device = gradient.device
    params = params.detach().to(torch.float64)
    gradient = gradient.detach().to(torch.float64)
    last = stages[-1]
    assert last.bias is not None
    delta = gradient[last.bias][:, None]  # [O, P=1]
    weight_gradient = gradient[last.weight].reshape(last.out_features, -1)
    above = (delta[:, 0] @ weight_gradient) / (delta.pow(2).sum())
    for upper, stage in zip(reversed(stages[1:]), reversed(stages[:-1]), strict=True):
        upper_matrix = params[upper.weight].reshape(upper.out_features, -1)
        output = above.reshape(stage.out_features, -1)  # u_{k+1} as this layer's [O, P] output
        pre_activation, slope = _invert_activation(stage.activation, output)
        delta = _scatter(upper, upper_matrix.T @ delta, device).reshape_as(output) * slope
        matrix = params[stage.weight].reshape(stage.out_features, -1)
        bias = params[stage.bias][:, None] if stage.bias is not None else 0.0
        observed = gradient[stage.weight].reshape_as(matrix)
        above = _solve_layer(stage, matrix, delta, pre_activation - bias, slope, observed)
    return above.reshape(1, *input_shape)


def _invert_activation(activation: nn.Module | None, output: Tensor) -> tuple[Tensor, Tensor]:
    """Return ``(z, sigma'(z))`` with ``sigma(z) = output``, kept inside the activation's range."""
    if activation is None:
        return output, torch.ones_like(output)
    if isinstance(activation, nn.Sigmoid):
        clamped = output.clamp(_OPEN_RANGE, 1 - _OPEN_RANGE)
        return torch.logit(clamped), clamped * (1 - clamped)
    if isinstance(activation, nn.Tanh):
        clamped = output.clamp(-1 + _OPEN_RANGE, 1 - _OPEN_RANGE)
        return torch.atanh(clamped), 1 - clamped.pow(2)
    assert isinstance(activation, nn.LeakyReLU)
    slope = float(activation.negative_slope)
    negative = output < 0
    return torch.where(negative, output / slope, output), torch.where(negative, slope, 1.0).to(output)


def _scatter(stage: _Stage, columns: Tensor, device: torch.device) -> Tensor:
    """Return the flat ``[C * spatial]`` input that sums ``columns`` ``[C * K, P]`` where each patch entry came from.

    With ``columns = W^T y`` this is the layer's adjoint ``A^T y``.
    """
    pixels = stage.pixels.to(device)
    valid = pixels >= 0
    values = (columns.reshape(stage.channels, *pixels.shape) * valid).reshape(stage.channels, -1)
    result = columns.new_zeros(stage.channels, stage.spatial)
    result.index_add_(1, pixels.clamp_min(0).reshape(-1), values)
    return result.reshape(-1)


def _solve_layer(
    stage: _Stage, matrix: Tensor, delta: Tensor, target: Tensor, row_weight: Tensor, observed: Tensor
) -> Tensor:
    """Return the flat layer input ``u`` that best explains ``A u = target`` and ``G_delta u = observed``.

    Args:
        stage: the layer.
        matrix: ``[O, C * K]`` weight matrix (a convolution's kernels flattened).
        delta: ``[O, P]`` loss gradient at the layer's outputs.
        target: ``[O, P]`` layer outputs without bias.
        row_weight: ``[O, P]`` weight of each forward equation.
        observed: ``[O, C * K]`` observed weight gradient.

    The normal matrix is assembled per pair of input positions as a ``[C, C]`` block: the
    forward part ``sum_p sum_o w_op^2 W_o,(c,k) W_o,(c',k')`` at positions ``(pixel(k, p),
    pixel(k', p))``, the weight-gradient part ``sum_k sum_pq delta_p . delta_q`` at
    ``(pixel(k, p), pixel(k, q))`` on the channel diagonal only.
    """
    device = matrix.device
    rows = row_weight / max(float((row_weight * target).norm()), 1e-300)
    gradient_scale = 1.0 / max(float(observed.norm()), 1e-300)
    channels, spatial = stage.channels, stage.spatial
    pixels = stage.pixels.to(device)
    offsets, positions = pixels.shape
    valid = (pixels >= 0).to(matrix.dtype)
    safe = pixels.clamp_min(0)
    blocks = matrix.new_zeros(spatial * spatial, channels, channels)
    # forward: [P, K, K, C, C] blocks of sum_o w_op^2 W_o,(c,k) W_o,(c',k'), padding masked out
    kernel = matrix.reshape(-1, channels, offsets)
    gram = torch.einsum("op,ock,odl->pklcd", rows.pow(2), kernel, kernel)
    mask = (valid.T[:, :, None] * valid.T[:, None, :])[..., None, None]
    pairs = safe.T[:, :, None] * spatial + safe.T[:, None, :]
    blocks.index_add_(0, pairs.reshape(-1), (gram * mask).reshape(-1, channels, channels))
    # weight gradient: the same [spatial, spatial] matrix on every channel's diagonal block
    delta_gram = gradient_scale**2 * (delta.T @ delta)  # [P, P]
    shared = matrix.new_zeros(spatial * spatial)
    pairs = safe[:, :, None] * spatial + safe[:, None, :]
    shared.index_add_(0, pairs.reshape(-1), (delta_gram * valid[:, :, None] * valid[:, None, :]).reshape(-1))
    blocks.diagonal(dim1=1, dim2=2).add_(shared[:, None])
    normal = blocks.reshape(spatial, spatial, channels, channels).permute(2, 0, 3, 1).reshape(stage.input_size, -1)
    right = _scatter(stage, matrix.T @ (rows.pow(2) * target) + gradient_scale**2 * (observed.T @ delta), device)
    normal.diagonal().add_(1e-12 * float(normal.diagonal().mean()))
    return _solve_positive(normal, right)


def _solve_positive(normal: Tensor, right: Tensor) -> Tensor:
    """Return ``normal^-1 right`` for a symmetric positive (semi)definite float64 ``normal``.

    Cholesky in float32 (half the time of float64 for the 3072 unknowns of a LeNet layer),
    then iterative refinement with float64 residuals: the residual fell below 1e-12 of
    ``right`` within three refinements on every LeNet layer measured. Where float32 cannot
    factor or refine the system, float64 does it, and a singular system gets least squares.
    """
    factor, info = torch.linalg.cholesky_ex(normal.float())
    if int(info) == 0:
        solution: Tensor = right.new_zeros(right.shape)
        residual = right
        for _ in range(_REFINEMENTS):
            half = torch.linalg.solve_triangular(factor, residual.float()[:, None], upper=False)
            solution = solution + torch.linalg.solve_triangular(factor.T, half, upper=True)[:, 0].to(right.dtype)
            residual = right - normal @ solution
            if float(residual.norm()) <= _REFINED * float(right.norm()):
                return solution
    factor, info = torch.linalg.cholesky_ex(normal)
    if int(info) != 0:  # singular: the layer leaves some inputs undetermined
        solution = torch.linalg.lstsq(normal, right[:, None]).solution[:, 0]
    else:
        half = torch.linalg.solve_triangular(factor, right[:, None], upper=False)
        solution = torch.linalg.solve_triangular(factor.T, half, upper=True)[:, 0]
    return solution
