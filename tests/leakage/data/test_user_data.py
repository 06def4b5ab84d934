"""Tests for the user's own data: tensors, torch datasets, image folders and CSV tables."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image
from sklearn.datasets import load_sample_images

from leakage.data import DATASETS, Dataset, load_dataset
from leakage.errors import ConfigError
from leakage.simulation import simulate

# Three classes created out of sorted order, each filled with its own colour.
COLOURS = {"zebra": (250, 10, 10), "ant": (10, 250, 10), "moth": (10, 10, 250)}
SORTED_CLASSES = ("ant", "moth", "zebra")
PATCH = 8


def _rgb(image: Image.Image) -> torch.Tensor:
    """The oracle: an 8-bit RGB image as float ``[3, H, W]`` in ``[0, 1]``."""
    return torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)


def _sample_patches(count: int) -> list[Image.Image]:
    """Cut ``count`` 8x8 patches from scikit-learn's china.jpg along its diagonal."""
    photo = load_sample_images().images[0]
    return [Image.fromarray(photo[40 * i : 40 * i + PATCH, 50 * i : 50 * i + PATCH]) for i in range(count)]


def make_folder(root: Path, *, per_class: int = 3) -> Path:
    """Write a small image folder: constant-colour 12x10 PNG/JPEG images, three classes."""
    for name, colour in COLOURS.items():
        (root / name).mkdir(parents=True)
        for index in range(per_class):
            suffix = (".png", ".PNG", ".JpEg")[index % 3]
            fmt = "PNG" if suffix.lower() == ".png" else "JPEG"
            Image.new("RGB", (12, 10), colour).save(root / name / f"{index:02d}{suffix}", format=fmt)
        (root / name / "notes.txt").write_text("not an image")
    (root / ".cache").mkdir()  # hidden folders are not classes
    return root


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text.strip() + "\n", encoding="utf-8")
    return path


CSV_TEXT = """
age,income,smoker,diagnosis
30,1000.5,true,flu
40,2000,False,cold
50,1500,1,flu
20,1200,0,asthma
"""


# --- from_tensors -----------------------------------------------------------------------------


def test_from_tensors_normalises_images_per_channel() -> None:
    generator = torch.Generator().manual_seed(0)
    raw = torch.rand(20, 3, 5, 4, generator=generator) * torch.tensor([1.0, 5.0, 0.1]).reshape(1, 3, 1, 1) + 2.0

    data = Dataset.from_tensors(raw, torch.arange(20) % 4)

    assert data.kind == "image" and data.input_shape == (3, 5, 4) and data.num_classes == 4
    assert data.mean.shape == (3, 1, 1) and data.std.shape == (3, 1, 1)
    torch.testing.assert_close(data.inputs.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(data.inputs.std(dim=(0, 2, 3), unbiased=False), torch.ones(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(data.inputs * data.std + data.mean, raw, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(data.denormalize(data.inputs), raw, atol=1e-5, rtol=1e-5)
    assert data.value_range == (float(raw.min()), float(raw.max()))


def test_from_tensors_normalises_tabular_per_feature_and_keeps_constant_features() -> None:
    raw = torch.tensor([[1.0, 7.0, -100.0], [3.0, 7.0, 100.0], [5.0, 7.0, 0.0]], dtype=torch.float64)

    data = Dataset.from_tensors(raw, torch.tensor([0, 1, 1]), name="mine", class_names=["no", "yes"])

    assert data.name == "mine" and data.kind == "tabular" and data.class_names == ("no", "yes")
    assert data.mean.shape == (3,) and data.inputs.dtype == torch.float32
    torch.testing.assert_close(data.inputs.mean(dim=0), torch.zeros(3), atol=1e-6, rtol=0)
    torch.testing.assert_close(data.inputs.std(dim=0, unbiased=False), torch.tensor([1.0, 0.0, 1.0]))
    assert data.std[1] == 1.0 and data.mean[1] == 7.0  # the constant feature: std 1, inputs exactly 0
    torch.testing.assert_close(data.denormalize(data.inputs), raw.float())
    assert data.value_range == (-100.0, 100.0)


def test_from_tensors_copies_and_can_skip_normalisation() -> None:
    raw = torch.tensor([[0.0, 2.0], [1.0, 4.0]])
    flags = torch.tensor([True, False])

    data = Dataset.from_tensors(raw, torch.tensor([1, 0]), normalise=False, properties={"odd": flags}, num_classes=3)
    raw[0, 0] = 99.0
    flags[0] = False

    assert data.inputs.tolist() == [[0.0, 2.0], [1.0, 4.0]]
    assert data.mean.tolist() == [0.0, 0.0] and data.std.tolist() == [1.0, 1.0]
    assert data.properties["odd"].tolist() == [True, False] and data.num_classes == 3


def test_from_tensors_accepts_a_value_range_that_holds_the_inputs() -> None:
    data = Dataset.from_tensors(torch.full((2, 1, 2, 2), 0.5), torch.tensor([0, 1]), value_range=(0.0, 1.0))

    assert data.value_range == (0.0, 1.0)
    assert data.inputs.abs().max() == 0.0


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda: Dataset.from_tensors(np.zeros((2, 3)), torch.tensor([0, 1])), "inputs"),  # type: ignore[arg-type]
        (lambda: Dataset.from_tensors(torch.zeros(2, 3, 4), torch.tensor([0, 1])), "inputs"),
        (lambda: Dataset.from_tensors(torch.tensor([[0.0], [float("nan")]]), torch.tensor([0, 1])), "inputs"),
        (lambda: Dataset.from_tensors(torch.rand(2, 3), torch.tensor([0.0, 1.0])), "targets"),
        (lambda: Dataset.from_tensors(torch.rand(2, 3), torch.tensor([0, 1, 1])), "targets"),
        (lambda: Dataset.from_tensors(torch.rand(2, 3), torch.tensor([0, -1])), "targets[1]"),
        (lambda: Dataset.from_tensors(torch.rand(2, 3), torch.tensor([0, 3]), num_classes=3), "targets[1]"),
        (lambda: Dataset.from_tensors(torch.rand(2, 3), torch.tensor([0, 0])), "num_classes"),
        (lambda: Dataset.from_tensors(torch.rand(2, 3), torch.tensor([0, 1]), num_classes=1), "num_classes"),
        (lambda: Dataset.from_tensors(torch.rand(2, 3), torch.tensor([0, 1]), kind="image"), "kind"),
        (lambda: Dataset.from_tensors(torch.rand(2, 3), torch.tensor([0, 1]), class_names=["a"]), "class_names"),
        (lambda: Dataset.from_tensors(torch.ones(2, 3), torch.tensor([0, 1])), "value_range"),
        (lambda: Dataset.from_tensors(torch.rand(2, 3), torch.tensor([0, 1]), value_range=(1.0, 0.0)), "value_range"),
        (lambda: Dataset.from_tensors(torch.rand(2, 3) + 2, torch.tensor([0, 1]), value_range=(0, 1)), "value_range"),
        (
            lambda: Dataset.from_tensors(
                torch.rand(2, 3), torch.tensor([0, 1]), properties={"p": torch.tensor([1, 0])}
            ),
            "properties['p']",
        ),
    ],
)
def test_from_tensors_rejects_bad_arguments_in_one_line(call: Callable[[], Dataset], fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        call()

    assert fragment in str(caught.value) and "\n" not in str(caught.value)


@settings(max_examples=40, deadline=None)
@given(
    arrays(
        np.float32,
        st.tuples(st.integers(1, 6), st.sampled_from([(3,), (2, 3, 2)])).map(lambda shape: (shape[0], *shape[1])),
        elements=st.floats(-1e3, 1e3, width=32),
    )
)
def test_normalise_then_denormalise_returns_the_raw_values(raw: np.ndarray) -> None:
    inputs = torch.from_numpy(raw)

    data = Dataset.from_tensors(
        inputs, torch.zeros(len(raw), dtype=torch.int64), num_classes=2, value_range=(-1e3, 1e3)
    )

    assert torch.isfinite(data.inputs).all()
    torch.testing.assert_close(data.denormalize(data.inputs), inputs, atol=1e-3, rtol=1e-5)
    torch.testing.assert_close(data.normalize(inputs), data.inputs, atol=1e-3, rtol=1e-4)


# --- from_torch -------------------------------------------------------------------------------


def test_from_torch_on_a_tensor_dataset_equals_from_tensors() -> None:
    generator = torch.Generator().manual_seed(1)
    inputs = torch.rand(9, 1, 4, 4, generator=generator)
    targets = torch.tensor([2, 0, 1, 1, 0, 2, 2, 1, 0])

    from_torch = Dataset.from_torch(torch.utils.data.TensorDataset(inputs, targets))
    from_tensors = Dataset.from_tensors(inputs, targets, name="torch")

    for field in ("inputs", "targets", "mean", "std"):
        assert torch.equal(getattr(from_torch, field), getattr(from_tensors, field)), field
    for field in ("name", "num_classes", "value_range", "kind", "class_names"):
        assert getattr(from_torch, field) == getattr(from_tensors, field), field


def test_from_torch_reads_pil_images_scaled_to_unit_range_and_honours_limit() -> None:
    patches = _sample_patches(4)
    items = [(patch, label) for patch, label in zip(patches, [0, 1, 0, 1])]

    data = Dataset.from_torch(items, limit=3)  # type: ignore[arg-type]  # a list is map-style too

    assert len(data) == 3 and data.input_shape == (3, PATCH, PATCH)
    torch.testing.assert_close(data.denormalize(data.inputs), torch.stack([_rgb(p) for p in patches[:3]]))


def test_from_torch_takes_class_names_from_a_classes_attribute() -> None:
    class Labelled(torch.utils.data.TensorDataset):
        classes = ["cat", "dog", "eel"]

    data = Dataset.from_torch(Labelled(torch.rand(2, 3), torch.tensor([0, 1])))

    assert data.class_names == ("cat", "dog", "eel") and data.num_classes == 3


@pytest.mark.parametrize(
    ("items", "fragment"),
    [
        ([], "torch_dataset"),
        ([(torch.rand(3), 0), torch.rand(3)], "torch_dataset[1]"),
        ([(torch.rand(3), 0), (torch.rand(4), 1)], "torch_dataset[1]"),
        ([(torch.rand(3), 0), ("text", 1)], "torch_dataset[1]"),
        ([(torch.rand(3), 0), (torch.rand(3), 1.5)], "torch_dataset[1]"),
        ([(torch.rand(3), 0), (torch.rand(3), -2)], "torch_dataset[1]"),
        ([(torch.rand(4, 4), 0), (torch.rand(4, 4), 1)], "torch_dataset[0]"),
        ([(Image.new("I;16", (2, 2)), 0), (Image.new("I;16", (2, 2)), 1)], "torch_dataset[0]"),
    ],
)
def test_from_torch_rejects_bad_items_in_one_line(items: list[object], fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Dataset.from_torch(items)  # type: ignore[arg-type]

    assert fragment in str(caught.value) and "\n" not in str(caught.value)


# --- folder -----------------------------------------------------------------------------------


def test_folder_classes_follow_sorted_subfolder_names(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "images")

    data = load_dataset("folder", path=str(root), size=[4, 6])

    assert data.name == "folder" and data.kind == "image"
    assert data.class_names == SORTED_CLASSES and data.num_classes == 3
    assert data.targets.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert data.input_shape == (3, 4, 6) and data.value_range == (0.0, 1.0)
    raw = data.denormalize(data.inputs)
    for label, name in enumerate(SORTED_CLASSES):
        # JPEG is lossy: its constant colour comes back within a few levels.
        expected = torch.tensor(COLOURS[name], dtype=torch.float32).reshape(3, 1, 1) / 255.0
        assert (raw[data.targets == label] - expected).abs().max() < 6 / 255


def test_folder_reads_pixels_exactly_and_normalises_per_channel(tmp_path: Path) -> None:
    patches = _sample_patches(6)
    for index, patch in enumerate(patches):
        folder = tmp_path / ("b" if index % 2 else "a")
        folder.mkdir(exist_ok=True)
        patch.save(folder / f"{index}.png")

    data = load_dataset("folder", path=tmp_path, size=[PATCH, PATCH])

    expected = torch.stack([_rgb(patches[index]) for index in (0, 2, 4, 1, 3, 5)])
    torch.testing.assert_close(data.inputs * data.std + data.mean, expected)
    torch.testing.assert_close(data.inputs.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(data.inputs.std(dim=(0, 2, 3), unbiased=False), torch.ones(3), atol=1e-5, rtol=0)
    assert data.mean.shape == (3, 1, 1)


def test_folder_greyscale_and_limit_per_class(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "images")

    data = load_dataset("folder", path=root, size=[5, 5], channels=1, limit_per_class=2)

    assert data.input_shape == (1, 5, 5) and data.targets.tolist() == [0, 0, 1, 1, 2, 2]
    assert data.mean.shape == (1, 1, 1)


def _folder_with(tmp_path: Path, build: Callable[[Path], None]) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    build(root)
    return root


def _two_classes(root: Path) -> None:
    for name in ("a", "b"):
        (root / name).mkdir()
        Image.new("RGB", (4, 4), (1, 2, 3)).save(root / name / "x.png")


def _corrupt(root: Path) -> None:
    _two_classes(root)
    (root / "b" / "broken.png").write_bytes(b"\x89PNG not really")


def _one_class(root: Path) -> None:
    (root / "only").mkdir()
    Image.new("RGB", (4, 4)).save(root / "only" / "x.png")


def _no_images(root: Path) -> None:
    for name in ("a", "b"):
        (root / name).mkdir()
        (root / name / "readme.txt").write_text("hi")


def _one_empty_class(root: Path) -> None:
    _two_classes(root)
    (root / "c").mkdir()


def _sixteen_bit(root: Path) -> None:
    _two_classes(root)
    Image.new("I;16", (4, 4)).save(root / "a" / "deep.png")


@pytest.mark.parametrize(
    ("build", "options", "fragments"),
    [
        (_two_classes, {"path": None}, ["dataset_options.path", "required"]),
        (_two_classes, {"path": "missing-folder"}, ["dataset_options.path", "does not exist", "missing-folder"]),
        (_two_classes, {"path": "a/x.png"}, ["dataset_options.path", "got a file"]),
        (lambda root: None, {}, ["dataset_options.path", "no class subfolders"]),
        (_one_class, {}, ["dataset_options.path", "at least 2", "'only'"]),
        (_no_images, {}, ["dataset_options.path", "no .png"]),
        (_one_empty_class, {}, ["dataset_options.path", "'c'", "no .png"]),
        (_corrupt, {}, ["dataset_options.path", "b/broken.png"]),
        (_sixteen_bit, {}, ["dataset_options.path", "a/deep.png", "I;16"]),
        (_two_classes, {"size": None}, ["dataset_options.size", "required"]),
        (_two_classes, {"size": [8]}, ["dataset_options.size", "[8]"]),
        (_two_classes, {"size": [8, 0]}, ["dataset_options.size", "[8, 0]"]),
        (_two_classes, {"size": [8.0, 8]}, ["dataset_options.size", "[8.0, 8]"]),
        (_two_classes, {"size": "8x8"}, ["dataset_options.size", "'8x8'"]),
        (_two_classes, {"channels": 2}, ["dataset_options.channels", "got 2"]),
        (_two_classes, {"limit_per_class": 0}, ["dataset_options.limit_per_class", "got 0"]),
    ],
)
def test_folder_rejects_bad_input_in_one_line(
    tmp_path: Path, build: Callable[[Path], None], options: dict[str, object], fragments: list[str]
) -> None:
    root = _folder_with(tmp_path, build)
    arguments: dict[str, object] = {"path": root, "size": [4, 4], **options}
    if isinstance(arguments["path"], str):
        arguments["path"] = root / arguments["path"]

    with pytest.raises(ConfigError) as caught:
        load_dataset("folder", **arguments)

    message = str(caught.value)
    assert all(fragment in message for fragment in fragments), message
    assert "\n" not in message


# --- csv --------------------------------------------------------------------------------------


def test_csv_maps_string_labels_sorted_and_reads_the_property(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "patients.csv", CSV_TEXT)

    data = load_dataset("csv", path=path, label="diagnosis", property="smoker")

    assert data.name == "csv" and data.kind == "tabular" and data.input_shape == (2,)
    assert data.class_names == ("asthma", "cold", "flu") and data.targets.tolist() == [2, 1, 2, 0]
    assert data.properties["smoker"].tolist() == [True, False, True, False]
    raw = torch.tensor([[30, 1000.5], [40, 2000], [50, 1500], [20, 1200]])
    torch.testing.assert_close(data.denormalize(data.inputs), raw)
    torch.testing.assert_close(data.inputs.mean(dim=0), torch.zeros(2), atol=1e-6, rtol=0)
    torch.testing.assert_close(data.inputs.std(dim=0, unbiased=False), torch.ones(2))
    assert data.value_range == (20.0, 2000.0)


def test_csv_integer_labels_and_chosen_features(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", "x,y,label\n1,5,1\n2,6,0\n\n3,9,1\n")

    data = load_dataset("csv", path=path, label="label", features=["y", "x"], num_classes=4)

    assert data.num_classes == 4 and data.class_names == ("0", "1", "2", "3")
    assert data.targets.tolist() == [1, 0, 1] and data.properties == {}
    torch.testing.assert_close(data.denormalize(data.inputs), torch.tensor([[5.0, 1.0], [6.0, 2.0], [9.0, 3.0]]))


GOOD = "a,b,label,flag\n1,2,0,true\n3,4,1,false\n"


@pytest.mark.parametrize(
    ("text", "options", "fragments"),
    [
        (GOOD, {"path": None}, ["dataset_options.path", "required"]),
        (GOOD, {"path": "nope.csv"}, ["dataset_options.path", "does not exist", "nope.csv"]),
        (GOOD, {"label": None}, ["dataset_options.label", "required"]),
        (GOOD, {"label": "target"}, ["dataset_options.label", "'target'", "columns: a, b, label, flag"]),
        (GOOD, {"features": ["a", "z"]}, ["dataset_options.features", "'z'", "columns: a, b, label, flag"]),
        (GOOD, {"features": ["a", "label"]}, ["dataset_options.features", "'label'"]),
        (GOOD, {"property": "smoker"}, ["dataset_options.property", "'smoker'", "columns: a, b, label, flag"]),
        ("a,b,label\n1,2,0\n3,,1\n", {}, ["dataset_options.path", "row 2 (line 3)", "column 'b'", "missing"]),
        ("a,b,label\n1,2,\n3,4,1\n", {}, ["dataset_options.path", "row 1 (line 2)", "column 'label'", "missing"]),
        ("a,b,label\n1,2,0\n3,abc,1\n", {}, ["dataset_options.path", "row 2 (line 3)", "column 'b'", "'abc'"]),
        ("a,b,label\n1,2,0\n3,nan,1\n", {}, ["dataset_options.path", "row 2", "column 'b'", "'nan'"]),
        ("a,b,label\n1,2,0\n3,4\n", {}, ["dataset_options.path", "row 2 (line 3)", "2 values"]),
        ("a,b,label\n", {}, ["dataset_options.path", "no data rows"]),
        ("a,a,label\n1,2,0\n3,4,1\n", {}, ["dataset_options.path", "'a'"]),
        (GOOD, {"property": "a", "features": ["b"]}, ["dataset_options.property", "'a'", "'3'", "row 2 (line 3)"]),
        ("a,label,flag\n1,0,yes\n2,1,no\n", {"property": "flag"}, ["dataset_options.property", "'yes'"]),
        ("a,label\n1,0\n2,-1\n", {}, ["dataset_options.label", "'-1'", "row 2 (line 3)"]),
        ("a,label\n1,0\n2,5\n", {"num_classes": 3}, ["dataset_options.label", "num_classes=3", "'5'", "row 2"]),
        ("a,label\n1,0\n2,0\n", {}, ["dataset_options.label", "only class 0"]),
        ("a,label\n1,x\n2,x\n", {}, ["dataset_options.label", "'x'"]),
        ("a,label\n1,x\n2,y\n", {"num_classes": 3}, ["dataset_options.num_classes", "x, y"]),
        ("a,label\n1,0\n2,1\n", {"num_classes": 1}, ["dataset_options.num_classes", "got 1"]),
        ("a,label\n1,0\n1,1\n", {}, ["dataset_options.features", "1.0"]),
    ],
)
def test_csv_rejects_bad_input_in_one_line(
    tmp_path: Path, text: str, options: dict[str, object], fragments: list[str]
) -> None:
    path = write_csv(tmp_path / "table.csv", text)
    arguments: dict[str, object] = {"path": path, "label": "label", **options}
    if isinstance(arguments["path"], str):
        arguments["path"] = tmp_path / arguments["path"]

    with pytest.raises(ConfigError) as caught:
        load_dataset("csv", **arguments)

    message = str(caught.value)
    assert all(fragment in message for fragment in fragments), message
    assert "\n" not in message


# --- registry and simulation ------------------------------------------------------------------


def test_user_loaders_are_registered_and_simulate_runs_on_them(tmp_path: Path) -> None:
    folder = load_dataset("folder", path=make_folder(tmp_path / "images", per_class=2), size=[8, 8])
    table = load_dataset(
        "csv", path=write_csv(tmp_path / "patients.csv", CSV_TEXT), label="diagnosis", property="smoker"
    )

    assert {"folder", "csv"} <= set(DATASETS.names())
    assert folder.input_shape == (3, 8, 8) and table.input_shape == (2,)
    for data in (folder, table):
        transcript = simulate(dataset=data, model="mlp", n_clients=2, rounds=1)
        assert len(transcript.rounds) == 1
