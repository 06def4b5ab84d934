import os
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from defenses.secure_aggregation import (
    ProtocolConfig,
    ProtocolViolation,
    SecAggClient,
    SecAggServer,
    SecureAggregationAborted,
    Stage,
    complete_graph,
    harary_graph,
    run_protocol,
)


class RecordingEntropy:
    """os.urandom that remembers every secret it handed out."""

    def __init__(self) -> None:
        self.secrets: list[bytes] = []

    def __call__(self, size: int) -> bytes:
        value = os.urandom(size)
        if size == 32:
            self.secrets.append(value)
        return value


def _config(clients: int, *, threshold: int, length: int = 8, ring_bits: int = 32, degree: int | None = None) -> ProtocolConfig:
    members = list(range(clients))
    graph = complete_graph(members) if degree is None else harary_graph(members, degree, np.random.default_rng(0))
    return ProtocolConfig(os.urandom(16), ring_bits, length, threshold, graph)


def _inputs(config: ProtocolConfig, seed: int = 0) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(seed)
    high = 1 << config.ring_bits
    return {c: rng.integers(0, high, config.length, dtype=np.uint64).astype(config.dtype) for c in config.neighbours}


def _expected(inputs: dict[int, np.ndarray], survivors: frozenset[int], config: ProtocolConfig) -> np.ndarray:
    total = sum((inputs[c].astype(object) for c in survivors), start=np.zeros(config.length, dtype=object))
    return (total % (1 << config.ring_bits)).astype(config.dtype)


@settings(max_examples=60, deadline=None)
@given(
    clients=st.integers(min_value=2, max_value=9),
    ring_bits=st.sampled_from([17, 32, 45, 64]),
    sparse=st.booleans(),
    data=st.data(),
)
def test_the_sum_of_the_survivors_is_exact_or_the_round_aborts(clients: int, ring_bits: int, sparse: bool, data: st.DataObject) -> None:
    degree = 2 if sparse and clients > 3 else None
    holders = (degree + 1) if degree else clients
    threshold = data.draw(st.integers(min_value=2, max_value=max(2, holders)))
    config = _config(clients, threshold=min(threshold, holders), ring_bits=ring_bits, degree=degree)
    stages = data.draw(st.dictionaries(st.integers(0, clients - 1), st.sampled_from(list(Stage))))
    inputs = _inputs(config, seed=clients)

    result = run_protocol(inputs, config, dropouts=stages)

    if result.total is None:
        assert result.aborted and "threshold" in result.aborted
        assert result.survivors == frozenset()
    else:
        assert len(result.survivors) >= config.threshold
        assert result.survivors == frozenset(result.masked)
        assert all(stages.get(c, Stage.UNMASK) >= Stage.UNMASK for c in result.survivors)
        assert np.array_equal(result.total, _expected(inputs, result.survivors, config))
        # no client's secret is ever revealed twice over: b for survivors, s^SK for the dropped
        for response in result.responses.values():
            assert set(response.self_mask_shares) <= result.survivors
            assert not set(response.mask_key_shares) & result.survivors
    for masked in result.masked.values():
        for value in inputs.values():
            assert config.length < 4 or not np.array_equal(masked.vector, value)


@pytest.mark.parametrize("stage", list(Stage))
def test_a_client_dropping_at_any_stage_is_recovered(stage: Stage) -> None:
    config = _config(5, threshold=3)
    inputs = _inputs(config)

    result = run_protocol(inputs, config, dropouts={4: stage})

    counted = frozenset(range(5)) if stage == Stage.UNMASK else frozenset(range(4))
    assert result.survivors == counted
    assert np.array_equal(result.total, _expected(inputs, counted, config))
    assert 4 not in result.online


def test_dropping_below_the_threshold_aborts_with_a_clear_reason() -> None:
    config = _config(5, threshold=4)

    result = run_protocol(_inputs(config), config, dropouts={0: Stage.SHARE, 1: Stage.MASKED_INPUT})

    assert result.total is None
    assert result.aborted is not None and "fewer than the threshold t=4" in result.aborted


def test_too_few_unmasking_answers_abort() -> None:
    config = _config(4, threshold=3)

    result = run_protocol(_inputs(config), config, dropouts={0: Stage.UNMASK, 1: Stage.UNMASK})

    assert result.total is None and "unmasking" in (result.aborted or "")


def test_a_masked_input_is_uniform_on_the_ring_whatever_the_input() -> None:
    length = 40_000
    config = ProtocolConfig(os.urandom(16), 32, length, 2, complete_graph([0, 1, 2]))
    inputs = {0: np.zeros(length, np.uint32), 1: np.full(length, 2**32 - 1, np.uint32), 2: np.full(length, 7, np.uint32)}

    result = run_protocol(inputs, config)

    for masked in result.masked.values():
        counts = np.bincount((masked.vector >> np.uint32(26)).astype(np.int64), minlength=64)
        assert stats.chisquare(counts).pvalue > 1e-4
        low = np.bincount((masked.vector & np.uint32(63)).astype(np.int64), minlength=64)
        assert stats.chisquare(low).pvalue > 1e-4


def test_no_secret_key_or_seed_appears_in_any_message() -> None:
    entropy = RecordingEntropy()
    config = _config(6, threshold=3)

    result = run_protocol(_inputs(config), config, dropouts={5: Stage.MASKED_INPUT}, entropy=entropy)

    wire = [a.to_bytes() for a in result.roster.values()]
    wire += [s.ciphertext for s in result.shares.values()]
    wire += [m.vector.tobytes() for m in result.masked.values()]
    wire += [r.to_bytes() for r in result.responses.values()]
    blob = b"|".join(wire)
    assert entropy.secrets and all(secret not in blob for secret in entropy.secrets)


def test_the_server_rejects_duplicates_and_replays() -> None:
    config = _config(3, threshold=2)
    clients = {c: SecAggClient(c, config, np.zeros(8, np.uint32)) for c in range(3)}
    server = SecAggServer(config)
    adverts = [client.advertise_keys() for client in clients.values()]

    with pytest.raises(ProtocolViolation, match="duplicate key advertisement from client 0"):
        server.receive_keys(adverts + [adverts[0]])
    with pytest.raises(ProtocolViolation, match="another session"):
        SecAggServer(config).receive_keys([replace(adverts[0], session=b"old session     ")])
    with pytest.raises(ProtocolViolation, match="not in this round"):
        SecAggServer(config).receive_keys([replace(adverts[0], sender=9)])


def test_a_share_replayed_from_another_round_fails_authentication() -> None:
    old = _config(3, threshold=2)
    new = replace(old, session=os.urandom(16))
    old_clients = {c: SecAggClient(c, old, np.zeros(8, np.uint32)) for c in range(3)}
    old_roster = {c: client.advertise_keys() for c, client in old_clients.items()}
    old_shares = old_clients[1].share_keys(old_roster)
    clients = {c: SecAggClient(c, new, np.zeros(8, np.uint32)) for c in range(3)}
    roster = {c: client.advertise_keys() for c, client in clients.items()}
    for client in clients.values():
        client.share_keys(roster)
    replayed = [replace(s, session=new.session) for s in old_shares if s.recipient == 0]

    with pytest.raises(ProtocolViolation, match="failed authentication"):
        clients[0].masked_input(replayed)


def test_duplicate_masked_inputs_and_wrong_lengths_are_rejected() -> None:
    config = _config(3, threshold=2)
    clients = {c: SecAggClient(c, config, np.zeros(8, np.uint32)) for c in range(3)}
    server = SecAggServer(config)
    roster = server.receive_keys([client.advertise_keys() for client in clients.values()])
    inbox = server.receive_shares([s for client in clients.values() for s in client.share_keys(roster)])
    masked = [clients[c].masked_input(inbox[c]) for c in range(3)]

    with pytest.raises(ProtocolViolation, match="duplicate masked input from client 1"):
        SecAggServer.receive_masked_inputs(server, masked + [masked[1]])
    server.masked.clear()
    with pytest.raises(ProtocolViolation, match=r"has shape \(5,\).*expected \(8,\)"):
        server.receive_masked_inputs([replace(masked[0], vector=masked[0].vector[:5])])
    with pytest.raises(ProtocolViolation, match=r"input has shape \(7,\), expected \(8,\)"):
        SecAggClient(0, config, np.zeros(7, np.uint32))


def test_an_honest_client_answers_the_unmasking_request_once() -> None:
    config = _config(3, threshold=2)
    clients = {c: SecAggClient(c, config, np.zeros(8, np.uint32)) for c in range(3)}
    server = SecAggServer(config)
    roster = server.receive_keys([client.advertise_keys() for client in clients.values()])
    inbox = server.receive_shares([s for client in clients.values() for s in client.share_keys(roster)])
    server.receive_masked_inputs([clients[c].masked_input(inbox[c]) for c in range(3)])
    clients[0].unmask(frozenset({0, 1, 2}))

    # A server that first claims client 2 survived, then that it dropped, would get
    # both of client 2's secrets: the client refuses the second request.
    with pytest.raises(ProtocolViolation, match="already answered"):
        clients[0].unmask(frozenset({0, 1}))


def test_a_client_refuses_fewer_survivors_than_the_threshold() -> None:
    config = _config(3, threshold=3)
    clients = {c: SecAggClient(c, config, np.zeros(8, np.uint32)) for c in range(3)}
    roster = {c: client.advertise_keys() for c, client in clients.items()}
    for client in clients.values():
        client.share_keys(roster)

    with pytest.raises(SecureAggregationAborted):
        clients[0].share_keys({0: roster[0], 1: roster[1]})
