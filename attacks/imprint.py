"""``imprint``: a malicious server's binning block that makes the aggregate give back samples.

Fowl, Geiping, Czaja, Goldblum and Goldstein, "Robbing the Fed: Directly Obtaining
Private Data in Federated Learning with Modified Models", ICLR 2022.

Threat model: an *active* server. It prepends an :class:`ImprintBlock` to the model it
sends to every client; secure aggregation then reveals only the (weighted) mean of the
clients' updates, and that is enough. The block's first layer has ``k`` rows that all
compute one linear measurement ``m(x) = a . x`` of the flattened input (its mean
brightness, ``a = 1/D``, or a fixed random unit direction), with biases ``-c_i`` at
increasing cutoffs ``c_0 <= ... <= c_(k-1)`` taken from empirical quantiles of ``m`` on
auxiliary data, so that each bin ``(c_i, c_(i+1)]`` expects ``n / k`` of ``n`` samples.
The second layer ``k -> D`` has identical columns, so every unit gets the same
back-propagated signal ``g_s`` from sample ``s``. With ``h_i = ReLU(m - c_i)``::

    dL/dW_i = sum_{s: m_s > c_i} g_s x_s        dL/db_i = sum_{s: m_s > c_i} g_s

and the difference of two consecutive rows keeps the samples of one bin::

    x_hat_i = (dW_i - dW_(i+1)) / (db_i - db_(i+1))     (last row: dW_(k-1) / db_(k-1))

which is exactly ``x_s`` when bin ``i`` holds one sample ``s`` of the whole round, and a
``g``-weighted mean of the bin's samples otherwise. Samples below ``c_0`` are lost.

Updates instead of gradients: a FedSGD update is ``-lr`` times the client's mean
gradient, and the aggregate a weighted mean of those; every row is scaled by the same
factor, so the ratio is unchanged and no learning rate is needed. Under FedAvg (several
local steps) the weights, ``g_s`` and the activations drift between steps, so a lone
sample in a bin is recovered only approximately (still exactly if the bin's unit sees
the same single sample at every step and its row is not otherwise updated, which the
identical measurement rows do not guarantee).

Recovered samples are *not* attributed to a client: the same model went to everyone
and the aggregate mixes all participants. The samples of the target client are found
only by matching against the truth, which scoring does.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, get_args

import torch

# scipy ships no type stubs; unused-ignore keeps mypy quiet once stubs or an override exist.
from torch import Tensor, nn

from attacks.base import ATTACKS, AttackProduct, Knowledge
from attacks.history import HistoryAttack
from leakage.checks import require_choice, require_in_interval, require_int, require_positive_float
from leakage.errors import ConfigError, ThreatModelError
from leakage.metrics import SampleMatch, match_samples
from leakage.models import ParameterLayout
from leakage.views import RoundView

__all__ = [
    "ImprintAttack",
    "ImprintBlock",
    "Measurement",
    "RecoveredSamples",
    "SampleMatch",
    "assign_bins",
    "imprint_cutoffs",
    "match_samples",
    "measurement_direction",
    "recover_from_imprint",
]

Measurement = Literal["brightness", "random"]
_MEASUREMENTS: tuple[str, ...] = get_args(Measurement)
DEFAULT_MIN_RELATIVE_BIAS = 1e-4  # bins whose bias difference is below this share of the largest are empty


def measurement_direction(
    dimension: int, measurement: Measurement = "brightness", *, generator: torch.Generator | None = None
) -> Tensor:
    """Return the ``[D]`` float64 direction ``a`` whose dot product with a flattened input is the measurement.

    ``"brightness"``: ``a = 1/D`` (the mean of the input's entries, as in the paper).
    ``"random"``: a standard normal draw from ``generator``, scaled to unit norm; it
    separates inputs of equal brightness (8x8 digits have few distinct brightness values).

    Raises:
        ConfigError: ``dimension`` < 1, an unknown ``measurement``, or ``"random"`` without ``generator``.

    >>> measurement_direction(4).tolist()
    [0.25, 0.25, 0.25, 0.25]
    """
    dimension = require_int("dimension", dimension, minimum=1)
    require_choice("measurement", measurement, _MEASUREMENTS)
    if measurement == "brightness":
        return torch.full((dimension,), 1.0 / dimension, dtype=torch.float64)
    if generator is None:
        raise ConfigError("measurement 'random' needs a generator, got None")
    direction = torch.randn(dimension, generator=generator, dtype=torch.float64)
    unit: Tensor = direction / direction.norm()
    return unit


def imprint_cutoffs(measurements: Tensor, num_bins: int) -> Tensor:
    """Return ``[k + 1]`` non-decreasing bin edges: the empirical quantiles of ``measurements`` at levels ``j / k``.

    The first ``k`` edges are the cutoffs ``c_i`` of the block's ``k`` units; bin ``i`` is
    ``(c_i, c_(i+1)]`` and the last edge (the auxiliary maximum) only bounds the last bin,
    which stays open above. Each bin then holds ``1 / k`` of the auxiliary mass, so ``n``
    samples from the same distribution put about ``n / k`` in each. Repeated values
    (ties) give repeated edges, i.e. empty bins.

    Args:
        measurements: ``[A]`` measurements of auxiliary inputs (at least two).
        num_bins: ``k`` >= 1.

    Raises:
        ConfigError: fewer than two finite measurements, or ``num_bins`` < 1.

    >>> imprint_cutoffs(torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0]), 4).tolist()
    [0.0, 1.0, 2.0, 3.0, 4.0]
    """
    num_bins = require_int("num_bins", num_bins, minimum=1)
    values = torch.as_tensor(measurements).detach().reshape(-1).to(torch.float64)
    if values.numel() < 2 or not bool(torch.isfinite(values).all()):
        raise ConfigError(f"measurements must hold at least two finite values, got {values.numel()}")
    levels = torch.linspace(0.0, 1.0, num_bins + 1, dtype=torch.float64)
    # Rounded to float32, the precision the block's bias holds them in, so that a measurement's
    # bin and the units it activates agree exactly (a quantile between two float32 values would
    # otherwise sit in one bin here and round into the next in the block); rounding keeps the order.
    edges = torch.quantile(values, levels).to(torch.float32).to(torch.float64)
    return torch.cummax(edges, dim=0).values  # interpolation rounding must not reorder equal quantiles


def assign_bins(measurements: Tensor, cutoffs: Tensor) -> Tensor:
    """Return ``[n]`` int64 bins: ``i`` with ``c_i < m <= c_(i+1)`` (``k - 1`` above the top cutoff), ``-1`` below all.

    Sample ``s`` activates unit ``i`` (``ReLU(m_s - c_i) > 0``) exactly when its bin is ``>= i``.

    >>> assign_bins(torch.tensor([-1.0, 0.5, 1.0, 7.0]), torch.tensor([0.0, 1.0, 2.0])).tolist()
    [-1, 0, 0, 2]
    """
    below = measurements.reshape(-1, 1).to(torch.float64) > cutoffs.reshape(1, -1).to(torch.float64)
    return below.sum(dim=1).to(torch.int64) - 1


class ImprintBlock(nn.Module):
    """The binning block of Fowl et al. (ICLR 2022): ``x -> W2 ReLU(W1 x + b1) + b2``, same shape as ``x``.

    Row ``i`` of ``W1`` [k, D] is ``gain * a`` (``a`` the measurement direction) and
    ``b1_i = -gain * c_i``. ``W2`` [D, k] has every entry ``1 / (k * gain)`` and ``b2 = 0``
    (the paper's "linear" connection): every unit receives the same back-propagated
    signal, which the row-difference recovery needs, and the downstream model receives
    an input whose entries all equal ``mean_i ReLU(m - c_i)``, a non-decreasing,
    piecewise linear function of the measurement. That is all the information it gets
    about ``x``; gradients reach ``W1`` through it whenever some unit is active.

    Why ``gain``: the block computes the same function for any ``gain``, but the
    first layer's gradient scales as ``1 / gain`` and its weights as ``gain``. Observers
    see the aggregate as the difference of two float32 models; with ``gain = 1`` one
    sample's share of a row difference (about ``lr / n`` of a ``1 / k`` signal) sinks
    below the float32 spacing of the weights and the recovery fails (measured: 40% of 80
    digits instead of 89%). A small ``gain`` (default ``1e-3``) restores it.

    Prepend it to any model taking inputs of ``input_shape``:
    ``nn.Sequential(ImprintBlock(...), model)``.

    Args:
        input_shape: one input without the batch dimension.
        direction: ``[D]`` measurement direction, ``D = prod(input_shape)``.
        cutoffs: ``[k]`` non-decreasing cutoffs (the first ``k`` of :func:`imprint_cutoffs`).
        gain: the first layer's scale (see above), > 0.

    Raises:
        ConfigError: shapes disagree, the cutoffs decrease somewhere, or ``gain`` <= 0.

    >>> block = ImprintBlock((1, 2, 2), torch.full((4,), 0.25), torch.tensor([0.0, 1.0]), gain=0.5)
    >>> block(torch.full((1, 1, 2, 2), 2.0)).flatten().tolist()  # m = 2: (2 + 1) / 2
    [1.5, 1.5, 1.5, 1.5]
    """

    def __init__(self, input_shape: Sequence[int], direction: Tensor, cutoffs: Tensor, *, gain: float = 1e-3) -> None:
        super().__init__()
        self.gain = require_positive_float("gain", gain)
        self.input_shape = tuple(int(size) for size in input_shape)
        if not self.input_shape or min(self.input_shape) < 1:
            raise ConfigError(f"input_shape must be non-empty and positive, got {self.input_shape}")
        dimension = math.prod(self.input_shape)
        if tuple(direction.shape) != (dimension,):
            raise ConfigError(f"direction must have shape ({dimension},) for input_shape {self.input_shape}, "
                              f"got {tuple(direction.shape)}")
        if cutoffs.dim() != 1 or cutoffs.numel() < 1:
            raise ConfigError(f"cutoffs must be a non-empty vector [k], got shape {tuple(cutoffs.shape)}")
        if bool((cutoffs[1:] < cutoffs[:-1]).any()):
            raise ConfigError("cutoffs must be non-decreasing, got a decrease")
        num_bins = int(cutoffs.numel())
        self.first = nn.Linear(dimension, num_bins)
        self.relu = nn.ReLU()
        self.second = nn.Linear(num_bins, dimension)
        with torch.no_grad():
            self.first.weight.copy_(self.gain * direction.to(self.first.weight).expand(num_bins, dimension))
            self.first.bias.copy_(-self.gain * cutoffs.to(self.first.bias))
            self.second.weight.fill_(1.0 / (num_bins * self.gain))
            self.second.bias.zero_()

    @classmethod
    def from_auxiliary(
        cls,
        auxiliary: Tensor,
        num_bins: int,
        *,
        measurement: Measurement = "brightness",
        generator: torch.Generator | None = None,
        gain: float = 1e-3,
    ) -> ImprintBlock:
        """Return a block whose ``num_bins`` cutoffs are quantiles of the measurement on ``auxiliary`` inputs.

        Args:
            auxiliary: ``[A, *input_shape]`` inputs the server holds, in the model's
                (normalised) input space, from the clients' distribution.
            num_bins: ``k``, the number of units (bins).
            measurement: ``"brightness"`` or ``"random"`` (see :func:`measurement_direction`).
            generator: draws the random direction.
            gain: the first layer's scale.

        Raises:
            ConfigError: fewer than two auxiliary inputs, a bad ``num_bins``, ``measurement`` or ``gain``.
        """
        if auxiliary.dim() < 2 or auxiliary.shape[0] < 2:
            raise ConfigError(f"auxiliary must be [A, *input_shape] with A >= 2, got shape {tuple(auxiliary.shape)}")
        num_bins = require_int("num_bins", num_bins, minimum=1)
        flat = auxiliary.detach().reshape(auxiliary.shape[0], -1).to(torch.float64)
        direction = measurement_direction(flat.shape[1], measurement, generator=generator)
        edges = imprint_cutoffs(flat @ direction, num_bins)
        return cls(tuple(auxiliary.shape[1:]), direction, edges[:-1], gain=gain)

    @property
    def num_bins(self) -> int:
        """``k``, the number of units."""
        return self.first.out_features

    @property
    def cutoffs(self) -> Tensor:
        """``[k]`` cutoffs ``c_i = -b1_i / gain`` as they stand now (float64, detached)."""
        return -self.first.bias.detach().to(torch.float64) / self.gain

    def measure(self, inputs: Tensor) -> Tensor:
        """Return ``[B]`` measurements ``a . x`` of ``inputs`` ``[B, *input_shape]`` (float64)."""
        direction = self.first.weight.detach()[0].to(torch.float64) / self.gain
        return inputs.detach().reshape(inputs.shape[0], -1).to(torch.float64) @ direction

    def forward(self, inputs: Tensor) -> Tensor:
        """Return ``W2 ReLU(W1 x + b1) + b2`` reshaped to ``inputs``' shape."""
        hidden = self.relu(self.first(inputs.reshape(inputs.shape[0], -1)))
        output: Tensor = self.second(hidden)
        return output.reshape(inputs.shape)


def recover_from_imprint(
    weight_grad: Tensor, bias_grad: Tensor, *, min_relative_bias: float = DEFAULT_MIN_RELATIVE_BIAS
) -> tuple[Tensor, Tensor]:
    """Return ``(samples [M, D], bins [M])``: one estimate per non-empty bin, from the first layer's gradient.

    ``x_hat_i = (dW_i - dW_(i+1)) / (db_i - db_(i+1))`` (last row: ``dW / db`` alone)
    for every bin whose bias difference exceeds ``min_relative_bias`` times the largest
    one; rows must be in order of increasing cutoff, as :class:`ImprintBlock` makes them.
    A gradient, a FedSGD update or an aggregate of them all work (the common factor
    ``-lr`` cancels). Computed in float64.

    Args:
        weight_grad: ``[k, D]`` gradient (or update) of the block's first weight.
        bias_grad: ``[k]`` gradient (or update) of its bias, same scale.
        min_relative_bias: in ``[0, 1)``; smaller differences count as empty bins
            (float rounding leaves tiny non-zero values there).

    Raises:
        ConfigError: shapes disagree, or ``min_relative_bias`` outside ``[0, 1)``.

    >>> x = torch.tensor([[1.0, 2.0], [3.0, 5.0]])  # sample 0 in bin 0, sample 1 in bin 1
    >>> g = torch.tensor([0.5, -2.0])               # their back-propagated signals
    >>> dW = torch.stack([g[0] * x[0] + g[1] * x[1], g[1] * x[1]])
    >>> samples, bins = recover_from_imprint(dW, torch.stack([g.sum(), g[1]]))
    >>> samples.tolist(), bins.tolist()
    ([[1.0, 2.0], [3.0, 5.0]], [0, 1])
    """
    threshold = require_in_interval("min_relative_bias", min_relative_bias, 0, 1, inclusive="left")
    if weight_grad.dim() != 2 or bias_grad.shape != weight_grad.shape[:1]:
        raise ConfigError(f"weight_grad must be [k, D] and bias_grad [k], got {tuple(weight_grad.shape)} "
                          f"and {tuple(bias_grad.shape)}")
    rows = weight_grad.detach().to(torch.float64)
    biases = bias_grad.detach().to(torch.float64)
    row_differences = rows - torch.cat([rows[1:], torch.zeros_like(rows[:1])])
    bias_differences = biases - torch.cat([biases[1:], torch.zeros_like(biases[:1])])
    return _ratios(row_differences, bias_differences, threshold)


def _ratios(rows: Tensor, biases: Tensor, threshold: float) -> tuple[Tensor, Tensor]:
    """Return ``rows[i] / biases[i]`` and ``i`` for every ``|biases[i]| > threshold * max |biases|``."""
    magnitude = biases.abs()
    largest = float(magnitude.max()) if magnitude.numel() else 0.0
    if largest == 0.0:
        return rows.new_zeros(0, rows.shape[1]), torch.zeros(0, dtype=torch.int64)
    kept = torch.nonzero(magnitude > threshold * largest).reshape(-1)
    return rows[kept] / biases[kept, None], kept


@dataclass(frozen=True)
class RecoveredSamples:
    """Inputs an active-server attack read out of aggregated updates, attributed to no client.

    Attributes:
        attack: the attack's registry name.
        observer: who ran it (``"server"``).
        inputs: ``[M, *input_shape]`` estimates in the model's normalised input space.
        raw_inputs: the same, denormalised into the raw value range (what metrics use).
        rounds: ``[M]`` the round each estimate came from.
        units: ``[M]`` the bin (imprint) or first-layer row (trap weights) it came from.
        assumptions: what the attack assumed rather than saw.
        seconds: wall time.
        details: counts (rounds used, candidate rows).
    """

    attack: str
    observer: str
    inputs: Tensor
    raw_inputs: Tensor
    rounds: Tensor
    units: Tensor
    assumptions: tuple[str, ...] = ()
    seconds: float = 0.0
    details: dict[str, float] = field(default_factory=dict)

    @property
    def num_recovered(self) -> int:
        """``M``, the number of estimates (not all of them are single samples)."""
        return int(self.inputs.shape[0])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (counts, not the inputs themselves)."""
        return {
            "attack": self.attack,
            "observer": self.observer,
            "num_recovered": self.num_recovered,
            "input_shape": list(self.inputs.shape[1:]),
            "assumptions": list(self.assumptions),
            "seconds": self.seconds,
            **self.details,
        }


def _first_layer_slices(model: nn.Module, module_type: type[nn.Module], attack: str) -> tuple[str, slice, slice]:
    """Return ``(name, weight slice, bias slice)`` of the first ``module_type`` (its ``first`` layer for a block)."""
    found = next(((name, m) for name, m in model.named_modules() if isinstance(m, module_type)), None)
    if found is None:
        raise ThreatModelError(f"{attack} needs knowledge.model to contain a {module_type.__name__}; it has none")
    name, module = found
    prefix = f"{name}." if name else ""
    if isinstance(module, ImprintBlock):
        prefix += "first."
    offsets: dict[str, slice] = {}
    start = 0
    layout = ParameterLayout.of(model)
    for parameter, size in zip(layout.names, layout.sizes, strict=True):
        offsets[parameter], start = slice(start, start + size), start + size
    return name, offsets[f"{prefix}weight"], offsets[f"{prefix}bias"]


class _FirstLayerAttack(HistoryAttack[RecoveredSamples]):
    """Shared run of the active-server attacks: one recovery per round from the first layer's model change."""

    role = "server"
    produces: ClassVar[AttackProduct] = "records"
    _module: ClassVar[type[nn.Module]] = nn.Linear

    def __init__(self, *, min_relative_bias: float = DEFAULT_MIN_RELATIVE_BIAS) -> None:
        self.min_relative_bias = require_in_interval(
            "min_relative_bias", min_relative_bias, 0, 1, inclusive="left"
        )

    @abstractmethod
    def _recover(self, weight_change: Tensor, bias_change: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(estimates [M, D], units [M])`` from the first layer's ``[k, D]`` and ``[k]`` change."""

    def _run(
        self,
        history: Sequence[RoundView],
        knowledge: Knowledge | None,
        *,
        generator: torch.Generator,
        show_progress: bool,
    ) -> RecoveredSamples:
        if knowledge is None:
            raise ThreatModelError(f"{self.name} needs knowledge of the model the server sent")
        _, weight, bias = _first_layer_slices(knowledge.model, self._module, self.name)
        dimension = math.prod(knowledge.input_shape)
        estimates, rounds, units, assumptions = [], [], [], set()
        for view in history:
            if view.params_before is None or view.params_after is None or not view.participants:
                continue
            if view.server_lr is None:
                assumptions.add("the server learning rate is 1 (not disclosed to this observer)")
            change = view.model_change()
            samples, kept = self._recover(change[weight].reshape(-1, dimension), change[bias])
            estimates.append(samples)
            rounds.append(torch.full_like(kept, view.round_index))
            units.append(kept)
        if not estimates:
            raise ThreatModelError(f"{history[0].observer} never saw a model change together with its participants")
        inputs = torch.cat(estimates).reshape(-1, *knowledge.input_shape)
        return RecoveredSamples(
            self.name, history[0].observer, inputs, knowledge.denormalize(inputs), torch.cat(rounds),
            torch.cat(units), tuple(sorted(assumptions)), details={"rounds_used": float(len(estimates))},
        )


@ATTACKS.register("imprint")
class ImprintAttack(_FirstLayerAttack):
    """Read samples out of each round's aggregated update through the server's :class:`ImprintBlock`.

    Runs as the server (or an eavesdropper) on any scheme that lets it see the model
    change of a round (plain, secure aggregation): ``knowledge.model`` is the modified
    model the server sent, with an :class:`ImprintBlock` in front; its first layer's
    slice of :meth:`~leakage.views.RoundView.model_change` goes to
    :func:`recover_from_imprint`. Estimates are not attributed to any client.

    Args:
        min_relative_bias: bins whose bias difference is below this share of the
            largest are treated as empty (see :func:`recover_from_imprint`).

    Raises:
        ConfigError: ``min_relative_bias`` outside ``[0, 1)``.
    """

    name = "imprint"
    observer = "a malicious server that sent every client a model with a binning block, reading the model change"
    role = "server"
    produces: ClassVar[AttackProduct] = "records"
    _module: ClassVar[type[nn.Module]] = ImprintBlock

    def _recover(self, weight_change: Tensor, bias_change: Tensor) -> tuple[Tensor, Tensor]:
        return recover_from_imprint(weight_change, bias_change, min_relative_bias=self.min_relative_bias)
