import pytest
import torch

from attacks import Knowledge, Observation, create_attack
from defenses.compression import topk_sparsify
from leakage import create_model, simulate
from leakage.errors import ConfigError
from leakage.metrics import psnr


def _setup(digits, index: int = 0, seed: int = 0) -> tuple[torch.nn.Module, Observation, torch.Tensor, torch.Tensor]:
    model = create_model(
        "mlp", input_shape=digits.input_shape, num_classes=10, generator=torch.Generator().manual_seed(seed),
        hidden=(32,), activation="sigmoid",
    )
    inputs, targets = digits.inputs[index : index + 1], digits.targets[index : index + 1]
    loss = torch.nn.functional.cross_entropy(model(inputs), targets)
    return model, Observation.from_gradients(model, torch.autograd.grad(loss, list(model.parameters()))), inputs, targets


def _psnr(result, digits, inputs) -> float:
    return float(psnr(result.raw_inputs.clamp(0, 1), digits.denormalize(inputs), data_range=1.0)[0])


def test_dlg_recovers_one_sample_through_a_small_mlp(digits) -> None:
    model, observation, inputs, targets = _setup(digits)

    result = create_attack("dlg", max_evals=1000, restarts=2).run(observation, Knowledge.from_dataset(digits, model))

    assert _psnr(result, digits, inputs) > 25
    assert result.labels.tolist() == targets.tolist() and result.converged
    assert result.objective_evals > 0 and result.trace and result.restarts


def test_dlg_returns_the_labels_it_optimised_not_its_initial_template(digits) -> None:
    for seed in range(20):  # find a start whose random label template is wrong
        template = torch.randn((1, 10), generator=_after_inputs(seed)).argmax(-1)
        if int(template) != int(digits.targets[3]):
            break
    model, observation, _, targets = _setup(digits, index=3)

    result = create_attack("dlg", max_evals=1000, restarts=1).run(
        observation, Knowledge.from_dataset(digits, model), generator=torch.Generator().manual_seed(seed)
    )

    assert int(template) != int(targets) and result.labels.tolist() == targets.tolist()


def _after_inputs(seed: int) -> torch.Generator:
    """The generator state DLG draws its label template from (after the inputs)."""
    generator = torch.Generator().manual_seed(seed)
    torch.rand((1, 1, 8, 8), generator=generator, dtype=torch.float64)
    return generator


def test_idlg_reads_the_label_and_recovers_the_input(digits) -> None:
    model, observation, inputs, targets = _setup(digits, index=5)

    result = create_attack("idlg", max_evals=1000, restarts=1).run(observation, Knowledge.from_dataset(digits, model))

    assert result.labels.tolist() == targets.tolist() and _psnr(result, digits, inputs) > 25


def test_the_same_generator_gives_the_same_reconstruction(digits) -> None:
    model, observation, _, _ = _setup(digits)
    knowledge = Knowledge.from_dataset(digits, model)
    before = observation.value.clone()

    first = create_attack("dlg", max_evals=100, restarts=1).run(observation, knowledge, generator=torch.Generator().manual_seed(4))
    second = create_attack("dlg", max_evals=100, restarts=1).run(observation, knowledge, generator=torch.Generator().manual_seed(4))

    assert torch.equal(first.inputs, second.inputs) and torch.equal(observation.value, before)


def test_pruning_the_gradient_degrades_dlg(digits) -> None:
    model, observation, inputs, _ = _setup(digits, index=7)
    knowledge = Knowledge.from_dataset(digits, model)
    pruned = Observation(observation.params, topk_sparsify(observation.value[None], 0.05)[0], "gradient")

    clean = create_attack("dlg", max_evals=800, restarts=1).run(observation, knowledge)
    degraded = create_attack("dlg", max_evals=800, restarts=1).run(pruned, knowledge)

    assert _psnr(clean, digits, inputs) > 25 > _psnr(degraded, digits, inputs)


def test_dlg_unrolls_a_fedavg_update_taken_from_the_servers_view(digits) -> None:
    transcript = simulate(
        dataset=digits, model="mlp", model_options={"hidden": (32,), "activation": "sigmoid"}, n_clients=1797,
        clients_per_round=1, rounds=1, algorithm="fedavg", local_epochs=3, batch_size=1, lr=0.1, seed=1,
    )
    record = transcript.rounds[0]
    (client,) = record.sampled
    (index,) = transcript.truth.partition[client].tolist()
    knowledge = Knowledge.from_dataset(
        digits, transcript.build_model(record.params_before), algorithm="fedavg", lr=0.1, local_epochs=3, batch_size=1
    )

    result = create_attack("idlg", max_evals=1200, restarts=2).run(record.views["server"], knowledge, client=client)

    assert result.labels.tolist() == [int(digits.targets[index])]
    assert _psnr(result, digits, digits.inputs[index : index + 1]) > 25


@pytest.mark.parametrize(
    "options, message",
    [
        ({"max_evals": 0}, "max_evals must be an integer >= 1"),
        ({"init": "zeros"}, "init must be one of uniform, randn"),
        ({"objective": "cosine"}, "objective must be one of layer_l2, l2"),
        ({"dtype": "float16"}, "dtype must be one of float32, float64, mixed"),
        ({"warm_start": "zeros"}, "warm_start must be one of auto, rgap, none"),
    ],
)
def test_bad_dlg_options_name_the_option(options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        create_attack("dlg", **options)


def test_a_layer_observed_as_all_zeros_does_not_blow_up_the_objective() -> None:
    from attacks.dlg import _objective_weights

    observed = torch.tensor([0.0, 0.0, 3.0, 4.0])

    weights = _objective_weights(observed, [2, 2], per_layer=True)

    assert torch.isfinite(weights).all()
    assert torch.allclose(weights, torch.tensor([1 / 50, 1 / 50, 1 / 50, 1 / 50]))


def test_results_serialise_to_json_and_progress_bars_can_be_shown(digits) -> None:
    import json

    model, observation, _, _ = _setup(digits)

    result = create_attack("idlg", max_evals=50, restarts=1).run(
        observation, Knowledge.from_dataset(digits, model), show_progress=True
    )

    assert json.loads(json.dumps(result.to_dict()))["attack"] == "idlg"


def _small_sigmoid_convnet(digits, index: int) -> tuple[torch.nn.Module, Observation, torch.Tensor]:
    """Two sigmoid convolutions and a linear layer on one digit: a LeNet in miniature."""
    torch.manual_seed(index)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 6, 3, padding=1, stride=2), torch.nn.Sigmoid(),
        torch.nn.Conv2d(6, 6, 3, padding=1), torch.nn.Sigmoid(),
        torch.nn.Flatten(), torch.nn.Linear(96, 10),
    )
    for parameter in model.parameters():
        torch.nn.init.uniform_(parameter, -0.5, 0.5)
    inputs, targets = digits.inputs[index : index + 1], digits.targets[index : index + 1]
    loss = torch.nn.functional.cross_entropy(model(inputs), targets)
    return model, Observation.from_gradients(model, torch.autograd.grad(loss, list(model.parameters()))), inputs


@pytest.mark.parametrize("model_kind", ["mlp", "convnet"])
def test_float32_and_float64_idlg_agree_where_both_succeed(digits, model_kind: str) -> None:
    if model_kind == "mlp":
        model, observation, inputs, _ = _setup(digits, index=5)
    else:
        model, observation, inputs = _small_sigmoid_convnet(digits, index=5)
    knowledge = Knowledge.from_dataset(digits, model)
    runs = {
        dtype: create_attack("idlg", dtype=dtype, warm_start="none", max_evals=1500, restarts=1).run(
            observation, knowledge, generator=torch.Generator().manual_seed(2)
        )
        for dtype in ("float32", "float64", "mixed")
    }

    for result in runs.values():
        assert _psnr(result, digits, inputs) > 40 and result.inputs.dtype == observation.params.dtype
    assert (runs["float32"].raw_inputs - runs["float64"].raw_inputs).abs().max() < 1e-2
    assert (runs["mixed"].raw_inputs - runs["float64"].raw_inputs).abs().max() < 1e-2
    assert runs["float64"].converged and runs["mixed"].converged


def test_idlg_starts_from_the_recursive_inversion_where_the_model_allows_it(digits) -> None:
    model, observation, inputs, _ = _setup(digits, index=5)
    knowledge = Knowledge.from_dataset(digits, model)

    result = create_attack("idlg").run(observation, knowledge)

    assert result.details["warm_start"] == 1.0 and result.converged and result.objective_evals < 50
    assert _psnr(result, digits, inputs) > 60


def test_the_warm_start_is_skipped_or_refused_where_the_model_does_not_allow_it(digits) -> None:
    from leakage.errors import ThreatModelError

    model = create_model(
        "mlp", input_shape=digits.input_shape, num_classes=10, generator=torch.Generator().manual_seed(0), hidden=(16,)
    )  # ReLU cannot be inverted
    loss = torch.nn.functional.cross_entropy(model(digits.inputs[:1]), digits.targets[:1])
    observation = Observation.from_gradients(model, torch.autograd.grad(loss, list(model.parameters())))
    knowledge = Knowledge.from_dataset(digits, model)

    result = create_attack("idlg", max_evals=20, restarts=1).run(observation, knowledge)

    assert result.details["warm_start"] == 0.0
    with pytest.raises(ThreatModelError, match="warm_start='rgap' needs one sample"):
        create_attack("idlg", warm_start="rgap").run(observation, knowledge)


@pytest.mark.parametrize("warm_start", ["auto", "none"])
def test_the_attack_runs_on_the_observations_device(digits, warm_start: str) -> None:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, observation, _, targets = _setup(digits, index=5)
    on_device = Observation(observation.params.to(device), observation.value.to(device), "gradient")
    mkldnn_before = torch.backends.mkldnn.enabled

    result = create_attack("idlg", dtype="mixed", max_evals=30, restarts=1, warm_start=warm_start).run(
        on_device, Knowledge.from_dataset(digits, model)
    )

    assert result.inputs.device.type == result.raw_inputs.device.type == result.labels.device.type == device.type
    assert result.labels.tolist() == targets.tolist()
    assert torch.backends.mkldnn.enabled == mkldnn_before  # the search's oneDNN switch is undone
