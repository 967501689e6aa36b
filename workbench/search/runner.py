"""The search: float32 and int8 first, then per-layer precision changes, each a real variant.

Every candidate is a `QuantConfig` with per-layer precisions on the LiteRT route, converted and
cached by the session, run on the validation split by the LiteRT interpreter and compared with
the float model on the same samples. The steps, each spending full validations only where the
ranking from the session's knowledge leaves a question:

1. `float32` and `baseline` (int8 per-channel everywhere).
2. `repair`, only when the baseline is over the drop: the layers with the largest int8 output
   error go to int16x8 (size) or float32 (latency); how many is found by galloping (1, 2, 4,
   ...) then bisecting.
3. Size: `int4`, galloping and bisecting on how many of the int4-capable layers (the least
   estimated error per byte saved first) take int4 weights, then `int4+` adding the rest one at
   a time; then `per-tensor` on the layers whose channel ranges make one scale safe.
   Latency: `per-tensor`, then an `int4` probe that continues only while int4 measures faster.

The best trial within the drop is kept after every trial, so stopping at any point (budget,
cancel, a failure) still returns it; the chosen variant is then reported on the test split.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from workbench.engine.evaluation import as_outputs, classes_of, reason_of
from workbench.errors import DataError, UnsupportedError, WorkbenchError, came_from_interrupt
from workbench.metrics import top1_correct
from workbench.qtyping import LayerPrecision, Mode, QuantConfig, Route
from workbench.search.config import Objective, SearchConfig
from workbench.search.result import SearchResult, TestReport, Trial
from workbench.search.space import LayerInfo, int4_order, protect_order
from workbench.statistics import paired_difference, proportion

Progress = Callable[[Trial, Trial | None], None]
MIN_SAVING = 0.005  # one-at-a-time int4 trials skip layers saving under 0.5 % of the float file


def _first(predicate: Callable[[int], bool], count: int) -> int | None:
    """The smallest k in 1..count with `predicate(k)` (false below it, true from it on), found
    by galloping (1, 2, 4, ...) and then bisecting: few calls when k is small. None if none."""
    known_false, k = 0, 1
    while not predicate(k):
        if k >= count:
            return None
        known_false, k = k, min(2 * k, count)
    while k - known_false > 1:
        middle = (known_false + k) // 2
        if predicate(middle):
            k = middle
        else:
            known_false = middle
    return k


class _Stop(Exception):
    """The budget ran out or the search was cancelled."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def run_search(
    session: Any,
    config: SearchConfig,
    *,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    client: Any = None,
    scheduler: str | None = None,
    workers: int | None = None,
) -> SearchResult:
    """Search `session`'s model for the smallest (or fastest) variant within `config.max_drop`.

    `progress(trial, best)` is called after every trial; setting `cancel` stops the search
    before the next trial. Never raises for a failed trial: the result says what happened.
    With a Dask `client`, a `scheduler` address or a number of `workers` (an embedded
    LocalCluster), every candidate is converted and measured by a worker's session instead of
    this one (`workbench.cluster.search`); the search is the same, and so is its choice.
    """
    if not isinstance(config, SearchConfig):
        raise UnsupportedError(f"config: a {type(config).__name__}; give a SearchConfig")
    data = session.data
    if data is None:
        raise DataError(
            "data: searching needs labelled data; give data (--data on the command line, data= "
            "in Python): a dataset name, .npz file with y, image folder or (x, y)"
        )
    if data.validation.y is None or data.test.y is None:
        raise DataError(
            f"data {data.name!r}: a search needs labelled data to measure accuracy; give labels"
        )
    if client is None and scheduler is None and workers is None:
        return _Search(session, config, progress, cancel).run()
    from workbench.cluster.search import on_cluster

    with on_cluster(session, client=client, scheduler=scheduler, workers=workers) as remote:
        return _Search(remote, config, progress, cancel).run()


class _Search:
    def __init__(self, session: Any, config: SearchConfig, progress: Any, cancel: Any) -> None:
        self.session = session
        self.config = config
        self.progress = progress
        self.cancel = cancel
        self.started = time.perf_counter()
        self.trials: list[Trial] = []
        self.seen: dict[QuantConfig, Trial] = {}
        self.validations = 0
        self.labels = session.data.validation.y
        reference = session.reference("validation")
        kind = classes_of(reference, lambda: session.float_bytes, session.data.binary_labels)
        if kind is None:
            raise DataError(
                f"model {session.model.name!r}: its first output is not class scores; a search "
                "measures top-1 accuracy"
            )
        self.logit = kind.logit  # a binary classifier's single linear score
        self.float_correct = top1_correct(as_outputs(reference)[0], self.labels, self.logit)

    # -- one trial --------------------------------------------------------------------------

    def _check_budget(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise _Stop("cancelled")
        if self.config.budget is not None and self.validations >= self.config.budget:
            raise _Stop("budget")
        seconds = self.config.seconds
        if seconds is not None and time.perf_counter() - self.started >= seconds:
            raise _Stop("budget")

    def trial(self, step: str, layers: dict[str, LayerPrecision] | None = None) -> Trial:
        """Validate the int8 model with these per-layer precisions (None: the float32 model)."""
        config = self._config(layers)
        if config in self.seen:
            return self.seen[config]
        self._check_budget()
        started = time.perf_counter()
        cached = self.session.cached_outputs(config, "validation") is not None
        index = len(self.trials)
        try:
            outputs = self.session.outputs(config, "validation")
            size = len(self.session.variant(config).tflite)
            latency = self.session.latency(config).median_ms
        except WorkbenchError as error:  # a variant the quantizer or runtime refuses is a result
            found = Trial(index, step, config, error=reason_of(error))
        else:
            correct = top1_correct(outputs, self.labels, self.logit)
            drop = paired_difference(self.float_correct, correct)
            found = Trial(
                index,
                step,
                config,
                size_bytes=size,
                latency_ms=latency,
                accuracy=proportion(int(correct.sum()), len(correct)),
                drop=drop,
                within=drop.high <= self.config.max_drop,
                cached=cached,
                seconds=time.perf_counter() - started,
            )
            self.validations += 0 if cached else 1
        self.trials.append(found)
        self.seen[config] = found
        if self.progress is not None:
            self.progress(found, self.best())
        return found

    def _config(self, layers: dict[str, LayerPrecision] | None) -> QuantConfig:
        if layers is None:
            return QuantConfig(route=Route.LITERT, mode=Mode.FLOAT32)
        return QuantConfig(
            route=Route.LITERT,
            mode=Mode.INT8,
            calibration_samples=self.config.calibration_samples,
            layer_precision=layers,
        )

    def best(self) -> Trial | None:
        """The trial within the drop with the smallest objective (then the most accurate)."""
        good = [t for t in self.trials if t.validated and t.within]
        objective = self.config.objective
        return min(good, key=lambda t: (t.objective(objective), -t.accuracy.value), default=None)

    # -- the steps --------------------------------------------------------------------------

    def run(self) -> SearchResult:
        status = "finished"
        try:
            self.layers = self.session.search_space()
            self.trial("float32")
            accepted = self._baseline()
            if accepted is not None:
                if self.config.objective is Objective.SIZE:
                    accepted = self._int4(accepted)
                    self._per_tensor(accepted)
                else:
                    accepted = self._per_tensor(accepted)
                    self._int4_if_faster(accepted)
        except _Stop as stop:
            status = stop.reason
        except KeyboardInterrupt:  # Ctrl-C in a terminal or notebook: keep what was found
            status = "cancelled"
        except Exception as error:  # a failed search still returns what it found
            status = "cancelled" if came_from_interrupt(error) else f"failed: {reason_of(error)}"
        return self._result(status)

    def _baseline(self) -> dict[str, LayerPrecision] | None:
        """int8 everywhere; when over the drop, the smallest repair that is within it."""
        if self.trial("baseline", {}).within:
            return {}
        ranked = protect_order(self.layers, self._int8_errors(), self.config.seed)
        prefer, other = LayerPrecision.INT16X8, LayerPrecision.FLOAT32
        if self.config.objective is Objective.LATENCY:  # int16 runs on reference kernels
            prefer, other = other, prefer

        def protect(count: int, precision: LayerPrecision) -> dict[str, LayerPrecision]:
            return dict.fromkeys(ranked[:count], precision)

        passing = _first(lambda k: self.trial("repair", protect(k, prefer)).within, len(ranked))
        if passing is None:
            return None
        repairs = [protect(passing, prefer)]
        if self.config.objective is Objective.LATENCY:  # float layers: measured, not assumed
            if self.trial("repair", protect(passing, other)).within:
                repairs.append(protect(passing, other))
        objective = self.config.objective
        return min(repairs, key=lambda layers: self.seen[self._config(layers)].objective(objective))

    def _int8_errors(self) -> dict[str, float]:
        """Per-layer int8 output error (RMSE / scale) from the session, measured once there."""
        base = self._config({})
        result = self.session.cached_result(base)
        if result is None or result.layer_errors is None:  # None: not measured
            self._check_budget()
            result = self.session.evaluate(base, layers=True)
            self.validations += 1
        return {error.layer: error.rmse_per_scale for error in result.layer_errors or ()}

    def _int4(self, accepted: dict[str, LayerPrecision]) -> dict[str, LayerPrecision]:
        """Bisect on how many ranked layers take int4, then add the rest one at a time."""
        ranked = [layer for layer in int4_order(self.layers, self.config.seed)
                  if layer.name not in accepted]  # fmt: skip

        def with_int4(layers: list[LayerInfo]) -> dict[str, LayerPrecision]:
            return {**accepted, **dict.fromkeys((x.name for x in layers), LayerPrecision.INT4)}

        if not ranked:
            return accepted
        failing = _first(
            lambda k: not self.trial("int4", with_int4(ranked[:k])).within, len(ranked)
        )
        if failing is None:
            return with_int4(ranked)
        passing = failing - 1
        chosen = ranked[:passing]
        smallest = MIN_SAVING * len(self.session.float_bytes)
        for layer in ranked[failing:]:
            if (
                layer.int4_saving >= smallest
                and self.trial("int4+", with_int4([*chosen, layer])).within
            ):
                chosen.append(layer)
        return with_int4(chosen)

    def _per_tensor(self, accepted: dict[str, LayerPrecision]) -> dict[str, LayerPrecision]:
        """One trial: every int8 layer whose channel ranges allow it gets one weight scale."""
        safe = [x.name for x in self.layers if x.per_tensor_safe and x.name not in accepted]
        if not safe:
            return accepted
        changed = {**accepted, **dict.fromkeys(safe, LayerPrecision.INT8_PER_TENSOR)}
        return changed if self.trial("per-tensor", changed).within else accepted

    def _int4_if_faster(self, accepted: dict[str, LayerPrecision]) -> None:
        """Latency: int4 layers one at a time, continuing only while each measures faster."""
        current = self.best()
        for layer in int4_order(self.layers, self.config.seed):
            if layer.name in accepted:
                continue
            changed = {**accepted, layer.name: LayerPrecision.INT4}
            found = self.trial("int4", changed)
            if not (found.within and current is not None and found.latency_ms < current.latency_ms):
                return
            accepted, current = changed, found

    # -- the result -------------------------------------------------------------------------

    def _result(self, status: str) -> SearchResult:
        best = self.best()
        fields: dict[str, Any] = {}
        if best is not None:
            try:
                fields = self._chosen(best.config)
            except WorkbenchError as error:
                status = f"{status}; the chosen variant could not be reported: {error}"
        return SearchResult(
            config=self.config,
            model=self.session.model.name,
            trials=tuple(self.trials),
            chosen=None if best is None else best.index,
            status=status,
            validations=self.validations,
            seconds=time.perf_counter() - self.started,
            float_accuracy=proportion(int(self.float_correct.sum()), len(self.float_correct)),
            **fields,
        )

    def _chosen(self, config: QuantConfig) -> dict[str, Any]:
        """The chosen file, its recipe and its report on the test split."""
        session = self.session
        labels = session.data.test.y
        float_correct = session.float_correct()
        correct = top1_correct(session.outputs(config, "test"), labels, self.logit)
        recipe = None
        if config.mode is not Mode.FLOAT32:
            recipe = tuple(session.recipe(config))
        return {
            "tflite": session.variant(config).tflite,
            "recipe": recipe,
            "test": TestReport(
                float_accuracy=proportion(int(float_correct.sum()), len(labels)),
                accuracy=proportion(int(correct.sum()), len(labels)),
                drop=paired_difference(float_correct, correct),
            ),
        }
