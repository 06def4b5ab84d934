"""``mpc``: training inside secure multi-party computation, which reveals only the final model.

The zero-excess-leakage baseline of the toolkit: whatever an attack learns under
``mpc`` it could have learnt from the released model alone. The training runs through
a pluggable :class:`MPCBackend`: ``"secureml"`` (:mod:`defenses.mpc_secureml`) really
trains two-class logistic regression on secret shares; ``"ideal"`` is the ideal
functionality (a trusted box) that a real protocol must match, used for every other
model. ``"auto"`` (the default) picks ``secureml`` when it applies and ``ideal``
otherwise, and the choice is published as ``mpc_backend`` so reports can say which ran.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from torch import Tensor

from leakage.aggregation import (
    SCHEMES,
    AggregationScheme,
    Deployment,
    RoundContext,
    RoundOutcome,
    weighted_mean,
)
from leakage.errors import ConfigError
from leakage.registry import Registry
from leakage.views import (
    EAVESDROPPER,
    PUBLIC,
    SERVER,
    PublicValue,
    RoundView,
    client_observer,
    released_model_view,
)

__all__ = ["MPC_BACKENDS", "IdealFunctionality", "MPCBackend", "MPCTraining"]


class MPCBackend(ABC):
    """Computes one round's new global model from the clients' secret inputs.

    A backend receives the whole :class:`RoundContext` because an ideal functionality
    does; a real protocol secret-shares ``context.updates`` and ``context.weights``
    among its parties and opens nothing but its output. Subclasses take keyword-only
    options, validate them and do no work in ``__init__``.
    """

    name: ClassVar[str] = ""
    trains_on_shares: ClassVar[bool] = False  # computes from the clients' data batches, not their updates

    def prepare(self, deployment: Deployment) -> None:
        """Check the backend against ``deployment`` (ring size, number of parties) before round 0."""

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
    gives the views of a perfectly secure run without paying for one.
    """

    name = "ideal"

    def aggregate(self, context: RoundContext) -> Tensor:
        return context.apply(weighted_mean(context.updates, context.arrived_weights))


@SCHEMES.register("mpc")
class MPCTraining(AggregationScheme):
    """Federated training run entirely inside MPC: every observer sees only the final model.

    The new model each round is ``backend.aggregate(context)`` (FedAvg of the arriving
    clients for ``"ideal"``). Views, every round:

    - ``client:<id>``: only that it holds its data (``own = {"data_indices": ...}``).
      No ``update``: in MPC training even a client's own update is computed on
      secret shares and never opened.
    - ``server``: under ``secureml`` it runs computing party 0 and keeps that party's
      share of the model (``own["model_share"]``, uniform on ``Z_(2^64)``, as int64);
      nothing else. ``eavesdropper``: nothing. Secret shares do cross the wire, but
      the shares of a correctly run MPC protocol are uniformly random and independent
      of the inputs (any set short of the reconstruction threshold can be simulated
      without them), so they are left out of ``received`` rather than faked.
    - No intermediate global model: ``params_before`` and ``params_after`` are
      ``None``, and no aggregation weights or participants are told.

    In the final round every observer, ``public`` included, sees ``params_after``, the
    released model (``params_before``, an intermediate model, stays hidden).

    Args:
        backend: ``"auto"`` or a name in ``MPC_BACKENDS`` (``"ideal"``, ``"secureml"``).
        **options: the ``secureml`` backend's options (``parties``, ``sigmoid``,
            ``fractional_bits``, ``randomness``); ``ideal`` takes none.

    Raises:
        ConfigError: an unknown backend (the message lists the choices) or option.

    >>> import torch
    >>> from leakage.aggregation import RoundContext
    >>> context = RoundContext(
    ...     round_index=0, is_final_round=True, params_before=torch.zeros(2), client_ids=(0, 1),
    ...     updates=torch.tensor([[1.0, 0.0], [3.0, 2.0]]), weights=torch.tensor([1.0, 3.0]),
    ...     dropped=frozenset(), server_lr=1.0, public={},
    ...     client_data={0: torch.tensor([0]), 1: torch.tensor([1])})
    >>> outcome = MPCTraining().run_round(context)
    >>> outcome.params_after
    tensor([2.5000, 1.5000])
    >>> sorted(outcome.views), outcome.views["server"].received, sorted(outcome.views["client:0"].own)
    (['client:0', 'client:1', 'eavesdropper', 'public', 'server'], {}, ['data_indices'])
    """

    name = "mpc"

    def __init__(self, *, backend: str = "auto", **options: Any) -> None:
        choices = ["auto", *MPC_BACKENDS.names()]
        if backend not in choices:
            raise ConfigError(f"mpc backend must be one of {', '.join(choices)}, got {backend!r}")
        self.requested_backend = backend
        self.options = dict(options)
        if backend != "auto":
            self.backend: MPCBackend = MPC_BACKENDS.create(backend, **options)
        else:  # resolved in prepare(); the real protocol's options are checked now
            self.backend = IdealFunctionality()
            MPC_BACKENDS.create("secureml", **options)

    @property
    def backend_name(self) -> str:
        """The backend that runs (after ``prepare``, ``"auto"`` has been resolved)."""
        return self.backend.name

    @property
    def needs_client_batches(self) -> bool:
        return self.backend.trains_on_shares

    def prepare(self, deployment: Deployment) -> None:
        if self.requested_backend == "auto":
            from defenses.mpc_secureml import SecureMLBackend

            chosen = "secureml" if SecureMLBackend.supports(deployment) else "ideal"
            self.backend = MPC_BACKENDS.create(chosen, **(self.options if chosen == "secureml" else {}))
        self.backend.prepare(deployment)

    def public_parameters(self) -> dict[str, PublicValue]:
        return {"mpc_backend": self.backend_name}

    def run_round(self, context: RoundContext) -> RoundOutcome:
        params_after = self.backend.aggregate(context)
        released = params_after if context.is_final_round else None
        public = dict(context.public)

        def view(observer: str, own: dict[str, Tensor] | None = None) -> RoundView:
            return RoundView(
                round_index=context.round_index,
                observer=observer,
                params_before=None,
                params_after=released,
                own=own or {},
                public=public,
            )

        views = {SERVER: view(SERVER, self.backend.party_state()), EAVESDROPPER: view(EAVESDROPPER)}
        for client_id in context.client_ids:
            observer = client_observer(client_id)
            views[observer] = view(observer, {"data_indices": context.client_data[client_id]})
        if context.is_final_round:
            views[PUBLIC] = released_model_view(context.round_index, params_after)
        return RoundOutcome(
            params_after=params_after,
            survivors=tuple(sorted(context.arriving)),
            views=views,
            metrics=self.backend.round_metrics(),
        )
