"""Sweep benchmarks: a 2-worker LocalCluster against the same work serially, side by side.

    .venv/bin/python benchmarks/sweep.py [--out benchmarks/sweep_results.json]

1. Both demo models x their 7 standard variants: `workbench.sweep` on a LocalCluster of two
   worker processes vs `Session.compare` of each model in this process, fresh sessions on both
   sides; where the time goes from Dask's task stream (compute per task kind and per worker,
   transfer, idle) and the rows (conversion vs the rest of a task, tasks off their model's
   preferred worker).
2. shapes_mobilenet int8 on 10,000 generated samples: the sharded evaluation (4 shards on the
   two workers) vs `Session.evaluate` in this process, all 10,000 samples on both sides
   (`test_samples=None`), conversion excluded on both sides.
3. Worker memory: resident size after each of nine conversions in a row on one worker;
   then the same conversions on two workers restarted by distributed's lifetime bound
   (`lifetime`, `lifetime_restart`): each row's worker and resident size over time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from workbench.cluster.shards import ALIGN  # noqa: E402
from workbench.engine.quiet import silenced  # noqa: E402
from workbench.files import write_bytes_atomically  # noqa: E402
from workbench.qtyping import Granularity, Mode, QuantConfig  # noqa: E402

MODELS = ("digits_cnn", "shapes_mobilenet")
LARGE_SAMPLES = 10_000
SHARDS = 4
LIFETIME = "60s"  # short enough to see restarts within the memory series, longer than the
LIFETIME_RUN_S = 150  # set-up of a fresh worker (TensorFlow, the model, a conversion)


def _warm(client: Any) -> None:
    """Import TensorFlow and the engine on every worker (this process has them already)."""

    def imports() -> None:
        import workbench.session  # noqa: F401
        from workbench.engine.routes import ROUTES  # noqa: F401

    client.run(imports)


def _breakdown(stream: list[dict[str, Any]]) -> dict[str, float]:
    """Seconds of compute per task kind and of transfer, from Dask's task stream."""
    spent: dict[str, float] = defaultdict(float)
    for task in stream:
        kind = task["key"].split("-")[0] if isinstance(task["key"], str) else str(task["key"])
        for part in task["startstops"]:
            name = part["action"] if part["action"] != "compute" else f"compute {kind}"
            spent[name] += part["stop"] - part["start"]
    return {name: round(value, 2) for name, value in sorted(spent.items())}


def _busy(stream: list[dict[str, Any]], wall_s: float) -> dict[str, Any]:
    """Per worker: seconds computing and the share of the wall time that leaves idle."""
    busy: dict[str, float] = defaultdict(float)
    for task in stream:
        for part in task["startstops"]:
            if part["action"] == "compute":
                busy[task["worker"]] += part["stop"] - part["start"]
    return {
        "compute_s_per_worker": [round(value, 1) for _, value in sorted(busy.items())],
        "idle_share": round(1 - sum(busy.values()) / (len(busy) * wall_s), 2) if busy else None,
    }


def _rows_breakdown(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """From the rows: conversion vs the rest of each task (evaluation, the worker's session
    set-up), and how many tasks ran away from the worker most of their model's tasks ran on."""
    convert = sum(r["convert_s"] for r in rows if r["error"] is None)
    tasks = sum(r["task_s"] for r in rows if r["error"] is None)
    away = 0
    for model in {r["model"] for r in rows}:
        workers = [r["worker"] for r in rows if r["model"] == model]
        away += len(workers) - max(workers.count(w) for w in set(workers))
    return {
        "task_s": round(tasks, 1),
        "convert_s": round(convert, 1),
        "rest_of_task_s": round(tasks - convert, 1),
        "tasks_off_their_model_worker": away,
    }


def serial_standard() -> tuple[float, list[dict[str, Any]]]:
    from workbench.session import Session

    start = time.perf_counter()
    rows = []
    for name in MODELS:
        session = Session(name)
        rows += [r.to_dict() for r in session.compare(session.standard_configs())]
    return time.perf_counter() - start, rows


def dask_standard(client: Any) -> tuple[float, list[dict[str, Any]], dict[str, float]]:
    from distributed import get_task_stream

    from workbench.cluster import sweep

    start = time.perf_counter()
    with get_task_stream(client) as stream:
        table = sweep(list(MODELS), None, client=client)
    wall = time.perf_counter() - start
    spent = {**_breakdown(stream.data), **_busy(stream.data, wall)}
    return wall, table.rows, spent


def large_data(test: int = LARGE_SAMPLES, seed: int = 1) -> Any:
    from workbench.datasets.shapes import load_shapes

    return load_shapes(seed=seed, train=0, calibration=200, test=test)


def single_large(data: Any, config: QuantConfig) -> tuple[float, dict[str, Any]]:
    from workbench.models import load_model
    from workbench.session import Session

    model = load_model("shapes_mobilenet")
    Session(model, large_data(ALIGN, seed=2)).reference()  # Keras' predict function traced
    session = Session(model, data, test_samples=None)  # all 10,000, as the shards
    session.variant(config)  # conversion excluded
    start = time.perf_counter()
    result = session.evaluate(config)
    return time.perf_counter() - start, result.to_dict()


def sharded_large(client: Any, data: Any, config: QuantConfig) -> tuple[float, dict, dict]:
    from distributed import get_task_stream

    from workbench.cluster import sweep

    every = {"client": client, "test_samples": None}  # all 10,000, as the single process
    sweep(["shapes_mobilenet"], [config], data, **every)  # converts on one worker
    # each worker loads the model (TensorFlow, Keras) and traces its predict function once, on
    # other samples: the timed run below finds no cached reference outputs
    start = time.perf_counter()
    sweep(["shapes_mobilenet"], [config], large_data(SHARDS * ALIGN, 2), shards=SHARDS, **every)
    first_use = time.perf_counter() - start
    start = time.perf_counter()
    with get_task_stream(client) as stream:
        table = sweep(["shapes_mobilenet"], [config], data, shards=SHARDS, **every)
    convert = sum(
        p["stop"] - p["start"]
        for t in stream.data
        if str(t["key"]).startswith("convert")
        for p in t["startstops"]
        if p["action"] == "compute"
    )
    spent = {**_breakdown(stream.data), "first_use_on_every_worker_s": round(first_use, 1)}
    return time.perf_counter() - start - convert, table.rows[0], spent


def _fresh_conversions(rounds: int) -> list[QuantConfig]:
    """Configurations each needing its own conversion (all depend on the calibration, whose
    size changes every round; at most 10 rounds: the calibration split has 200 samples)."""
    return [
        QuantConfig(mode=mode, granularity=granularity, calibration_samples=20 * (i + 1))
        for i in range(rounds)
        for mode, granularity in (
            (Mode.INT8, Granularity.PER_CHANNEL),
            (Mode.INT8, Granularity.PER_TENSOR),
            (Mode.INT16X8, Granularity.PER_CHANNEL),
        )
    ]


def memory_growth(client: Any) -> list[float]:
    """RSS (MiB) of one worker after each of a sequence of fresh conversions."""
    from workbench.cluster import sweep

    worker = sorted(client.scheduler_info()["workers"])[0]
    rss = []
    for config in _fresh_conversions(3):
        (row,) = sweep(["shapes_mobilenet"], [config], client=client).rows
        if row["worker"] == worker:
            rss.append(round(row["worker_rss_mb"], 1))
    return rss


def memory_with_lifetime() -> dict[str, Any]:
    """The same kind of conversions in a row on two workers that distributed restarts after
    LIFETIME (staggered): per row, seconds since the start, the worker and its RSS (MiB)."""
    from distributed import Client, LocalCluster

    from workbench.cluster import sweep

    series, failed = [], 0
    options = {"lifetime": LIFETIME, "lifetime_stagger": "5s", "lifetime_restart": True}
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, dashboard_address="127.0.0.1:0", **options
        ) as cluster,
        Client(cluster) as client,
    ):
        _warm(client)
        start = time.perf_counter()
        for config in _fresh_conversions(10):
            if time.perf_counter() - start > LIFETIME_RUN_S:
                break
            (row,) = sweep(["shapes_mobilenet"], [config], client=client).rows
            if row["error"] is None:
                elapsed = round(time.perf_counter() - start, 1)
                rss, task = round(row["worker_rss_mb"], 1), round(row["task_s"], 1)
                series.append([elapsed, row["worker"], rss, task])
            else:
                failed += 1
    names = {address: f"w{i}" for i, address in enumerate(dict.fromkeys(r[1] for r in series))}
    return {
        "lifetime": LIFETIME,
        "workers_seen": len(names),
        "failed_rows": failed,
        "rows_s_worker_rss_mb_task_s": [[t, names[w], rss, s] for t, w, rss, s in series],
    }


def _show(record: dict[str, Any], name: str, value: Any) -> None:
    """Keep a figure and print it at once (a long run shows what it has so far)."""
    record[name] = value
    print(json.dumps({name: value}, indent=2), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "sweep_results.json")
    args = parser.parse_args(argv)
    from distributed import Client, LocalCluster

    record: dict[str, Any] = {}
    load_before = os.getloadavg()[0]
    with silenced():  # one silenced block at a time: the sessions below silence their own
        import tensorflow  # noqa: F401
    serial_s, serial_rows = serial_standard()
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address="127.0.0.1:0") as cluster,
        Client(cluster) as client,
    ):
        _warm(client)
        dask_s, dask_rows, dask_spent = dask_standard(client)
        serial_convert = sum(r["convert_s"] for r in serial_rows)
        standard = {
            "tasks": len(dask_rows),
            "serial_s": round(serial_s, 1),
            "dask_s": round(dask_s, 1),
            "speedup": round(serial_s / dask_s, 2),
            "serial_convert_s": round(serial_convert, 1),
            "dask_rows": _rows_breakdown(dask_rows),
            "dask_task_stream_s": dask_spent,
            "failed_rows": sum(r["error"] is not None for r in dask_rows),
        }
        _show(record, "standard_variants", standard)
        config = QuantConfig(mode=Mode.INT8)
        data = large_data()
        single_s, single_row = single_large(data, config)
        sharded_s, sharded_row, sharded_spent = sharded_large(client, data, config)
        same = ("size_bytes", "accuracy", "agreement", "accuracy_drop", "samples")
        large = {
            "samples": LARGE_SAMPLES,
            "shards": SHARDS,
            "single_process_s": round(single_s, 1),
            "sharded_s": round(sharded_s, 1),
            "speedup": round(single_s / sharded_s, 2),
            "task_stream_s": sharded_spent,
            "samples_measured": [single_row["samples"], sharded_row["samples"]],
            "same_numbers": all(single_row[k] == sharded_row[k] for k in same),
            "snr_db": [single_row["snr_db"], sharded_row["snr_db"]],
            "cosine": [single_row["cosine"], sharded_row["cosine"]],
        }
        _show(record, "large_evaluation", large)
        client.restart()
        _warm(client)
        _show(record, "worker_rss_mb_after_each_conversion", memory_growth(client))
    _show(record, "worker_memory_with_lifetime", memory_with_lifetime())
    _show(record, "load_average_1min", [round(load_before, 1), round(os.getloadavg()[0], 1)])
    write_bytes_atomically(args.out, (json.dumps(record, indent=2) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
