"""`Compression`: a compressed model as the session knows it, with its own session."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields
from typing import Any

from workbench.compress.config import CompressConfig
from workbench.compress.equalize import EqualizedPair
from workbench.compress.readback import KernelFacts, gzip_size, kernel_facts
from workbench.qtyping import QuantConfig, VariantResult


@dataclass(frozen=True)
class CompressedResult(VariantResult):
    """A variant of a compressed model, labelled and keyed apart from the original's variant of
    the same `QuantConfig` (so both can stand on one board)."""

    compression: CompressConfig | None = None  # what made the model (always given; None only
    # because the inherited fields before it have defaults)

    @property
    def label(self) -> str:
        return f"{self.compression.label} + {self.config.label}"

    @property
    def key(self) -> str:
        return f"{self.compression.key}:{self.config.key}"

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "compression": self.compression.to_dict()}


@dataclass(frozen=True, eq=False, repr=False)
class Compression:
    """The model `config` made, in a `Session` of its own (own fingerprint, own variant cache),
    so every route, mode and measurement works on it; plus what the technique reported."""

    config: CompressConfig
    session: Any  # workbench.session.Session of the compressed model, same data
    seconds: float  # wall time of the technique (training included)
    equalized: tuple[EqualizedPair, ...] = ()
    pruned: tuple[str, ...] = ()  # layers whose kernels pruning acted on
    clustered: tuple[str, ...] = ()  # layers whose kernels clustering acted on
    _facts: dict[str, tuple[list[KernelFacts], int]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __repr__(self) -> str:
        return f"Compression({self.config.label!r}, {self.session.model.fingerprint})"

    def label(self, quant: QuantConfig) -> str:
        """The board label of one variant, e.g. ``prune 50 % + int8 · per-channel``."""
        return f"{self.config.label} + {quant.label}"

    def evaluate(self, quant: QuantConfig) -> CompressedResult:
        """The compressed model's variant measured (cached by its session), labelled as such."""
        result = self.session.evaluate(quant)
        values = {f.name: getattr(result, f.name) for f in fields(result)}
        return CompressedResult(**values, compression=self.config)

    def kernel_facts(self, quant: QuantConfig) -> list[KernelFacts]:
        """Zeros and distinct values per kernel of the variant's `.tflite` (computed once)."""
        return self._read(quant)[0]

    def gzip_size(self, quant: QuantConfig) -> int:
        """The variant's `.tflite` size after gzip (computed once)."""
        return self._read(quant)[1]

    def _read(self, quant: QuantConfig) -> tuple[list[KernelFacts], int]:
        with self._lock:
            if quant.key not in self._facts:
                tflite = self.session.variant(quant).tflite
                facts = kernel_facts(tflite, self.session.layer_names)
                self._facts[quant.key] = (facts, gzip_size(tflite))
            return self._facts[quant.key]
