"""`Session`: one model, its data, and everything derived from them, each made once.

The session is the one owner of derived data: converted variants, measured results (with and
without per-layer error), their JSON records, what-got-quantized summaries, the inspection, the
float model's outputs and per-sample correctness. Each lives in a `OnceCache` keyed by (model
fingerprint, config.key, data fingerprint), so two threads asking for the same thing build it
once; views and commands ask the session instead of caching their own copies. (The model's
float `.tflite` lives with the model, `ModelSource.derived`, shared by its sessions; the
calibrations with `Calibration`.) Every method returns frozen results; `stats` counts the real
work done, so tests (and curious users) can see cache hits.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.display import Comparison
from workbench.engine.calibration import Calibration
from workbench.engine.quiet import quiet_start, silenced
from workbench.errors import (
    ConversionError,
    DataError,
    RuntimeRefusal,
    UnsupportedError,
    WorkbenchError,
)
from workbench.inspection.report import Inspection
from workbench.once import OnceCache
from workbench.qtyping import (
    Mode,
    QuantConfig,
    Route,
    Unavailable,
    VariantResult,
    standard_configs,
)
from workbench.statistics import paired_difference, proportion

TEST_SAMPLES = 1000  # test samples a variant is measured on by default (Session(test_samples=))
FIRST_SAMPLES = 32  # the first partial result of `evaluate_progressively`
LAYER_ERROR_SAMPLES = 64  # test inputs fed through both interpreters for per-layer error
LAYER_ERROR_BATCHES = 2  # ... or fewer for large inputs: this many evaluation batches of them
COMPARE_THREADS = 2  # variants converted and evaluated at once by `compare`
# what the converter or quantizer raises when it refuses a variant: a result, not a failure
CONVERSION_REFUSALS = (ConversionError, UnsupportedError)


@dataclass(frozen=True, repr=False)
class Variant:
    """One converted model: its configuration, `.tflite` bytes and conversion time."""

    config: QuantConfig
    tflite: bytes
    convert_s: float
    cached: bool = False

    def __repr__(self) -> str:
        return f"Variant({self.config.label!r}, {len(self.tflite)} bytes)"


@dataclass
class SessionStats:
    """Counters of real work (cache hits do not count)."""

    conversions: int = 0
    evaluations: int = 0
    calibrations: int = 0


_SLOW_FIRST = (Mode.FLOAT32, Mode.INT16X8, Mode.DYNAMIC, Mode.FLOAT16)


def _slowest(config: QuantConfig) -> int:
    """Start order in `compare`: the baseline, then the modes slowest to convert or run."""
    return _SLOW_FIRST.index(config.mode) if config.mode in _SLOW_FIRST else len(_SLOW_FIRST)


class Session:
    """A model and its data, with cached conversions and measurements. Thread-safe."""

    def __init__(
        self,
        model: Any = None,
        data: Any = None,
        *,
        weights: str | None = None,
        test_samples: int | None = TEST_SAMPLES,
    ) -> None:
        """`model` as `load_model` takes it (`weights` for a published architecture: imagenet,
        none or a file); image data is resized to the model's input and preprocessed its way.
        Variants are measured on the first `test_samples` of the test split (None: all)."""
        quiet_start()
        from workbench.datasets import load_for_model
        from workbench.models import DEFAULT_MODEL, DEMO_MODELS, load_model

        spec = DEFAULT_MODEL if model is None else model
        if data is None and isinstance(spec, str) and spec in DEMO_MODELS:
            data = DEMO_MODELS[spec]
        with silenced():  # loading TensorFlow prints start-up chatter from C++
            self.model = load_model(spec, weights=weights)
            self._all_data = None if data is None else load_for_model(data, self.model)
        self.data = None if self._all_data is None else self._all_data.head_test(test_samples)
        if self.data is not None and self.model.input_count == 1:
            self.data.check_fits(self.model.input_shape, self.model.num_classes)
        self.calibration = Calibration(
            None if self.data is None else self.data.calibration.x,
            "none" if self.data is None else self.data.fingerprint,
        )
        self._variants: OnceCache[Variant] = OnceCache()
        self._refusals: OnceCache[WorkbenchError] = OnceCache()  # conversions refused, kept
        self._summaries: OnceCache[Any] = OnceCache()
        self._start_measuring()

    def _start_measuring(self) -> None:
        """Empty caches for everything that depends on the test split, and no observers: the
        one list of them, so that `with_test_samples` can never keep a stale one."""
        self._results: OnceCache[VariantResult] = OnceCache()  # without per-layer error
        self._detailed: OnceCache[VariantResult] = OnceCache()  # with per-layer error
        self._records: OnceCache[dict[str, Any]] = OnceCache()
        self._derived: OnceCache[Any] = OnceCache()  # named values of the model and data
        self._outputs: OnceCache[np.ndarray] = OnceCache()  # a variant's outputs on a split
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[VariantResult], None]] = []
        self._stage_callbacks: list[Callable[[QuantConfig, str], None]] = []

    @property
    def test_samples_available(self) -> int:
        """How many samples the whole test split has (variants are measured on `data.test`,
        at most `test_samples` of them)."""
        return 0 if self._all_data is None else len(self._all_data.test)

    @property
    def default_route(self) -> Route:
        """The route when none is named: the LiteRT Quantizer for a `.tflite` file (the TFLite
        converter takes Keras models and SavedModels only), else the TFLite converter."""
        from workbench.models.source import SourceKind

        return Route.LITERT if self.model.kind is SourceKind.TFLITE else Route.CONVERTER

    def with_test_samples(self, test_samples: int | None) -> Session:
        """The same model and data measured on the first `test_samples` test samples (None:
        all): a new session that shares this one's model, calibration, converted variants and
        what-got-quantized summaries, and measures everything that depends on the test split
        afresh."""
        self._require_data("choosing test samples")
        twin = copy.copy(self)
        twin.data = self._all_data.head_test(test_samples)
        twin._start_measuring()
        return twin

    def __repr__(self) -> str:
        data = self.data.name if self.data is not None else "no data"
        return f"Session({self.model.name!r}, {data}, {len(self._variants)} variants)"

    # -- cached building blocks -------------------------------------------------------------

    def _key(self, config: QuantConfig) -> tuple[str, ...]:
        if not isinstance(config, QuantConfig):
            raise UnsupportedError(
                f"config: a {type(config).__name__}; give a QuantConfig, e.g. "
                "QuantConfig(mode='int8')"
            )
        return (self.model.fingerprint, config.key, self.calibration.fingerprint)

    def _once(self, name: str, build: Callable[[], Any]) -> Any:
        return self._derived.get(name, build)

    @property
    def stats(self) -> SessionStats:
        """Conversions, evaluations and calibrations done so far (a snapshot)."""
        return SessionStats(
            conversions=self._variants.builds,
            evaluations=self._results.builds + self._outputs.builds,
            calibrations=self.calibration.calibrations,
        )

    @property
    def layer_names(self) -> list[str]:
        """The quantizable layers (Conv2D, DepthwiseConv2D, Dense), in model order."""
        return list(self._once("layer_names", self._layer_names))

    def _layer_names(self) -> tuple[str, ...]:
        from workbench.engine.routes.layers import model_layer_names

        return tuple(model_layer_names(self.model))

    @property
    def float_bytes(self) -> bytes:
        """The float32 `.tflite` of the model (made once per model, kept with the model)."""
        from workbench.engine.routes import float_tflite

        return float_tflite(self.model)

    def _require_data(self, what: str) -> Any:
        if self.data is None:
            raise DataError(
                f"data: {what} needs data; give data (--data on the command line, data= in "
                "Python): a dataset name, .npz file, image folder or arrays"
            )
        return self.data

    def reference(self, split: str = "test") -> np.ndarray | tuple[np.ndarray, ...]:
        """The float model's outputs on a split (`test` or `validation`; Keras when there is
        one), computed once; for a model with several outputs, one array per output in the
        `.tflite`'s order."""
        x = self._split(split).x
        name = "reference" if split == "test" else f"reference:{split}"
        return self._once(name, lambda: self._reference(x))

    def _split(self, name: str) -> Any:
        data = self._require_data("evaluating")
        if name not in ("test", "validation"):
            raise DataError(f"split: {name!r} is not one of test, validation")
        return getattr(data, name)

    def outputs(self, config: QuantConfig, split: str = "test") -> np.ndarray:
        """The variant's outputs on a split (`test` or `validation`) from the LiteRT interpreter,
        computed once per (config, split)."""
        from workbench.engine.evaluation import run_tflite

        x = self._split(split).x

        def build() -> np.ndarray:
            return run_tflite(self.variant(config).tflite, x)

        return self._outputs.get((split, *self._key(config)), build)

    def cached_outputs(self, config: QuantConfig, split: str = "test") -> np.ndarray | None:
        """The variant's outputs on a split if they were computed before, else None."""
        return self._outputs.peek((split, *self._key(config)))

    def latency(self, config: QuantConfig) -> Any:
        """Single-sample invoke time of the variant on the LiteRT interpreter, measured once."""
        from workbench.engine.evaluation import measure_latency

        sample = self._split("test").x[:1]
        return self._once(
            f"latency:{'/'.join(self._key(config))}",
            lambda: measure_latency(self.variant(config).tflite, sample),
        )

    def _reference(self, x: np.ndarray) -> np.ndarray | tuple[np.ndarray, ...]:
        keras_model = self.model.keras_model
        if keras_model is not None and len(keras_model.outputs) == 1:
            from workbench.datasets.lazy import batches, samples_per_batch
            from workbench.engine.routes.converter import inference_function

            batch = samples_per_batch(tuple(x.shape[1:]))
            # the inference function the converter traced (Keras' predict traces its own, once
            # more for a last batch of another size: seconds at 224x224); silenced() also
            # serializes it with the conversions, which use the same Keras model (a predict
            # running beside from_keras_model fails inside Keras); inputs read from files
            # (LazyInputs) go in chunks
            with silenced():
                function = inference_function(self.model)
                if function is None:
                    parts = [x] if isinstance(x, np.ndarray) else batches(x)
                    scores = [
                        keras_model.predict(_keras_inputs(part), batch_size=batch, verbose=0)
                        for part in parts
                    ]
                else:
                    fixed = keras_model.inputs[0].shape[0]  # a model built with batch_size=
                    scores = [_padded(function, p, fixed) for p in batches(x, fixed or batch)]
            return np.concatenate(scores).astype(np.float32)
        from workbench.engine.evaluation import run_outputs

        outputs = run_outputs(self.float_bytes, x)  # the variants' output order
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def float_correct(self) -> np.ndarray | None:
        """Per test sample, whether the float model's top-1 is right (None unlabelled, or when
        its first output is not a vector of class scores); once."""
        data = self._require_data("evaluating")
        if data.test.y is None:
            return None
        return self._once("float_correct", lambda: self._correct(self.reference(), data.test.y))

    def _correct(self, reference: Any, y: np.ndarray | None) -> np.ndarray | None:
        """Per sample, whether the top-1 of these float outputs is the label `y` (None without
        labels or class scores)."""
        if y is None:
            return None
        from workbench.engine.evaluation import as_outputs, classes_of
        from workbench.metrics import top1_correct

        kind = classes_of(reference, lambda: self.float_bytes, self.data.binary_labels)
        return None if kind is None else top1_correct(as_outputs(reference)[0], y, kind.logit)

    def _first_reference(self, count: int) -> Any:
        """The float model's outputs on the first `count` test samples: a slice of
        `reference()` when that was computed, else those samples alone (kept), so that a
        partial result does not wait for the reference of the whole split."""
        found = self._derived.peek("reference")
        if found is None:
            x = self._split("test").head(count).x
            found = self._once(f"reference:first {count}", lambda: self._reference(x))
        return _head(found, count)

    def float_accuracy(self) -> float | None:
        """Top-1 accuracy of the float model on the labelled test split, else None."""
        correct = self.float_correct()
        return None if correct is None else float(np.mean(correct))

    # -- variants and results ---------------------------------------------------------------

    def variant(self, config: QuantConfig) -> Variant:
        """The converted model for `config`, from the cache when it was made before. A
        conversion the converter or quantizer refuses raises its one-line error, every time
        without converting again (`evaluate` keeps it as an unavailable result instead)."""
        key = self._key(config)
        refused = self._refusals.peek(key)
        if refused is not None:
            raise type(refused)(str(refused))
        made: list[Variant] = []

        def build() -> Variant:
            if config.mode is Mode.FLOAT32:
                made.append(Variant(config, self.float_bytes, 0.0))
            else:
                from workbench.engine.routes import convert

                self._stage(config, "converting")
                start = time.perf_counter()
                tflite = convert(self.model, config, self.calibration)
                made.append(Variant(config, tflite, time.perf_counter() - start))
            return made[0]

        try:
            found = self._variants.get(key, build)
        except CONVERSION_REFUSALS as error:
            refusal = error
            self._refusals.get(key, lambda: refusal)
            raise
        return found if made else dataclasses.replace(found, cached=True)

    def cached_result(self, config: QuantConfig) -> VariantResult | None:
        """The measured result of `config` if it was evaluated before, else None (the one with
        per-layer error when that was measured)."""
        key = self._key(config)
        return self._detailed.peek(key) or self._results.peek(key)

    def evaluate(self, config: QuantConfig, *, layers: bool = False) -> VariantResult:
        """Convert (or reuse) and measure `config`; `layers=True` adds per-layer error."""
        key = self._key(config)
        fresh: list[VariantResult] = []

        def measure() -> VariantResult:
            fresh.append(self._measure(config))
            return fresh[-1]

        result = self._results.get(key, measure)
        if layers:

            def detail() -> VariantResult:
                if config.mode is Mode.FLOAT32:
                    fresh.append(dataclasses.replace(result, layer_errors=()))
                else:
                    fresh.append(self._with_layer_errors(result))
                return fresh[-1]

            result = self._detailed.get(key, detail)
        else:
            result = self._detailed.peek(key) or result
        if fresh:
            with self._lock:
                callbacks = list(self._callbacks)
            for callback in callbacks:
                callback(result)
        return result

    def record(self, config: QuantConfig, *, layers: bool = False) -> dict[str, Any]:
        """The strict-JSON record of `evaluate(config, layers=layers)`, made once per result."""
        result = self.evaluate(config, layers=layers)
        measured = result.layer_errors is not None
        return self._records.get((*self._key(config), measured), result.to_dict)

    def summary(self, config: QuantConfig) -> Any:
        """What got quantized in the variant of `config` (`tflite_file.QuantizationSummary`)
        and where its ops run (`runtime`), read once per variant."""
        from workbench.engine.kernels import runtime_report
        from workbench.tflite_file import quantization_summary

        def build() -> Any:
            tflite = self.variant(config).tflite
            summary = quantization_summary(tflite, self.layer_names)
            return dataclasses.replace(summary, runtime=runtime_report(tflite, self.layer_names))

        return self._summaries.get(self._key(config), build)

    def cached_summary(self, config: QuantConfig) -> Any:
        """The summary of `config` if it was read before, else None (never converts)."""
        return self._summaries.peek(self._key(config))

    def evaluate_progressively(
        self, config: QuantConfig, *, first: int = FIRST_SAMPLES, growth: int = 4
    ) -> Iterator[VariantResult]:
        """Results of `config` on the first `first`, `first * growth`, ... test samples, each
        with its own intervals, then the full result (the one `evaluate` caches and reports
        to `on_result` callbacks). A cached result comes at once, alone. The partial results
        cost at most ``1 / (growth - 1)`` of a full evaluation on top of it; they leave the
        latency out (NaN: it is measured once, for the full result) and use the float
        reference of their own samples only, so the first numbers wait for neither."""
        cached = self._results.peek(self._key(config))
        if cached is None and self.converts(config):
            total = len(self._require_data("evaluating").test)
            count = first
            while count < total:
                partial = self._measure(config, samples=count)
                yield partial
                if partial.missing("evaluation"):  # refused by the runtime: no more tries
                    break
                count *= growth
        yield self.evaluate(config)

    def converts(self, config: QuantConfig) -> bool:
        """Whether `config` converts (converting it now if needed); False when the converter
        or quantizer refuses it."""
        try:
            self.variant(config)
        except CONVERSION_REFUSALS:
            return False
        return True

    def _measure(self, config: QuantConfig, samples: int | None = None) -> VariantResult:
        data = self._require_data("evaluating")
        from workbench.engine.evaluation import measure, refused_scores

        try:
            variant = self.variant(config)
        except CONVERSION_REFUSALS as error:
            return _refused(config, error)
        self._stage(config, "evaluating")
        partial = samples is not None  # the first samples only, without latency
        test = data.test.head(samples) if partial else data.test
        reference = self._first_reference(samples) if partial else self.reference()
        scores, latency = measure(
            variant.tflite, test, reference, latency=not partial, binary=data.binary_labels
        )
        refused = tuple(m for m in (scores, latency) if isinstance(m, Unavailable))
        scores, latency = refused_scores(scores, latency)
        accuracy = drop = None
        float_correct = self._correct(reference, test.y) if partial else self.float_correct()
        if scores.correct is not None and float_correct is not None:
            accuracy = proportion(int(scores.correct.sum()), scores.samples)
            drop = paired_difference(float_correct, scores.correct)
        return VariantResult.measured(
            config,
            size_bytes=len(variant.tflite),
            float_size=len(self.float_bytes),
            scores=scores,
            latency=latency,
            convert_s=variant.convert_s,
            accuracy=accuracy,
            drop=drop,
            unavailable=refused,
        )

    def _with_layer_errors(self, result: VariantResult) -> VariantResult:
        """`result` with per-layer error; what the runtime refuses is kept as `Unavailable`."""
        from workbench.engine.layer_error import measure_layer_errors

        if result.missing("conversion"):
            return dataclasses.replace(result, layer_errors=())
        if self.model.input_count > 1:
            count = self.model.input_count
            refused = Unavailable("layer errors", f"measured for one model input, not {count}")
            unavailable = (*result.unavailable, refused)
            return dataclasses.replace(result, layer_errors=(), unavailable=unavailable)
        data = self._require_data("per-layer error")
        self._stage(result.config, "per-layer error")
        from workbench.datasets.lazy import samples_per_batch

        # at 224x224, 12 images (millions of values per layer) instead of 64: a quarter of the
        # time on the reference kernels, which took most of a compare
        per_batch = samples_per_batch(tuple(data.test.x.shape[1:]))
        x = data.test.x[: min(LAYER_ERROR_SAMPLES, LAYER_ERROR_BATCHES * per_batch)]
        tflite = self.variant(result.config).tflite
        try:
            errors, refused = measure_layer_errors(self.float_bytes, tflite, x, self.layer_names)
        except RuntimeRefusal as refusal:
            errors, refused = (), (Unavailable("layer errors", refusal.reason),)
        unavailable = (*result.unavailable, *refused)
        return dataclasses.replace(result, layer_errors=errors, unavailable=unavailable)

    def compare(self, configs: Iterable[QuantConfig]) -> Comparison:
        """Evaluate several configurations; the float32 baseline comes first. The list shows
        itself as a table in a notebook and has `to_frame()` (a pandas DataFrame).

        Two at a time, the slowest first: TensorFlow conversions hold the GIL and run one at a
        time, while the interpreter releases it, so evaluations overlap conversions.
        """
        configs = [configs] if isinstance(configs, str | QuantConfig) else list(configs)
        for config in configs:
            self._key(config)  # anything but a QuantConfig: one line saying so
        configs = list(dict.fromkeys(configs))
        route = configs[0].route if configs else self.default_route
        if not any(c.mode is Mode.FLOAT32 for c in configs):
            configs.insert(0, QuantConfig(route=route, mode=Mode.FLOAT32))
        configs.sort(key=lambda c: c.mode is not Mode.FLOAT32)
        with ThreadPoolExecutor(COMPARE_THREADS, thread_name_prefix="workbench-compare") as pool:
            started = {c: pool.submit(self.evaluate, c) for c in sorted(configs, key=_slowest)}
            return Comparison(started[config].result() for config in configs)

    def on_result(self, callback: Callable[[VariantResult], None]) -> Callable[[], None]:
        """Call `callback(result)` after each new measurement; returns an unsubscribe function."""
        with self._lock:
            self._callbacks.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return unsubscribe

    def on_stage(self, callback: Callable[[QuantConfig, str], None]) -> Callable[[], None]:
        """Call `callback(config, stage)` when real work on a variant starts ("converting",
        "evaluating", "per-layer error"); returns an unsubscribe function."""
        with self._lock:
            self._stage_callbacks.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                self._stage_callbacks.remove(callback)

        return unsubscribe

    def _stage(self, config: QuantConfig, stage: str) -> None:
        with self._lock:
            callbacks = list(self._stage_callbacks)
        for callback in callbacks:
            callback(config, stage)

    # -- suggestions ------------------------------------------------------------------------

    def most_sensitive_layer(self, route: Route | None = None) -> str:
        """The layer whose int8 output has the largest error in units of its scale, among the
        layers the runtime could measure (`sensitivity` says which it could not)."""
        layer, unmeasured = self.sensitivity(route)
        if layer is None:
            reasons = "; ".join(str(u) for u in unmeasured)
            raise DataError(
                f"model {self.model.name!r}: no quantized layer to rank by error"
                + (f" ({reasons})" if reasons else "")
            )
        return layer

    def sensitivity(self, route: Route | None = None) -> tuple[str | None, tuple[Unavailable, ...]]:
        """The most sensitive int8 layer that could be measured (None if none could) and what
        the runtime refused to measure, so a caller can say the choice skipped those layers."""
        config = QuantConfig(route=route or self.default_route, mode=Mode.INT8)
        result = self.evaluate(config, layers=True)
        known = set(self.layer_names)
        candidates = [e for e in result.layer_errors or () if e.scale > 0 and e.layer in known]
        unmeasured = tuple(u for u in result.unavailable if u.measurement.startswith("layer"))
        if not candidates:
            return None, unmeasured
        return max(candidates, key=lambda e: e.rmse_per_scale).layer, unmeasured

    def standard_configs(self, route: Route | None = None) -> list[QuantConfig]:
        """The six standard variants plus int8 with the most sensitive layer kept float (left
        out when the runtime could measure no layer), on `route` (default: `default_route`)."""
        route = route or self.default_route
        keep, _ = self.sensitivity(route)
        kept = [QuantConfig(route=route, keep_float={keep})] if keep is not None else []
        return [*standard_configs(route), *kept]

    def search_space(self) -> tuple[Any, ...]:
        """Each quantizable layer's precision options and ranking inputs, computed once."""
        from workbench.search import layer_space

        return self._once("search_space", lambda: layer_space(self))

    def search(self, config: Any = None, **options: Any) -> Any:
        """The smallest (or fastest) variant within a drop of float accuracy, with the whole
        Pareto front of what was tried: see `workbench.search.run_search` for `options`
        (progress, cancel, and a Dask client, scheduler or workers to run trials on)."""
        from workbench.search import SearchConfig, run_search

        return run_search(self, config or SearchConfig(), **options)

    def recipe(self, config: QuantConfig) -> list[dict[str, Any]]:
        """The LiteRT Quantizer recipe (its JSON form) that makes `config` from the float file."""
        from workbench.engine.routes import ROUTES

        return ROUTES[Route.LITERT].recipe(self.model, config)

    # -- inspection -------------------------------------------------------------------------

    def inspect(self) -> Inspection:
        """Layer table, weight statistics and (with data) activation ranges, computed once.

        What the model or data cannot give is left empty and `message` says why.
        """
        return self._once("inspection", lambda: _last(self._inspections(None))[0])

    def inspect_progressively(self, *, first: int = FIRST_SAMPLES) -> Iterator[Inspection]:
        """`inspect()` with the activation ranges over the first `first` calibration samples
        (of a Keras model; rounded up to a whole batch) first, then over all of them (the one
        `inspect` caches), from one pass over the data. A cached inspection comes at once,
        alone."""
        found = self._derived.peek("inspection")
        if found is None:
            for found, partial in self._inspections(first):
                if partial:
                    yield found
            done = found
            found = self._once("inspection", lambda: done)
        yield found

    def _inspections(self, first: int | None) -> Iterator[tuple[Inspection, bool]]:
        """Inspections, each with whether its ranges cover only the first samples; the last
        one is complete."""
        from workbench import inspection

        try:
            layers = tuple(inspection.layer_table(self.model))
            weights = tuple(inspection.weight_stats(self.model))
        except WorkbenchError as error:
            yield Inspection(message=f"statistics unavailable: {error}"), False
            return
        if self.data is None:
            message = "no data: activation ranges need calibration data"
            yield Inspection(layers, weights, message=message), False
            return
        if self.model.input_count > 1:
            count = self.model.input_count
            message = f"activation ranges are measured for one model input, not {count}"
            yield Inspection(layers, weights, message=message), False
            return
        x = self.data.calibration.x
        per_sample = int(np.prod(x.shape[1:]))
        try:
            for ranges in inspection.activation_ranges_progressively(self.model, x, first=first):
                done = ranges[0].stats.count // per_sample  # the first range is the input's
                note = ""
                if done < len(x):
                    note = f"activation ranges over the first {done} of {len(x)} calibration "
                    note += "samples; the rest follow"
                report = Inspection(
                    layers, weights, tuple(ranges), activations_measured=True, message=note
                )
                yield report, done < len(x)
        except WorkbenchError as error:
            message = f"activation ranges unavailable: {error}"
            yield Inspection(layers, weights, message=message), False

    # -- compression ------------------------------------------------------------------------

    def compressed(self, config: Any, *, progress: Any = None, cancel: Any = None) -> Any:
        """The model compressed by `config` (a `CompressConfig`), made once and cached, as a
        `Compression` holding a session of its own on the same data. Training reports to
        `progress` and stops when the `cancel` event is set (raising `Cancelled`, caching
        nothing: this session stays exactly as it was)."""
        return self._once(
            f"compressed:{config.key}", lambda: self._compress(config, progress, cancel)
        )

    def _compress(self, config: Any, progress: Any, cancel: Any) -> Any:
        from workbench.compress import compress
        from workbench.compress.result import Compression
        from workbench.models import load_model

        data = self._require_data("compressing")
        start = time.perf_counter()
        made = compress(self.model, config, data, progress=progress, cancel=cancel)
        seconds = time.perf_counter() - start
        name = f"{self.model.name} · {config.label}"
        session = Session(load_model(made.model, name=name), data)
        return Compression(config, session, seconds, made.equalized, made.pruned, made.clustered)


def _last(items: Iterator[Any]) -> Any:
    *_, last = items
    return last


def _padded(function: Any, part: np.ndarray, batch: int | None) -> np.ndarray:
    """`function(part)` for a function of a fixed `batch`: a short part padded with its last
    sample, and the outputs cut back to its rows."""
    count = len(part)
    if batch and count < batch:
        part = np.concatenate([part, np.repeat(part[-1:], batch - count, axis=0)])
    return np.asarray(function(part))[:count]


def _keras_inputs(x: Any) -> Any:
    """What Keras' `predict` takes for `x`: the array, or one array per input."""
    from workbench.datasets.multi import input_arrays

    arrays = input_arrays(x)
    return arrays if len(arrays) > 1 else x


def _head(reference: Any, count: int) -> Any:
    """The first `count` rows of reference outputs (one array, or one per output)."""
    if isinstance(reference, tuple):
        return tuple(output[:count] for output in reference)
    return reference[:count]


def _refused(config: QuantConfig, error: WorkbenchError) -> VariantResult:
    """The result of a variant the converter or quantizer refused: every number unavailable,
    with the refusal's one line as the reason."""
    nan = float("nan")
    return VariantResult(
        config=config,
        size_bytes=0,
        size_ratio=nan,
        accuracy=None,
        accuracy_drop=None,
        agreement=None,
        snr_db=nan,
        cosine=nan,
        latency_ms=nan,
        latency_spread_ms=nan,
        threads=0,
        convert_s=0.0,
        unavailable=(Unavailable("conversion", str(error)),),
    )
