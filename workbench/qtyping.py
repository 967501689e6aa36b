"""The shared vocabulary: enums and frozen, hashable, JSON-round-tripping configuration types.

Nothing here imports TensorFlow; a `QuantConfig` is cheap to build, hash and compare, and its
`key` is stable across processes so it can name cached variants on disk.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any

from workbench.errors import UnsupportedError
from workbench.statistics import Estimate

CONFIG_VERSION = 1


class Route(StrEnum):
    """Which tool turns the model into a quantized `.tflite`."""

    CONVERTER = "converter"  # tf.lite.TFLiteConverter with optimizations
    LITERT = "litert"  # float .tflite once, then the LiteRT Quantizer


class Mode(StrEnum):
    """What gets quantized, and to what."""

    FLOAT32 = "float32"
    DYNAMIC = "dynamic"  # int8 weights, float activations quantized on the fly
    FLOAT16 = "float16"
    INT8 = "int8"  # full integer: int8 weights and activations
    INT16X8 = "int16x8"  # int8 weights, int16 activations
    INT4 = "int4"  # int4 weight-only (LiteRT route only)

    @property
    def needs_calibration(self) -> bool:
        return self in (Mode.INT8, Mode.INT16X8)

    @property
    def has_granularity(self) -> bool:
        return self in (Mode.DYNAMIC, Mode.INT8, Mode.INT16X8, Mode.INT4)

    @property
    def quantizes_layers(self) -> bool:
        """Whether some layer gets integer weights (so keeping a layer float means something)."""
        return self not in (Mode.FLOAT32, Mode.FLOAT16)


class Granularity(StrEnum):
    """How many scales a weight tensor gets."""

    PER_CHANNEL = "per-channel"
    PER_TENSOR = "per-tensor"


class IOType(StrEnum):
    """The dtype of the model's input and output tensors (full-integer int8 only)."""

    FLOAT32 = "float32"
    INT8 = "int8"
    UINT8 = "uint8"


class LayerPrecision(StrEnum):
    """One layer's precision inside an integer model (LiteRT route per-layer recipes)."""

    FLOAT32 = "float32"  # not quantized (the same as keep_float)
    INT16X8 = "int16x8"  # int8 weights, int16 activations
    INT8 = "int8"  # int8 per-channel weights, int8 activations
    INT8_PER_TENSOR = "int8-per-tensor"  # one weight scale for the whole kernel
    INT4 = "int4"  # int4 per-channel weights, int8 activations (Conv2D and Dense only)


def _base_precision(mode: Mode, granularity: Granularity) -> LayerPrecision:
    """The precision every layer gets from the global mode and granularity."""
    if mode is Mode.INT16X8:
        return LayerPrecision.INT16X8
    per_tensor = granularity is Granularity.PER_TENSOR
    return LayerPrecision.INT8_PER_TENSOR if per_tensor else LayerPrecision.INT8


STANDARD_MODES = (Mode.FLOAT32, Mode.DYNAMIC, Mode.FLOAT16, Mode.INT8, Mode.INT16X8)


def parse_enum(kind: type[Enum], value: Any, argument: str) -> Any:
    try:
        return kind(value)
    except (ValueError, TypeError):
        choices = ", ".join(member.value for member in kind)
        raise UnsupportedError(f"{argument}: {value!r} is not one of {choices}") from None


@dataclass(frozen=True)
class QuantConfig:
    """One variant of a model: route, mode, granularity, I/O type, calibration, float layers.

    Fields a mode does not use are normalised away (float16 has no granularity), so two
    configurations that produce the same file compare, hash and key equal. A bad value, or
    layers kept float in a mode that quantizes none (float32, float16), is an
    `UnsupportedError` naming the field.
    """

    route: Route = Route.CONVERTER
    mode: Mode = Mode.INT8
    granularity: Granularity = Granularity.PER_CHANNEL
    io_type: IOType = IOType.FLOAT32
    calibration_samples: int = 200
    keep_float: frozenset[str] = field(default_factory=frozenset)
    version: int = CONFIG_VERSION
    # per-layer precision over the global mode: sorted (layer, precision) pairs; a dict works
    layer_precision: tuple[tuple[str, LayerPrecision], ...] = ()

    def __post_init__(self) -> None:
        route = parse_enum(Route, self.route, "route")
        mode = parse_enum(Mode, self.mode, "mode")
        granularity = parse_enum(Granularity, self.granularity, "granularity")
        io_type = parse_enum(IOType, self.io_type, "io_type")
        keep_float = _layer_names(self.keep_float)
        samples = self.calibration_samples
        least = 1 if mode.needs_calibration else 0  # records of other modes say 0
        whole = isinstance(samples, numbers.Integral) and not isinstance(samples, bool)
        if not whole or samples < least:
            raise UnsupportedError(
                f"calibration_samples: {samples!r} is not a positive whole number of samples"
            )
        if mode is Mode.INT4 and route is not Route.LITERT:
            raise UnsupportedError("mode int4: weight-only int4 exists on the litert route only")
        if io_type is not IOType.FLOAT32 and mode is not Mode.INT8:
            raise UnsupportedError(
                f"io_type {io_type.value}: integer model I/O needs mode int8, not {mode.value}"
            )
        if keep_float and not mode.quantizes_layers:
            raise UnsupportedError(
                f"keep_float: mode {mode.value} quantizes no layer to integers, so there is "
                "nothing to keep float; drop keep_float or choose an integer mode"
            )
        if not mode.has_granularity:
            granularity = Granularity.PER_CHANNEL
        calibration_samples = int(samples) if mode.needs_calibration else 0
        layer_precision, keep_float = _layer_precision(
            self.layer_precision, keep_float, route, mode, granularity
        )
        for name, value in (
            ("route", route),
            ("mode", mode),
            ("granularity", granularity),
            ("io_type", io_type),
            ("keep_float", keep_float),
            ("calibration_samples", calibration_samples),
            ("layer_precision", layer_precision),
        ):
            object.__setattr__(self, name, value)

    @property
    def label(self) -> str:
        """A short human label, e.g. ``int8 · per-tensor · 2 layers float``."""
        parts = [self.mode.value]
        if self.mode.has_granularity:
            parts.append(self.granularity.value)
        if self.io_type is not IOType.FLOAT32:
            parts.append(f"{self.io_type.value} I/O")
        counts = [(LayerPrecision.FLOAT32, len(self.keep_float))]
        for precision in LayerPrecision:
            counts.append((precision, sum(p is precision for _, p in self.layer_precision)))
        for precision, count in counts:
            if count:
                name = "float" if precision is LayerPrecision.FLOAT32 else precision.value
                parts.append(f"{count} layer{'s' if count > 1 else ''} {name}")
        if self.route is Route.LITERT:
            parts.append("litert")
        return " · ".join(parts)

    @property
    def key(self) -> str:
        """A stable 16-hex-digit key for caches, the same in every process."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def layers(self) -> dict[str, LayerPrecision]:
        """The layers whose precision differs from the global mode (keep-float ones included)."""
        found = {name: LayerPrecision.FLOAT32 for name in self.keep_float}
        return dict(sorted({**found, **dict(self.layer_precision)}.items()))

    def to_dict(self) -> dict[str, Any]:
        record = {
            "version": self.version,
            "route": self.route.value,
            "mode": self.mode.value,
            "granularity": self.granularity.value,
            "io_type": self.io_type.value,
            "calibration_samples": self.calibration_samples,
            "keep_float": sorted(self.keep_float),
        }
        if self.layer_precision:  # only when used, so every other key stays what it was
            record["layer_precision"] = {name: p.value for name, p in self.layer_precision}
        return record

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QuantConfig:
        """The configuration a `to_dict` record, or a result record of `compare --json`,
        describes (its measured numbers are skipped); unknown keys are an error."""
        if not isinstance(data, Mapping):
            raise UnsupportedError(f"config record: {type(data).__name__} is not a mapping")
        fields = {name: value for name, value in data.items() if name in _CONFIG_KEYS}
        unknown = sorted(str(name) for name in data if name not in _CONFIG_KEYS | RESULT_KEYS)
        if unknown:
            raise UnsupportedError(
                f"config record: unknown key {', '.join(map(repr, unknown))}; "
                f"a configuration has {', '.join(sorted(_CONFIG_KEYS))}"
            )
        version = fields.pop("version", CONFIG_VERSION)
        if version != CONFIG_VERSION:
            raise UnsupportedError(
                f"config record: version {version!r} is not {CONFIG_VERSION}, the version this "
                "workbench reads"
            )
        return cls(**fields)

    def replace(self, **changes: Any) -> QuantConfig:
        """A copy with some fields changed (validated like a new configuration)."""
        return QuantConfig.from_dict({**self.to_dict(), **changes})


_CONFIG_KEYS = frozenset(
    (
        "version", "route", "mode", "granularity", "io_type", "calibration_samples", "keep_float",
        "layer_precision",
    )
)  # fmt: skip


def _layer_names(names: Any) -> frozenset[str]:
    """keep_float as a frozenset of layer names; one-line errors for anything else."""
    if isinstance(names, str):
        raise UnsupportedError("keep_float: give a collection of layer names, not one string")
    if not isinstance(names, Iterable):
        raise UnsupportedError(
            f"keep_float: {type(names).__name__} is not a collection of layer names"
        )
    names = tuple(names)
    wrong = [name for name in names if not isinstance(name, str)]
    if wrong:
        raise UnsupportedError(f"keep_float: {wrong[0]!r} is not a layer name (a string)")
    return frozenset(names)


def _layer_precision(
    given: Any, keep_float: frozenset[str], route: Route, mode: Mode, granularity: Granularity
) -> tuple[tuple[tuple[str, LayerPrecision], ...], frozenset[str]]:
    """Validated, sorted per-layer precisions; float32 ones join keep_float, base ones go."""
    pairs = list(given.items()) if isinstance(given, dict) else list(given)
    if not pairs:
        return (), keep_float
    if route is not Route.LITERT or mode not in (Mode.INT8, Mode.INT16X8):
        raise UnsupportedError(
            "layer_precision: per-layer precision needs route litert and mode int8 or int16x8, "
            f"not {route.value} {mode.value}"
        )
    base = _base_precision(mode, granularity)
    chosen: dict[str, LayerPrecision] = {}
    for name, value in pairs:
        precision = parse_enum(LayerPrecision, value, f"layer_precision[{name!r}]")
        if name in chosen or (name in keep_float and precision is not LayerPrecision.FLOAT32):
            raise UnsupportedError(f"layer_precision: layer {name!r} is given two precisions")
        chosen[str(name)] = precision
    keep_float |= {name for name, p in chosen.items() if p is LayerPrecision.FLOAT32}
    kept = {n: p for n, p in chosen.items() if p not in (LayerPrecision.FLOAT32, base)}
    return tuple(sorted(kept.items())), keep_float


def standard_configs(route: Route = Route.CONVERTER) -> list[QuantConfig]:
    """float32, dynamic, float16, int8 per-channel, int8 per-tensor and int16x8 on one route."""
    return [
        QuantConfig(route=route, mode=Mode.FLOAT32),
        QuantConfig(route=route, mode=Mode.DYNAMIC),
        QuantConfig(route=route, mode=Mode.FLOAT16),
        QuantConfig(route=route, mode=Mode.INT8, granularity=Granularity.PER_CHANNEL),
        QuantConfig(route=route, mode=Mode.INT8, granularity=Granularity.PER_TENSOR),
        QuantConfig(route=route, mode=Mode.INT16X8),
    ]


@dataclass(frozen=True)
class LayerError:
    """Error of one quantized layer's output against float, attributed to a Keras layer."""

    layer: str  # Keras layer name (or the TFLite tensor name for a bare .tflite)
    tensor: str  # TFLite tensor the numbers were read from
    rmse: float
    scale: float  # quantization scale of that output tensor (0.0 when it stayed float)
    rmse_per_scale: float  # rmse / scale; an ideally quantized layer sits near 1/sqrt(12)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Unavailable:
    """A measurement the runtime refused, kept as a value: what it was and the runtime's reason.

    `measurement` is "conversion" (the converter or quantizer refused the variant: nothing else
    was measured), "evaluation", "latency", "layer errors" or "layer <name>"; `reason` is the
    runtime's (or the converter's) explanation in one line.
    """

    measurement: str
    reason: str

    def __str__(self) -> str:
        return f"{self.measurement} unavailable: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class OutputAgreement:
    """How closely one model output follows the float model's: for outputs that are not class
    scores (landmarks, masks, embeddings, boxes) this is the measurement, in place of accuracy."""

    name: str  # the output tensor's name in the .tflite
    shape: tuple[int, ...]  # per sample
    classes: bool  # a (batch, classes) score vector: top-1 agreement and accuracy apply
    snr_db: float
    cosine: float  # mean over samples
    max_abs_error: float

    def to_dict(self) -> dict[str, Any]:
        """Strict JSON: an infinite SNR (identical outputs) is written as null."""
        snr = self.snr_db if math.isfinite(self.snr_db) else None
        return {**self.__dict__, "shape": list(self.shape), "snr_db": snr}

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> OutputAgreement:
        snr = math.inf if record["snr_db"] is None else float(record["snr_db"])
        return cls(**{**record, "shape": tuple(record["shape"]), "snr_db": snr})


@dataclass(frozen=True)
class VariantResult:
    """The measured numbers of one variant; `to_dict` gives the JSON record of `compare`.

    `accuracy_estimate` is the accuracy in percent with its Wilson 95 % interval;
    `drop_estimate` the paired difference float model minus this variant on the same samples, in
    points, with its 95 % interval; `samples` how many test samples they rest on.
    `layer_errors` is None until per-layer error is measured (`evaluate(..., layers=True)`);
    an empty tuple means it was measured and no layer could be compared.
    """

    config: QuantConfig
    size_bytes: int
    size_ratio: float  # size / float32 size (NaN when the conversion was refused)
    accuracy: float | None  # None for unlabelled data
    accuracy_drop: float | None  # float Keras accuracy minus this, in points (percent)
    agreement: float | None  # top-1 agreement with float, 0..1; None when not class scores
    snr_db: float  # first output's SNR against float (inf: identical outputs)
    cosine: float  # first output's mean cosine similarity against float
    latency_ms: float  # median of single-sample invokes
    latency_spread_ms: float  # interquartile range of the same
    threads: int
    convert_s: float  # seconds spent converting (0.0 when it came from the cache)
    layer_errors: tuple[LayerError, ...] | None = None  # None: not measured
    accuracy_estimate: Estimate | None = None  # percent, Wilson interval; None unlabelled
    drop_estimate: Estimate | None = None  # points, paired with the float model
    samples: int = 0  # test samples measured
    outputs: tuple[OutputAgreement, ...] = ()  # every output, in the file's order
    unavailable: tuple[Unavailable, ...] = ()  # what was refused (numbers left NaN)

    @property
    def label(self) -> str:
        return self.config.label

    @property
    def key(self) -> str:
        """What tells this row from the others on a board (the config's key)."""
        return self.config.key

    def missing(self, measurement: str) -> Unavailable | None:
        """Why `measurement` ("conversion", "evaluation", "latency", "layer errors") is
        unavailable, or None; a refused conversion leaves every measurement unavailable (its
        refusal is the reason)."""
        found = (u for u in self.unavailable if u.measurement in (measurement, "conversion"))
        return next(found, None)

    def to_dict(self) -> dict[str, Any]:
        """A strict-JSON record (`json.dumps(..., allow_nan=False)` works): an infinite SNR is
        written as null with `outputs_identical` true."""
        finite_snr = math.isfinite(self.snr_db)
        return {
            "label": self.label,
            "key": self.key,
            **self.config.to_dict(),
            "size_bytes": self.size_bytes,
            "size_ratio": _finite_or_none(self.size_ratio),
            "accuracy": self.accuracy,
            "accuracy_drop": self.accuracy_drop,
            "agreement": self.agreement,
            "snr_db": self.snr_db if finite_snr else None,
            "outputs_identical": self.snr_db == math.inf,
            "cosine": _finite_or_none(self.cosine),
            "latency_ms": _finite_or_none(self.latency_ms),
            "latency_spread_ms": _finite_or_none(self.latency_spread_ms),
            "threads": self.threads,
            "convert_s": self.convert_s,
            "samples": self.samples,
            "accuracy_estimate": _estimate_record(self.accuracy_estimate),
            "drop_estimate": _estimate_record(self.drop_estimate),
            "layer_errors_measured": self.layer_errors is not None,
            "layer_errors": (
                None if self.layer_errors is None else [e.to_dict() for e in self.layer_errors]
            ),
            "outputs": [output.to_dict() for output in self.outputs],
            "unavailable": {u.measurement: u.reason for u in self.unavailable},
        }

    @classmethod
    def measured(
        cls,
        config: QuantConfig,
        *,
        size_bytes: int,
        float_size: int,
        scores: Any,
        latency: Any,
        convert_s: float,
        accuracy: Estimate | None = None,
        drop: Estimate | None = None,
        unavailable: tuple[Unavailable, ...] = (),
    ) -> VariantResult:
        """The result of a variant of `size_bytes` (the float file: `float_size`) from its
        measurements: `scores` an `engine.evaluation.Evaluation` (one process, or combined from
        shards' sums), `latency` an `engine.evaluation.Latency`, the accuracy and paired drop
        estimates (None unlabelled) and what the runtime refused."""
        return cls(
            config=config,
            size_bytes=size_bytes,
            size_ratio=size_bytes / float_size,
            accuracy=scores.accuracy,
            accuracy_drop=None if drop is None else drop.value,
            agreement=scores.agreement,
            snr_db=scores.snr_db,
            cosine=scores.cosine,
            latency_ms=latency.median_ms,
            latency_spread_ms=latency.spread_ms,
            threads=latency.threads,
            convert_s=convert_s,
            outputs=scores.outputs,
            unavailable=unavailable,
            accuracy_estimate=accuracy,
            drop_estimate=drop,
            samples=scores.samples,
        )

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> VariantResult:
        """The result a `to_dict` record (e.g. one of `compare --json`) describes."""
        try:
            snr = record["snr_db"]
            if snr is None:
                snr = math.inf if record.get("outputs_identical") else math.nan
            errors = record.get("layer_errors")
            return cls(
                config=QuantConfig.from_dict(record),
                **{name: record[name] for name in _RESULT_NUMBERS},
                **{name: _nan_if_none(record[name]) for name in _REFUSABLE_NUMBERS},
                snr_db=float(snr),
                layer_errors=None if errors is None else tuple(LayerError(**e) for e in errors),
                accuracy_estimate=_estimate(record.get("accuracy_estimate")),
                drop_estimate=_estimate(record.get("drop_estimate")),
                samples=int(record.get("samples", 0)),
                outputs=tuple(OutputAgreement.from_dict(o) for o in record.get("outputs", ())),
                unavailable=tuple(
                    Unavailable(measurement, reason)
                    for measurement, reason in record.get("unavailable", {}).items()
                ),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise UnsupportedError(
                f"result record: {error!r} is missing or malformed; give a record written by "
                "VariantResult.to_dict (compare --json)"
            ) from None


_RESULT_NUMBERS = (
    "size_bytes",
    "accuracy",
    "accuracy_drop",
    "agreement",
    "threads",
    "convert_s",
)
# NaN (null in JSON) when refused
_REFUSABLE_NUMBERS = ("size_ratio", "cosine", "latency_ms", "latency_spread_ms")
# Keys of a result record that are not configuration fields (QuantConfig.from_dict skips them).
RESULT_KEYS = frozenset(
    {
        "label",
        "key",
        *_RESULT_NUMBERS,
        *_REFUSABLE_NUMBERS,
        "snr_db",
        "outputs_identical",
        "samples",
        "accuracy_estimate",
        "drop_estimate",
        "layer_errors_measured",
        "layer_errors",
        "outputs",
        "unavailable",
    }
)


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _nan_if_none(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _estimate_record(estimate: Estimate | None) -> dict[str, Any] | None:
    return None if estimate is None else estimate.to_dict()


def _estimate(record: dict[str, Any] | None) -> Estimate | None:
    return None if record is None else Estimate(**record)
