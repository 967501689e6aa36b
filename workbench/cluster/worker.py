"""What runs on a Dask worker: a per-process cache of sessions, and the sweep's tasks.

A worker process keeps the models it unpacked and a `Session` per (model hash, data
fingerprint: a dataset, or one shard's piece of its test samples), least recently used dropped
first. A model's variants routed to the
same worker therefore reuse its float conversion, float outputs and calibration. Tasks never
raise for a bad model or configuration: the row carries the one-line error instead.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from workbench.cluster.packages import DataPackage, ModelPackage, unpack_model
from workbench.cluster.table import identity
from workbench.errors import WorkbenchError
from workbench.qtyping import QuantConfig

MODELS_PER_WORKER = 4
SESSIONS_PER_WORKER = 8
ERROR_CHARS = 300

_models: OrderedDict[str, Any] = OrderedDict()
_sessions: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_lock = threading.RLock()


def _cached(cache: OrderedDict, key: Any, build: Callable[[], Any], limit: int) -> Any:
    with _lock:
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
        cache[key] = value = build()
        while len(cache) > limit:
            cache.popitem(last=False)
        return value


def session(model: ModelPackage, data: DataPackage) -> Any:
    """This worker's `Session` of a model on a dataset (a package's test samples, all of them:
    the client cut them)."""
    from workbench.session import Session

    source = _cached(_models, model.key, lambda: unpack_model(model), MODELS_PER_WORKER)
    made = lambda: Session(source, data.dataset, test_samples=None)  # noqa: E731
    return _cached(_sessions, (model.key, data.key), made, SESSIONS_PER_WORKER)


def package(content: ModelPackage | DataPackage) -> ModelPackage | DataPackage:
    """A package as a task result: workers fetch it from each other, and it can be made again."""
    return content


def one_line(error: BaseException) -> str:
    """The error as one line: workbench errors as they are, others with their type."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if not isinstance(error, WorkbenchError):
        text = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return text[:ERROR_CHARS]


def where() -> dict[str, Any]:
    """The worker's address and resident memory, for the row."""
    import psutil
    from distributed import get_worker

    try:
        address = get_worker().address
    except ValueError:  # called outside a worker (a serial run)
        address = "local"
    return {"worker": address, "worker_rss_mb": psutil.Process().memory_info().rss / 2**20}


def plan(
    model: ModelPackage, data: DataPackage, choose: Callable[[Any], list[QuantConfig]]
) -> list[QuantConfig]:
    """The configurations `choose(session)` gives for this model (e.g. its standard set)."""
    return list(choose(session(model, data)))


def call(
    model: ModelPackage, data: DataPackage, name: str, *args: Any, **options: Any
) -> dict[str, Any]:
    """`session(model, data).name(*args, **options)` (or the attribute `name`) on this worker,
    as `{"value": ...}`; a `WorkbenchError` comes back as `{"error": message}` (some of them do
    not survive pickling), anything else is raised."""
    try:
        value = getattr(session(model, data), name)
        return {"value": value(*args, **options) if callable(value) else value}
    except WorkbenchError as error:
        return {"error": str(error)}


def variant_row(
    model: ModelPackage, data: DataPackage, config: QuantConfig, keep_tflite: bool = False
) -> tuple[dict[str, Any], bytes | None]:
    """Convert and measure one configuration: its table row (and its bytes if asked)."""
    start = time.perf_counter()
    row = identity(model, data, config)
    tflite = None
    try:
        current = session(model, data)
        result = current.evaluate(config)
        tflite = current.variant(result.config).tflite
        row.update(result.to_dict(), model_fingerprint=current.model.fingerprint)
        row["tflite_sha256"] = hashlib.sha256(tflite).hexdigest()
    except Exception as error:  # the row carries it; the other tasks go on
        row["error"] = one_line(error)
    row.update(where(), task_s=time.perf_counter() - start)
    return row, tflite if keep_tflite else None
