"""MPC training, the toolkit's zero-excess-leakage baseline: the ``mpc`` scheme, its backends and its protocol.

- :mod:`defenses.mpc.scheme`: the registered ``mpc`` aggregation scheme
  (:class:`MPCTraining`), whose views show every observer only the final model.
- :mod:`defenses.mpc.backends`: what computes a round (:class:`MPCBackend`), the
  registry ``MPC_BACKENDS``, the ``ideal`` functionality and the ``"auto"`` order.
- :mod:`defenses.mpc.secureml`: the ``secureml`` backend, two-class logistic
  regression trained on secret shares.
- :mod:`defenses.mpc.protocol`: the secret-sharing protocol itself (ring, sharing,
  PRG, fixed point, Beaver triples, truncation, comparison, sigmoid, channel,
  session, training), a public path of its own.

>>> describe_mpc_backend("secureml")
'real protocol run: trained on secret shares (SecureML), only the final model opened'
>>> describe_mpc_backend("spdz")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
leakage.errors.UnknownNameError: unknown mpc backend 'spdz'; choose one of: ideal, secureml...
"""

from __future__ import annotations

from defenses.mpc.backends import (
    MPC_BACKENDS,
    IdealFunctionality,
    MPCBackend,
    auto_candidates,
    describe_mpc_backend,
)
from defenses.mpc.scheme import MPCTraining
from defenses.mpc.secureml import SecureMLBackend

__all__ = [
    "MPC_BACKENDS",
    "IdealFunctionality",
    "MPCBackend",
    "MPCTraining",
    "SecureMLBackend",
    "auto_candidates",
    "describe_mpc_backend",
]
