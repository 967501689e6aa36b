"""Live conversion: turns state changes into background jobs and their results into state.

A change of `state.config` is answered at once from the session's cache when it can be;
otherwise one job converts, evaluates, reads what got quantized and the per-layer error, and
delivers each piece as soon as it exists (the numbers first). A newer request supersedes it.
The first job of a session also measures the float32 baseline and the range statistics.
After an int8 (or int16x8) converter result is on screen, a third worker prepares the LiteRT
route whenever the other two are idle (its one-time float file and calibration, and its
float32 baseline), so the first LiteRT variant is as quick as later ones; it never supersedes
a request, and before each of its steps it waits for any that came in.
"""

from __future__ import annotations

import logging
import weakref
from pathlib import Path
from typing import Any

from workbench.errors import DataError, WorkbenchError
from workbench.inspection.report import Inspection
from workbench.qtyping import Mode, QuantConfig, Route, VariantResult
from workbench.widgets.state import AppState
from workbench.widgets.tasks import Job, TaskState, TaskStatus, Worker

log = logging.getLogger(__name__)


class LiveController:
    """Owns the worker; observes `state.config`; never computes on the caller's thread."""

    def __init__(self, state: AppState, *, layer_errors: bool = True) -> None:
        self.state = state
        self.layer_errors = layer_errors
        # Per-layer error and range statistics run on a second worker, so a new request never
        # waits behind them (each worker supersedes only its own jobs); all three workers
        # deliver to the same screen under the state's lock.
        self.worker = Worker(self._on_status, state.lock)
        self.details = Worker(self._on_detail_status, state.lock)
        self.warmup = Worker(self._on_warmup_status, state.lock)
        self._warmed: weakref.WeakKeyDictionary[Any, set[int]] = weakref.WeakKeyDictionary()
        self._before_partial: VariantResult | None = None  # the full result a partial replaced
        state.observe(self._on_config, "config")
        state.observe(lambda change: self.resample(change["new"]), "test_samples")

    # --- requests (called on the kernel thread; they only look up caches and submit) ---

    def refresh(self) -> int:
        """Measure (or show from cache) the current configuration."""
        return self.request(self.state.config)

    def request(self, config: QuantConfig) -> int:
        session = self.state.session
        if session is None:
            return self.worker.generation
        cached = self._cached(session, config)
        if cached is not None:
            result, summary, baseline = cached

            def apply() -> None:
                if self.state.baseline != baseline:
                    self._apply_baseline(baseline, session.cached_summary(baseline.config))
                self._apply_result(session, result, summary)

            generation = self.worker.supersede(
                apply, TaskStatus(TaskState.DONE, label=config.label, message="from cache")
            )
            self._submit_details(session, result)
            return generation
        self._cancel_details()  # details of an older variant would only compete for the CPU
        return self.worker.submit(lambda job: self._measure(job, session, config), config.label)

    def load(self, model: Any, data: Any = None, *, name: str = "") -> int:
        """Open a model (and data) in the background and then measure the current config."""
        return self.worker.submit(lambda job: self._load(job, model, data), f"loading {name}")

    def cancel(self) -> None:
        """Stop what the request and detail workers are doing (an idle one keeps its status)."""
        if self.worker.status.state.busy:
            self.worker.cancel(self._drop_partial)
        self._cancel_details()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the workers have finished their newest jobs; False on timeout."""
        return all(worker.wait(timeout) for worker in (self.worker, self.details, self.warmup))

    def close(self, timeout: float = 0.0) -> None:
        """Cancel all work; the workers' threads end after their current step."""
        for worker in (self.worker, self.details, self.warmup):
            worker.close()
        for worker in (self.worker, self.details, self.warmup):
            worker.join(timeout)

    # --- worker side ---

    def _on_status(self, status: TaskStatus) -> None:
        self.state.status = status

    def _on_detail_status(self, status: TaskStatus) -> None:
        self.state.detail_status = status

    def _on_warmup_status(self, status: TaskStatus) -> None:
        self.state.warmup_status = status

    def _on_config(self, change: dict[str, Any]) -> None:
        self.request(change["new"])

    def _cached(
        self, session: Any, config: QuantConfig
    ) -> tuple[VariantResult, Any, VariantResult] | None:
        """The result, summary and baseline of `config`, if all three are at hand."""
        result = session.cached_result(config)
        summary = session.cached_summary(config)
        baseline = session.cached_result(self.state.baseline_config())
        if result is None or summary is None or baseline is None:
            return None
        if session.cached_summary(baseline.config) is None:
            return None
        return result, summary, baseline

    def _cancel_details(self) -> None:
        """Stop the detail worker with a status saying so (never leave it "evaluating")."""
        if self.details.status.state.busy:
            self.details.cancel()

    def _load(self, job: Job, model: Any, data: Any) -> None:
        from workbench.session import Session

        job.step(TaskState.CONVERTING, "loading the model")
        try:
            session = (
                model
                if isinstance(model, Session)
                else Session(model, data, test_samples=self.state.test_samples)
            )
        except Exception as error:
            # The open model stays; measure the config this load superseded (a toggle clicked
            # just before), so the board does not keep a variant the controls no longer show,
            # then fail with the load's message.
            current = self.state.session
            if current is not None and current.data is not None:
                self._measure(job, current, self.state.config)
            if isinstance(error, WorkbenchError):
                raise WorkbenchError(_by_name(str(error), model, data)) from error
            raise
        source = session.model

        def apply() -> None:
            with self.state.hold_trait_notifications():
                self.state.session = session
                self.state.model_name = source.name
                self.state.dataset_name = session.data.name if session.data is not None else ""
                # What the Data menu shows and a model switch keeps; None: the model's own.
                opened = isinstance(model, Session) and session.data is not None
                self.state.data_source = session.data.name if opened else data
                self.state.result = None
                self.state.partial = False
                self.state.baseline = None
                self.state.results = {}
                self.state.clear_pins()  # variants (and compressed ones) of the old model
                self.state.summary = None
                self.state.float_summary = None
                self.state.inspection = None
                self.state.selected_layer = ""
                # Keep-float names of the old model mean nothing for the new one, and a .tflite
                # takes the LiteRT route only; a changed config submits its own job, which
                # supersedes this one.
                keep = self.state.config.keep_float & set(session.layer_names)
                config = self.state.config.replace(keep_float=sorted(keep))
                if session.default_route is Route.LITERT:
                    config = config.replace(route=Route.LITERT)
                self.state.config = config

        if job.deliver(apply) and session.data is None:  # weight ranges need no data
            config = self.state.config
            self.details.submit(lambda job: self._details(job, session, config, False), "ranges")
        self._measure(job, session, self.state.config)

    def _measure(self, job: Job, session: Any, config: QuantConfig) -> None:
        if session.data is None:
            raise DataError(
                f"model {session.model.name!r} has no data to measure variants with: choose a "
                "dataset under Data, upload a .npz with x (and y) arrays or a .zip of an image "
                "folder (one sub-folder per class)"
            )
        baseline = self.state.baseline_config()
        if self.state.baseline is None or self.state.baseline.config != baseline:
            job.step(TaskState.CONVERTING, "float32 baseline")
            float_result = session.evaluate(baseline)
            float_summary = session.summary(baseline)
            job.deliver(lambda: self._apply_baseline(float_result, float_summary))
        job.step(TaskState.CONVERTING)
        summary = _summary(session, config)
        total, delivered = len(session.data.test), False
        for result in session.evaluate_progressively(config):
            partial = session.cached_result(config) is None  # the full result is cached
            progress = f"{result.samples} of {total} samples" if partial else ""
            job.step(TaskState.EVALUATING, progress)
            delivered = job.deliver(
                lambda r=result, p=partial: self._apply_result(session, r, summary, p)
            )
        if delivered:
            self._submit_details(session, result)
            self._submit_warmup(session, config)

    def resample(self, test_samples: int | None) -> int:
        """Measure on another number of test samples: a session sharing the conversions (see
        `Session.with_test_samples`), then the baseline, the current and the pinned variants."""
        session = self.state.session
        if session is None:
            return self.worker.generation
        self._cancel_details()
        return self.worker.submit(
            lambda job: self._resample(job, session, test_samples), "test samples"
        )

    def _resample(self, job: Job, session: Any, test_samples: int | None) -> None:
        twin = session.with_test_samples(test_samples)

        def apply() -> None:
            with self.state.hold_trait_notifications():
                self.state.session = twin
                self.state.results = {}
                self.state.result = None
                self.state.partial = False
                self.state.baseline = None

        job.deliver(apply)
        self._measure(job, twin, self.state.config)
        for config in self.state.pinned:
            job.step(TaskState.EVALUATING, config.label)
            result = twin.evaluate(config)
            summary = _summary(twin, config)
            job.deliver(lambda r=result, s=summary: self._apply_result(twin, r, s))

    def _submit_details(self, session: Any, result: VariantResult) -> None:
        config = result.config
        wants_layers = self.layer_errors and _quantized(config) and result.layer_errors is None
        if wants_layers or self.state.inspection is None:
            self.details.submit(
                lambda job: self._details(job, session, config, wants_layers), config.label
            )
        else:
            self._cancel_details()

    def _submit_warmup(self, session: Any, config: QuantConfig) -> None:
        """Prepare the LiteRT route once per session and calibration size."""
        if config.route is not Route.CONVERTER or not config.mode.needs_calibration:
            return
        asked = self._warmed.setdefault(session, set())
        if config.calibration_samples not in asked:
            asked.add(config.calibration_samples)
            samples = config.calibration_samples
            self.warmup.submit(lambda job: self._warm_up(job, session, samples), "LiteRT route")

    def _warm_up(self, job: Job, session: Any, samples: int) -> None:
        int8 = QuantConfig(route=Route.LITERT, mode=Mode.INT8, calibration_samples=samples)
        float32 = QuantConfig(route=Route.LITERT, mode=Mode.FLOAT32)
        for step, work in (
            ("calibration", lambda: session.variant(int8)),  # float file + calibration, cached
            ("float32 baseline", lambda: session.evaluate(float32)),
        ):
            self._wait_for_requests()
            job.step(TaskState.CONVERTING, f"preparing the LiteRT route ({step})")
            work()

    def _wait_for_requests(self) -> None:
        """Return once the request and detail workers are both idle."""
        while not (self.worker.finished.is_set() and self.details.finished.is_set()):
            self.worker.wait()
            self.details.wait()

    def _details(self, job: Job, session: Any, config: QuantConfig, layers: bool) -> None:
        if layers:
            job.step(TaskState.EVALUATING, "per-layer error")
            detailed = session.evaluate(config, layers=True)
            summary = _summary(session, config)
            job.deliver(lambda: self._apply_result(session, detailed, summary))
        if self.state.inspection is None:
            job.step(TaskState.EVALUATING, "weight and activation ranges")
            inspection = _inspect(session)
            job.deliver(lambda: setattr(self.state, "inspection", inspection))

    def _apply_baseline(self, result: VariantResult, summary: Any) -> None:
        self.state.float_summary = summary
        self.state.baseline = result
        self.state.results = {**self.state.results, result.config.key: result}

    def _drop_partial(self) -> None:
        """A cancelled variant's numbers on its first test samples would say more are coming:
        show the full result they replaced instead (none after a new model)."""
        if not self.state.partial:
            return
        previous, session = self._before_partial, self.state.session
        with self.state.hold_trait_notifications():
            self.state.partial = False
            self.state.result = previous
            self.state.summary = (
                session.cached_summary(previous.config) if previous is not None else None
            )

    def _apply_result(
        self, session: Any, result: VariantResult, summary: Any, partial: bool = False
    ) -> None:
        """Show `result`; a partial one (on the first test samples) only as the current
        variant, never kept among the results."""
        if session is not self.state.session:
            return
        with self.state.hold_trait_notifications():
            if not partial:
                self.state.results = {**self.state.results, result.config.key: result}
            if result.config == self.state.config:
                if partial and not self.state.partial:
                    self._before_partial = self.state.result
                self.state.summary = summary
                self.state.result = result
                self.state.partial = partial


def _summary(session: Any, config: QuantConfig) -> Any:
    """What got quantized in the variant of `config`; None when its conversion was refused
    (the result says why)."""
    return session.summary(config) if session.converts(config) else None


def _by_name(message: str, *sources: Any) -> str:
    """`message` with each file given as a `Path` (an upload, in a private temporary folder)
    named by its file name, as the user knows it."""
    for source in sources:
        if isinstance(source, Path):
            message = message.replace(str(source), source.name)
    return message


def _quantized(config: QuantConfig) -> bool:
    return config.mode not in (Mode.FLOAT32, Mode.FLOAT16)


def _inspect(session: Any) -> Inspection:
    """Range statistics for the explorer; when they cannot be had, a message says why."""
    try:
        return session.inspect()
    except Exception as error:  # noqa: BLE001 - the explorer shows it; variants still work
        log.exception("range statistics failed")
        return Inspection(message=f"range statistics unavailable: {error}")
