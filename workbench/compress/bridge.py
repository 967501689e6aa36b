"""The Keras 3 <-> tf_keras bridge: TF-MOT wraps tf_keras models only.

`clone(model, keras_module)` rebuilds a Keras 3 Sequential or Functional model, layer by layer
and node by node, with the layers of `keras_module` (Keras 3 itself or tf_keras), copying the
weights; with `fold=True` every BatchNormalization the converter would fold disappears into its
Conv2D / DepthwiseConv2D / Dense (which gains a bias), so fake-quantizers see the kernels the
`.tflite` file will hold. `copy_weights(source, target)` brings trained weights back by layer
name, looking inside TF-MOT's wrappers.

What tf_keras lacks is translated: Keras 3 ops with one scalar constant (``x + 3``, ``x / 6``:
MobileNetV3's hard sigmoid) become `Rescaling` layers, ops on two tensors `Add` / `Subtract` /
`Multiply` layers, and the activations ``hard_sigmoid`` / ``hard_silu`` (tf_keras has no hard
SiLU, and its hard sigmoid is another curve) Keras 3's own formulas, registered for TF-MOT.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import numpy as np

from workbench.errors import UnsupportedError
from workbench.folding import kernel_kind, to_tflite_layout
from workbench.models.loading import keras_reason

_BASE_KEYS = {"name", "trainable", "dtype"}


def _functional_graph(model: Any) -> Any:
    """The functional graph behind a Sequential or Functional model, else None."""
    graph = getattr(model, "_functional", None) or model
    return graph if hasattr(graph, "_nodes_by_depth") else None


def _graph(model: Any) -> Any:
    """The functional graph behind a Sequential or Functional model, else a one-line error."""
    graph = _functional_graph(model)
    if graph is None:
        raise UnsupportedError(
            f"model {model.name!r}: a subclassed {type(model).__name__} cannot be cloned for "
            "TF Model Optimization; rebuild it as a keras.Sequential or functional keras.Model"
        )
    return graph


def _trainable_config(layer: Any) -> dict[str, Any]:
    """`layer`'s config with the layer trainable (see `clone`); a Keras op's has no such key."""
    config = layer.get_config()
    if "trainable" in config:
        config["trainable"] = True
    return config


def _tf_keras_layer(layer: Any, keras_module: Any) -> Any:
    """A tf_keras layer made from a Keras 3 layer's config (names and settings kept)."""
    kind = getattr(keras_module.layers, type(layer).__name__, None)
    if kind is None or isinstance(layer, _keras().Model):
        raise UnsupportedError(
            f"layer {layer.name!r}: {type(layer).__name__} has no tf_keras counterpart for TF "
            "Model Optimization; replace it with built-in Keras layers"
        )
    config = _trainable_config(layer)
    config["dtype"] = layer.dtype_policy.name
    activation = config.get("activation")
    if isinstance(activation, str) and activation in _hard_activations(keras_module):
        config["activation"] = _hard_activations(keras_module)[activation]
    accepted = set(inspect.signature(kind.__init__).parameters) | _BASE_KEYS
    kept = {
        key: value
        for key, value in config.items()
        if key in accepted and not (isinstance(value, dict) and "module" in value)
    }
    return _built(layer, lambda: kind(**kept))


@functools.cache
def _hard_activations(keras_module: Any) -> dict[str, Any]:
    """Keras 3's ``hard_sigmoid`` and ``hard_silu`` (alias ``hard_swish``) as `keras_module`
    functions, registered once so that TF-MOT's clones of the model deserialize them."""
    import tensorflow as tf

    register = keras_module.saving.register_keras_serializable("workbench")

    @register
    def hard_sigmoid(x: Any) -> Any:
        return tf.nn.relu6(x + 3.0) / 6.0

    @register
    def hard_silu(x: Any) -> Any:
        return x * tf.nn.relu6(x + 3.0) / 6.0

    return {"hard_sigmoid": hard_sigmoid, "hard_silu": hard_silu, "hard_swish": hard_silu}


def _tf_keras_op(operation: Any, args: Any, keras_module: Any) -> Any:
    """A Keras 3 op (not a layer) applied to `args` as `keras_module` layers TF-MOT can wrap: a
    `Rescaling` for one tensor and one scalar constant, `Add` / `Subtract` / `Multiply` for two
    tensors; a one-line error for any other op."""
    from workbench.fusions import elementwise

    kind = type(operation).__name__
    tensors = [arg for arg in args if hasattr(arg, "_keras_history")]  # not the constants
    steps = elementwise(operation)
    if len(tensors) == 1 and steps is not None and all(_scalar(step) for step in steps):
        scale, offset = 1.0, 0.0
        for step in steps:
            if step.multiplier is not None:
                factor = float(step.multiplier)
                factor = 1.0 / factor if step.divide else factor
                scale, offset = scale * factor, offset * factor
            if step.offset is not None:
                offset += float(step.offset)
        rescaling = keras_module.layers.Rescaling(scale, offset, name=operation.name)
        return rescaling(tensors[0])
    if kind in ("Add", "Subtract", "Multiply") and len(tensors) == len(args) == 2:
        return getattr(keras_module.layers, kind)(name=operation.name)(tensors)
    raise UnsupportedError(
        f"operation {operation.name!r}: the Keras op {kind} has no tf_keras layer for TF Model "
        "Optimization; write it with Keras layers (layers.Add, layers.Multiply, "
        "layers.Rescaling, ...)"
    )


def _scalar(step: Any) -> bool:
    return all(v is None or np.size(v) == 1 for v in (step.multiplier, step.offset))


def _built(layer: Any, build: Any) -> Any:
    """`build()`, a layer made from `layer`'s config; a refusal becomes a one-line error."""
    try:
        return build()
    except (ValueError, TypeError) as error:
        raise UnsupportedError(
            f"layer {layer.name!r}: {type(layer).__name__} cannot be rebuilt layer by layer "
            f"({keras_reason(error)}); replace it with built-in Keras layers"
        ) from None


def _keras() -> Any:
    import keras

    return keras


def _folded(model: Any) -> tuple[dict[str, Any], set[str]]:
    """Per kernel layer followed by a BatchNorm the converter folds, its (kernel, bias) with
    that BatchNorm folded, in Keras layout; and the BatchNorms folded away. Other ops the
    converter folds (a Rescaling before EfficientNet's stem, ``+ 3`` after a layer) stay."""
    from workbench.folding import flat_layers, folded_batch_norm, with_batch_norm

    weights, folded = {}, set()
    for layer in flat_layers(model):
        kind = kernel_kind(layer)
        bn = folded_batch_norm(layer) if kind else None
        if bn is None:
            continue
        kernel, bias = with_batch_norm(layer, kind, bn)
        # to_tflite_layout is a transpose or reshape: invert it by matching the Keras shape
        keras_kernel = _from_tflite_layout(kernel, kind, layer.kernel.shape)
        assert to_tflite_layout(keras_kernel, kind).shape == kernel.shape
        weights[layer.name] = [keras_kernel, bias]
        folded.add(bn.name)
    return weights, folded


def _from_tflite_layout(kernel: np.ndarray, kind: str, shape: tuple[int, ...]) -> np.ndarray:
    if kind == "Conv2D":  # OHWI -> HWIO
        return np.ascontiguousarray(np.transpose(kernel, (1, 2, 3, 0)))
    if kind == "DepthwiseConv2D":
        return kernel.reshape(shape)
    return np.ascontiguousarray(kernel.T)


def clone(
    model: Any, keras_module: Any = None, *, fold: bool = False, width: float | None = None
) -> Any:
    """`model` rebuilt with `keras_module`'s layers (default Keras 3), weights copied; or,
    given `width`, a freshly initialised copy whose Conv2D filters and Dense units (except the
    outputs') are scaled by `width` (a distillation student). Every layer is trainable: a base
    model frozen for transfer learning is compressed too (TF-MOT clusters trainable kernels
    only)."""
    keras = _keras()
    target = keras if keras_module is None else keras_module
    graph = _graph(model)
    folded_weights, folded = _folded(model) if fold else ({}, set())
    inputs = [
        target.Input(shape=tuple(tensor.shape[1:]), name=tensor.name, dtype=tensor.dtype)
        for tensor in graph.inputs
    ]
    made: list[tuple[Any, Any]] = []
    kept = _output_kernels(graph) if width is not None else set()

    def rebuild(graph: Any, inputs: list[Any]) -> list[Any]:
        """The new tensors of `graph`'s outputs, its nodes rebuilt on `inputs`; a nested
        Sequential or Functional model (a base model in transfer learning) is rebuilt in place:
        its layers join the clone."""
        tensors = {id(old): new for old, new in zip(graph.inputs, inputs, strict=True)}
        for depth in sorted(graph._nodes_by_depth, reverse=True):
            for node in graph._nodes_by_depth[depth]:
                layer = node.operation
                if isinstance(layer, keras.layers.InputLayer):
                    continue
                args = keras.tree.map_structure(
                    lambda value: tensors.get(id(value), value), node.arguments.args
                )
                nested = _functional_graph(layer) if isinstance(layer, keras.Model) else None
                if nested is not None:
                    outputs = rebuild(nested, keras.tree.flatten(args))
                elif layer.name in folded:
                    outputs = args[0]
                elif target is not keras and not isinstance(layer, keras.layers.Layer):
                    outputs = _tf_keras_op(layer, args, target)
                else:
                    resize = None if width is None or layer.name in kept else width
                    new_layer = _new_layer(layer, target, layer.name in folded_weights, resize)
                    outputs = _built(layer, lambda new_layer=new_layer, args=args: new_layer(*args))
                    if getattr(layer, "weights", None):
                        made.append((layer, new_layer))
                for old, new in zip(node.output_tensors, keras.tree.flatten(outputs), strict=True):
                    tensors[id(old)] = new
        return [tensors[id(tensor)] for tensor in graph.outputs]

    outputs = rebuild(graph, inputs)
    result = target.Model(inputs, outputs if len(outputs) > 1 else outputs[0], name=model.name)
    for old, new in made if width is None else ():
        new.set_weights(folded_weights.get(old.name) or old.get_weights())
    return result


def _output_kernels(graph: Any) -> set[str]:
    """The kernel layers whose outputs reach a model output through no other kernel layer (a
    student keeps their size: MobileNetV3's classifier is a Conv2D before Flatten and Softmax)."""
    found: set[str] = set()
    stack = [tensor._keras_history.operation for tensor in graph.outputs]
    seen: set[int] = set()
    while stack:
        operation = stack.pop()
        if id(operation) in seen:
            continue
        seen.add(id(operation))
        if kernel_kind(operation) is not None:
            found.add(operation.name)
            continue
        for node in getattr(operation, "_inbound_nodes", []):
            stack.extend(parent.operation for parent in node.parent_nodes)
    return found


def _new_layer(layer: Any, target: Any, gains_bias: bool, width: float | None) -> Any:
    keras = _keras()
    if target is keras:
        config = _trainable_config(layer)
        if gains_bias:
            config["use_bias"] = True
        for size in ("filters", "units"):
            if width is not None and size in config:
                config[size] = max(1, round(config[size] * width))
        shape = list(config.get("target_shape") or ())
        if width is not None and isinstance(layer, keras.layers.Reshape) and -1 not in shape:
            if shape and shape[-1] == layer.input.shape[-1]:  # channels kept (EfficientNet's
                config["target_shape"] = (*shape[:-1], -1)  # squeeze-excite): the student's
        return _built(layer, lambda: type(layer).from_config(config))
    new = _tf_keras_layer(layer, target)
    if gains_bias:
        new.use_bias = True
    return new


def inner(layer: Any) -> Any:
    """The layer a TF-MOT wrapper (quantize, prune, cluster) wraps, else the layer itself."""
    while hasattr(getattr(layer, "layer", None), "weights"):  # QuantizeWrapperV2,
        layer = layer.layer  # PruneLowMagnitude, ClusterWeights all keep it in `.layer`
    return layer


def copy_weights(source: Any, target: Any) -> None:
    """Copy each layer's weights from `source` (tf_keras, maybe wrapped) into `target`.

    Layers are matched by name, weights by the last part of their variable's name: a quantize
    wrapper takes the kernel out of its layer's own weight list but keeps the variable (and
    tf_keras calls a depthwise kernel `depthwise_kernel`, Keras 3 `kernel`).
    """
    sources = {inner(layer).name: layer for layer in source.layers}
    for layer in target.layers:
        if not layer.weights:
            continue
        found = sources.get(layer.name)
        if found is None:
            raise UnsupportedError(f"layer {layer.name!r}: not found in the trained model")
        variables = {v.name.split(":")[0].split("/")[-1]: v for v in found.weights}
        values = []
        for weight in layer.weights:
            variable = variables.get(weight.name, variables.get(f"depthwise_{weight.name}"))
            if variable is None:
                raise UnsupportedError(
                    f"layer {layer.name!r}: no weight {weight.name!r} after training"
                )
            values.append(np.asarray(variable.numpy()))
        layer.set_weights(values)
