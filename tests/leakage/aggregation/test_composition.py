import pytest
import torch

from leakage import simulate
from leakage.aggregation import (
    MECHANISMS,
    SCHEMES,
    ComposedScheme,
    Deployment,
    create_scheme,
    scheme_names,
    split_scheme_name,
)
from leakage.errors import ConfigError, UnknownNameError


def test_every_protocol_and_mechanism_of_the_issue_is_registered() -> None:
    assert {"plain", "secagg", "secagg+", "he", "dp", "mpc"} <= set(SCHEMES.names())
    assert {"compression", "ldp", "ddp"} <= set(MECHANISMS.names())
    assert not set(SCHEMES.names()) & set(MECHANISMS.names())
    assert scheme_names() == sorted(set(SCHEMES.names()) | set(MECHANISMS.names()))


def test_a_list_a_comma_string_and_a_tuple_name_the_same_composition() -> None:
    assert split_scheme_name("compression, secagg+") == ("compression", "secagg+")
    assert create_scheme(["compression", "secagg"]).name == "compression,secagg"
    assert create_scheme("compression,secagg").name == "compression,secagg"


def test_a_lone_mechanism_runs_in_front_of_plain() -> None:
    scheme = create_scheme("compression", keep=0.5)

    assert isinstance(scheme, ComposedScheme) and scheme.name == "compression,plain"


def test_a_protocol_before_the_last_place_is_rejected() -> None:
    with pytest.raises(ConfigError, match="scheme 'secagg' aggregates by itself, so it can only be the last stage"):
        create_scheme(["secagg", "compression"])


def test_stage_options_are_tables_keyed_by_stage() -> None:
    with pytest.raises(ConfigError, match="scheme option 'keep' is not a stage of compression,secagg"):
        create_scheme(["compression", "secagg"], keep=0.1)
    with pytest.raises(ConfigError, match="unknown option 'ring' for scheme 'secagg'"):
        create_scheme(["compression", "secagg"], secagg={"ring": 3})


def test_unknown_and_repeated_stages_are_rejected() -> None:
    with pytest.raises(UnknownNameError, match="unknown scheme 'zip'; choose one of: compression"):
        create_scheme(["zip", "plain"])
    with pytest.raises(ConfigError, match="lists a stage twice"):
        create_scheme(["compression", "compression", "plain"])
    with pytest.raises(ConfigError, match="no empty entries"):
        create_scheme("compression,,plain")


def test_compression_then_secure_aggregation_aggregates_the_compressed_updates() -> None:
    options = {"compression": {"keep": 0.25}, "secagg": {"clip_range": 1.0}}
    composed = simulate(scheme=["compression", "secagg"], scheme_options=options, n_clients=4, rounds=2, model="logreg", seed=2)
    compressed = simulate(scheme="compression", scheme_options={"keep": 0.25}, n_clients=4, rounds=2, model="logreg", seed=2)

    step = composed.rounds[0].public["quantization_step"]
    assert (composed.final_params - compressed.final_params).abs().max() <= 2 * step + 1e-6
    view = composed.rounds[0].views["client:1"]
    true_update = composed.truth.rounds[0].update_of(1)
    assert torch.equal(view.own["update"], true_update)
    assert (view.own["sent"] != 0).float().mean() <= 0.26
    assert not any(isinstance(v, torch.Tensor) and v.shape == true_update.shape for k, v in composed.rounds[0].views["server"].received.items() if k != "aggregate")


def test_distributed_dp_inside_secure_aggregation_rounds_onto_its_grid() -> None:
    options = {"ddp": {"clip_norm": 1.0, "noise_multiplier": 1.0}, "secagg": {"clip_range": 4.0, "ring_bits": 48}}

    transcript = simulate(scheme=["ddp", "secagg"], scheme_options=options, n_clients=6, rounds=2, model="logreg", seed=1)

    record = transcript.rounds[1]
    step = record.public["quantization_step"]
    sent = record.views["client:0"].own["sent"].double()
    assert torch.allclose(sent / step, torch.round(sent / step), atol=1e-3)
    assert record.public["epsilon"] > transcript.rounds[0].public["epsilon"] > 0


def test_central_dp_cannot_sit_in_front_of_secure_aggregation() -> None:
    with pytest.raises(ConfigError, match="scheme 'dp' aggregates by itself"):
        create_scheme(["dp", "secagg"])


def test_deployment_bounds_the_heaviest_round() -> None:
    deployment = Deployment(
        n_clients=4, clients_per_round=2, client_sampling="fixed", rounds=1, num_parameters=3, client_weights=(1.0, 5.0, 3.0, 2.0)
    )

    assert deployment.max_round_weight == 8.0 and deployment.sampling_rate == 0.5
    poisson = Deployment(**{**deployment.__dict__, "client_sampling": "poisson"})
    assert poisson.max_round_weight == 11.0 and poisson.max_round_clients == 4
