"""`CompressConfig`: one compression run as a frozen, hashable, JSON-round-tripping value.

Like `QuantConfig`, it never imports TensorFlow; fields a technique does not use are
normalised away, so two runs that make the same model compare, hash and key equal.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from typing import Any

from workbench.errors import UnsupportedError
from workbench.qtyping import parse_enum

COMPRESS_VERSION = 1


class Technique(StrEnum):
    """What a compression run does to the model."""

    QAT = "qat"  # quantization-aware training (fake-quant in the forward pass)
    PRUNE = "prune"  # magnitude pruning to a target sparsity
    CLUSTER = "cluster"  # weight clustering (shared centroids per kernel)
    PRUNE_QAT = "prune+qat"  # pruning, then sparsity-preserving QAT
    CLUSTER_QAT = "cluster+qat"  # clustering, then cluster-preserving QAT
    PRUNE_CLUSTER_QAT = "prune+cluster+qat"  # all three, each preserving the previous
    DISTILL = "distill"  # a narrower student trained from the model's soft outputs
    EQUALIZE = "equalize"  # cross-layer equalization and bias correction, no training

    @property
    def prunes(self) -> bool:
        return self in (Technique.PRUNE, Technique.PRUNE_QAT, Technique.PRUNE_CLUSTER_QAT)

    @property
    def clusters(self) -> bool:
        return self in (Technique.CLUSTER, Technique.CLUSTER_QAT, Technique.PRUNE_CLUSTER_QAT)

    @property
    def quantization_aware(self) -> bool:
        return self in (
            Technique.QAT,
            Technique.PRUNE_QAT,
            Technique.CLUSTER_QAT,
            Technique.PRUNE_CLUSTER_QAT,
        )

    @property
    def trains(self) -> bool:
        return self is not Technique.EQUALIZE


class CentroidInit(StrEnum):
    """How cluster centroids start (TF-MOT's `CentroidInitialization`)."""

    LINEAR = "linear"
    KMEANS_PLUS_PLUS = "kmeans++"
    DENSITY_BASED = "density-based"


class WeightGranularity(StrEnum):
    """The weight quantizers QAT trains with: the variant the converted file will be."""

    PER_CHANNEL = "per-channel"
    PER_TENSOR = "per-tensor"


@dataclass(frozen=True)
class CompressConfig:
    """One compression run: technique, its parameters, and the training recipe."""

    technique: Technique = Technique.QAT
    sparsity: float = 0.5  # prune: final fraction of zeros in each pruned kernel
    structured: bool = False  # prune: 2:4 structured sparsity instead of unstructured
    clusters: int = 16  # cluster: distinct values per kernel
    centroid_init: CentroidInit = CentroidInit.LINEAR
    weights: WeightGranularity = WeightGranularity.PER_CHANNEL  # qat: weight quantizers
    width: float = 0.5  # distill: student width as a fraction of the teacher's
    temperature: float = 2.0  # distill: softmax temperature of the soft targets
    alpha: float = 0.5  # distill: weight of the label loss (1 - alpha on the teacher's)
    bias_correction: bool = True  # equalize: correct the per-tensor int8 weight error's mean
    epochs: int = 2
    batch_size: int = 64
    learning_rate: float | None = None  # Adam's; None: `default_learning_rate(technique)`
    steps: int | None = None  # stop each epoch after this many batches (None: whole split)
    seed: int = 0
    version: int = COMPRESS_VERSION

    def __post_init__(self) -> None:
        technique = parse_enum(Technique, self.technique, "technique")
        rate = self.learning_rate
        rate = default_learning_rate(technique) if rate is None else rate
        centroid_init = parse_enum(CentroidInit, self.centroid_init, "centroid_init")
        weights = parse_enum(WeightGranularity, self.weights, "weights")
        _check(0.0 < float(self.sparsity) < 1.0, f"sparsity: {self.sparsity} is not in (0, 1)")
        _check(int(self.clusters) >= 2, f"clusters: {self.clusters} is below 2; give 2 or more")
        _check(0.0 < float(self.width) <= 1.0, f"width: {self.width} is not in (0, 1]")
        _check(float(self.temperature) > 0, f"temperature: {self.temperature} is not positive")
        _check(0.0 <= float(self.alpha) <= 1.0, f"alpha: {self.alpha} is not in [0, 1]")
        _check(int(self.epochs) >= 1, f"epochs: {self.epochs} is below 1")
        _check(int(self.batch_size) >= 1, f"batch_size: {self.batch_size} is below 1")
        _check(float(rate) > 0, f"learning_rate: {rate} is not positive")
        _check(self.steps is None or int(self.steps) >= 1, f"steps: {self.steps} is below 1")
        values: dict[str, Any] = {
            "technique": technique,
            "centroid_init": centroid_init,
            "weights": weights,
            "sparsity": float(self.sparsity),
            "structured": bool(self.structured),
            "clusters": int(self.clusters),
            "width": float(self.width),
            "temperature": float(self.temperature),
            "alpha": float(self.alpha),
            "bias_correction": bool(self.bias_correction),
            "epochs": int(self.epochs),
            "batch_size": int(self.batch_size),
            "learning_rate": float(rate),
            "steps": None if self.steps is None else int(self.steps),
            "seed": int(self.seed),
        }
        defaults = CompressConfig.__dataclass_fields__
        unused = _unused(technique)
        for name, value in values.items():
            if name in unused:  # normalised away, so equal runs key equal
                value = defaults[name].default
            object.__setattr__(self, name, value)

    @property
    def label(self) -> str:
        """A short human label, e.g. ``prune 50 %`` or ``cluster 16 + qat``."""
        parts = []
        if self.technique.prunes:
            parts.append(f"prune {self.sparsity:.0%}".replace("%", " %"))
            if self.structured:
                parts[-1] += " 2:4"
        if self.technique.clusters:
            parts.append(f"cluster {self.clusters}")
        if self.technique.quantization_aware:
            per_tensor = self.weights is WeightGranularity.PER_TENSOR
            parts.append("qat per-tensor" if per_tensor else "qat")
        if self.technique is Technique.DISTILL:
            parts.append(f"distill {self.width:g}x width")
        if self.technique is Technique.EQUALIZE:
            parts.append("equalize" + (" + bias correction" if self.bias_correction else ""))
        return " + ".join(parts)

    @property
    def key(self) -> str:
        """A stable 16-hex-digit key, the same in every process."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        for name in ("technique", "centroid_init", "weights"):
            record[name] = record[name].value
        return record

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CompressConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        _check(not unknown, f"compress config: unknown field(s) {', '.join(unknown)}")
        return cls(**data)

    def replace(self, **changes: Any) -> CompressConfig:
        """A copy with some fields changed (validated like a new configuration)."""
        return CompressConfig.from_dict({**self.to_dict(), **changes})


def default_learning_rate(technique: Technique) -> float:
    """Adam's learning rate when none is given: 1e-3 where cluster centroids train (at 1e-4
    they move too little from where they started; measured on shapes_mobilenet), else 1e-4."""
    return 1e-3 if technique.clusters else 1e-4


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise UnsupportedError(message)


def _unused(technique: Technique) -> set[str]:
    """The fields `technique` ignores."""
    unused = set()
    if not technique.prunes:
        unused |= {"sparsity", "structured"}
    if not technique.clusters:
        unused |= {"clusters", "centroid_init"}
    if technique is not Technique.QAT:  # the collaborative schemes quantize per channel
        unused.add("weights")
    if technique is not Technique.DISTILL:
        unused |= {"width", "temperature", "alpha"}
    if technique is not Technique.EQUALIZE:
        unused.add("bias_correction")
    if not technique.trains:
        unused |= {"epochs", "batch_size", "learning_rate", "steps", "seed"}
    return unused
