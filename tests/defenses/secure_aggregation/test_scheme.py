import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import defenses.secure_aggregation  # noqa: F401  (registers secagg and secagg+)
from leakage import simulate
from leakage.aggregation import Deployment, RoundContext, create_scheme, weighted_mean
from leakage.errors import ConfigError, UnknownNameError
from leakage.views import EAVESDROPPER, SERVER

SCHEMES = ["secagg", "secagg+"]


def _deployment(clients: int, weight: float = 5.0, rounds: int = 1, dim: int = 12) -> Deployment:
    return Deployment(
        n_clients=clients,
        clients_per_round=clients,
        client_sampling="fixed",
        rounds=rounds,
        num_parameters=dim,
        client_weights=(weight,) * clients,
    )


def _context(updates: torch.Tensor, weights: torch.Tensor, dropped: frozenset[int] = frozenset(), seed: int = 0) -> RoundContext:
    clients = tuple(range(updates.shape[0]))
    return RoundContext(
        round_index=0,
        is_final_round=True,
        params_before=torch.zeros(updates.shape[1]),
        client_ids=clients,
        updates=updates,
        weights=weights,
        dropped=dropped,
        server_lr=1.0,
        public={},
        client_data={c: torch.tensor([c]) for c in clients},
        generator=torch.Generator().manual_seed(seed),
    )


def _prepared(name: str, clients: int, **options: object) -> object:
    scheme = create_scheme(name, **options)
    scheme.prepare(_deployment(clients))
    return scheme


@pytest.mark.parametrize("name", SCHEMES)
def test_the_new_model_is_the_plain_weighted_mean_within_one_quantisation_step(name: str) -> None:
    generator = torch.Generator().manual_seed(1)
    updates = torch.randn(7, 12, generator=generator) * 0.2
    weights = torch.tensor([5.0, 1, 2, 3, 4, 5, 1])
    scheme = _prepared(name, 7, clip_range=1.0)

    outcome = scheme.run_round(_context(updates, weights))

    expected = weighted_mean(updates, weights)
    assert outcome.aborted is None and outcome.survivors == tuple(range(7))
    assert (outcome.params_after - expected).abs().max() <= scheme.lattice_step() + 1e-7


@pytest.mark.parametrize("name", SCHEMES)
@pytest.mark.parametrize("stage", ["advertise", "share", "masked_input"])
def test_clients_dropping_at_each_stage_are_left_out_and_the_rest_is_exact(name: str, stage: str) -> None:
    updates = torch.randn(8, 12, generator=torch.Generator().manual_seed(2)) * 0.2
    weights = torch.ones(8)
    scheme = _prepared(name, 8, dropout_stage=stage, threshold=3)

    outcome = scheme.run_round(_context(updates, weights, dropped=frozenset({1, 6})))

    kept = [0, 2, 3, 4, 5, 7]
    assert outcome.survivors == tuple(kept)
    assert (outcome.params_after - updates[kept].mean(0)).abs().max() <= scheme.lattice_step() + 1e-7


@pytest.mark.parametrize("name", SCHEMES)
def test_clients_dropping_while_unmasking_still_count(name: str) -> None:
    updates = torch.randn(6, 12, generator=torch.Generator().manual_seed(3)) * 0.2
    scheme = _prepared(name, 6, unmask_dropout=0.5, threshold=2)

    outcome = scheme.run_round(_context(updates, torch.ones(6), seed=4))

    finished = [c for c in range(6) if outcome.views[f"client:{c}"].params_after is not None]
    assert outcome.survivors == tuple(range(6)) and len(finished) < 6
    assert (outcome.params_after - updates.mean(0)).abs().max() <= scheme.lattice_step() + 1e-7


@pytest.mark.parametrize("name", SCHEMES)
def test_too_few_survivors_abort_the_round_and_leave_the_model_unchanged(name: str) -> None:
    updates = torch.randn(5, 12)
    scheme = _prepared(name, 5, threshold=5 if name == "secagg" else 3, dropout_stage="masked_input")
    context = _context(updates, torch.ones(5), dropped=frozenset({0, 1, 2}))

    outcome = scheme.run_round(context)

    assert outcome.aborted is not None and "threshold" in outcome.aborted
    assert torch.equal(outcome.params_after, context.params_before)
    assert outcome.survivors == () and outcome.views[SERVER].params_after is None


def test_an_aborted_round_is_recorded_and_training_goes_on() -> None:
    transcript = simulate(
        scheme="secagg", scheme_options={"threshold": 4, "dropout_stage": "share"},
        n_clients=4, rounds=2, model="logreg", dropout=0.3, seed=3,
    )

    aborted = [r for r in transcript.rounds if "aborted" in r.public]
    assert aborted, "seed 3 drops a client in some round"
    for record in aborted:
        assert torch.equal(record.params_after, record.params_before)
        assert record.metrics["aborted"] == 1.0 and record.survivors == ()


@pytest.mark.parametrize("name", SCHEMES)
def test_no_view_holds_a_plaintext_update_and_masked_vectors_do_not_decode_to_one(name: str) -> None:
    updates = torch.randn(5, 12, generator=torch.Generator().manual_seed(5)) * 0.3
    scheme = _prepared(name, 5)

    outcome = scheme.run_round(_context(updates, torch.ones(5)))

    for observer in (SERVER, EAVESDROPPER):
        view = outcome.views[observer]
        for key, value in view.received.items():
            if isinstance(value, torch.Tensor):
                assert key == "aggregate" and observer == SERVER
                assert all(not torch.allclose(value, u, atol=1e-3) for u in updates)
            elif key.startswith("masked:"):
                words = np.frombuffer(value, dtype=np.uint32)
                decoded, _ = scheme.encoding.decode_sum(words.copy())
                for update in updates.double():
                    assert not torch.allclose(decoded, update, atol=0.5)
    assert not any(k.startswith("masked:") for k in outcome.views["client:0"].received)


def test_values_outside_the_clipping_range_are_clipped_and_counted() -> None:
    updates = torch.zeros(3, 12)
    updates[1, :4] = 5.0
    scheme = _prepared("secagg", 3, clip_range=1.0)

    outcome = scheme.run_round(_context(updates, torch.ones(3)))

    assert outcome.metrics["clipped_values"] == 4.0
    assert int(outcome.views["client:1"].own["clipped_values"]) == 4
    assert torch.allclose(outcome.params_after[:4], torch.full((4,), 1 / 3), atol=1e-6)


def test_the_same_seed_gives_the_same_models_although_keys_are_fresh() -> None:
    first = simulate(scheme="secagg+", n_clients=5, rounds=2, model="logreg", dropout=0.2, seed=8)
    second = simulate(scheme="secagg+", n_clients=5, rounds=2, model="logreg", dropout=0.2, seed=8)

    assert torch.equal(first.final_params, second.final_params)
    masked = [k for k in first.rounds[0].views[SERVER].received if k.startswith("masked:")]
    assert first.rounds[0].views[SERVER].received[masked[0]] != second.rounds[0].views[SERVER].received[masked[0]]


@pytest.mark.parametrize(
    "options, message",
    [
        ({"clip_range": 0}, "clip_range must be a finite number > 0"),
        ({"ring_bits": 8}, "ring_bits must be an integer >= 16"),
        ({"ring_bits": 80}, r"ring_bits must be an integer in \[16, 64\]"),
        ({"threshold": 1}, "threshold must be an integer >= 2"),
        ({"precision_bits": 60}, r"precision_bits must be an integer in \[8, 52\]"),
        ({"dropout_stage": "later"}, "dropout_stage must be one of advertise, share, masked_input, random"),
        ({"unmask_dropout": 1.0}, r"unmask_dropout must be a probability in \[0, 1\)"),
        ({"mask_bits": 3}, "unknown option 'mask_bits' for scheme 'secagg'"),
    ],
)
def test_bad_options_name_the_parameter(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        create_scheme("secagg", **options)


def test_secagg_plus_needs_an_even_degree() -> None:
    with pytest.raises(ConfigError, match="neighbours must be an even integer"):
        create_scheme("secagg+", neighbours=3)


def test_a_threshold_larger_than_the_shareholders_is_rejected_at_configuration() -> None:
    with pytest.raises(ConfigError, match="threshold must be between 2 and the 4 shareholders"):
        simulate(scheme="secagg", scheme_options={"threshold": 5}, n_clients=4, rounds=1, model="logreg")
    with pytest.raises(ConfigError, match="threshold must be between 2 and the 5 shareholders"):
        simulate(scheme="secagg+", scheme_options={"threshold": 6, "neighbours": 4}, n_clients=10, rounds=1, model="logreg")


def test_a_ring_too_small_for_the_deployment_is_rejected_before_training() -> None:
    with pytest.raises(ConfigError, match="ring_bits=16 is too small"):
        simulate(scheme="secagg", scheme_options={"ring_bits": 16}, n_clients=10, rounds=1, model="logreg")


def test_unknown_scheme_names_list_the_choices() -> None:
    with pytest.raises(UnknownNameError, match="unknown scheme 'secagg\\+\\+'; choose one of: .*secagg, secagg\\+"):
        create_scheme("secagg++")


@settings(max_examples=15, deadline=None)
@given(
    name=st.sampled_from(SCHEMES),
    clients=st.integers(min_value=2, max_value=7),
    dim=st.integers(min_value=4, max_value=30),
    data=st.data(),
)
def test_random_updates_and_dropouts_give_the_right_mean_or_a_clean_abort(name: str, clients: int, dim: int, data: st.DataObject) -> None:
    seed = data.draw(st.integers(0, 2**31))
    generator = torch.Generator().manual_seed(seed)
    updates = (torch.rand(clients, dim, generator=generator) * 2 - 1) * 0.9
    weights = torch.randint(1, 6, (clients,), generator=generator).to(torch.float64)
    dropped = frozenset(data.draw(st.sets(st.integers(0, clients - 1))))
    stage = data.draw(st.sampled_from(["advertise", "share", "masked_input", "random"]))
    scheme = create_scheme(name, dropout_stage=stage, unmask_dropout=data.draw(st.sampled_from([0.0, 0.3])))
    scheme.prepare(_deployment(clients, weight=5.0, dim=dim))
    context = _context(updates, weights, dropped=dropped, seed=seed)

    outcome = scheme.run_round(context)

    if outcome.aborted is not None:
        assert torch.equal(outcome.params_after, context.params_before) and outcome.survivors == ()
    else:
        rows = list(outcome.survivors)
        assert len(rows) >= 2 and not set(rows) & dropped
        expected = weighted_mean(updates[rows], weights[rows])
        assert (outcome.params_after - expected).abs().max() <= scheme.lattice_step() + 1e-6
    for observer in (SERVER, EAVESDROPPER):
        for key, value in outcome.views[observer].received.items() if observer in outcome.views else ():
            if key.startswith("masked:"):
                decoded, _ = scheme.encoding.decode_sum(np.frombuffer(value, dtype=np.uint32).copy())
                assert all(not torch.allclose(decoded, u.double(), atol=0.5) for u in updates)


class _RecordingEntropy:
    def __init__(self) -> None:
        self.secrets: list[bytes] = []

    def __call__(self, size: int) -> bytes:
        import os

        value = os.urandom(size)
        if size == 32:  # private keys and self-mask seeds
            self.secrets.append(value)
        return value


@pytest.mark.parametrize("name", SCHEMES)
def test_no_private_key_or_mask_seed_reaches_any_view(name: str) -> None:
    entropy = _RecordingEntropy()
    scheme = create_scheme(name, entropy=entropy, dropout_stage="masked_input", threshold=3)
    scheme.prepare(_deployment(6))

    outcome = scheme.run_round(_context(torch.randn(6, 12) * 0.1, torch.ones(6), dropped=frozenset({2})))

    blobs = [v for view in outcome.views.values() for v in view.received.values() if isinstance(v, bytes)]
    assert entropy.secrets and blobs
    assert not any(secret in blob for secret in entropy.secrets for blob in blobs)
