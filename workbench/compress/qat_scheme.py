"""A TF-MOT quantize scheme that keeps the weight quantizers of layers followed by a ReLU.

TF-MOT's default layout transform (`LayerReLUQuantize`) gives every Conv2D, DepthwiseConv2D
and Dense whose output feeds a ReLU a `NoOpQuantizeConfig`, so that no fake-quant sits between
the layer and its ReLU. Without a BatchNorm in between (and the workbench folds BatchNorm
before QAT) that also drops the layer's *weight* quantizers: QAT would train float kernels.
`KernelsQuantized(scheme)` runs the scheme's transform, then gives those layers the scheme's
own weight quantizers back, still without an output quantizer (TFLite fuses the ReLU).
"""

from __future__ import annotations

from typing import Any

from workbench.compress.tfmot import tf_keras, tfmot

_quantize = tfmot().quantization.keras
_KERNEL_LAYERS = ("Conv2D", "DepthwiseConv2D", "Dense")


class WeightsOnly(_quantize.QuantizeConfig):
    """`config`'s weight quantizers, and nothing on the layer's activation or output."""

    def __init__(self, config: Any) -> None:
        self.config = config

    def get_weights_and_quantizers(self, layer: Any) -> Any:
        return self.config.get_weights_and_quantizers(layer)

    def set_quantize_weights(self, layer: Any, quantize_weights: Any) -> None:
        self.config.set_quantize_weights(layer, quantize_weights)

    def get_activations_and_quantizers(self, layer: Any) -> list:
        return []

    def set_quantize_activations(self, layer: Any, quantize_activations: Any) -> None:
        return None

    def get_output_quantizers(self, layer: Any) -> list:
        return []

    def get_config(self) -> dict:
        return {}


class _Layout(_quantize.QuantizeLayoutTransform):
    def __init__(self, scheme: Any) -> None:
        self.scheme = scheme

    def apply(self, model: Any, layer_quantize_map: dict) -> Any:
        transformed, quantize_map = self.scheme.get_layout_transformer().apply(
            model, layer_quantize_map
        )
        registry = self.scheme.get_quantize_registry()
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
    """`scheme`, with weight quantizers kept on kernel layers that feed a ReLU."""

    def __init__(self, scheme: Any) -> None:
        self.scheme = scheme

    def get_layout_transformer(self) -> Any:
        return _Layout(self.scheme)

    def get_quantize_registry(self) -> Any:
        return self.scheme.get_quantize_registry()
