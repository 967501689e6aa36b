"""Compression on the structures of published architectures, each in a model of a few layers.

MobileNetV3 (a Rescaling input, hard SiLU, squeeze-excite with a hard sigmoid made of Keras 3
ops ``x + 3`` and ``x * (1/6)``, Multiply, Add residuals, a Conv2D classifier before Flatten),
EfficientNet (Rescaling and Normalization inputs, a squeeze-excite Reshape), and what no
technique can take: each gives a working compressed model or a one-line `WorkbenchError`.
"""

import numpy as np
import pytest

from workbench.cli import main
from workbench.compress import CompressConfig, compress
from workbench.errors import UnsupportedError
from workbench.qtyping import Granularity, QuantConfig
from workbench.session import Session

FEW = {"epochs": 1, "steps": 2, "batch_size": 16}
SIZE, CLASSES = 8, 4


def mobilenet_v3_like():
    """Rescaling -> Conv+BN+hard SiLU -> squeeze-excite (Keras 3 ops) -> Multiply -> Conv+BN,
    Add residual -> a Conv2D classifier, Flatten, Softmax."""
    import keras
    from keras import layers

    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    x = layers.Rescaling(1 / 127.5, offset=-1.0, name="rescale")(inputs)
    x = layers.Conv2D(8, 3, padding="same", use_bias=False, name="stem")(x)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.Activation("hard_silu", name="stem_hswish")(x)
    se = layers.GlobalAveragePooling2D(keepdims=True, name="se_pool")(x)
    se = layers.Conv2D(4, 1, activation="relu", name="se_reduce")(se)
    se = layers.Conv2D(8, 1, name="se_expand")(se)
    se = layers.ReLU(6.0, name="se_relu6")(se + 3.0) * (1.0 / 6.0)  # Keras 3's hard sigmoid
    y = layers.Multiply(name="se_excite")([x, se])
    y = layers.Conv2D(8, 1, use_bias=False, name="project")(y)
    y = layers.BatchNormalization(name="project_bn")(y)
    x = layers.Add(name="residual")([x, y])
    x = layers.GlobalAveragePooling2D(keepdims=True, name="pool")(x)
    x = layers.Conv2D(CLASSES, 1, name="logits")(x)
    x = layers.Flatten(name="flatten")(x)
    return keras.Model(inputs, layers.Activation("softmax", name="probs")(x), name="v3_like")


def efficientnet_like():
    """Rescaling -> Normalization -> Conv+BN+SiLU -> squeeze-excite with Reshape -> Dense."""
    import keras
    from keras import layers

    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    x = layers.Rescaling(1 / 255, name="rescale")(inputs)
    x = layers.Normalization(mean=[0.485, 0.456, 0.406], variance=[0.05, 0.05, 0.05])(x)
    x = layers.Conv2D(8, 3, padding="same", use_bias=False, name="stem")(x)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.Activation("silu", name="stem_silu")(x)
    se = layers.GlobalAveragePooling2D(name="se_squeeze")(x)
    se = layers.Reshape((1, 1, 8), name="se_reshape")(se)
    se = layers.Conv2D(4, 1, activation="silu", name="se_reduce")(se)
    se = layers.Conv2D(8, 1, activation="sigmoid", name="se_expand")(se)
    x = layers.Multiply(name="se_excite")([x, se])
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, layers.Dense(CLASSES, activation="softmax", name="probs")(x))


def data(samples=64):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (samples, SIZE, SIZE, 3)).astype(np.float32)
    return x, rng.integers(0, CLASSES, samples)


@pytest.fixture(scope="module")
def v3_session():
    return Session(mobilenet_v3_like(), data())


def test_tf_keras_clone_computes_what_the_keras_3_model_computes():
    """hard SiLU, `x + 3`, `x * (1/6)` and the Rescaling / Normalization inputs survive the
    Keras 3 -> tf_keras clone (BatchNorm folded) with the same outputs."""
    from workbench.compress import bridge
    from workbench.compress.tfmot import tf_keras

    x, _ = data(16)
    for model in (mobilenet_v3_like(), efficientnet_like()):
        for layer in model.layers:  # BatchNorm statistics other than 0 / 1, so folding shows
            if "bn" in layer.name:
                shape = layer.moving_variance.shape
                layer.moving_mean.assign(np.linspace(-0.5, 0.5, shape[0]))
                layer.moving_variance.assign(np.linspace(0.5, 2.0, shape[0]))
        clone = bridge.clone(model, tf_keras(), fold=True)
        expected = model.predict(x, verbose=0)
        np.testing.assert_allclose(clone.predict(x, verbose=0), expected, atol=1e-5)


def test_qat_of_a_mobilenet_v3_block_converts_to_int8(v3_session):
    """The QAT model (BatchNorm folded, every other layer kept) converts and runs as int8."""
    compression = v3_session.compressed(CompressConfig("qat", **FEW))
    result = compression.evaluate(QuantConfig())
    assert result.accuracy is not None and not result.unavailable, result.unavailable
    names = [layer.name for layer in compression.session.model.keras_model.layers]
    assert names == [
        layer.name for layer in v3_session.model.keras_model.layers if "bn" not in layer.name
    ]


def test_qat_wraps_unsupported_layers_with_an_output_quantizer():
    from workbench.compress import bridge
    from workbench.compress.qat_scheme import OutputQuantized, annotated
    from workbench.compress.tfmot import tf_keras, tfmot

    model = bridge.clone(mobilenet_v3_like(), tf_keras(), fold=True)
    scheme = tfmot().quantization.keras.default_8bit.Default8BitQuantizeScheme()
    configs = {
        layer.layer.name: type(layer.quantize_config).__name__ if layer.quantize_config else None
        for layer in annotated(model, scheme).layers
        if hasattr(layer, "quantize_config")
    }
    output_only = {name for name, kind in configs.items() if kind == OutputQuantized.__name__}
    assert {"rescale", "stem_hswish", "se_excite"} <= output_only
    assert {"stem", "se_reduce", "project", "residual", "logits"}.isdisjoint(output_only)
    assert len(output_only) == 5  # and the two Rescalings made of `+ 3` and `* (1/6)`


def test_pruning_skips_rescaling_and_normalization_and_qat_keeps_the_zeros():
    """TF-MOT's prune-preserving registry "supports" every weightless layer, then refuses them
    a config: Rescaling and Normalization get the output quantizer instead."""
    session = Session(efficientnet_like(), data())
    compression = session.compressed(CompressConfig("prune+qat", sparsity=0.5, **FEW))
    assert set(compression.pruned) == {"stem", "se_reduce", "se_expand", "probs"}
    facts = compression.kernel_facts(QuantConfig())
    pruned = [f for f in facts if f.layer in compression.pruned]
    assert len(pruned) == 4 and all(f.zeros >= 0.49 for f in pruned), facts


def test_structured_pruning_leaves_kernels_of_3_input_channels_alone(v3_session):
    pruned = v3_session.compressed(CompressConfig("prune", structured=True, **FEW))
    facts = {f.layer: f for f in pruned.kernel_facts(QuantConfig())}
    # 2:4 groups run along input channels: the 3-channel stem would get 1 zero in 3
    assert set(pruned.pruned) == {"se_reduce", "se_expand", "project", "logits"}
    assert all(facts[name].zeros >= 0.49 for name in pruned.pruned), facts


def test_distilled_students_keep_the_classifier_and_the_squeeze_excite_reshape(v3_session):
    student = v3_session.compressed(CompressConfig("distill", **FEW)).session.model.keras_model
    layers = {layer.name: layer for layer in student.layers}
    assert layers["logits"].filters == CLASSES and layers["stem"].filters == 4
    efficient = Session(efficientnet_like(), data()).compressed(CompressConfig("distill", **FEW))
    reshape = efficient.session.model.keras_model.get_layer("se_reshape")
    assert reshape.output.shape[-1] == 4


def test_equalize_through_keras_3_ops(v3_session):
    compression = v3_session.compressed(CompressConfig("equalize"))
    assert [(p.first, p.second) for p in compression.equalized] == [("se_reduce", "se_expand")]
    assert (
        compression.evaluate(QuantConfig(granularity=Granularity.PER_TENSOR)).accuracy is not None
    )


def test_what_no_technique_can_take_is_a_one_line_error(tmp_path, capsys):
    import keras
    from keras import layers

    inputs = keras.Input((SIZE, SIZE, 3))
    x = layers.Conv2D(4, 3, name="conv")(inputs)
    normalized = layers.LayerNormalization(name="norm")(x)
    head = layers.Dense(CLASSES, activation="softmax", name="probs")
    model = keras.Model(inputs, head(layers.GlobalAveragePooling2D()(normalized)))
    with pytest.raises(UnsupportedError) as error:
        compress(model, CompressConfig("qat", **FEW), data())
    assert str(error.value) == (
        "layer 'norm': TF Model Optimization has no quantizer for the weights of "
        "LayerNormalization; QAT cannot train it (use equalize, prune or cluster, or "
        "post-training int8)"
    )
    flipped = head(layers.GlobalAveragePooling2D()(1.0 - x))  # c - x: no tf_keras layer
    path = tmp_path / "flipped.keras"
    keras.Model(inputs, flipped).save(path)
    x, y = data()
    np.savez(tmp_path / "data.npz", x=x, y=y)
    out = tmp_path / "out.keras"
    arguments = ["compress", str(path), "--technique", "prune", "--steps", "1", "-o", str(out)]
    assert main([*arguments, "--data", str(tmp_path / "data.npz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: operation 'subtract") and err.count("\n") == 1, err
    assert "has no tf_keras layer for TF Model Optimization" in err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == [
        "data.npz",
        "flipped.keras",
    ]


def test_a_subclassed_model_is_a_one_line_error_from_the_cli(tmp_path, capsys):
    import keras

    @keras.saving.register_keras_serializable("test_compress_architectures")
    class Subclassed(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.head = keras.layers.Dense(CLASSES, activation="softmax")

        def call(self, x):
            return self.head(keras.ops.mean(x, axis=(1, 2)))

    model = Subclassed(name="sub")
    model(np.zeros((1, SIZE, SIZE, 3), np.float32))
    model.save(tmp_path / "sub.keras")
    x, y = data()
    np.savez(tmp_path / "data.npz", x=x, y=y)
    arguments = ["compress", str(tmp_path / "sub.keras"), "--technique", "qat"]
    assert main([*arguments, "--data", str(tmp_path / "data.npz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: model 'sub': a subclassed Subclassed has no input and output")
    assert err.count("\n") == 1 and "rebuild it as a keras.Sequential or functional" in err


def test_equalize_pairs_through_activation_relu_in_a_residual_block():
    """ResNet's Conv -> BN -> Activation("relu") -> Conv, with an Add shortcut."""
    import keras
    from keras import layers

    inputs = keras.Input((SIZE, SIZE, 3))
    x = layers.Conv2D(8, 3, padding="same", name="stem")(inputs)
    y = layers.Conv2D(8, 1, name="a")(x)
    y = layers.BatchNormalization(name="a_bn")(y)
    y = layers.Activation("relu", name="a_relu")(y)
    y = layers.Conv2D(8, 3, padding="same", name="b")(y)
    x = layers.Activation("relu")(layers.Add()([x, y]))
    outputs = layers.Dense(CLASSES, activation="softmax")(layers.GlobalAveragePooling2D()(x))
    session = Session(keras.Model(inputs, outputs), data())
    config = CompressConfig("equalize", bias_correction=False)
    compression = session.compressed(config)
    assert [(p.first, p.second) for p in compression.equalized] == [("a", "b")]
    x = session.data.test.x
    before = session.model.keras_model.predict(x, verbose=0)
    after = compression.session.model.keras_model.predict(x, verbose=0)
    np.testing.assert_allclose(after, before, atol=1e-5)


def test_the_compression_panel_shows_the_one_line_error():
    import keras
    from keras import layers

    from workbench.widgets.compression import CompressionView
    from workbench.widgets.state import AppState
    from workbench.widgets.tasks import TaskState

    inputs = keras.Input((SIZE, SIZE, 3))
    x = layers.LayerNormalization(name="norm")(layers.Conv2D(4, 3)(inputs))
    outputs = layers.Dense(CLASSES, activation="softmax")(layers.GlobalAveragePooling2D()(x))
    state = AppState(config=QuantConfig())
    state.session = Session(keras.Model(inputs, outputs), data())
    panel = CompressionView(state)
    try:
        panel.technique.value = "qat"
        panel.train.click()
        assert panel.wait(300)
        status = panel.worker.status
        assert status.state is TaskState.FAILED
        assert status.message.startswith("layer 'norm': TF Model Optimization has no quantizer")
        assert "\n" not in status.message
        assert f"compressed:{panel.config().key}" not in state.session._derived  # nothing kept
    finally:
        panel.close()


def test_cli_compresses_from_an_npz_read_on_demand_and_compare_takes_the_result(tmp_path, capsys):
    """An uncompressed .npz is read on demand (`LazyInputs`); Keras trains on it as arrays."""
    mobilenet_v3_like().save(tmp_path / "v3.keras")
    x, y = data()
    np.savez(tmp_path / "data.npz", x=x, y=y)
    out, npz = tmp_path / "v3-prune.keras", str(tmp_path / "data.npz")
    arguments = ["compress", str(tmp_path / "v3.keras"), "--technique", "prune+qat"]
    assert main([*arguments, "--steps", "2", "--data", npz, "-o", str(out)]) == 0
    assert "prune 50 % + qat in" in capsys.readouterr().out
    assert main(["compare", str(out), "--data", npz]) == 0
    assert "int8 · per-channel" in capsys.readouterr().out
    student = tmp_path / "v3-distill.keras"
    arguments = ["compress", str(tmp_path / "v3.keras"), "--technique", "distill"]
    assert main([*arguments, "--steps", "2", "--data", npz, "-o", str(student)]) == 0


def transfer_learning_like():
    """Keras' transfer-learning recipe: augmentation (a Sequential), `x / 127.5 - 1` inline, a
    frozen base model (a Functional with Conv+BN+ReLU6 and a depthwise block) called inside."""
    import keras
    from keras import layers

    image = keras.Input((SIZE, SIZE, 3), name="base_image")
    x = layers.Conv2D(8, 3, padding="same", use_bias=False, name="base_stem")(image)
    x = layers.ReLU(6.0, name="base_relu")(layers.BatchNormalization(name="base_bn")(x))
    x = layers.DepthwiseConv2D(3, padding="same", name="base_depthwise")(x)
    base = keras.Model(image, layers.Conv2D(16, 1, name="base_project")(x), name="base")
    base.trainable = False
    augment = keras.Sequential([layers.RandomFlip("horizontal")], name="augment")
    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    x = base(augment(inputs) / 127.5 - 1.0, training=False)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, layers.Dense(CLASSES, name="head")(x))


def test_a_transfer_learning_model_with_a_frozen_base_inside_is_inspected_and_compressed():
    """The base model's layers get activation ranges (their outputs are not tensors of the
    outer model: a Keras error before) and are compressed too, though frozen."""
    import keras

    from workbench.compress import bridge
    from workbench.inspection import activation_ranges

    model = transfer_learning_like()
    x, _ = data(16)
    flat = bridge.clone(model)
    np.testing.assert_allclose(flat.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
    assert not any(isinstance(layer, keras.Model) for layer in flat.layers)
    session = Session(model, data())
    ranges = {r.layer: r for r in activation_ranges(session.model, x)}
    base = model.get_layer("base")
    inner = keras.Model(base.inputs, base.get_layer("base_depthwise").output)
    expected = inner.predict(x / 127.5 - 1.0, verbose=0)
    assert ranges["base_depthwise"].max == pytest.approx(float(expected.max()), rel=1e-5)
    assert ranges["base_depthwise"].min == pytest.approx(float(expected.min()), rel=1e-5)
    pruned = session.compressed(CompressConfig("prune", sparsity=0.5, **FEW))
    assert {"base_stem", "base_project", "head"} <= set(pruned.pruned)
    facts = {f.layer: f for f in pruned.kernel_facts(QuantConfig())}
    assert facts["base_stem"].zeros >= 0.49
    for technique in ("qat", "equalize"):
        result = session.compressed(CompressConfig(technique, **FEW)).evaluate(QuantConfig())
        assert result.accuracy is not None and not result.unavailable, technique
