"""Model loading: demo names, every file form, Keras objects, concrete functions, clear errors."""

import json

import numpy as np
import pytest

from workbench.errors import ModelFileError
from workbench.models import DEFAULT_MODEL, DEMO_MODELS, load_model
from workbench.models.loading import DEMO_DIR
from workbench.models.source import SourceKind


def _accuracy(model, data):
    scores = model.keras_model.predict(data.test.x, verbose=0)
    return float((scores.argmax(axis=1) == data.test.y).mean())


def test_demo_models_reach_their_accuracy(digits_model, digits, shapes_model, shapes):
    assert DEFAULT_MODEL in DEMO_MODELS
    assert _accuracy(digits_model, digits) >= 0.95
    assert _accuracy(shapes_model, shapes) >= 0.90
    assert shapes_model.keras_model.count_params() >= 100_000
    kinds = {type(layer).__name__ for layer in shapes_model.keras_model.layers}
    assert {"DepthwiseConv2D", "BatchNormalization", "ReLU", "GlobalAveragePooling2D"} <= kinds


@pytest.mark.parametrize("name", sorted(DEMO_MODELS))
def test_demo_metadata_matches_the_committed_model(name, request):
    dataset = DEMO_MODELS[name]
    model = request.getfixturevalue(f"{dataset}_model")
    metadata = json.loads((DEMO_DIR / f"{name}.json").read_text())
    assert metadata["dataset"] == dataset and metadata["seed"] == 0
    assert metadata["test_accuracy"] == pytest.approx(
        _accuracy(model, request.getfixturevalue(dataset)), abs=1e-9
    )


def test_shapes_mobilenet_has_the_spread_depthwise_ranges_of_real_mobilenets(shapes_model):
    """BatchNorm folded into the depthwise kernels leaves some channels with far wider ranges
    than the median one: the property that makes int8 per-tensor lose to per-channel."""
    from workbench.folding import quantizable_kernels

    spreads = []
    for kernel in quantizable_kernels(shapes_model):
        if kernel.kind == "DepthwiseConv2D":
            other = tuple(a for a in range(kernel.kernel.ndim) if a != kernel.channel_axis)
            absmax = np.abs(kernel.kernel).max(axis=other)
            spreads.append(absmax.max() / np.median(absmax))
    assert len(spreads) == 5 and max(spreads) > 20


def test_file_forms_round_trip(tmp_path, digits_model, digits):
    import tensorflow as tf

    keras_model = digits_model.keras_model
    expected = keras_model.predict(digits.test.x[:5], verbose=0)
    keras_model.save(tmp_path / "m.h5")
    h5 = load_model(tmp_path / "m.h5")
    assert h5.kind is SourceKind.KERAS and h5.fingerprint == digits_model.fingerprint
    np.testing.assert_allclose(h5.keras_model.predict(digits.test.x[:5], verbose=0), expected)

    keras_model.export(tmp_path / "saved", verbose=False)
    saved = load_model(tmp_path / "saved")
    assert saved.kind is SourceKind.SAVED_MODEL and saved.input_shape == (None, 8, 8, 1)
    assert saved.num_classes == 10

    function = tf.function(lambda x: keras_model(x)).get_concrete_function(
        tf.TensorSpec((None, 8, 8, 1), tf.float32)
    )
    concrete = load_model(function)
    assert concrete.kind is SourceKind.CONCRETE_FUNCTION and concrete.num_classes == 10

    tflite = tf.lite.TFLiteConverter.from_keras_model(keras_model).convert()
    (tmp_path / "m.tflite").write_bytes(tflite)
    from_file = load_model(tmp_path / "m.tflite")
    assert from_file.kind is SourceKind.TFLITE and from_file.input_shape == (None, 8, 8, 1)
    assert load_model(tflite).fingerprint == from_file.fingerprint


def test_keras_object_keeps_its_identity(digits_model):
    again = load_model(digits_model.keras_model)
    assert again.keras_model is digits_model.keras_model
    assert again.fingerprint == digits_model.fingerprint


@pytest.mark.parametrize("suffix", [".keras", ".h5", ".tflite"])
def test_corrupt_files_name_the_file(tmp_path, suffix):
    path = tmp_path / f"broken{suffix}"
    path.write_bytes(b"\x00garbage" * 20)
    with pytest.raises(ModelFileError, match=f"broken{suffix}") as caught:
        load_model(path)
    assert "\n" not in str(caught.value)


def test_missing_and_unknown(tmp_path):
    with pytest.raises(ModelFileError, match="nothing.keras: no such file"):
        load_model(tmp_path / "nothing.keras")
    with pytest.raises(ModelFileError, match="resnet: no such file or folder.*digits_cnn"):
        load_model("resnet")
    (tmp_path / "model.onnx").write_bytes(b"x")
    with pytest.raises(ModelFileError, match="unknown model format"):
        load_model(tmp_path / "model.onnx")
    with pytest.raises(ModelFileError, match="cannot load a int"):
        load_model(3)


# -- published architectures by name ---------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "preprocessing"),
    [("mobilenet_v2", "TORCH_LIKE"), ("resnet50", "CAFFE"), ("efficientnet", "RAW")],
)
def test_architecture_preprocessing_equals_keras_own(module, preprocessing):
    """Each architecture's declared preprocessing of RGB bytes is Keras' preprocess_input."""
    import keras

    from workbench.models import pretrained

    raw = np.random.default_rng(0).integers(0, 256, (2, 4, 4, 3)).astype(np.uint8)
    expected = getattr(keras.applications, module).preprocess_input(raw.astype(np.float32))
    got = getattr(pretrained, preprocessing).apply(raw)
    np.testing.assert_allclose(got, np.asarray(expected), rtol=1e-6, atol=1e-5)


def test_architecture_by_name_with_random_weights_and_a_weights_file(tmp_path):
    from workbench.models.pretrained import RAW

    source = load_model("mobilenet_v3_small@32", weights="none")
    assert source.name == "mobilenet_v3_small@32"
    assert (source.input_shape, source.num_classes) == ((None, 32, 32, 3), 1000)
    assert source.preprocessing == RAW
    seeded = source.keras_model.get_weights()
    fresh = load_model("mobilenet_v3_small@32", weights="none").keras_model.get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(fresh, seeded, strict=True))  # seeded
    weights = [w + 1 for w in seeded]
    source.keras_model.set_weights(weights)
    path = tmp_path / "mine.weights.h5"
    source.keras_model.save_weights(path)
    again = load_model("mobilenet_v3_small@32", weights=str(path)).keras_model.get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(again, weights, strict=True))
    with pytest.raises(ModelFileError, match="does not fit mobilenet_v2@32"):
        load_model("mobilenet_v2@32", weights=str(path))


@pytest.mark.parametrize(
    ("spec", "weights", "message"),
    [
        ("mobilenet_v2@abc", "none", r"input size after @ must be a whole number"),
        ("mobilenet_v2@16", "none", r"at least 32"),
        ("mobilenet_v2@32", "missing.weights.h5", r"--weights missing.weights.h5: no such file"),
    ],
)
def test_architecture_spec_errors_are_one_line(spec, weights, message):
    with pytest.raises(ModelFileError, match=message) as error:
        load_model(spec, weights=weights)
    assert "\n" not in str(error.value)


def test_cli_and_session_take_an_architecture_and_preprocess_images_its_way(tmp_path, capsys):
    """Image folders are resized to the architecture's input and preprocessed its way."""
    from PIL import Image

    from workbench import QuantConfig
    from workbench.cli import main
    from workbench.models.pretrained import TORCH_LIKE
    from workbench.session import Session

    images = np.random.default_rng(0).integers(0, 256, (10, 40, 40, 3)).astype(np.uint8)
    for index, image in enumerate(images):
        folder = tmp_path / "images" / f"class{index % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{index}.png")
    session = Session("mobilenet_v2@32", tmp_path / "images", weights="none")
    data = session.data
    assert (data.input_shape, data.preprocessing) == ((32, 32, 3), TORCH_LIKE)
    pixels = np.asarray(data.test.x)  # read from the files on demand
    assert -1.0 <= pixels.min() < -0.9 and 0.9 < pixels.max() <= 1.0
    assert session.evaluate(QuantConfig(mode="float32")).accuracy is not None

    assert main(["inspect", "mobilenet_v3_small@32", "--weights", "none"]) == 0
    assert capsys.readouterr().out.startswith("mobilenet_v3_small@32 (keras, input (None, 32, 32")
    assert main(["inspect", "resnet50@24", "--weights", "none"]) == 2
    assert "error: model 'resnet50@24': the input size" in capsys.readouterr().err


# -- models that scale their own input -------------------------------------------------------


def _first_ops(kind: str):
    """A small model whose first operation on its input is `kind`."""
    import keras
    from keras import layers

    raw = np.random.default_rng(0).integers(0, 256, (20, 16, 16, 3)).astype(np.float32)
    inputs = keras.Input((16, 16, 3))
    if kind == "augment+rescaling":  # Keras' image classification tutorial
        augment = keras.Sequential([layers.RandomFlip("horizontal"), layers.RandomZoom(0.1)])
        x = layers.Rescaling(1 / 255)(augment(inputs))
    elif kind.startswith("normalization"):
        norm = layers.Normalization()
        norm.adapt(raw if kind == "normalization on bytes" else raw / 255)
        x = norm(inputs)
    elif kind == "divide":
        x = inputs / 127.5 - 1  # mobilenet_v2.preprocess_input written inline
    elif kind == "rescaling to -1..1 of 0..1":
        x = layers.Rescaling(2.0, offset=-1.0)(inputs)
    else:
        x = inputs
    outputs = layers.Dense(3)(layers.GlobalAveragePooling2D()(layers.Conv2D(4, 3)(x)))
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize(
    ("kind", "raw"),
    [
        ("augment+rescaling", True),
        ("normalization on bytes", True),
        ("divide", True),
        ("normalization on 0..1", False),
        ("rescaling to -1..1 of 0..1", False),
        ("plain", False),
    ],
)
def test_a_model_that_scales_its_own_input_takes_bytes_as_they_are(tmp_path, kind, raw):
    """8-bit images go in as 0..255 when the model rescales them itself (scaled to 0..1 they
    were scaled twice: a tutorial model's Normalization gave -1.73..-1.71 for every pixel)."""
    from workbench.models.pretrained import RAW
    from workbench.session import Session

    path = tmp_path / "model.keras"
    _first_ops(kind).save(path)
    source = load_model(path)
    assert (source.preprocessing == RAW) is raw
    images = np.random.default_rng(1).integers(0, 256, (30, 16, 16, 3)).astype(np.uint8)
    data = tmp_path / "images.npz"
    np.savez(data, x=images, y=np.arange(30) % 3)
    pixels = np.asarray(Session(path, data).data.test.x)
    assert pixels.max() > 200 if raw else pixels.max() <= 1.0


def test_keras_applications_that_rescale_inside_are_recognised_from_their_files(tmp_path):
    import keras

    from workbench.models.pretrained import RAW

    for builder, raw in [
        ("MobileNetV3Small", True),
        ("EfficientNetB0", True),
        ("MobileNetV2", False),
    ]:
        path = tmp_path / f"{builder}.keras"
        getattr(keras.applications, builder)(input_shape=(32, 32, 3), weights=None).save(path)
        assert (load_model(path).preprocessing == RAW) is raw, builder


def test_a_mixed_precision_model_is_measured_as_float32_with_its_weights():
    """GPU training saves float16-compute layers; the converter has no builtin float16 Conv2D
    (every variant was unavailable: "tf.Conv2D ... needs TF Select")."""
    import keras
    from keras import layers

    from workbench import QuantConfig
    from workbench.session import Session

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        image = keras.Input((8, 8, 3), name="pixels")
        base = keras.Model(image, layers.Conv2D(4, 3, activation="relu")(image), name="base")
        inputs = keras.Input((8, 8, 3))
        pooled = layers.GlobalAveragePooling2D()(base(inputs))
        scores = layers.Activation("softmax", dtype="float32")(layers.Dense(3)(pooled))
        model = keras.Model(inputs, scores)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    source = load_model(model)
    policies = {layer.dtype_policy.name for layer in source.keras_model.layers}
    assert policies == {"float32"} and source.keras_model is not model
    x = np.random.default_rng(0).random((16, 8, 8, 3), np.float32)
    expected = np.asarray(model(x), np.float32)
    np.testing.assert_allclose(source.keras_model(x), expected, atol=2e-3)  # float16 rounding
    session = Session(model, (x, np.arange(16) % 3))
    for mode in ("float32", "int8"):
        assert not session.evaluate(QuantConfig(mode=mode)).unavailable, mode
