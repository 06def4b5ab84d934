import copy
import tomllib

import pytest

from leakage.errors import ConfigError
from leakage.quantify import DeploymentSpec, default_spec_path, load_spec, parse_spec

VALID = {
    "name": "tiny",
    "task": {"dataset": "digits", "model": "mlp", "algorithm": "fedsgd", "batch_size": 1, "lr": 0.1, "rounds": 2},
    "deployments": [{"name": "two", "n_clients": 2}, {"name": "ten", "n_clients": 10, "clients_per_round": 5}],
    "schemes": ["plain", "secagg"],
    "scheme_options": {"secagg": {"clip_range": 2.0}},
    "observers": ["server", "participant"],
    "target": 0,
    "attacks": [{"name": "round_difference"}, {"name": "idlg", "options": {"max_evals": 10}}],
    "audit": {"trials": 16, "deployments": ["two"]},
    "seeds": [0, 1],
}


def _with(path: str, value: object) -> dict:
    data = copy.deepcopy(VALID)
    keys = path.split(".")
    target = data
    for key in keys[:-1]:
        target = target[int(key)] if isinstance(target, list) else target[key]
    last = keys[-1]
    if isinstance(target, list):
        target[int(last)] = value
    elif value is _DELETE:
        del target[last]
    else:
        target[last] = value
    return data


_DELETE = object()


def test_a_valid_spec_parses_and_always_includes_the_mpc_baseline() -> None:
    spec = parse_spec(VALID)

    assert spec.schemes == ("plain", "secagg", "mpc")
    assert [d.n_clients for d in spec.deployments] == [2, 10] and spec.deployments[1].clients_per_round == 5
    assert spec.attacks[1].options == {"max_evals": 10} and spec.seeds == (0, 1)
    assert spec.audit is not None and spec.audit.deployments == ("two",)
    assert parse_spec(spec.to_dict()) == spec  # the report's copy of the spec reads back


def test_the_built_in_default_spec_compares_six_schemes_on_two_and_a_hundred_clients() -> None:
    spec = load_spec()

    assert set(spec.schemes) == {"plain", "secagg", "secagg+", "he", "dp", "mpc"}
    assert [(d.name, d.n_clients) for d in spec.deployments] == [("cross-organisation", 2), ("cross-device", 100)]
    assert tomllib.loads(default_spec_path().read_text())["name"] == spec.name


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("colour", "red", "spec has unknown key 'colour'; choose from: name, task"),
        ("name", "", "spec.name must be a non-empty string"),
        ("task.dataset", "imagenet", "spec.task.dataset must be one of adult, binary_features"),
        ("task.model", "vgg", "spec.task.model must be one of"),
        ("task.partition", "shards", "spec.task.partition must be one of"),
        ("task.device", "gpu", "spec.task.device must be .cpu., .cuda. or .cuda:N., got .gpu."),
        ("task.algorithm", "sgd", "spec.task.algorithm must be one of fedsgd, fedavg, got 'sgd'"),
        ("task.loss", "hinge", "spec.task.loss must be one of cross_entropy, taylor_logistic"),
        ("task.local_epochs", 3, "spec.task.local_epochs must be 1 for fedsgd"),
        ("task.batch_size", 0, "spec.task.batch_size must be an integer >= 1, got 0"),
        ("task.lr", -1, "spec.task.lr must be a finite number > 0, got -1"),
        ("task.rounds", "2", "spec.task.rounds must be an integer >= 1, got '2'"),
        ("task.model_options", [1], "spec.task.model_options must be a table"),
        ("task.depth", 3, "spec.task has unknown key 'depth'"),
        ("deployments", [], "spec.deployments must be a non-empty list"),
        ("deployments.0", {"name": "x"}, r"spec.deployments\[0\] needs a name and n_clients"),
        ("deployments.1", {"name": "ten", "n_clients": 1}, r"spec.deployments\[1\].n_clients must be an integer >= 2"),
        ("deployments.1", {"name": "ten", "n_clients": 4, "clients_per_round": 5},
         r"spec.deployments\[1\].clients_per_round must be <= n_clients \(4\)"),
        ("deployments.1", {"name": "ten", "n_clients": 4, "dropout": 1.0}, r"spec.deployments\[1\].dropout must be"),
        ("deployments.1", {"name": "two", "n_clients": 4}, "spec.deployments names must be unique"),
        ("deployments.1", {"name": "ten", "n_clients": 4, "size": 3}, r"spec.deployments\[1\] has unknown key 'size'"),
        ("schemes", ["plain", "magic"], r"spec.schemes\[1\] has unknown stage 'magic'; choose from:"),
        ("schemes", ["plain", "plain"], "spec.schemes must not repeat a scheme"),
        ("scheme_options", {"he": {}}, "spec.scheme_options.he names no scheme of spec.schemes"),
        ("observers", ["server", "alice"], r"spec.observers\[1\] must be one of server, participant, coalition"),
        ("target", 2, r"spec.target must be a client id below every deployment's n_clients \(2\), got 2"),
        ("attacks", [{"name": "magic"}], r"spec.attacks\[0\].name must be one of"),
        ("attacks", [{"name": "idlg", "budget": 3}], r"spec.attacks\[0\] has unknown key 'budget'"),
        ("attacks", [{"name": "idlg", "options": {"steps": 3}}],
         r"spec.attacks\[0\].options: unknown option 'steps' for attack 'idlg'"),
        ("attacks", [{"name": "idlg", "options": {"restarts": 0}}], r"spec.attacks\[0\].options: restarts must be"),
        ("audit", {"trials": 2}, "spec.audit.trials must be an integer >= 4, got 2"),
        ("audit", {"confidence": 1.0}, r"spec.audit.confidence must be a number in \[0.5, 1\)"),
        ("audit", {"deployments": ["huge"]}, r"spec.audit.deployments\[0\] must be one of two, ten"),
        ("seeds", [], "spec.seeds must be a non-empty list of integers >= 0"),
        ("seeds", [0, -1], r"spec.seeds\[1\] must be an integer >= 0, got -1"),
        ("seeds", [1, 1], "spec.seeds must not repeat a seed"),
    ],
)
def test_every_wrong_field_is_named_in_one_line(path: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        parse_spec(_with(path, value))

    assert "\n" not in str(caught.value)


def test_an_audit_can_be_switched_off_and_defaults_fill_the_rest() -> None:
    spec = parse_spec({"audit": False})

    assert spec.audit is None and spec == DeploymentSpec(audit=None)


def test_a_missing_or_broken_spec_file_is_one_line(tmp_path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("name = [unclosed\n")

    with pytest.raises(ConfigError, match="does not exist"):
        load_spec(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_spec(broken)


def test_scheme_options_are_checked_when_the_spec_loads() -> None:
    with pytest.raises(ConfigError, match=r"spec.scheme_options.mpc: mpc parties must be one of 2, 3, got 4"):
        parse_spec({"schemes": ["plain"], "scheme_options": {"mpc": {"parties": 4}},
                    "deployments": [{"name": "a", "n_clients": 3}]})
