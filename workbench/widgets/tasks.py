"""One background worker for long work, in the style of solara's tasks.

Callbacks never compute: they `submit` a job and return. The worker runs one job at a time on
a thread that exists only while there is work (an idle or closed worker holds no thread, so an
app re-created in a notebook leaves none behind);
a newer submission supersedes an older one (a queued job is dropped, a running one is asked to
cancel and its result is ignored by the generation check). Each change of state is reported as
a frozen `TaskStatus` to one listener, from the worker thread. `finished` is set whenever the
newest job has ended (done, failed or cancelled), so tests wait on it instead of sleeping.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from workbench.errors import WorkbenchError

log = logging.getLogger(__name__)


class TaskState(StrEnum):
    IDLE = "idle"
    QUEUED = "queued"
    CONVERTING = "converting"
    EVALUATING = "evaluating"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def busy(self) -> bool:
        return self in (TaskState.QUEUED, TaskState.CONVERTING, TaskState.EVALUATING)


@dataclass(frozen=True)
class TaskStatus:
    """What the worker is doing for which generation, with the error message if it failed."""

    state: TaskState = TaskState.IDLE
    generation: int = 0
    label: str = ""
    message: str = ""
    seconds: float = 0.0  # since submission


class Cancelled(Exception):
    """Raised inside a job by `Job.step` when a newer job superseded it."""


class Job:
    """Handed to the job function: report progress with `step`, which also checks for cancel."""

    def __init__(self, worker: Worker, generation: int, label: str) -> None:
        self._worker = worker
        self.generation = generation
        self.label = label
        self.cancel_event = threading.Event()
        self.started = time.perf_counter()

    @property
    def current(self) -> bool:
        return self._worker.generation == self.generation and not self.cancel_event.is_set()

    def step(self, state: TaskState, message: str = "") -> None:
        """Enter a new phase; raises `Cancelled` if this job is no longer the newest."""
        if not self.current:
            raise Cancelled
        self._worker._report(self, state, message)

    def deliver(self, apply: Callable[[], Any]) -> bool:
        """Run `apply` (which writes results to the screen) only if this job is still newest."""
        with self._worker._deliver_lock:
            if not self.current:
                return False
            apply()
            return True


class Worker:
    """A single daemon thread running the newest submitted job."""

    def __init__(
        self,
        listener: Callable[[TaskStatus], None] | None = None,
        deliver_lock: threading.RLock | None = None,
    ) -> None:
        self.listener = listener
        self.generation = 0
        self.status = TaskStatus()
        self.finished = threading.Event()
        self.finished.set()
        self._lock = threading.Condition()
        # Shared by workers that write the same screen, so their deliveries never interleave.
        self._deliver_lock = deliver_lock or threading.RLock()
        self._pending: tuple[Job, Callable[[Job], Any]] | None = None
        self._running: Job | None = None
        self._closed = False
        self._thread: threading.Thread | None = None  # the last one started
        self._looping = False  # whether that thread is still taking jobs

    def submit(self, function: Callable[[Job], Any], label: str = "") -> int:
        """Queue `function(job)` as the newest job, superseding any other; return its generation."""
        with self._lock:
            if self._closed:  # the app was closed; its views may still send a late request
                log.debug("closed worker ignores %r", label)
                return self.generation
            self.generation += 1
            job = Job(self, self.generation, label)
            self.finished.clear()
            if self._pending is not None:
                self._pending[0].cancel_event.set()
            if self._running is not None:
                self._running.cancel_event.set()
            self._pending = (job, function)
            if not self._looping:
                self._looping = True
                self._thread = threading.Thread(
                    target=self._loop, name="workbench-worker", daemon=True
                )
                self._thread.start()
        self._report(job, TaskState.QUEUED)
        return job.generation

    def supersede(
        self, apply: Callable[[], Any] | None = None, status: TaskStatus | None = None
    ) -> int:
        """Cancel whatever is queued or running and run `apply` at once (e.g. a cached result)."""
        with self._deliver_lock:
            with self._lock:
                generation = self._drop_all()
            if apply is not None:
                apply()
            if status is not None:
                self._emit(replace(status, generation=generation))
            with self._lock:  # only now: `wait()` returns once the screen shows it
                if self.generation == generation:
                    self.finished.set()
        return generation

    def cancel(self, apply: Callable[[], Any] | None = None) -> None:
        """Stop the newest job; the screen keeps the previous result (`apply`, run under the
        delivery lock, may restore it)."""
        self.supersede(apply, TaskStatus(TaskState.CANCELLED, label=self.status.label))

    def wait(self, timeout: float | None = None) -> bool:
        return self.finished.wait(timeout)

    def close(self, timeout: float = 0.0) -> None:
        """Cancel what is queued or running; the thread ends after the running job's current
        step (a conversion cannot be interrupted); wait at most `timeout` seconds for it."""
        with self._lock:
            self._closed = True
            self._drop_all()
            self.finished.set()
        if timeout > 0:
            self.join(timeout)

    def join(self, timeout: float | None = None) -> bool:
        """Wait until the worker holds no thread; False on timeout."""
        with self._lock:
            thread = self._thread
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def _drop_all(self) -> int:
        """With `_lock` held: a new generation, the queued job dropped, the running one asked
        to cancel; returns the new generation."""
        self.generation += 1
        if self._pending is not None:
            self._pending[0].cancel_event.set()
            self._pending = None
        if self._running is not None:
            self._running.cancel_event.set()
        return self.generation

    def _loop(self) -> None:
        while True:
            with self._lock:
                if self._pending is None or self._closed:
                    self._looping = False  # a later submit starts a new thread
                    return
                job, function = self._pending
                self._pending = None
                self._running = job
            self._run(job, function)
            with self._lock:
                self._running = None
                if job.generation == self.generation:
                    self.finished.set()

    def _run(self, job: Job, function: Callable[[Job], Any]) -> None:
        try:
            if not job.current:
                raise Cancelled
            function(job)
        except Cancelled:
            return
        except WorkbenchError as error:
            self._report(job, TaskState.FAILED, str(error))
        except Exception as error:  # noqa: BLE001 - Voila hides tracebacks: show and log
            log.exception("workbench job %r failed", job.label)
            self._report(job, TaskState.FAILED, f"{type(error).__name__}: {error}")
        else:
            self._report(job, TaskState.DONE)

    def _report(self, job: Job, state: TaskState, message: str = "") -> None:
        """Emit `state` for `job` unless a newer job (or a cancel) came first; the check and
        the emit happen under the delivery lock, as `supersede` does, so a stale report never
        overwrites the status of what superseded it."""
        with self._deliver_lock:
            if job.generation != self.generation:
                return
            seconds = time.perf_counter() - job.started
            self._emit(TaskStatus(state, job.generation, job.label, message, seconds))

    def _emit(self, status: TaskStatus) -> None:
        with self._deliver_lock:
            self.status = status
            if self.listener is not None:
                self.listener(status)
