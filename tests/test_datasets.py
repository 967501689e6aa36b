"""Datasets: deterministic, disjoint, declared preprocessing, every user format, clear errors."""

import numpy as np
import pytest
from PIL import Image

from workbench.datasets import load_dataset
from workbench.datasets.lazy import LazyInputs
from workbench.datasets.shapes import CLASS_NAMES, generate_shapes
from workbench.errors import DataError


def _rows(split):
    return {row.tobytes() for row in np.asarray(split.x).reshape(len(split), -1)}


def test_digits_split_is_fixed_disjoint_and_stratified(digits):
    assert (len(digits.train), len(digits.calibration), len(digits.test)) == (1197, 200, 400)
    assert digits.input_shape == (8, 8, 1) and digits.num_classes == 10
    assert 0.0 <= digits.test.x.min() and digits.test.x.max() <= 1.0
    assert digits.preprocessing.scale == 1 / 16
    again = load_dataset("digits", seed=0)
    assert again.fingerprint == digits.fingerprint
    assert load_dataset("digits", seed=1).fingerprint != digits.fingerprint
    assert not _rows(digits.test) & _rows(digits.calibration)
    counts = np.bincount(digits.test.y, minlength=10)
    assert counts.min() >= 36 and counts.max() <= 44


def test_shapes_are_deterministic_by_seed_and_balanced():
    x, y = generate_shapes(50, seed=3)
    x2, y2 = generate_shapes(50, seed=3)
    assert x.shape == (50, 32, 32, 3) and x.dtype == np.uint8
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    assert not np.array_equal(x, generate_shapes(50, seed=4)[0])
    assert np.bincount(y, minlength=len(CLASS_NAMES)).tolist() == [5] * 10


def test_validation_splits_share_no_sample_with_test_or_train(digits, shapes):
    """Searches decide on `validation` and report on `test`: the two must not overlap."""
    assert len(shapes.validation) == 2000 and shapes.validation.y is not None
    for split in ("test", "train", "calibration"):
        assert not _rows(shapes.validation) & _rows(getattr(shapes, split))
    assert digits.validation is digits.calibration  # held out from training, not from test
    assert not _rows(digits.validation) & _rows(digits.test)
    assert not _rows(digits.validation) & _rows(digits.train)
    assert np.bincount(shapes.validation.y, minlength=10).tolist() == [200] * 10


def test_shapes_dataset(shapes):
    assert shapes.input_shape == (32, 32, 3) and shapes.class_names == CLASS_NAMES
    assert shapes.test.x.dtype == np.float32 and shapes.test.x.max() <= 1.0
    assert not _rows(shapes.test) & _rows(shapes.train)


def test_npz_labelled_and_unlabelled(tmp_path):
    x = np.random.default_rng(0).integers(0, 255, (50, 6, 6, 1), dtype=np.uint8)
    np.savez(tmp_path / "mine.npz", x=x, y=np.arange(50) % 5)
    data = load_dataset(tmp_path / "mine.npz")
    assert data.name == "mine" and data.labelled and data.num_classes == 5
    splits = (data.train, data.calibration, data.validation, data.test)
    assert sum(len(split) for split in splits) == 50
    assert len(data.validation) == 10 and not _rows(data.validation) & _rows(data.test)
    assert np.asarray(data.test.x).max() <= 1.0  # uint8 declared as bytes, scaled
    np.savez(tmp_path / "free.npz", x=x.astype(np.float32))
    free = load_dataset(str(tmp_path / "free.npz"), name="my data")
    assert not free.labelled and free.test.y is None and free.name == "my data"


def test_image_folder(tmp_path):
    rng = np.random.default_rng(0)
    for label in ("cat", "dog"):
        (tmp_path / label).mkdir()
        for index in range(6):
            pixels = rng.integers(0, 255, (12, 10, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / label / f"{index}.png")
    data = load_dataset(tmp_path)
    assert data.class_names == ("cat", "dog") and data.input_shape == (12, 10, 3)
    splits = (data.train, data.calibration, data.validation, data.test)
    assert sorted(np.concatenate([split.y for split in splits])) == [0] * 6 + [1] * 6
    assert load_dataset(tmp_path, image_size=(8, 8)).input_shape == (8, 8, 3)


def test_a_zipped_image_folder_reads_as_the_folder(tmp_path, capsys):
    import shutil
    from pathlib import Path

    from workbench.cli import main
    from workbench.datasets.archive import unpacked

    rng = np.random.default_rng(0)
    folder = tmp_path / "photos"
    for label in ("cat", "dog"):
        (folder / label).mkdir(parents=True)
        for index in range(6):
            pixels = rng.integers(0, 255, (12, 10, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / label / f"{index}.png")
    archive = shutil.make_archive(str(tmp_path / "photos"), "zip", tmp_path, "photos")
    data, direct = load_dataset(archive), load_dataset(folder)
    assert (data.name, data.class_names) == ("photos", ("cat", "dog"))
    for split in ("train", "calibration", "test"):  # the same pixels, labels and splits
        ours, theirs = getattr(data, split), getattr(direct, split)
        assert np.array_equal(np.asarray(ours.x), np.asarray(theirs.x))
        assert np.array_equal(ours.y, theirs.y)
    assert unpacked(Path(archive)) == unpacked(Path(archive))  # once per version of the file
    (tmp_path / "notes.zip").write_text("not a zip")
    assert main(["inspect", "digits_cnn", "--data", str(tmp_path / "notes.zip")]) == 2
    error = capsys.readouterr().err
    assert "notes.zip" in error and "not a readable .zip archive" in error
    assert len(error.splitlines()) == 1


def test_arrays_tuples_and_tf_data():
    import tensorflow as tf

    x = np.random.default_rng(1).normal(size=(40, 4)).astype(np.float32)
    y = np.arange(40) % 4
    assert not load_dataset(x).labelled
    assert load_dataset((x, y)).num_classes == 4
    batched = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    assert load_dataset(batched).num_classes == 4
    assert len(load_dataset(tf.data.Dataset.from_tensor_slices(x)).test) == 8


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("imagenet", "no such dataset or file; use one of digits, shapes"),
        ((np.full((10, 3), np.nan), None), "NaN or infinite"),
        ((np.zeros((10, 3)), np.arange(9)), "10 inputs but 9 labels"),
        ((np.zeros((10, 3)), -np.ones(10)), "must be class numbers 0..N-1"),
        ((np.zeros((10, 3)), np.full(10, 0.5)), "must be class numbers 0..N-1"),
        (np.zeros(2), "at least 3 samples"),
    ],
)
def test_bad_data_gives_one_clear_line(spec, message):
    with pytest.raises(DataError, match=message) as caught:
        load_dataset(spec)
    assert "\n" not in str(caught.value)


def test_bad_files(tmp_path):
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="broken.npz: not a readable .npz"):
        load_dataset(tmp_path / "broken.npz")
    np.savez(tmp_path / "nox.npz", inputs=np.zeros((5, 2)))
    with pytest.raises(DataError, match="no array named 'x'"):
        load_dataset(tmp_path / "nox.npz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no class sub-folders"):
        load_dataset(tmp_path / "empty")


def test_data_must_fit_the_model(digits, shapes_model):
    with pytest.raises(DataError, match=r"shape \(8, 8, 1\) but the model expects \(32, 32, 3\)"):
        digits.check_fits(shapes_model.input_shape, shapes_model.num_classes)
    labels = (np.zeros((30, 32, 32, 3), np.float32), np.arange(30) % 12)
    with pytest.raises(DataError, match="label 11 is outside the model's 10 classes"):
        load_dataset(labels).check_fits(shapes_model.input_shape, shapes_model.num_classes)


# -- data read in batches, never whole ------------------------------------------------------


def _in_memory(data, x, y):
    """The same samples loaded as arrays: equal splits, equal preprocessed values."""
    memory = load_dataset((x, y), seed=0)
    for lazy, array in zip(
        (data.train, data.calibration, data.validation, data.test),
        (memory.train, memory.calibration, memory.validation, memory.test),
        strict=True,
    ):
        assert isinstance(lazy.x, LazyInputs)
        np.testing.assert_array_equal(np.asarray(lazy.x), array.x)
        assert (lazy.y is None and array.y is None) or np.array_equal(lazy.y, array.y)
    return memory


def test_npz_stored_uncompressed_is_memory_mapped_and_tf_data_spilled(tmp_path):
    import tensorflow as tf

    x, y = generate_shapes(30, seed=1)
    np.savez(tmp_path / "plain.npz", x=x, y=y)
    _in_memory(load_dataset(tmp_path / "plain.npz"), x, y)
    np.savez_compressed(tmp_path / "packed.npz", x=x, y=y)  # compressed: read whole
    assert isinstance(load_dataset(tmp_path / "packed.npz").test.x, np.ndarray)
    _in_memory(load_dataset(tf.data.Dataset.from_tensor_slices((x, y)).batch(7)), x, y)
    floats = x.astype(np.float32)
    floats[3, 0, 0, 0] = np.nan
    np.savez(tmp_path / "nan.npz", x=floats)
    with pytest.raises(DataError, match="1 NaN or infinite values"):
        load_dataset(tmp_path / "nan.npz")


def test_lazy_inputs_read_only_the_samples_a_slice_asks_for():
    from workbench.datasets.user import BYTES, lazy_dataset

    raw = np.random.default_rng(0).integers(0, 256, (600, 4, 4, 3)).astype(np.uint8)
    reads = []

    def read(indices):
        reads.append(len(indices))
        return raw[indices]

    def load(seed):
        return lazy_dataset(raw, read, None, name="counted", seed=seed, source="raw")

    data = load(0)
    assert reads == [] and len(data.test) == 120 and data.input_shape == (4, 4, 3)
    expected = BYTES.apply(raw[data.test.x.indices[5:9]])
    np.testing.assert_array_equal(data.test.x[5:9], expected)
    assert reads == [4]
    assert data.fingerprint == load(0).fingerprint != load(1).fingerprint


def test_streamed_image_folder_gives_the_same_metrics_as_in_memory(tmp_path, shapes_model):
    """The same images from a folder (read in batches) and from arrays: the same numbers."""
    from workbench import QuantConfig
    from workbench.session import Session

    x, y = generate_shapes(60, seed=2)
    order = np.argsort(y, kind="stable")  # the folder lists class by class, files by name
    x, y = x[order], y[order]
    for index, (image, label) in enumerate(zip(x, y, strict=True)):
        folder = tmp_path / "images" / f"{label:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{index:03d}.png")
    streamed = load_dataset(tmp_path / "images")
    memory = _in_memory(streamed, x, y)
    for config in (QuantConfig(mode="float32"), QuantConfig(mode="int8", calibration_samples=8)):
        from_files = Session(shapes_model, streamed).evaluate(config)
        from_arrays = Session(shapes_model, memory).evaluate(config)
        for field in ("accuracy", "agreement", "snr_db", "cosine", "size_bytes"):
            assert getattr(from_files, field) == getattr(from_arrays, field), field
