"""Defenses: aggregation protocols and client mechanisms, registered by name on import.

Protocols (``leakage.aggregation.SCHEMES``): ``secagg``, ``secagg+``
(:mod:`defenses.secure_aggregation`), ``he`` (:mod:`defenses.he`), ``dp``
(:mod:`defenses.dp`), ``mpc`` (:mod:`defenses.mpc`: the scheme, its backends ``ideal`` and
``secureml``, and its protocol in :mod:`defenses.mpc.protocol`). Client mechanisms
(``leakage.aggregation.MECHANISMS``), placed in front of a protocol: ``compression``
(:mod:`defenses.compression`), ``ldp`` and ``ddp`` (:mod:`defenses.dp`).
"""

from defenses import compression, dp, he, mpc, secure_aggregation

__all__ = ["compression", "dp", "he", "mpc", "secure_aggregation"]
