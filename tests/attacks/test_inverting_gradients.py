from dataclasses import replace

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


def test_batched_restarts_keep_each_restarts_own_batch_statistics() -> None:
    # the paper's ConvNet normalises with batch statistics: under vmap every restart's
    # candidate batch must get its own, exactly as the one-at-a-time loop computes them
    full = load_dataset("sample_patches")
    patches = replace(full.subset(torch.arange(2)), inputs=full.inputs[:2, :, :12, :12])  # small crops keep it quick
    model = create_model(
        "convnet", input_shape=patches.input_shape, num_classes=10, generator=torch.Generator().manual_seed(0),
        variant="geiping", width=2,
    )
    observation = _observation(model, patches.inputs, patches.targets)
    knowledge = Knowledge.from_dataset(patches, model, num_samples=2)

    batched = create_attack("inverting_gradients", iterations=8, restarts=3, batched=True).run(observation, knowledge)
    looped = create_attack("inverting_gradients", iterations=8, restarts=3, batched=False).run(observation, knowledge)

    assert torch.allclose(torch.tensor(batched.restarts), torch.tensor(looped.restarts), atol=1e-5)
    assert torch.allclose(batched.inputs, looped.inputs, atol=1e-4)
    assert len(set(batched.restarts)) == 3  # three different searches, not one repeated


def test_batch_norm_running_statistics_are_ignored_as_in_the_clients_training_step(digits) -> None:
    def network(track_running_stats: bool) -> torch.nn.Sequential:
        torch_generator = torch.Generator().manual_seed(3)
        model = torch.nn.Sequential(
            torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4, track_running_stats=track_running_stats),
            torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 64, 10),
        )
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=torch_generator) * 0.3)
        return model

    client = network(track_running_stats=True).train()  # a user's model: running buffers, batch statistics in training
    observation = _observation(client, digits.inputs[:2], digits.targets[:2])
    stale = network(track_running_stats=True).eval()  # the attacker's copy arrives with unrelated buffers, in eval mode
    stale[1].running_mean.fill_(5.0)
    stale[1].running_var.fill_(9.0)
    plain = network(track_running_stats=False)
    attack = create_attack("inverting_gradients", iterations=20, restarts=2)

    from_stale = attack.run(observation, Knowledge.from_dataset(digits, stale, num_samples=2))
    from_plain = attack.run(observation, Knowledge.from_dataset(digits, plain, num_samples=2))

    assert from_stale.restarts == from_plain.restarts
    assert torch.equal(from_stale.inputs, from_plain.inputs)
    assert float(stale[1].running_mean[0]) == 5.0 and not stale.training  # the caller's model is left as it was


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
