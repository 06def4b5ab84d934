"""The ``mpc`` backends: what each one supports, which one ``"auto"`` runs, and how reports name them."""

from __future__ import annotations

import re

import pytest
import torch

from defenses.mpc import (
    MPC_BACKENDS,
    IdealFunctionality,
    MPCBackend,
    MPCTraining,
    SecureMLBackend,
    auto_candidates,
    describe_mpc_backend,
)
from leakage import simulate
from leakage.aggregation import Deployment, RoundContext
from leakage.errors import ConfigError, UnknownNameError

FEATURES = 30  # breast_cancer's


def _deployment(model: str = "logreg", num_classes: int = 2, loss: str = "cross_entropy") -> Deployment:
    return Deployment(
        n_clients=2, clients_per_round=2, client_sampling="fixed", rounds=1,
        num_parameters=num_classes * (FEATURES + 1), client_weights=(1.0, 1.0),
        model=model, num_classes=num_classes, loss=loss,
    )


def _choices(message: str) -> list[str]:
    """The names listed after ``one of`` / ``choose one of:`` in an error message."""
    match = re.search(r"one of:? ([\w, ]+?)(?:, got|$)", message)
    assert match is not None, message
    return match.group(1).split(", ")


@pytest.mark.parametrize(
    ("deployment", "expected"),
    [
        (_deployment(), True),
        (_deployment(model="mlp"), False),
        (_deployment(num_classes=10), False),
        (_deployment(loss="mse"), False),
    ],
)
def test_secureml_supports_two_class_logreg_with_cross_entropy_only(deployment: Deployment, expected: bool) -> None:
    assert SecureMLBackend.supports(deployment) is expected
    assert IdealFunctionality.supports(deployment)


def test_auto_prefers_the_real_protocol_and_falls_back_on_the_ideal_functionality() -> None:
    candidates = auto_candidates()

    assert candidates.index("secureml") < candidates.index("ideal")
    assert candidates[-1] == "ideal"
    assert all(MPC_BACKENDS.get(name).auto_preference is not None for name in candidates)


@pytest.mark.parametrize(
    ("deployment", "expected"),
    [
        (_deployment(), "secureml"),
        (_deployment(model="mlp"), "ideal"),
        (_deployment(num_classes=10), "ideal"),
        (_deployment(loss="mse"), "ideal"),
    ],
)
def test_auto_runs_the_first_candidate_that_supports_the_deployment(deployment: Deployment, expected: str) -> None:
    scheme = MPCTraining()

    scheme.prepare(deployment)

    assert scheme.backend_name == expected
    assert scheme.public_parameters() == {"mpc_backend": expected}
    chosen = next(name for name in auto_candidates() if MPC_BACKENDS.get(name).supports(deployment))
    assert chosen == expected


def test_a_new_backend_takes_its_place_in_the_preference_order() -> None:
    class MlpProtocol(MPCBackend):
        name = "test_mlp_protocol"
        auto_preference = 500  # after secureml (0), before the ideal functionality (1000)

        @classmethod
        def supports(cls, deployment: Deployment) -> bool:
            return deployment.model in ("mlp", "logreg")

        def aggregate(self, context: RoundContext) -> torch.Tensor:
            return context.params_before.clone()

    MPC_BACKENDS.register("test_mlp_protocol")(MlpProtocol)
    try:
        chosen = {}
        for model in ("logreg", "mlp", "cnn"):
            scheme = MPCTraining()
            scheme.prepare(_deployment(model=model))
            chosen[model] = scheme.backend_name
        candidates = auto_candidates()
    finally:
        MPC_BACKENDS.unregister("test_mlp_protocol")

    assert candidates.index("secureml") < candidates.index("test_mlp_protocol") < candidates.index("ideal")
    assert chosen == {"logreg": "secureml", "mlp": "test_mlp_protocol", "cnn": "ideal"}


def test_auto_hands_each_candidate_the_options_it_takes() -> None:
    secureml, ideal = MPCTraining(parties=3), MPCTraining(parties=3)

    secureml.prepare(_deployment())
    ideal.prepare(_deployment(model="mlp"))

    assert isinstance(secureml.backend, SecureMLBackend) and secureml.backend.parties == 3
    assert isinstance(ideal.backend, IdealFunctionality)


def test_auto_checks_every_candidates_options_before_any_round() -> None:
    with pytest.raises(ConfigError, match="mpc parties must be one of 2, 3"):
        MPCTraining(parties=4)
    with pytest.raises(ConfigError, match="unknown option 'colour' for mpc backend 'auto'.*accept: fractional_bits"):
        MPCTraining(colour=3)


def test_an_unknown_backend_name_errors_with_the_sorted_choices() -> None:
    with pytest.raises(ConfigError, match="mpc backend must be one of auto, ") as scheme_error:
        MPCTraining(backend="spdz")
    with pytest.raises(UnknownNameError, match="unknown mpc backend 'spdz'") as describe_error:
        describe_mpc_backend("spdz")

    registered = MPC_BACKENDS.names()
    assert {"ideal", "secureml"} <= set(registered) and registered == sorted(registered)
    assert _choices(str(scheme_error.value)) == ["auto", *registered]
    assert _choices(str(describe_error.value)) == registered


def test_reports_describe_each_backend_in_one_line() -> None:
    assert describe_mpc_backend("ideal") == "ideal functionality, not a protocol run"
    assert describe_mpc_backend("secureml") == (
        "real protocol run: trained on secret shares (SecureML), only the final model opened"
    )
    for name in MPC_BACKENDS.names():
        description = describe_mpc_backend(name)
        assert description and "\n" not in description


def test_a_backend_refuses_a_deployment_it_does_not_support() -> None:
    class LogregOnly(MPCBackend):  # not registered: other tests see the registry unchanged
        name = "test_logreg_only"

        @classmethod
        def supports(cls, deployment: Deployment) -> bool:
            return deployment.model == "logreg"

        def aggregate(self, context: RoundContext) -> torch.Tensor:
            return context.params_before.clone()

    LogregOnly().prepare(_deployment())
    with pytest.raises(ConfigError, match="mpc backend 'test_logreg_only' does not support model 'mlp'"):
        LogregOnly().prepare(_deployment(model="mlp"))


@pytest.mark.parametrize(("dataset", "expected"), [("breast_cancer", "secureml"), ("digits", "ideal")])
def test_the_run_records_the_chosen_backend_and_its_description(dataset: str, expected: str) -> None:
    transcript = simulate(scheme="mpc", dataset=dataset, model="logreg", n_clients=2, rounds=1, seed=0)

    public = transcript.rounds[0].public
    assert public["mpc_backend"] == expected
    assert public["mpc_backend_description"] == describe_mpc_backend(expected)
