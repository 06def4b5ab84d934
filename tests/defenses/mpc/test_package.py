"""``defenses.mpc`` is a small public path (the scheme and its backends); the protocol has its own."""

from __future__ import annotations

import defenses.mpc
import defenses.mpc.protocol
from leakage.aggregation import SCHEMES


def test_the_package_api_stays_small_and_the_protocol_has_its_own_path() -> None:
    assert len(defenses.mpc.__all__) <= 10
    assert not set(defenses.mpc.protocol.__all__) & set(defenses.mpc.__all__)
    assert "SecureLogisticSession" in defenses.mpc.protocol.__all__


def test_every_public_name_exists_and_the_scheme_is_registered() -> None:
    assert all(hasattr(defenses.mpc, name) for name in defenses.mpc.__all__)
    assert SCHEMES.get("mpc") is defenses.mpc.MPCTraining
