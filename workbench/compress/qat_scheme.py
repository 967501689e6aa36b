"""A TF-MOT quantize scheme that keeps the weight quantizers of layers followed by a ReLU.

TF-MOT's default layout transform (`LayerReLUQuantize`) gives every Conv2D, DepthwiseConv2D
and Dense whose output feeds a ReLU a `NoOpQuantizeConfig`, so that no fake-quant sits between
the layer and its ReLU. Without a BatchNorm in between (and the workbench folds BatchNorm
before QAT) that also drops the layer's *weight* quantizers: QAT would train float kernels.
`KernelsQuantized(scheme)` runs the scheme's transform, then gives those layers the scheme's
own weight quantizers back, still without an output quantizer (TFLite fuses the ReLU).

It also quantizes DepthwiseConv2D kernels per channel when the scheme asks for per-axis
weights: TF-MOT 0.8.1's per-axis quantizer takes a kernel's last axis, which for a depthwise
kernel (height, width, channels, multiplier) is the multiplier (1), so its "per-channel" depthwise
kernels get one scale, the per-tensor collapse the `.tflite` file (per channel) never has.

`annotated(model, scheme)` quantize-annotates every layer: with the scheme's config where its
registry has one, else (Rescaling, Normalization, Multiply, an activation such as hard SiLU that
TF-MOT does not know) with `OutputQuantized`, the 8-bit fake-quant of the output that the int8
file's kernel for that op applies. A layer with trainable weights the registry lacks is refused.
"""

from __future__ import annotations

import copy
from typing import Any

from workbench.compress.tfmot import tf_keras, tfmot
from workbench.errors import UnsupportedError

_quantize = tfmot().quantization.keras
_KERNEL_LAYERS = ("Conv2D", "DepthwiseConv2D", "Dense")
# the activations TF-MOT's `Default8BitActivationQuantizeConfig` knows
_ACTIVATIONS = ("relu", "relu6", "swish", "gelu", "linear", "softmax", "sigmoid", "tanh")


class _Nothing(_quantize.QuantizeConfig):
    """Quantizes nothing: the base of the configs below, each overriding what it quantizes."""

    def get_weights_and_quantizers(self, layer: Any) -> list:
        return []

    def set_quantize_weights(self, layer: Any, quantize_weights: Any) -> None:
        return None

    def get_activations_and_quantizers(self, layer: Any) -> list:
        return []

    def set_quantize_activations(self, layer: Any, quantize_activations: Any) -> None:
        return None

    def get_output_quantizers(self, layer: Any) -> list:
        return []

    def get_config(self) -> dict:
        return {}


class OutputQuantized(_Nothing):
    """8-bit asymmetric fake quantization of a layer's output, nothing else (what TF-MOT does for
    Add and Concatenate, and what TFLite's int8 kernels do for a MUL, ADD or HARD_SWISH)."""

    def get_output_quantizers(self, layer: Any) -> list:
        quantizer = _quantize.quantizers.MovingAverageQuantizer
        return [quantizer(num_bits=8, per_axis=False, symmetric=False, narrow_range=False)]


class WeightsOnly(_Nothing):
    """`config`'s weight quantizers, and nothing on the layer's activation or output."""

    def __init__(self, config: Any) -> None:
        self.config = config

    def get_weights_and_quantizers(self, layer: Any) -> Any:
        return self.config.get_weights_and_quantizers(layer)

    def set_quantize_weights(self, layer: Any, quantize_weights: Any) -> None:
        self.config.set_quantize_weights(layer, quantize_weights)


class DepthwisePerChannel(_quantize.quantizers.LastValueQuantizer):
    """Symmetric 8-bit weights with one range per depthwise output channel (channel x
    multiplier, the `.tflite` kernel's last axis), as the per-channel file holds them."""

    def build(self, tensor_shape: Any, name: str, layer: Any) -> dict:
        channels = int(tensor_shape[-2]) * int(tensor_shape[-1])
        return self._add_range_weights(layer, name, True, (channels,))

    def __call__(self, inputs: Any, training: Any, weights: dict, **kwargs: Any) -> Any:
        import tensorflow as tf

        flat = tf.reshape(inputs, (*inputs.shape[:2], 1, -1))  # output channel c * M + m last
        return tf.reshape(super().__call__(flat, training, weights, **kwargs), tf.shape(inputs))


class _Registry(_quantize.QuantizeRegistry):
    """`registry`, with `DepthwisePerChannel` where it gives a depthwise kernel per-axis weights."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry

    def supports(self, layer: Any) -> bool:
        return self.registry.supports(layer)

    def get_quantize_config(self, layer: Any) -> Any:
        config = self.registry.get_quantize_config(layer)
        quantizer = getattr(config, "weight_quantizer", None)
        depthwise = isinstance(layer, tf_keras().layers.DepthwiseConv2D)
        if depthwise and getattr(quantizer, "per_axis", False):
            config = copy.copy(config)  # the registry shares one config per layer type
            config.weight_quantizer = DepthwisePerChannel(
                num_bits=quantizer.num_bits, per_axis=True, symmetric=True, narrow_range=True
            )
        return config


class _Layout(_quantize.QuantizeLayoutTransform):
    def __init__(self, scheme: Any) -> None:
        self.scheme = scheme

    def apply(self, model: Any, layer_quantize_map: dict) -> Any:
        transformed, quantize_map = self.scheme.get_layout_transformer().apply(
            model, layer_quantize_map
        )
        registry = _Registry(self.scheme.get_quantize_registry())
        for layer in transformed.layers:
            config = quantize_map.get(layer.name, {}).get("quantize_config")
            if (
                type(config).__name__ == "NoOpQuantizeConfig"
                and type(layer).__name__ in _KERNEL_LAYERS
                and isinstance(layer, tf_keras().layers.Layer)
                and registry.supports(layer)
            ):
                quantize_map[layer.name]["quantize_config"] = WeightsOnly(
                    registry.get_quantize_config(layer)
                )
        return transformed, quantize_map


class KernelsQuantized(_quantize.QuantizeScheme):
    """`scheme`, with weight quantizers kept on kernel layers that feed a ReLU and depthwise
    kernels quantized per channel where the scheme quantizes weights per axis."""

    def __init__(self, scheme: Any) -> None:
        self.scheme = scheme

    def get_layout_transformer(self) -> Any:
        return _Layout(self.scheme)

    def get_quantize_registry(self) -> Any:
        return _Registry(self.scheme.get_quantize_registry())


def annotated(model: Any, scheme: Any) -> Any:
    """`model` (tf_keras) with every layer quantize-annotated: by `scheme`'s registry where it
    has the layer, else `OutputQuantized` (a weightless layer) or a one-line error."""
    keras, registry = tf_keras(), scheme.get_quantize_registry()

    def known(layer: Any) -> bool:
        activation = getattr(getattr(layer, "activation", None), "__name__", None)
        if isinstance(layer, keras.layers.Activation) and activation not in _ACTIVATIONS:
            return False
        try:  # the collaborative schemes' registries "support" any weightless layer, then
            return registry.supports(layer) and bool(registry.get_quantize_config(layer))
        except ValueError:  # refuse to give it a config
            return False

    def annotate(layer: Any) -> Any:
        if known(layer):
            return _quantize.quantize_annotate_layer(layer)
        if layer.trainable_weights:
            raise UnsupportedError(
                f"layer {layer.name!r}: TF Model Optimization has no quantizer for the weights "
                f"of {type(layer).__name__}; QAT cannot train it (use equalize, prune or cluster, "
                "or post-training int8)"
            )
        return _quantize.quantize_annotate_layer(layer, OutputQuantized())

    return keras.models.clone_model(model, clone_function=annotate)
