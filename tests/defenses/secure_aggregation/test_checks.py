"""Client-side checks against an active server: honest rounds are unchanged, deviations are refused."""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from defenses.secure_aggregation import (
    ClientChecks,
    ProtocolConfig,
    Stage,
    complete_graph,
    harary_graph,
    identities,
    key_substitution,
    run_protocol,
    survivor_split,
    sybil_fill,
)
from defenses.secure_aggregation.checks import architecture_digest, model_digest
from leakage.errors import ConfigError


def _config(clients: int, threshold: int | None = None, *, degree: int | None = None, length: int = 6) -> ProtocolConfig:
    members = list(range(clients))
    graph = complete_graph(members) if degree is None else harary_graph(members, degree, np.random.default_rng(0))
    return ProtocolConfig(os.urandom(16), 32, length, threshold or clients // 2 + 1, graph)


def _inputs(config: ProtocolConfig, seed: int = 0) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {c: rng.integers(0, 1 << 32, config.length, dtype=np.uint64).astype(np.uint32) for c in config.neighbours}


# --- survivor split ---------------------------------------------------------------------------

@pytest.mark.parametrize(("corrupt", "unmasked"), [(2, True), (1, False)])
def test_split_survivor_lists_unmask_the_target_exactly_with_two_corrupt_clients_of_ten(
    corrupt: int, unmasked: bool
) -> None:
    config = _config(10)  # the default threshold t = 6: it needs corrupt >= 2t - N = 2
    inputs = _inputs(config)
    result = survivor_split(inputs, config, target=0, corrupt=range(10 - corrupt, 10))
    assert result.exact is unmasked and (result.recovered is not None) is unmasked
    if unmasked:
        np.testing.assert_array_equal(result.recovered, inputs[0])
        assert result.details["seed_shares"] == 6 and result.details["key_shares"] == 6
    else:
        assert result.aborted is None and "threshold 6" in (result.failure or "")


def test_with_the_consistency_round_one_corrupt_client_is_caught_and_the_target_stays_private() -> None:
    config = _config(10)
    keys, directory = identities(range(10))
    result = survivor_split(_inputs(config), config, target=0, corrupt=[9], signing_keys=keys,
                            checks=ClientChecks(directory=directory, consistency_round=True))
    assert result.recovered is None
    assert any("the server showed clients different lists" in why for why in result.refusals.values())


def test_the_consistency_round_alone_cannot_stop_two_corrupt_clients_at_the_default_threshold() -> None:
    # 2t - N = 2: each side sees t = 6 valid signatures on its own list (4 honest + the 2 corrupt)
    config = _config(10)
    keys, directory = identities(range(10))
    checks = ClientChecks(directory=directory, consistency_round=True)
    inputs = _inputs(config)
    assert survivor_split(inputs, config, target=0, corrupt=[8, 9], checks=checks, signing_keys=keys).exact
    # with a threshold above (N + corrupt) / 2 the same consistency round leaves the target private
    strict = replace(config, threshold=7)
    result = survivor_split(inputs, strict, target=0, corrupt=[8, 9], checks=checks, signing_keys=keys)
    assert result.recovered is None and result.refusals


def test_a_client_held_minimum_threshold_refuses_to_start_below_n_plus_c_over_two() -> None:
    config = _config(10)
    result = survivor_split(_inputs(config), config, target=0, corrupt=[8, 9], checks=ClientChecks(assumed_corrupt=2))
    assert result.recovered is None and len(result.refusals) == 10
    assert "threshold 6 is at most (n + c) / 2 = (10 + 2) / 2" in result.refusals[0]
    assert result.aborted is not None and result.aborted.startswith("advertise keys")


def test_in_a_secagg_plus_graph_one_corrupt_neighbour_of_the_target_is_enough() -> None:
    config = _config(30, 3, degree=4)  # a sharing group of 5 with t = 3: 2t - n = 1
    group = sorted(config.neighbours[0])
    result = survivor_split(_inputs(config), config, target=0, corrupt=group[:1])
    assert result.exact


# --- key substitution and Sybils --------------------------------------------------------------

def test_key_substitution_unmasks_the_target_and_signed_keys_stop_it() -> None:
    config = _config(10)
    inputs = _inputs(config)
    assert key_substitution(inputs, config, target=3).exact
    keys, directory = identities(range(10))
    result = key_substitution(inputs, config, target=3, checks=ClientChecks(directory=directory), signing_keys=keys)
    assert result.recovered is None and "not signed by its directory key" in result.refusals[3]


def test_no_protocol_check_stops_a_round_of_sybils() -> None:
    config = _config(10)
    keys, directory = identities(range(10))
    import torch

    digest = model_digest(torch.zeros(3))
    checks = ClientChecks(bind_model=True, directory=directory, consistency_round=True, assumed_corrupt=0)
    result = sybil_fill(_inputs(config)[0], replace(config, model_digest=digest), target=0, checks=checks,
                        signing_keys=keys, model_digests=dict.fromkeys(range(10), digest))
    assert result.exact and not result.refusals


# --- model binding ----------------------------------------------------------------------------

def test_a_client_holding_another_model_makes_every_client_refuse_before_any_masked_input() -> None:
    import torch

    config = _config(8)
    same, other = model_digest(torch.zeros(5)), model_digest(torch.ones(5))
    digests = {c: (other if c == 0 else same) for c in range(8)}
    result = run_protocol(_inputs(config), replace(config, model_digest=same), checks=ClientChecks(bind_model=True),
                          model_digests=digests)
    assert result.total is None and not result.masked  # aborted before any masked input was sent
    assert set(result.refusals) == set(range(8))
    assert "holds another model" in result.refusals[3]
    # without the binding the same round completes
    assert run_protocol(_inputs(config), config).total is not None


def test_architecture_digests_tell_an_added_layer_apart() -> None:
    from torch import nn

    plain = nn.Sequential(nn.Linear(4, 3))
    imprinted = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 3))
    assert architecture_digest(plain) == architecture_digest(nn.Sequential(nn.Linear(4, 3)))
    assert architecture_digest(plain) != architecture_digest(imprinted)


# --- honest rounds ----------------------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(clients=st.integers(min_value=3, max_value=8), sparse=st.booleans(), data=st.data())
def test_honest_rounds_with_every_check_give_the_same_aggregate_under_dropouts(
    clients: int, sparse: bool, data: st.DataObject
) -> None:
    import torch

    degree = clients - 1 if not sparse or clients < 5 else 2 * ((clients - 1) // 4) or 2
    base = _config(clients, degree=None if degree >= clients - 1 else degree)
    group = min(len(ns) for ns in base.neighbours.values()) + 1
    config = replace(base, threshold=max(2, group // 2 + 1))
    stages = st.sampled_from([Stage.ADVERTISE, Stage.SHARE, Stage.MASKED_INPUT, Stage.UNMASK])
    dropouts = data.draw(st.dictionaries(st.sampled_from(range(clients)), stages, max_size=clients))
    inputs = _inputs(config, seed=clients)
    keys, directory = identities(range(clients))
    digest = model_digest(torch.arange(4.0))
    checks = ClientChecks(bind_model=True, directory=directory, consistency_round=True, assumed_corrupt=0)
    plain = run_protocol(inputs, config, dropouts=dropouts)
    checked = run_protocol(inputs, replace(config, model_digest=digest), dropouts=dropouts, checks=checks,
                           signing_keys=keys, model_digests=dict.fromkeys(range(clients), digest))
    assert (plain.total is None) == (checked.total is None), (plain.aborted, checked.aborted)
    if plain.total is not None:
        assert not checked.refusals
        assert checked.total is not None
        np.testing.assert_array_equal(plain.total, checked.total)
        assert plain.survivors == checked.survivors


def test_bad_checks_are_refused_with_one_line() -> None:
    with pytest.raises(ConfigError, match="consistency_round needs a directory"):
        ClientChecks(consistency_round=True)
    with pytest.raises(ConfigError, match="assumed_corrupt must be an integer >= 0 or None, got -1"):
        ClientChecks(assumed_corrupt=-1)
