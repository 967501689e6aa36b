"""`sweep`: every model x configuration converted and measured on a Dask cluster, as a table.

Each model and dataset is a task named by its content hash (not scattered data: a task's input
stays with the scheduler, so a package lost with a killed worker is made again); a worker
fetches it once and keeps it while its tasks need it. Each model gets a preferred worker (the
least loaded, by model bytes x tasks); its tasks are submitted there with loose restrictions,
so its variants reuse the worker's session (float conversion, reference outputs, calibration),
idle workers may still steal them, and when the worker dies the tasks run elsewhere.
Rows are written as they arrive; `resume` skips the rows a previous run finished.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from workbench.cluster import shards as sharding
from workbench.cluster import worker
from workbench.cluster.client import connect
from workbench.cluster.packages import DataPackage, ModelPackage, pack_data, pack_model
from workbench.cluster.table import SweepTable, identity, row_key
from workbench.errors import DataError, ModelFileError
from workbench.qtyping import QuantConfig
from workbench.session import TEST_SAMPLES

Configs = Sequence[QuantConfig] | Callable[[Any], Sequence[QuantConfig]] | None


def _standard(session: Any) -> list[QuantConfig]:
    return session.standard_configs()


def _packages(
    models: Sequence[Any], data: Any, weights: str | None, test_samples: int | None
) -> list[tuple[ModelPackage, DataPackage]]:
    """Each model loaded and packed, with its data prepared for it (resized, preprocessed, one
    array per input) and packed once per preparation."""
    from workbench.datasets.for_model import preparation
    from workbench.models import DEMO_MODELS

    if not models:
        raise ModelFileError("models: give at least one model to sweep")
    packed: list[tuple[ModelPackage, DataPackage]] = []
    datasets: dict[Any, DataPackage] = {}
    for spec in models:
        model, source = pack_model(spec, weights)
        found = data.get(model.name) if isinstance(data, Mapping) else data
        if found is None and isinstance(spec, str):
            found = DEMO_MODELS.get(spec)
        if found is None:
            raise DataError(
                f"model {model.name!r}: give data (--data) to sweep a model that is not a demo"
            )
        how = preparation(source)
        token = (found if isinstance(found, str | Path) else id(found), how)
        if token not in datasets:
            datasets[token] = pack_data(found, how, test_samples)
        packed.append((model, datasets[token]))
    names = [model.name for model, _ in packed]
    return [
        (model if names.count(model.name) == 1 else _renamed(model), dataset)
        for model, dataset in packed
    ]


def _renamed(model: ModelPackage) -> ModelPackage:
    return ModelPackage(f"{model.name}-{model.key[:6]}", model.key, model.suffix, model.payload)


def submit_package(client: Any, package: ModelPackage | DataPackage) -> Any:
    """The package as a task of its own, named by its content hash: the scheduler holds it, a
    worker fetches it once, and a copy lost with a worker is made again."""
    name = f"workbench-{type(package).__name__.lower()}-{package.key}"
    with warnings.catch_warnings():  # the package travels in the graph, on purpose
        warnings.filterwarnings("ignore", "Sending large graph")
        return client.submit(worker.package, package, key=name, pure=False)


def preferred(client: Any, loads: dict[str, int]) -> dict[str, str]:
    """Each model key's preferred worker: the heaviest model first, to the least loaded."""
    workers = sorted(client.scheduler_info()["workers"])
    busy = dict.fromkeys(workers, 0)
    chosen = {}
    for key, load in sorted(loads.items(), key=lambda item: -item[1]):
        target = min(workers, key=lambda w: busy[w])
        chosen[key], busy[target] = target, busy[target] + load
    return chosen


def sweep(
    models: Sequence[Any],
    configs: Configs = None,
    data: Any = None,
    *,
    weights: str | None = None,
    client: Any = None,
    scheduler: str | None = None,
    workers: int = 2,
    memory_limit: str | None = None,
    lifetime: str | None = None,
    shards: int | None = None,
    test_samples: int | None = TEST_SAMPLES,
    json_path: Path | None = None,
    csv_path: Path | None = None,
    save_dir: Path | None = None,
    resume: bool = False,
    progress: bool = False,
    report: Callable[[str], None] | None = None,
) -> SweepTable:
    """Convert and measure `configs` for every model on a Dask cluster; one row per pair.

    `models`: anything `Session` takes as a model (a demo name, an architecture name such as
    ``mobilenet_v2@96`` with `weights`, imagenet, none or a file, unless it is a
    `PretrainedSpec` with its own; a model file or folder; a Keras model), each loaded here
    first. `configs`: QuantConfigs for all models, or a function of a model's `Session`
    returning them; None means each model's `standard_configs()`. `data`: one dataset for all
    models, or a mapping of model name to dataset (a demo model without one uses its own),
    prepared for each model as `Session` prepares it. `client`: an existing
    `distributed.Client`; else one on `scheduler`, else an embedded LocalCluster of `workers`
    processes. `shards` (a count): score each variant's test set in that many pieces
    across the workers, combined from exact sums. `test_samples`: measure the first this many
    test samples, as `Session` does (None: all). Rows go to `json_path` (JSON lines) and
    `csv_path` as they arrive; `save_dir` receives the `.tflite` files. `progress` shows Dask's
    progress bar (in a notebook).
    """
    models = [models] if isinstance(models, str | Path) else list(models)
    table = SweepTable(json_path, csv_path, resume=resume)
    packed = _packages(models, data, weights, test_samples)
    say = report or (lambda text: None)
    if table.resumed:
        say(f"resuming: {table.resumed} finished rows kept")
        if _all_done(table, packed, configs):
            say("nothing left to run")
            return table
    options = {"workers": workers, "lifetime": lifetime}
    if memory_limit:
        options["memory_limit"] = memory_limit
    if client is not None:
        return _run(client, packed, configs, table, shards, save_dir, progress, say)
    with connect(scheduler, **options) as own:
        return _run(own, packed, configs, table, shards, save_dir, progress, say)


def _run(client, packed, configs, table, shards, save_dir, progress, say) -> SweepTable:
    from distributed import as_completed

    say(f"Dask dashboard: {client.dashboard_link}")
    future: dict[str, Any] = {}  # content hash -> the future of the package on the cluster
    for package in [p for pair in packed for p in pair]:
        if package.key not in future:
            future[package.key] = submit_package(client, package)
    loads: dict[str, int] = {}  # model bytes: a rough measure of a model's conversion work
    for model, _ in packed:
        loads[model.key] = loads.get(model.key, 0) + len(model.payload)
    home = preferred(client, loads)  # where a model's session lives, from its plan on
    chosen, unplanned = _configs(client, packed, configs, future, home)
    for model, dataset in packed:
        if model.key in unplanned:  # one row says why this model has no variants
            row = identity(model, dataset, QuantConfig())
            table.add({**row, "error": f"choosing its variants: {unplanned[model.key]}"})
    todo = [
        (model, dataset, config)
        for model, dataset in packed
        for config in chosen[model.key]
        if row_key(identity(model, dataset, config)) not in table.done
    ]
    futures = {}
    for model, dataset, config in todo:
        args = (future[model.key], future[dataset.key], config, save_dir is not None)
        where = {"workers": [home[model.key]], "allow_other_workers": True}
        if shards:
            done = _sharded(client, args, (model, dataset), shards, where)
        else:
            done = client.submit(worker.variant_row, *args, pure=False, **where)
        futures[done] = (model, dataset, config)
    if progress:
        from distributed import progress as show_progress

        show_progress(list(futures))
    total = len(todo) + len(table)
    try:
        for done in as_completed(futures):
            model, dataset, config = futures[done]
            row, tflite = _outcome(done, model, dataset, config)
            table.add(row)
            if tflite is not None:
                _save(save_dir, model, config, tflite)
            say(_line(len(table), total, row))
            done.release()
    finally:
        client.cancel(list(futures))
    return table


def _all_done(table: SweepTable, packed: list, configs: Configs) -> bool:
    """Whether every row of fixed `configs` is finished (chosen ones need the cluster)."""
    if configs is None or callable(configs):
        return False
    keys = {row_key(identity(m, d, c)) for m, d in packed for c in configs}
    return keys <= table.done


def _configs(client, packed, configs, future, home) -> tuple[dict[str, list], dict[str, str]]:
    """Each model's configurations (a function of the session runs on the model's preferred
    worker, whose session its variants then reuse), and the one-line error of each model whose
    configurations could not be chosen."""
    if configs is not None and not callable(configs):
        fixed = list(dict.fromkeys(configs))
        return {model.key: fixed for model, _ in packed}, {}
    choose = configs or _standard
    planned = {
        model.key: client.submit(
            worker.plan,
            future[model.key],
            future[dataset.key],
            choose,
            workers=[home[model.key]],
            allow_other_workers=True,
        )
        for model, dataset in packed
    }
    chosen, failed = {}, {}
    for key, found in planned.items():
        try:
            chosen[key] = list(dict.fromkeys(found.result()))
        except Exception as error:  # e.g. the standard set of a model the converter refuses
            chosen[key], failed[key] = [], worker.one_line(error)
    return chosen, failed


def _sharded(client, args, packages, shards: int, where: dict) -> Any:
    """Convert on the model's worker, score each piece of the test samples on the workers in
    turn, combine the sums; each piece travels alone, as a package of its own."""
    model, data, config, keep_tflite = args
    converted = client.submit(sharding.convert, model, data, config, pure=False, **where)
    workers = sorted(client.scheduler_info()["workers"])
    package = packages[1]
    parts = [
        client.submit(
            sharding.score, model, submit_package(client, sharding.piece(package, *test)),
            converted, pure=False, workers=[workers[i % len(workers)]], allow_other_workers=True,
        )
        for i, test in enumerate(sharding.ranges(len(package.dataset.test), shards))
    ]  # fmt: skip
    head = identity(*packages, config)
    return client.submit(sharding.combine, head, config, keep_tflite, converted, *parts, pure=False)


def _outcome(done, model, dataset, config) -> tuple[dict[str, Any], bytes | None]:
    """The row of a finished task; a task that raised or lost its workers gets an error row.

    `result()` fetches the row from the worker holding it; if that worker died meanwhile, the
    scheduler runs the task again and `result()` waits for it."""
    try:
        return done.result()
    except Exception as error:  # e.g. KilledWorker: the task took down every worker it ran on
        row = identity(model, dataset, config)
        row.update(worker=None, worker_rss_mb=None, task_s=None, error=worker.one_line(error))
        return row, None


def _save(folder: Path, model: ModelPackage, config: QuantConfig, tflite: bytes) -> None:
    from workbench.commands.compare import file_name
    from workbench.files import write_bytes_atomically

    write_bytes_atomically(Path(folder) / file_name(model.name, config), tflite)


def _line(count: int, total: int, row: dict[str, Any]) -> str:
    head = f"[{count}/{total}] {row['model']} · {row['label']}"
    if row["error"] is not None:
        return f"{head}: error: {row['error']}"
    accuracy = "-" if row.get("accuracy") is None else f"{100 * row['accuracy']:.2f} %"
    return f"{head}: {row['size_bytes'] / 1024:.1f} KB, {accuracy} (on {row['worker']})"
