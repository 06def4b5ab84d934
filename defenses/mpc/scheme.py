"""``mpc``: training inside secure multi-party computation, which reveals only the final model.

The zero-excess-leakage baseline of the toolkit: whatever an attack learns under
``mpc`` it could have learnt from the released model alone. The training runs through
a pluggable backend (:mod:`defenses.mpc.backends`). ``"auto"`` (the default) runs the
first backend of :func:`~defenses.mpc.backends.auto_candidates` whose ``supports`` accepts
the deployment: a real protocol where one applies, else the ideal functionality. The
choice is published as ``mpc_backend``, and its one-line description as
``mpc_backend_description``, so reports can say which ran.
"""

from __future__ import annotations

import inspect
from typing import Any

from defenses.mpc.backends import (
    MPC_BACKENDS,
    IdealFunctionality,
    MPCBackend,
    auto_candidates,
    describe_mpc_backend,
)
from leakage.aggregation import (
    SCHEMES,
    AggregationScheme,
    Deployment,
    RoundContext,
    RoundOutcome,
    observer_views,
)
from leakage.checks import require_choice
from leakage.errors import ConfigError
from leakage.views import PublicValue

__all__ = ["MPCTraining"]


def _option_names(backend: type[MPCBackend]) -> frozenset[str]:
    """Return the keyword-only options ``backend``'s constructor takes."""
    parameters = inspect.signature(backend).parameters.values()
    return frozenset(p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY)


def _create_with_own_options(name: str, options: dict[str, Any]) -> MPCBackend:
    """Create backend ``name`` from the entries of ``options`` it takes (``"auto"`` passes all it has)."""
    names = _option_names(MPC_BACKENDS.get(name))
    backend: MPCBackend = MPC_BACKENDS.create(name, **{k: v for k, v in options.items() if k in names})
    return backend


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
        **options: the backend's options (``secureml``: ``parties``, ``sigmoid``,
            ``fractional_bits``, ``randomness``; ``ideal`` takes none). Under ``"auto"``
            each candidate gets the options its constructor takes, and every option must
            be taken by at least one candidate.

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
        self.requested_backend = require_choice("mpc backend", backend, ["auto", *MPC_BACKENDS.names()])
        self.options = dict(options)
        if backend != "auto":
            self.backend: MPCBackend = MPC_BACKENDS.create(backend, **options)
            return
        # Resolved in prepare(), once the deployment is known; until then (a round run
        # without a deployment) the ideal functionality, the specification every backend
        # matches, computes. Every candidate's options are checked now, not mid-run.
        self.backend = IdealFunctionality()
        candidates = auto_candidates()
        accepted = frozenset().union(*(_option_names(MPC_BACKENDS.get(name)) for name in candidates))
        unknown = sorted(set(options) - accepted)
        if unknown:
            raise ConfigError(
                f"unknown option {unknown[0]!r} for mpc backend 'auto'; its candidates "
                f"({', '.join(candidates)}) accept: {', '.join(sorted(accepted)) or 'no options'}"
            )
        for name in candidates:
            _create_with_own_options(name, options)

    @property
    def backend_name(self) -> str:
        """The backend that runs (after ``prepare``, ``"auto"`` has been resolved)."""
        return self.backend.name

    @property
    def needs_client_batches(self) -> bool:
        return self.backend.trains_on_shares

    def prepare(self, deployment: Deployment) -> None:
        if self.requested_backend == "auto":
            candidates = auto_candidates()
            chosen = next((name for name in candidates if MPC_BACKENDS.get(name).supports(deployment)), None)
            if chosen is None:
                raise ConfigError(f"no mpc backend supports this deployment; auto tried {', '.join(candidates)}")
            self.backend = _create_with_own_options(chosen, self.options)
        self.backend.prepare(deployment)

    def public_parameters(self) -> dict[str, PublicValue]:
        return {"mpc_backend": self.backend_name}

    def run_round(self, context: RoundContext) -> RoundOutcome:
        params_after = self.backend.aggregate(context)
        # Nothing is opened but the released model: no observer sees an intermediate
        # model, anyone's update or who took part; the server keeps its party's state.
        views = observer_views(
            context, params_after, participants=(), public=context.public,
            server_own=self.backend.party_state(), models="final",
        )
        return RoundOutcome(
            params_after=params_after,
            survivors=tuple(sorted(context.arriving)),
            views=views,
            public={"mpc_backend_description": describe_mpc_backend(self.backend_name)},
            metrics=self.backend.round_metrics(),
        )
