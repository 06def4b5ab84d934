"""The ``he`` scheme: CKKS-encrypted FedAvg, its views, its keys and its options.

Tolerances. With the default scale ``2**40`` a decrypted CKKS slot is off by about
``1e-8`` absolute (measured: ``< 1e-7`` on slots up to ``50``); the weighted sums
are divided by a total weight ``>= 1``, and the model is float32, whose rounding at
values of order one is ``6e-8``. ``ATOL = 1e-6`` is ten times above both, and far
below the size of any update, so it cannot hide a missing or double-counted client.
"""

import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

ts = pytest.importorskip("tenseal")

import defenses.he  # noqa: F401  # registers "he"
from defenses.he import HomomorphicAggregation, split_ciphertexts
from leakage import simulate
from leakage.aggregation import (
    SCHEMES,
    Deployment,
    RoundContext,
    create_scheme,
    weighted_mean,
)
from leakage.errors import ConfigError
from leakage.views import EAVESDROPPER, PUBLIC, SERVER

ATOL = 1e-6


def _context(
    updates: torch.Tensor,
    weights: torch.Tensor,
    client_ids: tuple[int, ...] | None = None,
    dropped: frozenset[int] = frozenset(),
    final: bool = False,
) -> RoundContext:
    client_ids = tuple(range(len(updates))) if client_ids is None else tuple(client_ids)
    return RoundContext(
        round_index=2,
        is_final_round=final,
        params_before=torch.linspace(-1.0, 1.0, updates.shape[1]),
        client_ids=client_ids,
        updates=updates,
        weights=weights,
        dropped=dropped,
        server_lr=0.5,
        public={"lr": 0.1},
        client_data={c: torch.arange(c, c + 3) for c in client_ids},
    )


def _random_round(clients: int = 3, size: int = 40, seed: int = 0, **options: object) -> RoundContext:
    generator = torch.Generator().manual_seed(seed)
    updates = torch.randn(clients, size, generator=generator)
    weights = torch.randint(1, 50, (clients,), generator=generator).double()
    return _context(updates, weights, **options)  # type: ignore[arg-type]


def _plain_params(context: RoundContext) -> torch.Tensor:
    return context.apply(weighted_mean(context.updates, context.arrived_weights))


def test_he_is_registered_and_publishes_its_parameters() -> None:
    scheme = create_scheme("he", poly_modulus_degree=16384, coeff_mod_bit_sizes=[60, 40, 40, 60], scale_bits=40)

    assert SCHEMES.get("he") is HomomorphicAggregation
    assert scheme.public_parameters() == {
        "scheme": "he",
        "poly_modulus_degree": 16384,
        "coeff_mod_bit_sizes": [60, 40, 40, 60],
        "scale_bits": 40,
    }


def test_aggregate_equals_the_plain_weighted_mean() -> None:
    context = _random_round(clients=4, size=50)

    outcome = create_scheme("he").run_round(context)

    torch.testing.assert_close(outcome.params_after, _plain_params(context), rtol=0.0, atol=ATOL)
    assert outcome.params_after.dtype == context.params_before.dtype
    assert outcome.survivors == (0, 1, 2, 3)
    assert outcome.metrics["aggregate_max_abs_error"] < ATOL
    assert outcome.metrics["ciphertext_bytes_per_client"] > 0


def test_vectors_longer_than_one_ciphertext_span_several() -> None:
    scheme = create_scheme("he")
    context = _random_round(clients=2, size=4096 + 5)  # 8192 / 2 slots, plus the weight slot

    outcome = scheme.run_round(context)

    torch.testing.assert_close(outcome.params_after, _plain_params(context), rtol=0.0, atol=ATOL)
    assert len(split_ciphertexts(outcome.views[SERVER].received["aggregate"])) == 2


def test_dropped_clients_send_nothing_and_are_left_out() -> None:
    context = _random_round(clients=3, client_ids=(1, 4, 6), dropped=frozenset({4}))

    outcome = create_scheme("he").run_round(context)

    assert outcome.survivors == (1, 6)
    torch.testing.assert_close(outcome.params_after, _plain_params(context), rtol=0.0, atol=ATOL)
    assert set(outcome.views[SERVER].received) == {
        "public_context",
        "ciphertext:client:1",
        "ciphertext:client:6",
        "aggregate",
    }
    assert outcome.views[SERVER].participants == frozenset({1, 6})
    dropped = outcome.views["client:4"]
    assert dropped.params_after is None and dropped.received == {}
    assert torch.equal(dropped.own["update"], context.updates[1])


def test_a_round_without_arrivals_leaves_the_model_unchanged() -> None:
    context = _random_round(clients=2, dropped=frozenset({0, 1}))

    outcome = create_scheme("he").run_round(context)

    assert outcome.survivors == ()
    assert torch.equal(outcome.params_after, context.params_before)
    assert set(outcome.views[SERVER].received) == {"public_context"}


def test_server_and_eavesdropper_see_only_ciphertexts() -> None:
    context = _random_round(clients=3, final=True)

    views = create_scheme("he").run_round(context).views

    assert set(views) == {SERVER, EAVESDROPPER, PUBLIC, "client:0", "client:1", "client:2"}
    for observer in (SERVER, EAVESDROPPER):
        view = views[observer]
        assert view.params_before is None and view.params_after is None
        assert view.own == {}
        assert all(isinstance(message, bytes) for message in view.received.values())
        assert set(view.received) == {
            "public_context",
            "ciphertext:client:0",
            "ciphertext:client:1",
            "ciphertext:client:2",
            "aggregate",
        }
    assert "weights" not in views[SERVER].public
    assert views[SERVER].public["poly_modulus_degree"] == 8192


def test_no_view_but_the_owner_holds_a_plaintext_update() -> None:
    context = _random_round(clients=3, final=True)

    views = create_scheme("he").run_round(context).views

    for row, client in enumerate(context.client_ids):
        update = context.updates[row]
        weighted = context.weights[row] * update.double()
        encodings = [update.numpy().tobytes(), update.double().numpy().tobytes(), weighted.numpy().tobytes()]
        for observer, view in views.items():
            assert not any(e in message for e in encodings for message in view.received.values()), observer
            holders = [view.params_before, view.params_after, *view.received.values(), *view.own.values()]
            seen = [t for t in holders if isinstance(t, torch.Tensor) and torch.equal(t, update)]
            assert seen == ([view.own["update"]] if observer == f"client:{client}" else []), observer


def test_no_view_holds_the_secret_key_and_the_server_cannot_decrypt() -> None:
    views = create_scheme("he").run_round(_random_round(clients=2, final=True)).views

    for view in views.values():
        if "public_context" in view.received:
            public_context = ts.context_from(view.received["public_context"])
            assert not public_context.is_private()
    server = views[SERVER].received
    public_context = ts.context_from(server["public_context"])
    for part in split_ciphertexts(server["aggregate"]):
        with pytest.raises(ValueError, match="secret"):
            ts.ckks_vector_from(public_context, part).decrypt()


def test_arriving_clients_decrypt_the_new_model_and_the_total_weight() -> None:
    context = _random_round(clients=3, dropped=frozenset({2}))

    outcome = create_scheme("he").run_round(context)

    for client in (0, 1):
        view = outcome.views[f"client:{client}"]
        assert torch.equal(view.params_before, context.params_before)
        assert torch.equal(view.params_after, outcome.params_after)
        assert torch.equal(view.own["data_indices"], context.client_data[client])
        assert set(view.received) == {"aggregate"}
        assert view.public["total_weight"] == pytest.approx(float(context.weights[:2].sum()), abs=ATOL)
        assert view.participants == frozenset({0, 1})


def test_with_two_participants_each_recovers_the_other_update() -> None:
    context = _random_round(clients=2)

    view = create_scheme("he").run_round(context).views["client:0"]

    total = float(view.public["total_weight"])  # type: ignore[arg-type]
    own_weight = float(context.weights[0])
    delta = (view.params_after.double() - view.params_before.double()) / context.server_lr
    recovered = (total * delta - own_weight * view.own["update"].double()) / (total - own_weight)
    torch.testing.assert_close(recovered.float(), context.updates[1], rtol=0.0, atol=1e-4)


def test_prepare_makes_fresh_keys_for_every_deployment() -> None:
    scheme = create_scheme("he")
    deployment = Deployment(
        n_clients=2, clients_per_round=2, client_sampling="fixed", rounds=1, num_parameters=40,
        client_weights=(10.0, 20.0),
    )
    context = _random_round(clients=2)

    scheme.prepare(deployment)
    first = scheme.run_round(context).views[SERVER].received["public_context"]
    again = scheme.run_round(context).views[SERVER].received["public_context"]
    scheme.prepare(deployment)
    fresh = scheme.run_round(context).views[SERVER].received["public_context"]

    assert first == again
    assert fresh != first


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"poly_modulus_degree": 4096}, "poly_modulus_degree"),
        ({"poly_modulus_degree": True}, "poly_modulus_degree"),
        ({"coeff_mod_bit_sizes": [60]}, "coeff_mod_bit_sizes"),
        ({"coeff_mod_bit_sizes": [61, 40, 60]}, "coeff_mod_bit_sizes"),
        ({"coeff_mod_bit_sizes": [60, 60, 60, 60]}, "coeff_mod_bit_sizes"),  # 240 > 218 bits
        ({"coeff_mod_bit_sizes": "60,40,60"}, "coeff_mod_bit_sizes"),
        ({"scale_bits": 10}, "scale_bits"),
        ({"scale_bits": 40.0}, "scale_bits"),
        ({"coeff_mod_bit_sizes": [40, 60], "scale_bits": 40}, "scale_bits"),
    ],
)
def test_bad_options_raise_config_error_naming_the_option(options: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        create_scheme("he", **options)


def test_sums_that_would_wrap_around_are_refused() -> None:
    scheme = create_scheme("he", coeff_mod_bit_sizes=[60, 60], scale_bits=50)  # |sum| < 2**8
    big = _context(torch.full((2, 4), 100.0), torch.tensor([1.0, 2.0], dtype=torch.float64))
    heavy = Deployment(
        n_clients=2, clients_per_round=2, client_sampling="fixed", rounds=1, num_parameters=4,
        client_weights=(200.0, 300.0),
    )

    with pytest.raises(ConfigError, match="scale_bits"):
        scheme.run_round(big)
    with pytest.raises(ConfigError, match="coeff_mod_bit_sizes"):
        scheme.prepare(heavy)


def test_without_tenseal_the_scheme_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tenseal", None)
    scheme = create_scheme("he")  # building it needs no TenSEAL
    deployment = Deployment(
        n_clients=2, clients_per_round=2, client_sampling="fixed", rounds=1, num_parameters=40,
        client_weights=(10.0, 20.0),
    )

    with pytest.raises(ConfigError, match=r"pip install 'leakage\[he\]'"):
        scheme.prepare(deployment)
    with pytest.raises(ConfigError, match="needs TenSEAL"):
        scheme.run_round(_random_round(clients=2))


@pytest.mark.slow  # a fresh interpreter imports torch: several seconds
def test_the_module_imports_without_tenseal() -> None:
    code = "import sys; sys.modules['tenseal'] = None; import defenses.he; print(defenses.he.HomomorphicAggregation.name)"

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "he"


@settings(max_examples=10, deadline=None)
@given(clients=st.integers(1, 5), size=st.integers(1, 20), seed=st.integers(0, 1000), data=st.data())
def test_aggregation_ignores_client_order_and_matches_plain(clients: int, size: int, seed: int, data) -> None:
    context = _random_round(clients=clients, size=size, seed=seed)
    order = data.draw(st.permutations(range(clients)))
    shuffled = _context(context.updates[list(order)], context.weights[list(order)], client_ids=tuple(order))
    scheme = create_scheme("he")

    straight = scheme.run_round(context)
    reordered = scheme.run_round(shuffled)

    torch.testing.assert_close(straight.params_after, reordered.params_after, rtol=0.0, atol=ATOL)
    torch.testing.assert_close(straight.params_after, _plain_params(context), rtol=0.0, atol=ATOL)


def test_simulation_under_he_is_close_to_plain(tiny_digits) -> None:
    options = {"dataset": tiny_digits, "n_clients": 3, "rounds": 2, "model": "logreg", "lr": 0.1, "seed": 0}

    encrypted = simulate(scheme="he", **options)
    plain = simulate(scheme="plain", **options)

    # Two rounds of 1e-8 CKKS errors, then the local training of round 2 on a model
    # that moved by that much: 1e-5 leaves room for float32 and still catches any
    # client missing from an aggregate (updates here are of order 1e-2).
    torch.testing.assert_close(encrypted.final_params, plain.final_params, rtol=0.0, atol=1e-5)
    assert encrypted.rounds[0].scheme == "he"
    assert encrypted.rounds[1].views[SERVER].params_after is None
    assert torch.equal(encrypted.rounds[1].views[PUBLIC].params_after, encrypted.final_params)


def test_ciphertext_views_survive_saving_the_transcript(tiny_digits, tmp_path) -> None:
    transcript = simulate(dataset=tiny_digits, scheme="he", n_clients=2, rounds=1, model="logreg", seed=0)
    path = tmp_path / "he.pt"

    transcript.save(path)
    loaded = type(transcript).load(path)

    assert loaded.rounds[0].views[SERVER].received == transcript.rounds[0].views[SERVER].received
