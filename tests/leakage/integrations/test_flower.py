"""The Flower bridge: two real Flower simulations (plain FedAvg, SecAgg+) checked against oracles, and its checks.

Each simulation costs about 11-15 s (Ray start-up), so the default run spends two, in
module fixtures; everything else is unit-sized.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

pytest.importorskip("flwr")

from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.app.message_type import MessageType
from flwr.common import Code, FitIns, FitRes, Parameters, Status, ndarrays_to_parameters
from flwr.server.strategy import Strategy

from leakage.data import Dataset
from leakage.errors import ConfigError
from leakage.integrations.flower import (
    RecordedClient,
    RecordingMod,
    RecordingStrategy,
    ndarrays_to_state_dict,
    run_flower_simulation,
    state_dict_to_ndarrays,
)
from leakage.models import create_model
from leakage.recording import AggregationRule, RecordedTask, read_recording

TASK = RecordedTask("digits", "mlp", model_options={"hidden": [16]})
PLAIN_PARTITION = [torch.arange(0, 10), torch.arange(10, 16), torch.arange(16, 30)]
PLAIN_RULE = AggregationRule("fedavg", lr=0.1, local_epochs=2, batch_size=4)
SECAGG_RULE = AggregationRule("fedsgd", lr=0.1, batch_size=1)
CLIPPING_RANGE, QUANTIZATION_RANGE = 8.0, 2**22


def _model() -> torch.nn.Module:
    return create_model("mlp", input_shape=(1, 8, 8), num_classes=10, generator=torch.Generator().manual_seed(0),
                        hidden=(16,))


def _load(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)


def _flat(state: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([value.flatten().double() for value in state.values()])


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def _clients(run: Path) -> dict[int, dict]:
    return {int(folder.name): _json(folder / "client.json") for folder in (run / "clients").iterdir()}


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory: pytest.TempPathFactory, digits: Dataset) -> Path:
    return run_flower_simulation(
        tmp_path_factory.mktemp("flower") / "plain", dataset=digits, model=_model(), partition=PLAIN_PARTITION,
        rounds=2, rule=PLAIN_RULE, task=TASK, recorded_clients=(0, 1), canaries=(1,),
    )


@pytest.fixture(scope="module")
def secagg_run(secagg_two_clients: Path) -> Path:
    """The shared SecAgg+ run (conftest): 2 clients with one digit each, FedSGD, both recorded, client 1 a canary."""
    return secagg_two_clients


# -- plain FedAvg -----------------------------------------------------------------------------


def test_plain_manifest_names_flower_and_records_only_the_chosen_clients(plain_run: Path) -> None:
    import flwr

    manifest = _json(plain_run / "recording.json")
    clients = _clients(plain_run)

    assert manifest["framework"] == {"name": "flower", "version": flwr.__version__}
    assert (manifest["scheme"], manifest["rounds"]) == ("plain", 2)
    assert sorted(clients) == [0, 1]  # client 2 took part but writes nothing
    assert [clients[0]["canary"], clients[1]["canary"]] == [False, True]
    assert clients[1]["data_indices"] == PLAIN_PARTITION[1].tolist()


@pytest.mark.parametrize("round_index", [0, 1])
def test_plain_released_model_is_the_weighted_mean_of_the_uploads(plain_run: Path, round_index: int) -> None:
    folder = plain_run / "rounds" / f"{round_index:04d}"
    info = _json(folder / "round.json")
    uploads = {node: _flat(_load(folder / "server" / f"upload-{node}.pt")) for node in info["participants"]}

    mean = sum(info["weights"][node] * upload for node, upload in uploads.items()) / sum(info["weights"].values())

    assert len(info["sampled"]) == len(info["participants"]) == 3 and info["aborted"] is None
    assert sorted(info["weights"].values()) == sorted(float(len(p)) for p in PLAIN_PARTITION)
    assert torch.allclose(_flat(_load(folder / "global_after.pt")), mean, atol=1e-6)


@pytest.mark.parametrize("round_index", [0, 1])
def test_plain_client_views_agree_with_the_server(plain_run: Path, round_index: int) -> None:
    server = plain_run / "rounds" / f"{round_index:04d}"
    weights = _json(server / "round.json")["weights"]
    for client_id, client in _clients(plain_run).items():
        folder = plain_run / "clients" / str(client_id) / "rounds" / f"{round_index:04d}"
        fit = _json(folder / "round.json")

        assert torch.equal(_flat(_load(folder / "received.pt")), _flat(_load(server / "global_before.pt")))
        assert torch.equal(_flat(_load(folder / "local.pt")), _flat(_load(server / "server" / f"upload-{client['node']}.pt")))
        assert torch.equal(_flat(_load(folder / "released.pt")), _flat(_load(server / "global_after.pt")))
        assert fit["num_examples"] == weights[client["node"]] == len(client["data_indices"])
        assert fit["sample_order"] == client["data_indices"] * PLAIN_RULE.local_epochs
        assert fit["participants"] is None and fit["sampled_count"] is None  # plain Flower tells a client neither


def test_plain_local_model_follows_the_rule(plain_run: Path, digits: Dataset) -> None:
    folder = plain_run / "clients" / "0" / "rounds" / "0001"
    model = _model()
    model.load_state_dict(_load(folder / "received.pt"))
    optimizer = torch.optim.SGD(model.parameters(), lr=PLAIN_RULE.lr)
    indices = PLAIN_PARTITION[0]

    for _ in range(PLAIN_RULE.local_epochs):
        for batch in indices.split(PLAIN_RULE.batch_size):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(digits.inputs[batch]), digits.targets[batch]).backward()
            optimizer.step()

    assert torch.allclose(_flat(model.state_dict()), _flat(_load(folder / "local.pt")), atol=1e-6)


# -- SecAgg+ ----------------------------------------------------------------------------------


@pytest.mark.parametrize("round_index", [0, 1])
def test_secagg_aggregate_is_the_weighted_mean_within_quantisation(secagg_run: Path, round_index: int) -> None:
    server = secagg_run / "rounds" / f"{round_index:04d}"
    info = _json(server / "round.json")
    nodes = {client["node"]: client_id for client_id, client in _clients(secagg_run).items()}
    local = {node: _flat(_load(secagg_run / "clients" / str(c) / "rounds" / f"{round_index:04d}" / "local.pt"))
             for node, c in nodes.items()}
    weights = info["weights"]
    max_weight = max(weights.values())  # the bridge's default
    # each client's quantised value is off by at most one step; the sum is divided by the total weight ratio
    step = 2 * CLIPPING_RANGE / QUANTIZATION_RANGE
    bound = len(local) * step / (sum(weights.values()) / max_weight) + 1e-6

    mean = sum(weights[node] * value for node, value in local.items()) / sum(weights.values())
    aggregate = _flat(_load(server / "server" / "aggregate.pt"))

    assert sorted(path.name for path in (server / "server").iterdir()) == ["aggregate.pt"]  # no upload in the clear
    assert weights == {node: 1.0 for node in nodes}  # num_examples reach the server in the clear
    assert float((aggregate - mean).abs().max()) <= bound
    assert torch.allclose(aggregate, _flat(_load(server / "global_after.pt")), atol=1e-7)


@pytest.mark.parametrize("round_index", [0, 1])
def test_secagg_clients_learn_the_participants_from_the_protocol(secagg_run: Path, round_index: int) -> None:
    server = secagg_run / "rounds" / f"{round_index:04d}"
    clients = _clients(secagg_run)
    for client_id, client in clients.items():
        folder = secagg_run / "clients" / str(client_id) / "rounds" / f"{round_index:04d}"
        fit = _json(folder / "round.json")

        assert sorted(fit["participants"]) == sorted(c["node"] for c in clients.values())
        assert fit["sampled_count"] == 2
        assert fit["num_examples"] == 1 and fit["sample_order"] == client["data_indices"]
        assert torch.equal(_flat(_load(folder / "received.pt")), _flat(_load(server / "global_before.pt")))
        # Flower sends the new model as float64; the bridge records it in the model's dtype
        released = _load(folder / "released.pt")
        assert all(value.dtype == torch.float32 for value in released.values())
        assert torch.equal(_flat(released), _flat(_load(server / "global_after.pt")))


def test_both_recordings_read_back(plain_run: Path, secagg_run: Path, digits: Dataset) -> None:
    plain = read_recording(plain_run, dataset=digits)
    secure = read_recording(secagg_run, dataset=digits)

    assert (plain.scheme, plain.canaries, plain.recorded) == ("plain", (1,), (0, 1))
    assert (secure.scheme, secure.canaries, secure.recorded) == ("secagg+", (1,), (0, 1))


# -- the conversions --------------------------------------------------------------------------


def test_state_dicts_round_trip_with_0d_tensors_sent_as_1d() -> None:
    state = {"weight": torch.randn(3, 2, generator=torch.Generator().manual_seed(0)), "steps": torch.tensor(4)}

    arrays = state_dict_to_ndarrays(state)
    back = ndarrays_to_state_dict([array.astype(np.float64) for array in arrays], list(state), like=state)

    assert [array.shape for array in arrays] == [(3, 2), (1,)]
    assert back["steps"].shape == () and back["steps"].dtype == torch.int64 and int(back["steps"]) == 4
    assert back["weight"].dtype == torch.float32 and torch.equal(back["weight"], state["weight"])


@pytest.mark.parametrize(("arrays", "keys", "like", "message"), [
    ([np.zeros(2)], ["w", "b"], None, "got 1 arrays for 2 keys: no array for key 'b' (position 1)"),
    ([np.zeros(2), np.zeros(1)], ["w"], None, "got 2 arrays for 1 keys: no key for the array (position 1)"),
    ([np.zeros(3)], ["w"], {"w": torch.zeros(2)}, "array 0 for key 'w' has shape (3,), but like's 'w' has shape (2,)"),
    ([np.zeros(2)], ["v"], {"w": torch.zeros(2)}, "key 'v' (position 0) is not in like's keys"),
])
def test_ndarrays_to_state_dict_names_what_mismatches(arrays: list, keys: list, like: dict | None, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        ndarrays_to_state_dict(arrays, keys, like=like)

    assert message in str(error.value)


# -- the strategy's checks, without a simulation ----------------------------------------------


class _Scripted(Strategy):
    """Sends ``models[node]`` (or the global model) to each node and aggregates to ``result``."""

    def __init__(self, nodes: list[int], result: Parameters | None, models: dict[int, Parameters] | None = None):
        self.nodes, self.result, self.models = nodes, result, models or {}

    def initialize_parameters(self, client_manager):  # noqa: ANN001, ANN201
        return None

    def configure_fit(self, server_round, parameters, client_manager):  # noqa: ANN001, ANN201
        return [(SimpleNamespace(node_id=node), FitIns(self.models.get(node, parameters), {})) for node in self.nodes]

    def aggregate_fit(self, server_round, results, failures):  # noqa: ANN001, ANN201
        return self.result, {}

    def configure_evaluate(self, server_round, parameters, client_manager):  # noqa: ANN001, ANN201
        return []

    def aggregate_evaluate(self, server_round, results, failures):  # noqa: ANN001, ANN201
        return None, {}

    def evaluate(self, server_round, parameters):  # noqa: ANN001, ANN201
        return None


def _parameters(*values: float) -> Parameters:
    return ndarrays_to_parameters([np.array(values, dtype=np.float32)])


def _fitres(parameters: Parameters, num_examples: int = 1) -> FitRes:
    return FitRes(Status(Code.OK, ""), parameters, num_examples, {})


def _strategy(tmp_path: Path, inner: Strategy, scheme: str = "plain") -> RecordingStrategy:
    return RecordingStrategy(inner, tmp_path / "run", keys=["w"], task=TASK, rule=SECAGG_RULE, scheme=scheme)


def test_strategy_records_a_round_secagg_halted_as_aborted(tmp_path: Path) -> None:
    strategy = _strategy(tmp_path, _Scripted([5], _parameters(9.0)), scheme="secagg+")

    strategy.configure_fit(1, _parameters(1.0, 2.0), None)  # type: ignore[arg-type]
    strategy.evaluate(1, _parameters(1.0, 2.0))  # SecAgg+ stopped: aggregate_fit never came
    info = _json(tmp_path / "run" / "rounds" / "0000" / "round.json")

    assert info["sampled"] == ["5"] and info["participants"] == [] and "before aggregate_fit" in info["aborted"]
    assert strategy.aborted.keys() == {0}
    assert torch.equal(_load(tmp_path / "run" / "rounds" / "0000" / "global_after.pt")["w"], torch.tensor([1.0, 2.0]))


def test_strategy_records_a_round_without_a_model_as_aborted(tmp_path: Path) -> None:
    strategy = _strategy(tmp_path, _Scripted([5, 6], None))
    broadcast = _parameters(1.0)

    strategy.configure_fit(1, broadcast, None)  # type: ignore[arg-type]
    strategy.aggregate_fit(1, [(SimpleNamespace(node_id=5), _fitres(_parameters(2.0)))], [RuntimeError("node 6 died")])
    info = _json(tmp_path / "run" / "rounds" / "0000" / "round.json")

    assert info["participants"] == ["5"] and info["weights"] == {"5": 1.0}
    assert "returned no model" in info["aborted"] and "RuntimeError: node 6 died" in info["aborted"]
    assert strategy.failures == {0: ["RuntimeError: node 6 died"]}


def test_strategy_refuses_0d_arrays_under_secagg(tmp_path: Path) -> None:
    strategy = _strategy(tmp_path, _Scripted([5, 6], None), scheme="secagg+")

    with pytest.raises(ConfigError, match=r"mis-aggregates 0-d arrays \('w'\)"):
        strategy.configure_fit(1, ndarrays_to_parameters([np.array(3.0)]), None)  # type: ignore[arg-type]


def test_strategy_refuses_a_model_per_node(tmp_path: Path) -> None:
    strategy = _strategy(tmp_path, _Scripted([5, 6], None, models={6: _parameters(7.0)}))

    with pytest.raises(ConfigError, match="sends node 6 a model other than the global one"):
        strategy.configure_fit(1, _parameters(1.0), None)  # type: ignore[arg-type]


@pytest.mark.parametrize(("scheme", "shared", "message"), [
    ("plain", True, "record this run with scheme='secagg\\+'"),
    ("secagg+", False, "record this run with scheme='plain'"),
])
def test_strategy_refuses_results_that_contradict_the_scheme(tmp_path: Path, scheme: str, shared: bool, message: str) -> None:
    strategy = _strategy(tmp_path, _Scripted([5, 6], _parameters(1.0)), scheme=scheme)
    aggregate = _parameters(3.0)
    results = [(SimpleNamespace(node_id=node), _fitres(aggregate if shared else _parameters(float(node))))
               for node in (5, 6)]
    strategy.configure_fit(1, _parameters(1.0), None)  # type: ignore[arg-type]

    with pytest.raises(ConfigError, match=message):
        strategy.aggregate_fit(1, results, [])  # type: ignore[arg-type]


# -- the client mod's checks, without a simulation --------------------------------------------


def _context(partition_id: object) -> Context:
    return Context(run_id=1, node_id=9, node_config={"partition-id": partition_id}, state=RecordDict(), run_config={})


def _train_message(content: RecordDict) -> Message:
    return Message(content=content, dst_node_id=9, message_type=MessageType.TRAIN, group_id="1")


def test_mod_must_come_after_secaggplus_mod(tmp_path: Path) -> None:
    mod = RecordingMod(tmp_path, keys=["w"], clients={0: RecordedClient([1])})
    setup = _train_message(RecordDict({"secaggplus_configs": ConfigRecord({"stage": "setup"})}))

    with pytest.raises(ConfigError, match="after secaggplus_mod"):
        mod(setup, _context(0), lambda message, context: message)


def test_mod_passes_unrecorded_clients_through_and_needs_a_partition_id(tmp_path: Path) -> None:
    mod = RecordingMod(tmp_path, keys=["w"], clients={0: RecordedClient([1])})
    message = _train_message(RecordDict())
    seen = []

    mod(message, _context(3), lambda m, c: seen.append(m) or m)  # type: ignore[func-returns-value]

    assert seen == [message] and not any(tmp_path.iterdir())
    with pytest.raises(ConfigError, match="'partition-id', got None"):
        mod(message, Context(run_id=1, node_id=9, node_config={}, state=RecordDict(), run_config={}),
            lambda m, c: m)


# -- the simulation's arguments, refused before Flower starts ---------------------------------


@pytest.mark.parametrize(("changes", "message"), [
    ({"secure_aggregation": True, "partition": [torch.tensor([0])]}, "secure aggregation needs two clients or more, got 1"),
    ({"rule": AggregationRule("fedavg", weighting="uniform")}, "weighting='uniform'"),
    ({"recorded_clients": (2,)}, "recorded_clients must be client ids in [0, 2), got 2"),
    ({"partition": [torch.tensor([0]), torch.tensor([], dtype=torch.int64)]}, "partition[1] is empty"),
    ({"partition": [torch.tensor([0]), torch.tensor([5000])]}, "partition[1] must index the dataset's 1797 samples, got 5000"),
    ({"rounds": 0}, "rounds"),
])
def test_simulation_refuses_bad_arguments(tmp_path: Path, digits: Dataset, changes: dict, message: str) -> None:
    arguments = {"dataset": digits, "model": _model(), "partition": [torch.tensor([0]), torch.tensor([1])],
                 "rounds": 1, "rule": SECAGG_RULE, "task": TASK, **changes}

    with pytest.raises(ConfigError) as error:
        run_flower_simulation(tmp_path / "run", **arguments)

    assert message in str(error.value)
    assert not (tmp_path / "run").exists()


def test_importing_without_flower_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in sys.modules if name.startswith("leakage.integrations.flower")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "flwr", None)  # what an environment without Flower gives

    with pytest.raises(ImportError, match=r"pip install 'leakage\[flower\]'"):
        importlib.import_module("leakage.integrations.flower")


# -- slow: more simulations -------------------------------------------------------------------


@pytest.mark.slow
def test_secagg_fedavg_among_three_clients_reads_back(tmp_path: Path, digits: Dataset) -> None:
    partition = [torch.arange(0, 5), torch.arange(5, 12), torch.arange(12, 20)]
    run = run_flower_simulation(
        tmp_path / "run", dataset=digits, model=_model(), partition=partition, rounds=2,
        rule=AggregationRule("fedavg", lr=0.1, batch_size=4), task=TASK, secure_aggregation=True,
        recorded_clients=(0, 1, 2), canaries=(2,),
    )
    recording = read_recording(run, dataset=digits)

    for round_index in range(2):
        info = _json(run / "rounds" / f"{round_index:04d}" / "round.json")
        fit = _json(run / "clients" / "2" / "rounds" / f"{round_index:04d}" / "round.json")
        assert sorted(fit["participants"]) == sorted(info["participants"]) and fit["sampled_count"] == 3
        assert sorted(info["weights"].values()) == [5.0, 7.0, 8.0]
    assert recording.canaries == (2,)
