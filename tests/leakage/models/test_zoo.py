import pytest
import torch

from leakage.errors import ConfigError, UnknownNameError
from leakage.models import MODELS, ParameterLayout, create_model

SHAPES = {"image_gray_8": (1, 8, 8), "image_rgb_32": (3, 32, 32), "tabular": (30,)}
CASES = [
    ("logreg", "tabular"),
    ("logreg", "image_gray_8"),
    ("mlp", "tabular"),
    ("mlp", "image_rgb_32"),
    ("lenet", "image_gray_8"),
    ("lenet", "image_rgb_32"),
    ("convnet", "image_gray_8"),
    ("convnet", "image_rgb_32"),
    ("resnet18", "image_rgb_32"),
]


@pytest.mark.parametrize(("name", "shape_name"), CASES)
def test_every_model_maps_inputs_to_one_logit_per_class(name: str, shape_name: str) -> None:
    shape = SHAPES[shape_name]
    model = create_model(name, input_shape=shape, num_classes=7, generator=torch.Generator().manual_seed(0))

    logits = model(torch.randn(3, *shape))

    assert logits.shape == (3, 7)
    assert list(model.buffers()) == []  # the parameter vector is the whole model state


def test_registry_holds_the_five_models() -> None:
    assert MODELS.names() == ["convnet", "lenet", "logreg", "mlp", "resnet18"]


@pytest.mark.parametrize("name", ["logreg", "mlp", "lenet", "convnet"])
def test_initial_weights_come_from_the_generator_only(name: str) -> None:
    def build(seed: int) -> torch.Tensor:
        model = create_model(name, input_shape=(1, 8, 8), num_classes=10, generator=torch.Generator().manual_seed(seed))
        return torch.cat([p.flatten() for p in model.parameters()])

    torch.manual_seed(99)  # the global stream must not matter
    first = build(0)
    torch.manual_seed(7)
    assert torch.equal(first, build(0))
    assert not torch.equal(first, build(1))


def test_lenet_is_the_sigmoid_network_of_the_dlg_paper() -> None:
    model = create_model("lenet", input_shape=(3, 32, 32), num_classes=100, generator=torch.Generator().manual_seed(0))

    convolutions = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.stride for c in convolutions] == [(2, 2), (2, 2), (1, 1)]
    assert sum(isinstance(m, torch.nn.Sigmoid) for m in model.modules()) == 3
    assert ParameterLayout.of(model).shapes[-2] == (100, 768)  # 12 x 8 x 8 features, as in the paper
    weights = torch.cat([p.flatten() for p in model.parameters()])
    assert weights.min() >= -0.5 and weights.max() <= 0.5


def test_resnet18_keeps_32x32_resolution_in_its_stem() -> None:
    model = create_model("resnet18", input_shape=(3, 32, 32), num_classes=10, generator=torch.Generator().manual_seed(0))

    assert model.conv1.stride == (1, 1) and model.conv1.kernel_size == (3, 3)
    assert isinstance(model.maxpool, torch.nn.Identity)


def test_unknown_model_lists_the_valid_names() -> None:
    with pytest.raises(UnknownNameError, match="choose one of: convnet, lenet, logreg, mlp, resnet18"):
        create_model("vgg", input_shape=(1, 8, 8), num_classes=10, generator=torch.Generator())


@pytest.mark.parametrize(
    ("name", "options", "shape", "message"),
    [
        ("mlp", {"activation": "gelu"}, (1, 8, 8), "activation must be one of"),
        ("mlp", {"hidden": ()}, (1, 8, 8), "hidden must be"),
        ("lenet", {}, (30,), "needs image inputs"),
        ("convnet", {"width": 0}, (1, 8, 8), "width must be >= 1"),
    ],
)
def test_bad_model_options_name_the_field(name, options, shape, message) -> None:
    with pytest.raises(ConfigError, match=message):
        create_model(name, input_shape=shape, num_classes=10, generator=torch.Generator(), **options)


def test_fewer_than_two_classes_is_rejected() -> None:
    with pytest.raises(ConfigError, match="num_classes must be >= 2, got 1"):
        create_model("mlp", input_shape=(4,), num_classes=1, generator=torch.Generator())


def _convnet_parameter_count(channels: int, width: int, num_classes: int, positions: int) -> int:
    """Parameters of the ConvNet of Geiping et al.: eight 3x3 convolutions, batch norm, one linear layer."""
    widths = [channels, width, 2 * width, 2 * width, 4 * width, 4 * width, 4 * width, 4 * width, 4 * width]
    convolutions = sum(c_in * c_out * 9 + c_out for c_in, c_out in zip(widths, widths[1:], strict=False))
    batch_norms = sum(2 * c_out for c_out in widths[1:])
    return convolutions + batch_norms + (4 * width * positions + 1) * num_classes


@pytest.mark.parametrize(("shape", "width", "positions"), [((3, 32, 32), 32, 9), ((3, 32, 32), 8, 9), ((1, 28, 20), 4, 6)])
def test_convnet_geiping_is_the_inverting_gradients_papers_model(shape, width, positions) -> None:
    model = create_model(
        "convnet", input_shape=shape, num_classes=10, generator=torch.Generator().manual_seed(0), variant="geiping", width=width
    )

    logits = model(torch.randn(2, *shape))

    assert logits.shape == (2, 10)
    convolutions = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convolutions] == [width, 2 * width, 2 * width, 4 * width, 4 * width, 4 * width, 4 * width, 4 * width]
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == 8
    assert [m.kernel_size for m in model.modules() if isinstance(m, torch.nn.MaxPool2d)] == [3, 3]
    assert ParameterLayout.of(model).shapes[-2] == (10, 4 * width * positions)  # positions reach the classifier
    assert ParameterLayout.of(model).num_parameters == _convnet_parameter_count(shape[0], width, 10, positions)
    assert list(model.buffers()) == []


def test_convnet_geiping_has_36_w_features_and_733642_parameters_on_cifar_sized_inputs() -> None:
    model = create_model("convnet", input_shape=(3, 32, 32), num_classes=10, generator=torch.Generator().manual_seed(0), variant="geiping")

    assert ParameterLayout.of(model).shapes[-2] == (10, 36 * 32)
    assert ParameterLayout.of(model).num_parameters == 733_642


def test_convnet_batch_norm_uses_the_batchs_statistics_in_either_mode() -> None:
    model = create_model("convnet", input_shape=(3, 16, 16), num_classes=5, generator=torch.Generator().manual_seed(0), variant="geiping", width=4)
    batch = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))

    training = model.train()(batch)
    evaluation = model.eval()(batch)
    alone = model(batch[:2])

    assert torch.allclose(training, evaluation)  # a client's training step and any later forward agree
    assert not torch.allclose(alone, training[:2], atol=1e-4)  # the batch it sits in matters


def test_convnet_default_is_unchanged_and_batch_norm_is_an_option_of_either_variant() -> None:
    def build(**options: object) -> torch.nn.Module:
        return create_model("convnet", input_shape=(3, 32, 32), num_classes=10, generator=torch.Generator().manual_seed(0), **options)

    default = build()
    assert [type(m).__name__ for m in default] == [
        "Conv2d", "ReLU", "Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "AdaptiveAvgPool2d", "Flatten", "Linear"
    ]
    assert ParameterLayout.of(default).num_parameters == 56_970
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in build(batch_norm=True).modules()) == 3
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in build(variant="geiping", batch_norm=False).modules())


@pytest.mark.parametrize(
    ("options", "shape", "message"),
    [
        ({"variant": "vgg"}, (3, 32, 32), "variant must be one of"),
        ({"variant": "geiping"}, (1, 8, 8), "needs inputs of at least 9x9"),
        ({"batch_norm": "yes"}, (3, 32, 32), "batch_norm must be true or false"),
    ],
)
def test_bad_convnet_options_name_the_field(options, shape, message) -> None:
    with pytest.raises(ConfigError, match=message):
        create_model("convnet", input_shape=shape, num_classes=10, generator=torch.Generator(), **options)
