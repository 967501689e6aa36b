"""Sweep benchmarks: a 2-worker LocalCluster against the same work serially, side by side.

    .venv/bin/python benchmarks/sweep.py [--out benchmarks/sweep_results.json]

1. Both demo models x their 7 standard variants: `workbench.sweep` on a LocalCluster of two
   worker processes vs `Session.compare` of each model in this process, fresh sessions on both
   sides; where the time goes from Dask's task stream (compute per task kind, transfer) and the
   rows (conversion vs the rest of a task).
2. shapes_mobilenet int8 on 10,000 generated samples: the sharded evaluation (4 shards on the
   two workers) vs `Session.evaluate` in this process, conversion excluded on both sides.
3. Worker memory: resident size after each task of one worker converting variants in a row.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from workbench.engine.quiet import silenced  # noqa: E402
from workbench.files import write_bytes_atomically  # noqa: E402
from workbench.qtyping import Mode, QuantConfig  # noqa: E402

MODELS = ("digits_cnn", "shapes_mobilenet")
LARGE_SAMPLES = 10_000
SHARDS = 4


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
    return time.perf_counter() - start, table.rows, _breakdown(stream.data)


def large_data() -> Any:
    from workbench.datasets.shapes import load_shapes

    return load_shapes(seed=1, train=0, calibration=200, test=LARGE_SAMPLES)


def single_large(data: Any, config: QuantConfig) -> tuple[float, dict[str, Any]]:
    from workbench.session import Session

    session = Session("shapes_mobilenet", data, test_samples=None)  # all 10,000, as the shards
    session.variant(config)  # conversion excluded
    start = time.perf_counter()
    result = session.evaluate(config)
    return time.perf_counter() - start, result.to_dict()


def sharded_large(client: Any, data: Any, config: QuantConfig) -> tuple[float, dict, dict]:
    from distributed import get_task_stream

    from workbench.cluster import sweep

    every = {"client": client, "test_samples": None}  # all 10,000, as the single process
    sweep(["shapes_mobilenet"], [config], data, **every)  # converts on one worker
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
    return time.perf_counter() - start - convert, table.rows[0], _breakdown(stream.data)


def memory_growth(client: Any) -> list[float]:
    """RSS (MiB) of one worker after each of a sequence of fresh conversions."""
    from workbench.cluster import sweep

    worker = sorted(client.scheduler_info()["workers"])[0]
    configs = [
        QuantConfig(mode=mode, calibration_samples=samples)
        for samples in (50, 100, 150)
        for mode in (Mode.DYNAMIC, Mode.INT8, Mode.INT16X8)
    ]
    rss = []
    for config in configs:
        (row,) = sweep(["shapes_mobilenet"], [config], client=client).rows
        if row["worker"] == worker:
            rss.append(round(row["worker_rss_mb"], 1))
    return rss


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "sweep_results.json")
    args = parser.parse_args(argv)
    from distributed import Client, LocalCluster

    with silenced():  # one silenced block at a time: the sessions below silence their own
        import tensorflow  # noqa: F401
    serial_s, serial_rows = serial_standard()
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address="127.0.0.1:0") as cluster,
        Client(cluster) as client,
    ):
        _warm(client)
        dask_s, dask_rows, dask_spent = dask_standard(client)
        config = QuantConfig(mode=Mode.INT8)
        data = large_data()
        single_s, single_row = single_large(data, config)
        sharded_s, sharded_row, sharded_spent = sharded_large(client, data, config)
        client.restart()
        _warm(client)
        rss = memory_growth(client)
    serial_convert = sum(r["convert_s"] for r in serial_rows)
    dask_convert = sum(r["convert_s"] for r in dask_rows)
    same = ("size_bytes", "accuracy", "agreement")
    record = {
        "standard_variants": {
            "tasks": len(dask_rows),
            "serial_s": round(serial_s, 1),
            "dask_s": round(dask_s, 1),
            "speedup": round(serial_s / dask_s, 2),
            "serial_convert_s": round(serial_convert, 1),
            "dask_convert_s": round(dask_convert, 1),
            "dask_task_stream_s": dask_spent,
            "failed_rows": sum(r["error"] is not None for r in dask_rows),
        },
        "large_evaluation": {
            "samples": LARGE_SAMPLES,
            "shards": SHARDS,
            "single_process_s": round(single_s, 1),
            "sharded_s": round(sharded_s, 1),
            "speedup": round(single_s / sharded_s, 2),
            "task_stream_s": sharded_spent,
            "samples_measured": [single_row["samples"], sharded_row["samples"]],
            "same_numbers": all(single_row[k] == sharded_row[k] for k in same),
            "snr_db": [single_row["snr_db"], sharded_row["snr_db"]],
        },
        "worker_rss_mb_after_each_conversion": rss,
    }
    print(json.dumps(record, indent=2))
    write_bytes_atomically(args.out, (json.dumps(record, indent=2) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
