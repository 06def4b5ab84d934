"""The schemes' ``checks`` option: an honest server's rounds give the same model with every check on."""

from __future__ import annotations

import pytest
import torch

from leakage import simulate
from leakage.errors import ConfigError

EVERY = ["bind_model", "signed_keys", "consistency_round", "min_threshold", "vet_model"]


@pytest.mark.parametrize("scheme", ["secagg", "secagg+"])
@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_every_check_leaves_an_honest_run_unchanged(scheme: str, dropout: float) -> None:
    common = {"n_clients": 12, "rounds": 2, "algorithm": "fedsgd", "batch_size": 2, "seed": 3, "scheme": scheme,
              "dropout": dropout}
    plain = simulate(**common)  # type: ignore[arg-type]
    checked = simulate(**common, scheme_options={"checks": EVERY, "assumed_corrupt": 1})  # type: ignore[arg-type]
    for before, after in zip(plain.rounds, checked.rounds, strict=True):
        assert before.survivors == after.survivors and "aborted" not in after.public
        torch.testing.assert_close(before.params_after, after.params_after, rtol=0, atol=0)
    assert checked.rounds[0].public["checks"] == ",".join(EVERY)


def test_min_threshold_raises_the_default_threshold_to_what_clients_accept() -> None:
    run = simulate(n_clients=10, rounds=1, scheme="secagg",
                   scheme_options={"checks": ["min_threshold"], "assumed_corrupt": 2})
    assert run.rounds[0].public["threshold"] == 7  # (10 + 2) // 2 + 1


def test_an_unknown_check_is_one_line_naming_the_choices() -> None:
    with pytest.raises(ConfigError, match="checks must be one of bind_model, signed_keys, consistency_round, "
                                          "min_threshold, vet_model, got 'trust_me'"):
        simulate(n_clients=3, rounds=1, scheme="secagg", scheme_options={"checks": ["trust_me"]})
