"""Mixed-precision Keras models (float16 or bfloat16 compute, float32 weights: what training on a
GPU with ``mixed_float16`` saves). The TFLite converter has no builtin kernel for a float16
Conv2D, so such a model is measured as the float32 model of the same weights."""

from __future__ import annotations

from typing import Any

from workbench.folding import flat_layers


def mixed(model: Any) -> bool:
    """Whether any layer of `model` (nested models too) computes in another dtype than float32."""
    return any(
        getattr(getattr(layer, "dtype_policy", None), "compute_dtype", "float32") != "float32"
        for layer in flat_layers(model)
    )


def in_float32(model: Any) -> Any:
    """`model` rebuilt to compute in float32 with the same weights, if it is `mixed`; else
    `model` itself."""
    if not mixed(model):
        return model
    import keras

    def float32(layer: Any) -> Any:
        config = layer.get_config()
        if "dtype" in config:  # a layer (a Keras op has no dtype policy)
            config["dtype"] = "float32"
        return type(layer).from_config(config)

    twin = keras.models.clone_model(model, clone_function=float32, recursive=True)
    twin.set_weights(model.get_weights())
    return twin
