"""How the ``mpc`` scheme computes a round: the backend interface, its registry and the ideal functionality.

A backend turns one round's secret inputs into the new global model and opens nothing
else. Each one says in one line what a run of it means (``description``, shown in
reports) and which deployments it can train (``supports``); the scheme's ``"auto"``
choice asks every backend that volunteers for it (``auto_preference``), lowest
preference first, so adding a backend never touches the scheme.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from torch import Tensor

from leakage.aggregation import Deployment, RoundContext, weighted_mean
from leakage.errors import ConfigError
from leakage.registry import Registry

__all__ = ["MPC_BACKENDS", "IdealFunctionality", "MPCBackend", "auto_candidates", "describe_mpc_backend"]


class MPCBackend(ABC):
    """Computes one round's new global model from the clients' secret inputs.

    A backend receives the whole :class:`RoundContext` because an ideal functionality
    does; a real protocol secret-shares ``context.updates`` and ``context.weights``
    among its parties and opens nothing but its output. Subclasses take keyword-only
    options, validate them and do no work in ``__init__``.

    Attributes:
        name: the registry name, published as ``public["mpc_backend"]``.
        description: one line for reports saying what a run of this backend is.
        auto_preference: rank among the backends ``"auto"`` may choose, lowest first;
            ``None`` (the default) means the backend runs only when named.
        trains_on_shares: whether it computes from the clients' data batches instead of
            their updates (the simulator then hands it ``context.client_batches``).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    auto_preference: ClassVar[int | None] = None
    trains_on_shares: ClassVar[bool] = False

    @classmethod
    def supports(cls, deployment: Deployment) -> bool:
        """Whether this backend can train ``deployment``; by default every deployment."""
        return True

    def prepare(self, deployment: Deployment) -> None:
        """Check the backend against ``deployment`` (ring size, number of parties) before round 0.

        Raises:
            ConfigError: ``supports(deployment)`` is false.
        """
        if not self.supports(deployment):
            raise ConfigError(
                f"mpc backend {self.name!r} does not support model {deployment.model!r} with "
                f"{deployment.num_classes} classes and loss {deployment.loss!r}"
            )

    @abstractmethod
    def aggregate(self, context: RoundContext) -> Tensor:
        """Return the new global model ``[P]`` after this round's aggregation."""

    def round_metrics(self) -> dict[str, float]:
        """Measurements of the last round no observer is shown (bytes, rounds, seconds)."""
        return {}

    def party_state(self) -> dict[str, Tensor]:
        """What the computing party run by the server keeps between rounds (its shares)."""
        return {}


MPC_BACKENDS: Registry[type[MPCBackend]] = Registry("mpc backend")


def describe_mpc_backend(name: str) -> str:
    """Return the one-line description reports show for the registered backend ``name``.

    A backend that declares no description is shown as ``MPC backend: <name>``.

    Raises:
        UnknownNameError: ``name`` is not registered (the message lists the registered names).

    >>> describe_mpc_backend("ideal")
    'ideal functionality, not a protocol run'
    """
    return MPC_BACKENDS.get(name).description or f"MPC backend: {name}"


def auto_candidates() -> list[str]:
    """Return the backends ``"auto"`` may choose, most preferred first (ties by name).

    >>> auto_candidates()[-1]
    'ideal'
    """
    ranked: list[tuple[int, str]] = []
    for name in MPC_BACKENDS.names():
        preference = MPC_BACKENDS.get(name).auto_preference
        if preference is not None:
            ranked.append((preference, name))
    return [name for _, name in sorted(ranked)]


@MPC_BACKENDS.register("ideal")
class IdealFunctionality(MPCBackend):
    """The ideal functionality ``F_agg``: a trusted party computes plain FedAvg.

    ``params_after = params_before + server_lr * sum_i n_i u_i / sum_i n_i`` over the
    clients whose input arrived (sample-count weights ``n_i``, dropped clients
    excluded), exactly as ``plain`` computes it. In the ideal/real paradigm (Canetti,
    "Security and Composition of Multiparty Cryptographic Protocols", J. Cryptology
    2000) a protocol is secure if whatever an adversary sees in a real run can be
    simulated from what ``F_agg`` reveals: here only the final model.

    This backend is not a protocol: it computes in the clear inside the simulator.
    It is the specification a real MPC backend must match output for output, and it
    gives the views of a perfectly secure run without paying for one. It supports every
    deployment, so ``"auto"`` ranks it last: it runs when no real protocol applies.
    """

    name = "ideal"
    description = "ideal functionality, not a protocol run"
    auto_preference = 1000

    def aggregate(self, context: RoundContext) -> Tensor:
        return context.apply(weighted_mean(context.updates, context.arrived_weights))
