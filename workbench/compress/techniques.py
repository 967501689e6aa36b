"""The techniques, in a registry keyed by `Technique` (the six TF-MOT ones share one pipeline).

Every technique takes a Keras 3 model and returns a new Keras 3 model (the original is never
changed), so a compressed model is a model like any other. TF-MOT techniques run on a tf_keras
clone with BatchNorm folded (quantizers, pruning masks and centroids then act on the kernels the
`.tflite` file holds) and their trained weights come back into a Keras 3 clone of the same shape.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench.compress import bridge, training
from workbench.compress.config import CompressConfig, Technique, WeightGranularity
from workbench.compress.equalize import EqualizedPair, correct_bias, equalize
from workbench.compress.tfmot import tf_keras, tfmot
from workbench.datasets import Dataset
from workbench.errors import DataError, UnsupportedError
from workbench.folding import flat_layers, kernel_kind
from workbench.models.loading import keras_reason


@dataclass(frozen=True)
class Run:
    """What a technique works with: the model, its data, the config and the job's hooks."""

    model: Any  # Keras 3, never changed
    data: Dataset
    config: CompressConfig
    progress: training.Progress | None = None
    cancel: threading.Event | None = None

    def labelled(self, what: str) -> tuple[tuple[np.ndarray, np.ndarray], tuple[Any, Any]]:
        """(train, validation) arrays; validation is the calibration split, never the test."""
        if self.data.train.y is None or len(self.data.train) == 0:
            raise DataError(
                f"data {self.data.name!r}: {what} trains on labels and this data has none; "
                "give labelled data (an .npz with y, an image folder or (x, y))"
            )
        validation = self.data.calibration
        return (self.data.train.x, self.data.train.y), (validation.x, validation.y)

    def fit(
        self, model: Any, keras_module: Any, what: str, targets: Any = None, **options: Any
    ) -> None:
        """Fine-tune `model` on the train split (`targets` replace the labels if given)."""
        train, validation = self.labelled(what)
        if targets is not None:
            train = (train[0], targets)
        training.fit(
            model,
            keras_module,
            train,
            validation,
            self.config,
            logit=training.single_logit(self.model),
            progress=self.progress,
            cancel=self.cancel,
            **options,
        )


@dataclass(frozen=True, eq=False)
class Compressed:
    """A technique's result: the new Keras 3 model and what the technique can tell about it."""

    model: Any
    equalized: tuple[EqualizedPair, ...] = field(default_factory=tuple)
    pruned: tuple[str, ...] = ()  # the layers whose kernels pruning acted on
    clustered: tuple[str, ...] = ()  # the layers whose kernels clustering acted on


Technique_ = Callable[[Run], Compressed]
TECHNIQUES: dict[Technique, Technique_] = {}


def register(*techniques: Technique) -> Callable[[Technique_], Technique_]:
    def decorate(function: Technique_) -> Technique_:
        for technique in techniques:
            TECHNIQUES[technique] = function
        return function

    return decorate


def _wrapped(what: str, wrap: Callable[[], Any]) -> Any:
    """Call a TF-MOT wrapping function; its refusal becomes a one-line `UnsupportedError`."""
    try:
        return wrap()
    except (ValueError, TypeError, RuntimeError) as error:
        raise UnsupportedError(
            f"{what}: TF Model Optimization cannot wrap this model ({keras_reason(error)}); "
            "use Conv2D / DepthwiseConv2D / Dense models built from Keras layers"
        ) from None


def _acting_on(run: Run, names: Any, what: str, kinds: str, note: str = "") -> None:
    """A one-line error when `what` found no layer to act on (instead of training nothing)."""
    if not names:
        raise UnsupportedError(
            f"model {run.model.name!r}: no {kinds} layer to {what}{note}; compress a model "
            "with kernel layers, or pick another technique"
        )


def _back(run: Run, trained: Any) -> Any:
    """The trained weights in a Keras 3 model shaped like the folded original."""
    model = bridge.clone(run.model, fold=True)
    bridge.copy_weights(trained, model)
    return model


def _prune(run: Run, model: Any) -> tuple[Any, tuple[str, ...]]:
    """Prune a tf_keras model to the config's sparsity over its training; returns it stripped
    and the names of the layers pruned (TF-MOT leaves depthwise kernels alone)."""
    mot, config = tfmot(), run.config
    from tensorflow_model_optimization.python.core.sparsity.keras.prune_registry import (
        PruneRegistry as registry,  # noqa: N813 - not exported; imported after tfmot() above
    )

    total = config.epochs * training.batches_per_epoch(len(run.data.train), config)
    frequency = max(1, (total - 1) // 10)
    end = max(frequency * ((total - 1) // frequency), 0)
    if end == 0:  # one training step: a decay from step 0 to step 0 would prune nothing
        schedule = mot.sparsity.keras.ConstantSparsity(config.sparsity, begin_step=0, frequency=1)
    else:
        schedule = mot.sparsity.keras.PolynomialDecay(
            initial_sparsity=0.0,
            final_sparsity=config.sparsity,
            begin_step=0,
            end_step=end,
            frequency=frequency,
        )
    options = {"sparsity_m_by_n": (2, 4)} if config.structured else {}

    def wrap(layer: Any) -> Any:  # layers TF-MOT cannot prune (Rescaling, ...) stay as they are
        if not (layer.weights and registry.supports(layer)):
            return layer
        kernel = getattr(layer, "kernel", None)
        if config.structured and kernel is not None and kernel.shape[-2] % 4:
            return layer  # 2:4 groups run along input channels: a 3-channel stem would get 1:3
        return mot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule, **options)

    pruned = _wrapped("prune", lambda: tf_keras().models.clone_model(model, clone_function=wrap))
    names = tuple(
        bridge.inner(layer).name for layer in pruned.layers if getattr(layer, "prunable_weights", 0)
    )
    _acting_on(run, names, "prune", "Conv2D or Dense", " (TF-MOT leaves depthwise kernels alone)")
    run.fit(pruned, tf_keras(), "pruning", callbacks=[mot.sparsity.keras.UpdatePruningStep()])
    return mot.sparsity.keras.strip_pruning(pruned), names


def _cluster(run: Run, model: Any, preserve_sparsity: bool = False) -> tuple[Any, tuple[str, ...]]:
    """Cluster each Conv2D and Dense kernel of a tf_keras model to the config's count; returns
    it stripped and the names of the layers clustered. Depthwise kernels are left alone (as
    TF-MOT's pruning leaves them): after BatchNorm folding their channels span ranges 100x
    apart, which one set of centroids per kernel cannot serve, and they hold few weights."""
    mot, config = tfmot(), run.config
    init = getattr(
        mot.clustering.keras.CentroidInitialization,
        config.centroid_init.value.upper().replace("-", "_").replace("++", "_PLUS_PLUS"),
    )
    options = {"preserve_sparsity": True} if preserve_sparsity else {}
    keras = tf_keras()
    names: list[str] = []

    def wrap(layer: Any) -> Any:
        kinds = (keras.layers.Conv2D, keras.layers.Dense)
        if not isinstance(layer, kinds) or isinstance(layer, keras.layers.DepthwiseConv2D):
            return layer
        names.append(layer.name)
        return mot.clustering.keras.cluster_weights(
            layer, number_of_clusters=config.clusters, cluster_centroids_init=init, **options
        )

    clustered = _wrapped("cluster", lambda: keras.models.clone_model(model, clone_function=wrap))
    _acting_on(run, names, "cluster", "Conv2D or Dense", " (depthwise kernels are left alone)")
    run.fit(clustered, keras, "clustering")
    return mot.clustering.keras.strip_clustering(clustered), tuple(names)


def _qat(run: Run, model: Any, scheme: Any) -> Any:
    """Quantization-aware fine-tuning of a tf_keras model with `scheme`'s quantizers."""
    from workbench.compress.qat_scheme import KernelsQuantized, OutputQuantized, annotated

    quantize = tfmot().quantization.keras
    marked = annotated(model, scheme)
    with quantize.quantize_scope({"OutputQuantized": OutputQuantized}):
        aware = _wrapped("qat", lambda: quantize.quantize_apply(marked, KernelsQuantized(scheme)))
    run.fit(aware, tf_keras(), "quantization-aware training")
    return aware


def _has_kernels(run: Run) -> None:
    kernels = [layer.name for layer in flat_layers(run.model) if kernel_kind(layer)]
    _acting_on(run, kernels, run.config.technique.value, "Conv2D, DepthwiseConv2D or Dense")


def _start(run: Run) -> Any:
    """The model as a tf_keras clone with BatchNorm folded, if it has a kernel layer to train."""
    _has_kernels(run)
    return bridge.clone(run.model, tf_keras(), fold=True)


@register(
    Technique.QAT,
    Technique.PRUNE,
    Technique.CLUSTER,
    Technique.PRUNE_QAT,
    Technique.CLUSTER_QAT,
    Technique.PRUNE_CLUSTER_QAT,
)
def tf_model_optimization(run: Run) -> Compressed:
    """Pruning, clustering and quantization-aware training, those the technique names, in that
    order; each later step preserves what the earlier made (TF-MOT's collaborative optimization)."""
    technique = run.config.technique
    model, pruned, clustered = _start(run), (), ()
    if technique.prunes:
        model, pruned = _prune(run, model)
    if technique.clusters:
        model, clustered = _cluster(run, model, preserve_sparsity=technique.prunes)
    if technique.quantization_aware:
        model = _qat(run, model, _scheme(run.config))
    return Compressed(_back(run, model), pruned=pruned, clustered=clustered)


def _scheme(config: CompressConfig) -> Any:
    """The QAT scheme: cluster- or sparsity-preserving after those steps, else TF-MOT's default
    8-bit scheme with per-axis or per-tensor weight quantizers."""
    mot, technique = tfmot(), config.technique
    if technique.clusters:
        return mot.experimental.combine.Default8BitClusterPreserveQuantizeScheme(
            preserve_sparsity=technique.prunes
        )
    if technique.prunes:
        return mot.experimental.combine.Default8BitPrunePreserveQuantizeScheme()
    per_tensor = config.weights is WeightGranularity.PER_TENSOR
    return mot.quantization.keras.default_8bit.Default8BitQuantizeScheme(
        disable_per_axis=per_tensor
    )


@register(Technique.EQUALIZE)
def equalize_model(run: Run) -> Compressed:
    model = bridge.clone(run.model)
    pairs = equalize(model)
    if not pairs:
        raise UnsupportedError(
            f"model {run.model.name!r}: no pair of kernel layers to equalize (a Conv2D, "
            "DepthwiseConv2D or Dense followed, through BatchNorm and ReLU at most, by another)"
        )
    if run.config.bias_correction:
        correct_bias(model, run.data.calibration.x)
    return Compressed(model, tuple(pairs))


@register(Technique.DISTILL)
def distill(run: Run) -> Compressed:
    """A student `width` times as wide, trained on labels and the model's soft outputs."""
    import keras

    (x, y), _ = run.labelled("distillation")
    _has_kernels(run)
    if training.single_score(run.model):
        raise UnsupportedError(
            f"model {run.model.name!r}: distillation matches class probabilities and this "
            "model has one output unit; use prune, cluster or qat for a binary classifier"
        )
    student = bridge.clone(run.model, keras, width=run.config.width)
    soft = run.model.predict(x, batch_size=256, verbose=0)
    targets = np.concatenate([y[:, None].astype(np.float32), soft.astype(np.float32)], axis=1)
    loss = distillation_loss(run.config.temperature, run.config.alpha)
    run.fit(student, keras, "distillation", targets=targets, loss=loss)
    return Compressed(student)


def distillation_loss(temperature: float, alpha: float) -> Callable[[Any, Any], Any]:
    """``alpha * CE(labels, student) + (1 - alpha) * T^2 * KL(teacher_T || student_T)`` where
    `y_true` packs the label and the teacher's probabilities, ``_T`` softens by `temperature`."""
    from keras import losses, ops

    def loss(y_true: Any, y_pred: Any) -> Any:
        labels = ops.cast(y_true[:, 0], "int32")
        teacher = ops.log(ops.clip(y_true[:, 1:], 1e-7, 1.0)) / temperature
        student = ops.log(ops.clip(y_pred, 1e-7, 1.0)) / temperature
        target = ops.softmax(teacher)
        kl = ops.sum(target * (ops.log_softmax(teacher) - ops.log_softmax(student)), axis=-1)
        hard = losses.sparse_categorical_crossentropy(labels, y_pred)
        return alpha * hard + (1.0 - alpha) * temperature**2 * kl

    return loss
