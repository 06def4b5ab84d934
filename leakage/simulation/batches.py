"""How a client cuts its samples into local batches: the one rule the simulator and the attacks share."""

from __future__ import annotations

from leakage.checks import require_choice, require_int, require_optional_int
from leakage.simulation.settings import ALGORITHMS, Algorithm

__all__ = ["batch_schedule"]


def batch_schedule(
    num_samples: int,
    *,
    batch_size: int | None,
    local_epochs: int = 1,
    algorithm: Algorithm = "fedavg",
) -> list[slice]:
    """Return the batch of every local step, in order, as a slice into that epoch's sample order.

    The client's samples are put in some order each epoch (a fresh shuffle in the
    simulator; the given order in an attack's model of the client); step ``k`` takes the
    samples at positions ``schedule[k]`` of its epoch's order.

    - ``"fedavg"``: every epoch runs over all ``num_samples`` in consecutive batches of
      ``batch_size`` (the last one smaller when it does not divide; ``None`` is one batch
      of everything), ``local_epochs`` times.
    - ``"fedsgd"``: one step on one batch, the first ``min(batch_size, num_samples)``
      samples of the order; ``local_epochs`` does not apply.

    The number of local steps is ``len(schedule)``; the samples one round reads, epochs
    concatenated, number ``sum(s.stop - s.start for s in schedule)``.

    Args:
        num_samples: samples the client holds (FedAvg) or may draw its batch from (FedSGD), >= 1.
        batch_size: the local batch size, >= 1, or ``None`` for all samples at once.
        local_epochs: passes over the samples per round (FedAvg), >= 1.
        algorithm: ``"fedavg"`` or ``"fedsgd"``.

    Raises:
        ValueError: an argument is out of range (the message names it).

    >>> batch_schedule(5, batch_size=2, local_epochs=2)
    [slice(0, 2, None), slice(2, 4, None), slice(4, 5, None), slice(0, 2, None), slice(2, 4, None), slice(4, 5, None)]
    >>> batch_schedule(5, batch_size=2, local_epochs=3, algorithm="fedsgd")
    [slice(0, 2, None)]
    >>> batch_schedule(5, batch_size=None)
    [slice(0, 5, None)]
    """
    num_samples = require_int("num_samples", num_samples, minimum=1)
    batch_size = require_optional_int("batch_size", batch_size, minimum=1)
    local_epochs = require_int("local_epochs", local_epochs, minimum=1)
    require_choice("algorithm", algorithm, ALGORITHMS)
    batch = num_samples if batch_size is None else min(batch_size, num_samples)
    if algorithm == "fedsgd":
        return [slice(0, batch)]
    epoch = [slice(start, min(start + batch, num_samples)) for start in range(0, num_samples, batch)]
    return epoch * local_epochs
