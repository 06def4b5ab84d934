import pytest
import torch

from attacks import Knowledge, Observation, create_attack
from leakage import create_model, load_dataset
from leakage.errors import ConfigError
from leakage.metrics import psnr, score_reconstruction


def _observation(model, inputs, targets) -> Observation:
    loss = torch.nn.functional.cross_entropy(model(inputs), targets)
    return Observation.from_gradients(model, torch.autograd.grad(loss, list(model.parameters())))


def test_batched_restarts_follow_exactly_the_one_at_a_time_loop(digits) -> None:
    model = create_model("mlp", input_shape=digits.input_shape, num_classes=10, generator=torch.Generator().manual_seed(1), hidden=(16,))
    observation = _observation(model, digits.inputs[:1], digits.targets[:1])
    knowledge = Knowledge.from_dataset(digits, model)

    batched = create_attack("inverting_gradients", iterations=30, restarts=3, batched=True).run(observation, knowledge)
    looped = create_attack("inverting_gradients", iterations=30, restarts=3, batched=False).run(observation, knowledge)

    assert torch.allclose(torch.tensor(batched.restarts), torch.tensor(looped.restarts), atol=1e-5)
    assert torch.allclose(batched.inputs, looped.inputs, atol=1e-4)


def test_inverting_gradients_recovers_a_digit_and_keeps_it_in_the_box(digits) -> None:
    model = create_model("mlp", input_shape=digits.input_shape, num_classes=10, generator=torch.Generator().manual_seed(0), hidden=(32,))
    observation = _observation(model, digits.inputs[2:3], digits.targets[2:3])

    result = create_attack("inverting_gradients", iterations=300, restarts=2).run(observation, Knowledge.from_dataset(digits, model))

    raw = result.raw_inputs
    assert float(raw.min()) >= -1e-5 and float(raw.max()) <= 1 + 1e-5
    assert float(psnr(raw, digits.denormalize(digits.inputs[2:3]), data_range=1.0)[0]) > 25
    assert result.labels.tolist() == digits.targets[2:3].tolist()


@pytest.mark.slow
def test_a_batch_of_two_images_through_a_small_convnet_is_scored_after_matching() -> None:
    patches = load_dataset("sample_patches")
    indices = torch.tensor([100, 900])
    model = create_model("convnet", input_shape=patches.input_shape, num_classes=10, generator=torch.Generator().manual_seed(0), width=8)
    observation = _observation(model, patches.inputs[indices], patches.targets[indices])

    result = create_attack("inverting_gradients", iterations=150, restarts=1).run(
        observation, Knowledge.from_dataset(patches, model, num_samples=2)
    )
    score = score_reconstruction(
        result.raw_inputs, patches.denormalize(patches.inputs[indices]), reconstructed_labels=result.labels,
        true_labels=patches.targets[indices], data_range=1.0, kind="image",
    )

    assert result.inputs.shape == (2, 3, 32, 32)
    assert score.label_accuracy == 1.0 and score.psnr > 12


@pytest.mark.parametrize(
    "options, message",
    [
        ({"iterations": 0}, "iterations must be an integer >= 1"),
        ({"tv_weight": -1.0}, "tv_weight must be a number >= 0"),
        ({"batched": "yes"}, "batched must be true or false"),
    ],
)
def test_bad_options_name_the_option(options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        create_attack("inverting_gradients", **options)
