"""`Session`: one model, its data, the calibration, the float baseline and the variant cache.

Every method returns frozen results; the caches are keyed by (model fingerprint, config.key,
data fingerprint) and guarded so that two threads asking for the same variant convert it once.
`stats` counts the real work done, so tests (and curious users) can see cache hits.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.engine.calibration import Calibration
from workbench.engine.quiet import silenced
from workbench.errors import DataError
from workbench.qtyping import Mode, QuantConfig, Route, VariantResult, standard_configs

LAYER_ERROR_SAMPLES = 64  # test inputs fed through both interpreters for per-layer error
COMPARE_THREADS = 2  # variants converted and evaluated at once by `compare`


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

    def __init__(self, model: Any = None, data: Any = None) -> None:
        from workbench.datasets import load_dataset
        from workbench.models import DEFAULT_MODEL, DEMO_MODELS, load_model

        spec = DEFAULT_MODEL if model is None else model
        if data is None and isinstance(spec, str) and spec in DEMO_MODELS:
            data = DEMO_MODELS[spec]
        with silenced():  # importing TensorFlow prints start-up chatter
            self.model = load_model(spec)
            self.data = None if data is None else load_dataset(data)
        if self.data is not None:
            self.data.check_fits(self.model.input_shape, self.model.num_classes)
        self.calibration = Calibration(
            None if self.data is None else self.data.calibration.x,
            "none" if self.data is None else self.data.fingerprint,
        )
        self._stats = SessionStats()
        self._lock = threading.RLock()
        self._key_locks: dict[tuple[str, ...], threading.Lock] = {}
        self._variants: dict[tuple[str, ...], Variant] = {}
        self._results: dict[tuple[str, ...], VariantResult] = {}
        self._memo: dict[str, Any] = {}
        self._callbacks: list[Callable[[VariantResult], None]] = []

    def __repr__(self) -> str:
        data = self.data.name if self.data is not None else "no data"
        return f"Session({self.model.name!r}, {data}, {len(self._variants)} variants)"

    # -- cached building blocks -------------------------------------------------------------

    def _key(self, config: QuantConfig) -> tuple[str, ...]:
        return (self.model.fingerprint, config.key, self.calibration.fingerprint)

    def _once(self, name: str, build: Callable[[], Any]) -> Any:
        with self._lock_for((name,)):
            if name not in self._memo:
                self._memo[name] = build()
            return self._memo[name]

    def _lock_for(self, key: tuple[str, ...]) -> threading.Lock:
        with self._lock:
            return self._key_locks.setdefault(key, threading.Lock())

    @property
    def stats(self) -> SessionStats:
        """Conversions, evaluations and calibrations done so far (a snapshot)."""
        with self._lock:
            return dataclasses.replace(self._stats, calibrations=self.calibration.calibrations)

    @property
    def layer_names(self) -> list[str]:
        """The quantizable layers (Conv2D, DepthwiseConv2D, Dense), in model order."""
        return self._once("layer_names", self._layer_names)

    def _layer_names(self) -> list[str]:
        from workbench.engine.routes.layers import model_layer_names

        return model_layer_names(self.model)

    @property
    def float_bytes(self) -> bytes:
        """The float32 `.tflite` of the model."""
        return self._once("float_bytes", self._float_bytes)

    def _float_bytes(self) -> bytes:
        from workbench.engine.routes import float_tflite

        return float_tflite(self.model)

    def _require_data(self, what: str) -> Any:
        if self.data is None:
            raise DataError(
                f"{what} needs data; create the Session with data= (a dataset name, .npz file, "
                "image folder or arrays)"
            )
        return self.data

    def reference(self, split: str = "test") -> np.ndarray:
        """The float model's outputs on a split (Keras when there is one), computed once."""
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
        x = self._split(split).x

        def run() -> np.ndarray:
            from workbench.engine.evaluation import run_tflite

            outputs = run_tflite(self.variant(config).tflite, x)
            with self._lock:
                self._stats.evaluations += 1
            return outputs

        return self._once(self._outputs_name(config, split), run)

    def _outputs_name(self, config: QuantConfig, split: str) -> str:
        return f"outputs:{split}:{'/'.join(self._key(config))}"

    def cached_outputs(self, config: QuantConfig, split: str = "test") -> np.ndarray | None:
        """The variant's outputs on a split if they were computed before, else None."""
        with self._lock:
            return self._memo.get(self._outputs_name(config, split))

    def latency(self, config: QuantConfig) -> Any:
        """Single-sample invoke time of the variant on the LiteRT interpreter, measured once."""
        from workbench.engine.evaluation import measure_latency

        sample = self._split("test").x[:1]
        return self._once(
            f"latency:{'/'.join(self._key(config))}",
            lambda: measure_latency(self.variant(config).tflite, sample),
        )

    def _reference(self, x: np.ndarray) -> np.ndarray:
        if self.model.keras_model is not None:
            with silenced():
                scores = self.model.keras_model.predict(x, batch_size=256, verbose=0)
            return np.asarray(scores, dtype=np.float32)
        from workbench.engine.evaluation import run_tflite

        return run_tflite(self.float_bytes, x)

    def float_accuracy(self) -> float | None:
        """Top-1 accuracy of the float model on the labelled test split, else None."""
        data = self._require_data("evaluating")
        if data.test.y is None:
            return None
        return float(np.mean(np.argmax(self.reference(), axis=-1) == data.test.y))

    # -- variants and results ---------------------------------------------------------------

    def variant(self, config: QuantConfig) -> Variant:
        """The converted model for `config`, from the cache when it was made before."""
        key = self._key(config)
        with self._lock_for(("variant", *key)):
            found = self._variants.get(key)
            if found is not None:
                return dataclasses.replace(found, cached=True)
            if config.mode is Mode.FLOAT32:
                tflite, seconds = self.float_bytes, 0.0
            else:
                from workbench.engine.routes import convert

                start = time.perf_counter()
                tflite = convert(self.model, config, self.calibration)
                seconds = time.perf_counter() - start
            made = Variant(config, tflite, seconds)
            with self._lock:
                self._variants[key] = made
                self._stats.conversions += 1
            return made

    def cached_result(self, config: QuantConfig) -> VariantResult | None:
        """The measured result of `config` if it was evaluated before, else None."""
        with self._lock:
            return self._results.get(self._key(config))

    def evaluate(self, config: QuantConfig, *, layers: bool = False) -> VariantResult:
        """Convert (or reuse) and measure `config`; `layers=True` adds per-layer error."""
        key = self._key(config)
        with self._lock_for(("result", *key)):
            result = self.cached_result(config)
            if result is None:
                result = self._measure(config)
            if layers and not result.layer_errors and config.mode is not Mode.FLOAT32:
                result = dataclasses.replace(result, layer_errors=self._layer_errors(config))
            elif result is self.cached_result(config):
                return result
            with self._lock:
                self._results[key] = result
                callbacks = list(self._callbacks)
        for callback in callbacks:
            callback(result)
        return result

    def _measure(self, config: QuantConfig) -> VariantResult:
        data = self._require_data("evaluating")
        from workbench.engine.evaluation import evaluate, measure_latency

        variant = self.variant(config)
        scores = evaluate(variant.tflite, data.test, self.reference())
        latency = measure_latency(variant.tflite, data.test.x[:1])
        float_accuracy = self.float_accuracy()
        with self._lock:
            self._stats.evaluations += 1
        return VariantResult(
            config=config,
            size_bytes=len(variant.tflite),
            size_ratio=len(variant.tflite) / len(self.float_bytes),
            accuracy=scores.accuracy,
            accuracy_drop=(
                None
                if scores.accuracy is None or float_accuracy is None
                else 100.0 * (float_accuracy - scores.accuracy)
            ),
            agreement=scores.agreement,
            snr_db=scores.snr_db,
            cosine=scores.cosine,
            latency_ms=latency.median_ms,
            latency_spread_ms=latency.spread_ms,
            threads=latency.threads,
            convert_s=variant.convert_s,
        )

    def _layer_errors(self, config: QuantConfig) -> tuple[Any, ...]:
        from workbench.engine.layer_error import layer_errors

        data = self._require_data("per-layer error")
        x = data.test.x[:LAYER_ERROR_SAMPLES]
        return layer_errors(self.float_bytes, self.variant(config).tflite, x, self.layer_names)

    def compare(self, configs: Iterable[QuantConfig]) -> list[VariantResult]:
        """Evaluate several configurations; the float32 baseline comes first.

        Two at a time, the slowest first: TensorFlow conversions hold the GIL and run one at a
        time, while the interpreter releases it, so evaluations overlap conversions.
        """
        configs = list(dict.fromkeys(configs))
        route = configs[0].route if configs else Route.CONVERTER
        if not any(c.mode is Mode.FLOAT32 for c in configs):
            configs.insert(0, QuantConfig(route=route, mode=Mode.FLOAT32))
        configs.sort(key=lambda c: c.mode is not Mode.FLOAT32)
        with ThreadPoolExecutor(COMPARE_THREADS, thread_name_prefix="workbench-compare") as pool:
            started = {c: pool.submit(self.evaluate, c) for c in sorted(configs, key=_slowest)}
            return [started[config].result() for config in configs]

    def on_result(self, callback: Callable[[VariantResult], None]) -> Callable[[], None]:
        """Call `callback(result)` after each new measurement; returns an unsubscribe function."""
        with self._lock:
            self._callbacks.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return unsubscribe

    # -- suggestions ------------------------------------------------------------------------

    def most_sensitive_layer(self, route: Route = Route.CONVERTER) -> str:
        """The layer whose int8 output has the largest error in units of its scale."""
        result = self.evaluate(QuantConfig(route=route, mode=Mode.INT8), layers=True)
        known = set(self.layer_names)
        candidates = [e for e in result.layer_errors if e.scale > 0 and e.layer in known]
        if not candidates:
            raise DataError(f"model {self.model.name!r}: no quantized layer to rank by error")
        return max(candidates, key=lambda e: e.rmse_per_scale).layer

    def standard_configs(self, route: Route = Route.CONVERTER) -> list[QuantConfig]:
        """The six standard variants plus int8 with the most sensitive layer kept float."""
        keep = self.most_sensitive_layer(route)
        return [*standard_configs(route), QuantConfig(route=route, keep_float={keep})]

    def search_space(self) -> tuple[Any, ...]:
        """Each quantizable layer's precision options and ranking inputs, computed once."""
        from workbench.search import layer_space

        return self._once("search_space", lambda: layer_space(self))

    def search(self, config: Any = None, **options: Any) -> Any:
        """The smallest (or fastest) variant within a drop of float accuracy, with the whole
        Pareto front of what was tried: see `workbench.search.run_search` for `options`."""
        from workbench.search import SearchConfig, run_search

        return run_search(self, config or SearchConfig(), **options)

    # -- inspection -------------------------------------------------------------------------

    def inspect(self) -> dict[str, Any]:
        """Layer table, weight statistics and (with data) activation ranges, computed once."""
        return self._once("inspection", self._inspect)

    def _inspect(self) -> dict[str, Any]:
        from workbench import inspection

        report: dict[str, Any] = {
            "layers": inspection.layer_table(self.model),
            "weights": inspection.weight_stats(self.model),
        }
        if self.data is not None:
            report["activations"] = inspection.activation_ranges(
                self.model, self.data.calibration.x
            )
        return report
