"""``defenses.mpc`` is one public path: the scheme, its backends and the protocol's names."""

from __future__ import annotations

import defenses.mpc
import defenses.mpc.protocol
from leakage.aggregation import SCHEMES


def test_the_package_re_exports_every_public_name_of_the_protocol() -> None:
    missing = sorted(set(defenses.mpc.protocol.__all__) - set(defenses.mpc.__all__))

    assert missing == []
    for name in defenses.mpc.protocol.__all__:
        assert getattr(defenses.mpc, name) is getattr(defenses.mpc.protocol, name)


def test_every_public_name_exists_and_the_scheme_is_registered() -> None:
    assert all(hasattr(defenses.mpc, name) for name in defenses.mpc.__all__)
    assert SCHEMES.get("mpc") is defenses.mpc.MPCTraining
