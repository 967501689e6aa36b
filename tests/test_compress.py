"""Compression on digits_cnn, every technique for real with a few training steps.

Structural facts only (read back from the `.tflite`): zeros after pruning, distinct values
after clustering, both kept through QAT; equalization balances ranges; one-line errors; a
cancelled run leaves the session as it was.
"""

import json
import os
import threading

import numpy as np
import pytest

from workbench.cli import main
from workbench.compress import Cancelled, CompressConfig, Technique, TrainingProgress, compress
from workbench.errors import DataError, UnsupportedError
from workbench.qtyping import Granularity, QuantConfig
from workbench.session import Session

PER_CHANNEL = QuantConfig()
PER_TENSOR = QuantConfig(granularity=Granularity.PER_TENSOR)
FEW = {"epochs": 1, "steps": 4, "batch_size": 32, "learning_rate": 1e-4}


@pytest.fixture(scope="module")
def session():
    return Session("digits_cnn")


def weights_of(session):
    return [w.copy() for w in session.model.keras_model.get_weights()]


def test_config_round_trips_and_keys_stably():
    config = CompressConfig(technique="prune", sparsity=0.75, structured=True, epochs=3)
    again = CompressConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config and again.key == config.key and hash(again) == hash(config)
    assert config.label == "prune 75 % 2:4"
    assert CompressConfig(technique="cluster+qat", clusters=8).label == "cluster 8 + qat"
    # fields a technique does not use are normalised away: the same run keys the same
    assert CompressConfig(technique="qat", sparsity=0.9).key == CompressConfig("qat").key
    assert CompressConfig(technique="prune", sparsity=0.9).key != CompressConfig("prune").key
    assert config.replace(sparsity=0.5).sparsity == 0.5
    # no learning rate given: the technique's (centroids need larger steps than weights)
    assert CompressConfig("cluster") == CompressConfig("cluster", learning_rate=1e-3)
    assert CompressConfig("qat").learning_rate == 1e-4
    assert CompressConfig("equalize", learning_rate=1.0).learning_rate is None  # no training


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"technique": "prune", "sparsity": 0.0}, "sparsity: 0.0 is not in (0, 1)"),
        ({"technique": "prune", "sparsity": 1.0}, "sparsity: 1.0 is not in (0, 1)"),
        ({"technique": "cluster", "clusters": 1}, "clusters: 1 is below 2"),
        ({"technique": "shrink"}, "technique: 'shrink' is not one of qat, prune"),
        ({"technique": "distill", "width": 1.5}, "width: 1.5 is not in (0, 1]"),
        ({"epochs": 0}, "epochs: 0 is below 1"),
        ({"learning_rate": 0}, "learning_rate: 0 is not positive"),
    ],
)
def test_bad_values_are_one_line_errors(changes, message):
    with pytest.raises(UnsupportedError) as error:
        CompressConfig(**changes)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_prune_leaves_zeros_in_the_tflite_and_keeps_them_through_qat(session):
    progress: list[TrainingProgress] = []
    pruned = session.compressed(
        CompressConfig(technique="prune", sparsity=0.5, **FEW), progress=progress.append
    )
    assert [p.batch for p in progress if p.val_accuracy is None] == [1, 2, 3, 4]
    assert progress[-1].val_accuracy is not None and progress[-1].fraction == 1.0
    facts = pruned.kernel_facts(PER_CHANNEL)
    assert [f.layer for f in facts] == ["conv1", "conv2", "dense", "classifier"]
    assert all(f.zeros >= 0.49 for f in facts), facts
    assert pruned.gzip_size(PER_CHANNEL) < len(pruned.session.variant(PER_CHANNEL).tflite)
    assert pruned.label(PER_CHANNEL) == "prune 50 % + int8 · per-channel"
    assert pruned.session.model.fingerprint != session.model.fingerprint
    both = session.compressed(CompressConfig(technique="prune+qat", sparsity=0.5, **FEW))
    assert all(f.zeros >= 0.49 for f in both.kernel_facts(PER_CHANNEL))
    one_step = session.compressed(
        CompressConfig(technique="prune", sparsity=0.5, epochs=1, steps=1)
    )
    assert all(f.zeros >= 0.49 for f in one_step.kernel_facts(PER_CHANNEL))  # not a 0-step decay


def test_cluster_leaves_few_values_and_keeps_them_through_qat(session):
    clustered = session.compressed(CompressConfig(technique="cluster", clusters=16, **FEW))
    assert all(f.distinct_per_channel <= 16 for f in clustered.kernel_facts(PER_CHANNEL))
    assert all(f.distinct <= 16 for f in clustered.kernel_facts(PER_TENSOR))
    plain = session.variant(PER_TENSOR).tflite
    assert clustered.gzip_size(PER_TENSOR) < len(plain)
    both = session.compressed(CompressConfig(technique="cluster+qat", clusters=16, **FEW))
    assert all(f.distinct_per_channel <= 16 for f in both.kernel_facts(PER_CHANNEL))


def test_prune_cluster_qat_keeps_zeros_and_clusters(session):
    config = CompressConfig(technique="prune+cluster+qat", sparsity=0.5, clusters=8, **FEW)
    facts = session.compressed(config).kernel_facts(PER_CHANNEL)
    assert all(f.zeros >= 0.45 and f.distinct_per_channel <= 8 for f in facts), facts


def test_qat_makes_a_model_every_mode_converts(session):
    qat = session.compressed(CompressConfig(technique="qat", weights="per-tensor", **FEW))
    result = qat.session.evaluate(PER_TENSOR)
    assert result.accuracy > 0.8  # a few steps at a small rate keep the model working
    assert qat.session.model.keras_model.layers[1].name == "conv1"


def test_equalize_balances_ranges_without_changing_a_relu_model(session):
    equalized = session.compressed(CompressConfig(technique="equalize", bias_correction=False))
    pairs = {(p.first, p.second): p for p in equalized.equalized}
    assert set(pairs) == {("conv1", "conv2"), ("dense", "classifier")}
    for pair in pairs.values():
        spread = lambda ranges: max(ranges) / min(r for r in ranges if r > 0)  # noqa: E731
        assert spread(pair.after) < spread(pair.before)
    x = session.data.test.x[:64]
    before = session.model.keras_model.predict(x, verbose=0)
    after = equalized.session.model.keras_model.predict(x, verbose=0)
    np.testing.assert_allclose(after, before, atol=1e-4)  # ReLU commutes with the scaling


def test_equalize_with_bias_correction_on_shapes_mobilenet():
    shapes = Session("shapes_mobilenet")
    compression = shapes.compressed(CompressConfig(technique="equalize"))
    assert len(compression.equalized) == 11  # stem, 5 x (depthwise -> pointwise -> next)
    worst = max(max(p.before) / np.median(p.before) for p in compression.equalized)
    after = max(max(p.after) / np.median(p.after) for p in compression.equalized)
    assert after < worst / 4


def test_distill_trains_a_narrower_student(session):
    student = session.compressed(CompressConfig(technique="distill", width=0.5, **FEW))
    layers = {layer.name: layer for layer in student.session.model.keras_model.layers}
    assert layers["conv1"].filters == 8 and layers["dense"].units == 32
    assert layers["classifier"].units == 10


@pytest.mark.parametrize("activation", ["sigmoid", None])
def test_a_binary_classifier_trains_on_binary_cross_entropy(tmp_path, activation):
    """One output unit: the labels' loss is binary cross-entropy (the categorical one fails on
    label 1 of a single unit), from a sigmoid's probability or from a logit, and validation
    accuracy thresholds at 0.5 or 0."""
    import keras

    rng = np.random.default_rng(0)
    x = rng.random((400, 8, 8, 1), np.float32)
    y = (x.mean(axis=(1, 2, 3)) > 0.5).astype(np.int64)
    np.savez(tmp_path / "bright.npz", x=x, y=y)
    inputs = keras.Input((8, 8, 1))
    hidden = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    score = keras.layers.Dense(1, activation=activation)(keras.layers.Flatten()(hidden))
    keras.Model(inputs, score).save(tmp_path / "bright.keras")
    binary = Session(str(tmp_path / "bright.keras"), str(tmp_path / "bright.npz"))
    seen = []
    pruned = binary.compressed(
        CompressConfig(technique="prune", sparsity=0.5, **FEW), progress=seen.append
    )
    assert all(np.isfinite(p.loss) and p.loss > 0 for p in seen)
    validated = [p.val_accuracy for p in seen if p.val_accuracy is not None]
    model = pruned.session.model.keras_model
    split = binary.data.calibration  # what training validates on (never the test split)
    threshold = 0.5 if activation else 0.0
    expected = np.mean((np.asarray(model(split.x))[:, 0] > threshold) == split.y)
    assert validated and validated[-1] == pytest.approx(expected)
    assert pruned.session.evaluate(PER_CHANNEL).accuracy is not None
    with pytest.raises(UnsupportedError, match="^model .*one output unit; use prune"):
        binary.compressed(CompressConfig(technique="distill", **FEW))


def test_cancel_leaves_the_session_as_it_was(session):
    config = CompressConfig(technique="prune", sparsity=0.3, **FEW)
    cancel = threading.Event()
    before = (weights_of(session), session.stats, session.model.fingerprint)

    def cancel_after_two(progress):
        if progress.batch == 2:
            cancel.set()

    with pytest.raises(Cancelled):
        session.compressed(config, progress=cancel_after_two, cancel=cancel)
    after = (weights_of(session), session.stats, session.model.fingerprint)
    assert all(np.array_equal(a, b) for a, b in zip(before[0], after[0], strict=True))
    assert before[1:] == after[1:]
    assert session.compressed(config).config == config  # nothing cached from the cancelled run


def test_bad_models_and_data_are_one_line_errors(session):
    import keras

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(10, activation="softmax")

        def call(self, x):
            return self.dense(keras.ops.reshape(x, (-1, 64)))

    model = Subclassed()
    model(np.zeros((1, 8, 8, 1), np.float32))
    with pytest.raises(UnsupportedError, match="subclassed Subclassed cannot be cloned"):
        compress(model, CompressConfig(technique="prune", **FEW), "digits")
    with pytest.raises(UnsupportedError, match="subclassed Subclassed has no input and output"):
        Session(model, "digits")
    inputs = keras.Input((8, 8, 1))
    kernel_free = keras.Model(inputs, keras.layers.Softmax()(keras.layers.Flatten()(inputs)))
    for technique in ("qat", "prune", "cluster", "distill"):
        with pytest.raises(UnsupportedError, match=f"no Conv2D, .* layer to {technique};"):
            compress(kernel_free, CompressConfig(technique=technique, **FEW), "digits")
    depthwise = keras.layers.DepthwiseConv2D(3, depth_multiplier=10)(inputs)
    depthwise_only = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(depthwise))
    for technique, verb in (("prune", "prune"), ("cluster+qat", "cluster")):
        with pytest.raises(UnsupportedError, match=f"no Conv2D or Dense layer to {verb} \\("):
            compress(depthwise_only, CompressConfig(technique=technique, **FEW), "digits")
    outputs = keras.layers.Dense(10)(keras.layers.Lambda(lambda t: t + 1)(inputs))
    with pytest.raises(UnsupportedError, match="layer 'lambda.*': Lambda cannot be rebuilt"):
        compress(keras.Model(inputs, outputs), CompressConfig(technique="prune", **FEW), "digits")
    unlabelled = Session("digits_cnn", session.data.test.x)
    with pytest.raises(DataError, match="pruning trains on labels and this data has none"):
        unlabelled.compressed(CompressConfig(technique="prune", **FEW))
    tflite = Session(session.float_bytes, "digits")
    with pytest.raises(UnsupportedError, match="compression trains a Keras model"):
        tflite.compressed(CompressConfig(technique="equalize"))


def test_importing_tfmot_leaves_the_environment_alone():
    from workbench.compress.tfmot import LEGACY, tfmot

    tfmot()
    assert LEGACY not in os.environ


def test_cli_compress_writes_a_model_convert_takes(tmp_path, capsys):
    out = tmp_path / "digits-equalized.keras"
    assert main(["compress", "digits_cnn", "--technique", "equalize", "-o", str(out)]) == 0
    assert "equalize + bias correction" in capsys.readouterr().out
    tflite = tmp_path / "eq.tflite"
    assert main(["convert", str(out), "--data", "digits", "-o", str(tflite)]) == 0
    assert tflite.stat().st_size > 0
    assert main(["compress", "digits_cnn", "--technique", "prune", "--sparsity", "1.5"]) == 2
    assert "error: sparsity: 1.5 is not in (0, 1)" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits-equalized.keras", "eq.tflite"]


def test_every_technique_is_registered():
    from workbench.compress.techniques import TECHNIQUES

    assert set(TECHNIQUES) == set(Technique)


@pytest.mark.parametrize(("per_tensor", "per_axis"), [(True, False), (False, True)])
def test_qat_quantizes_every_kernel_even_before_a_relu(session, per_tensor, per_axis):
    from workbench.compress import bridge
    from workbench.compress.qat_scheme import KernelsQuantized
    from workbench.compress.tfmot import tf_keras, tfmot

    quantize = tfmot().quantization.keras
    scheme = quantize.default_8bit.Default8BitQuantizeScheme(disable_per_axis=per_tensor)
    model = bridge.clone(session.model.keras_model, tf_keras(), fold=True)
    aware = quantize.quantize_apply(
        quantize.quantize_annotate_model(model), KernelsQuantized(scheme)
    )
    quantized = {
        bridge.inner(layer).name: [q.per_axis for _, q, _ in layer._weight_vars]
        for layer in aware.layers
        if getattr(layer, "_weight_vars", None)
    }
    assert quantized["conv1"] == [per_axis] and quantized["conv2"] == [per_axis]
    assert set(quantized) == {"conv1", "conv2", "dense", "classifier"}


@pytest.mark.parametrize("per_tensor", [False, True])
def test_qat_quantizes_depthwise_kernels_per_output_channel(per_tensor):
    """TF-MOT's per-axis quantizer would take a depthwise kernel's multiplier axis (one range);
    per channel, each of the channels x multiplier outputs gets its own, as in the .tflite."""
    import keras

    from workbench.compress import bridge
    from workbench.compress.qat_scheme import KernelsQuantized
    from workbench.compress.tfmot import tf_keras, tfmot

    inputs = keras.Input((6, 6, 3))
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, name="dw")(inputs)
    x = keras.layers.ReLU()(x)
    outputs = keras.layers.Dense(2)(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    layer = model.get_layer("dw")
    kernel = np.random.default_rng(0).normal(size=layer.kernel.shape).astype(np.float32)
    kernel[..., 1, :] *= 100.0  # one channel far wider than the others
    layer.set_weights([kernel, np.zeros(6, np.float32)])
    quantize = tfmot().quantization.keras
    scheme = quantize.default_8bit.Default8BitQuantizeScheme(disable_per_axis=per_tensor)
    aware = quantize.quantize_apply(
        quantize.quantize_annotate_model(bridge.clone(model, tf_keras())),
        KernelsQuantized(scheme),
    )
    aware(np.zeros((1, 6, 6, 3), np.float32), training=True)  # weight ranges take the kernel's
    wrapper = next(w for w in aware.layers if bridge.inner(w).name == "dw")
    high = next(v for v in wrapper.weights if v.name.endswith("depthwise_kernel_max:0")).numpy()
    widths = np.abs(kernel).max(axis=(0, 1)).reshape(-1)  # output channel c * 2 + m
    expected = widths.max() if per_tensor else widths
    np.testing.assert_allclose(np.broadcast_to(high, np.shape(expected)), expected, rtol=1e-5)


def test_training_reads_an_image_folder_in_batches(tmp_path):
    """Data read on demand (an image folder) trains batch by batch on both Keras versions: it
    failed inside tf_keras, which cannot index the lazy inputs."""
    import keras
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (90, 40, 40, 3), dtype=np.uint8)
    for index, image in enumerate(pixels):
        folder = tmp_path / "images" / f"class{index % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{index}.png")
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, name="fc")(x))
    session = Session(model, str(tmp_path / "images"))
    assert type(session.data.train.x).__name__ == "LazyInputs"
    seen = []
    for technique in ("qat", "distill"):  # tf_keras (TF-MOT) and Keras 3
        config = CompressConfig(technique=technique, **FEW)
        compressed = session.compressed(config, progress=seen.append)
        assert compressed.session.model.fingerprint != session.model.fingerprint
    assert any(p.val_accuracy is not None for p in seen)


def test_vectorized_per_channel_clusters_equal_tf_mots_loop():
    """Cluster-preserving QAT's per-channel lookups, vectorized (a MobileNetV2 did not finish
    building TF-MOT's loop over 10,900 channels in 8 minutes): each channel's nearest centroid as
    TF-MOT finds it channel by channel, the centroid itself as the weight, and TF-MOT's
    gradients (summed per centroid; straight through to the weights)."""
    import tensorflow as tf

    from workbench.compress.tfmot import tfmot

    tfmot()  # installs the vectorized lookups
    from tensorflow_model_optimization.python.core.clustering.keras import clustering_algorithm

    per_channel = clustering_algorithm.ClusteringAlgorithmPerChannel
    assert per_channel.vectorized  # (TF-MOT's own loop gives the same, slowly)
    one_channel = clustering_algorithm.ClusteringAlgorithm.get_pulling_indices
    rng = np.random.default_rng(0)
    weight = tf.Variable(rng.normal(size=(3, 3, 5, 7)).astype(np.float32))
    centroids = tf.Variable(np.sort(rng.normal(size=(7, 4)), axis=1).astype(np.float32))
    algorithm = per_channel(centroids, clustering_algorithm.GradientAggregation.SUM, None)
    indices = np.asarray(algorithm.get_pulling_indices(weight))
    channels = range(7)
    expected = [one_channel(algorithm, weight[..., c], centroids[c]) for c in channels]
    np.testing.assert_array_equal(indices, np.stack(expected, axis=-1))
    with tf.GradientTape() as tape:
        clustered = algorithm.get_clustered_weight(tf.constant(indices), weight)
        loss = tf.reduce_sum(clustered * tf.range(7, dtype=tf.float32))  # channel c counts c
    table = np.asarray(centroids)
    by_hand = np.stack([table[c][indices[..., c]] for c in channels], axis=-1)
    np.testing.assert_array_equal(clustered, by_hand)
    to_centroids, to_weight = tape.gradient(loss, [centroids, weight])
    counts = np.stack([np.bincount(indices[..., c].ravel(), minlength=4) * c for c in channels])
    np.testing.assert_allclose(tf.convert_to_tensor(to_centroids), counts)
    np.testing.assert_array_equal(to_weight, np.broadcast_to(np.arange(7.0), (3, 3, 5, 7)))
