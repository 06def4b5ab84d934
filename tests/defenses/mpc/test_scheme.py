import pytest
import torch

import defenses.mpc  # noqa: F401  # registers "mpc" and its backends
from defenses.mpc import MPC_BACKENDS, IdealFunctionality, MPCBackend, MPCTraining
from leakage import simulate
from leakage.aggregation import SCHEMES, RoundContext, create_scheme
from leakage.aggregation.plain import PlainAggregation
from leakage.errors import ConfigError
from leakage.views import EAVESDROPPER, PUBLIC, SERVER


def _context(final: bool, dropped: frozenset[int] = frozenset({2}), seed: int = 0) -> RoundContext:
    generator = torch.Generator().manual_seed(seed)
    client_ids = (1, 2, 4, 7)
    return RoundContext(
        round_index=3,
        is_final_round=final,
        params_before=torch.randn(6, generator=generator),
        client_ids=client_ids,
        updates=torch.randn(len(client_ids), 6, generator=generator),
        weights=torch.tensor([3.0, 5.0, 1.0, 8.0], dtype=torch.float64),
        dropped=dropped,
        server_lr=0.5,
        public={"lr": 0.1},
        client_data={c: torch.arange(c, c + 3) for c in client_ids},
    )


def _assert_same(left: object, right: object) -> None:
    if isinstance(left, torch.Tensor):
        assert isinstance(right, torch.Tensor) and torch.equal(left, right)
    elif isinstance(left, dict):
        assert isinstance(right, dict) and set(left) == set(right)
        for key in left:
            _assert_same(left[key], right[key])
    else:
        assert left == right


def test_mpc_is_registered_with_the_ideal_backend() -> None:
    assert SCHEMES.get("mpc") is MPCTraining
    assert MPC_BACKENDS.get("ideal") is IdealFunctionality
    assert create_scheme("mpc").public_parameters() == {"mpc_backend": "ideal"}


@pytest.mark.parametrize("dropped", [frozenset(), frozenset({2}), frozenset({1, 7})])
def test_ideal_model_equals_plain_fedavg_exactly(dropped: frozenset[int]) -> None:
    context = _context(final=False, dropped=dropped)

    outcome = MPCTraining().run_round(context)

    plain = PlainAggregation().run_round(context)
    assert torch.equal(outcome.params_after, plain.params_after)
    assert outcome.survivors == plain.survivors


def test_intermediate_rounds_expose_no_model_and_no_update() -> None:
    context = _context(final=False)

    views = MPCTraining().run_round(context).views

    assert set(views) == {SERVER, EAVESDROPPER, "client:1", "client:2", "client:4", "client:7"}
    for view in views.values():
        assert view.params_before is None and view.params_after is None
        assert view.received == {}
        assert view.participants == frozenset()
        assert "weights" not in view.public
    assert views[SERVER].own == {} and views[EAVESDROPPER].own == {}
    for client in context.client_ids:
        own = views[f"client:{client}"].own
        assert set(own) == {"data_indices"}
        assert torch.equal(own["data_indices"], context.client_data[client])


def test_final_round_exposes_the_final_model_to_every_observer() -> None:
    context = _context(final=True)

    outcome = MPCTraining().run_round(context)

    assert set(outcome.views) == {SERVER, EAVESDROPPER, PUBLIC, "client:1", "client:2", "client:4", "client:7"}
    for view in outcome.views.values():
        assert torch.equal(view.params_after, outcome.params_after)
        assert view.params_before is None
        assert view.received == {}
        assert "update" not in view.own


def test_mpc_is_deterministic_and_does_not_mutate_its_inputs() -> None:
    context = _context(final=True)
    updates, params_before = context.updates.clone(), context.params_before.clone()

    first = MPCTraining().run_round(context)
    second = MPCTraining().run_round(context)

    assert torch.equal(first.params_after, second.params_after)
    assert first.survivors == second.survivors
    assert set(first.views) == set(second.views)
    for observer, view in first.views.items():
        _assert_same(view.to_dict(), second.views[observer].to_dict())
    assert torch.equal(context.updates, updates)
    assert torch.equal(context.params_before, params_before)


def test_unknown_backends_and_options_are_rejected() -> None:
    with pytest.raises(ConfigError, match="mpc backend must be one of auto, ideal, secureml, got 'spdz'"):
        create_scheme("mpc", backend="spdz")
    with pytest.raises(ConfigError, match="unknown option 'parties'"):
        create_scheme("mpc", backend="ideal", parties=3)
    with pytest.raises(ConfigError, match="unknown option 'colour'"):
        create_scheme("mpc", colour=3)


def test_a_new_backend_plugs_in_by_name() -> None:
    class FrozenModel(MPCBackend):
        name = "test_frozen"

        def aggregate(self, context: RoundContext) -> torch.Tensor:
            return context.params_before.clone()

    MPC_BACKENDS.register("test_frozen")(FrozenModel)
    context = _context(final=True)

    outcome = MPCTraining(backend="test_frozen").run_round(context)

    assert torch.equal(outcome.params_after, context.params_before)
    assert outcome.views[PUBLIC].params_after is outcome.params_after


def test_mpc_training_end_to_end_releases_only_plains_final_model() -> None:
    settings = {"n_clients": 4, "rounds": 3, "model": "logreg", "dropout": 0.3, "seed": 2}

    mpc = simulate(scheme="mpc", **settings)
    plain = simulate(scheme="plain", **settings)

    assert torch.equal(mpc.final_params, plain.final_params)
    for observer in [SERVER, EAVESDROPPER, "client:0"]:
        views = mpc.views_of(observer)
        assert [v.params_after is None for v in views] == [True, True, False]
        assert torch.equal(views[-1].params_after, mpc.final_params)
        assert all(v.received == {} and "update" not in v.own for v in views)
    assert [v.round_index for v in mpc.views_of(PUBLIC)] == [2]
