"""Conversion routes: small adapters behind one signature, in a registry filled at import.

`convert(model, config, calibration)` looks the route up in `ROUTES`; nothing else in the
code knows which tool made the bytes.
"""

from __future__ import annotations

from typing import Protocol

from workbench.engine.calibration import Calibration
from workbench.models.source import ModelSource
from workbench.qtyping import QuantConfig, Route


class RouteAdapter(Protocol):
    """Turns a model into `.tflite` bytes for one configuration."""

    def float_tflite(self, model: ModelSource) -> bytes: ...

    def convert(
        self, model: ModelSource, config: QuantConfig, calibration: Calibration
    ) -> bytes: ...


ROUTES: dict[Route, RouteAdapter] = {}


def register(route: Route):
    """Class decorator: an instance of the class becomes the adapter of `route`."""

    def decorate(cls):
        ROUTES[route] = cls()
        return cls

    return decorate


def convert(model: ModelSource, config: QuantConfig, calibration: Calibration) -> bytes:
    """The `.tflite` bytes of `model` quantized as `config` says."""
    return ROUTES[config.route].convert(model, config, calibration)


def float_tflite(model: ModelSource) -> bytes:
    """The float32 `.tflite` of `model` (cached per model fingerprint)."""
    return ROUTES[Route.CONVERTER].float_tflite(model)


from workbench.engine.routes import converter, litert  # noqa: E402, F401  (fill the registry)

__all__ = ["ROUTES", "RouteAdapter", "convert", "float_tflite", "register"]
