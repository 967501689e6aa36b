"""Sharded evaluation: one conversion, the test set scored in shards, the sums combined.

`convert` runs where the model's calibration is; each `score` task runs one variant on a range
of test samples, shipped as a package of its own (`piece`: a worker receives its shards'
samples, not the whole test set), computing the float reference outputs for that range there,
and returns `ScoreSums` and raw latency times; `combine` adds them into the row. Shard boundaries
fall on multiples of `ALIGN` (the batch size the float reference is computed in), so each
shard's reference outputs are those of the whole set, and the combined row is identical for any
number of shards.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import operator
import time
from typing import Any

from workbench.cluster.packages import DataPackage, ModelPackage
from workbench.cluster.worker import one_line, session, where
from workbench.qtyping import QuantConfig, VariantResult

ALIGN = 256  # Session computes the float reference in Keras batches of this many samples


def ranges(samples: int, shards: int) -> list[tuple[int, int]]:
    """`shards` (at most) contiguous ranges covering `samples`, cut at multiples of ALIGN."""
    blocks = -(-samples // ALIGN)
    count = max(1, min(shards, blocks))
    cuts = [min(samples, ALIGN * round(i * blocks / count)) for i in range(count + 1)]
    return [(a, b) for a, b in zip(cuts, cuts[1:], strict=False) if b > a]


def piece(data: DataPackage, start: int, stop: int) -> DataPackage:
    """Test samples `start:stop` of a package as a package of their own (without calibration
    or validation samples): all a shard's worker needs besides the model."""
    from workbench.datasets import Split

    dataset = data.dataset
    labels = None if dataset.test.y is None else dataset.test.y[start:stop]
    part = dataclasses.replace(
        dataset,
        name=f"{dataset.name}[{start}:{stop}]",
        calibration=dataset.calibration.head(0),
        validation=dataset.validation.head(0),
        test=Split(dataset.test.x[start:stop], labels),
    )
    return DataPackage(part.fingerprint, part)


def convert(model: ModelPackage, data: DataPackage, config: QuantConfig) -> dict[str, Any]:
    """The variant's bytes and what the row needs from the converting worker."""
    start = time.perf_counter()
    try:
        current = session(model, data)
        variant = current.variant(config)
        return {
            "tflite": variant.tflite,
            "convert_s": variant.convert_s,
            "float_size": len(current.float_bytes),
            "model_fingerprint": current.model.fingerprint,
            "convert_task_s": time.perf_counter() - start,
        }
    except Exception as error:
        return {"error": one_line(error)}


def score(model: ModelPackage, part: DataPackage, converted: dict[str, Any]) -> dict[str, Any]:
    """Sums and latency times of the variant on the test samples of `part` (a `piece`)."""
    from workbench.engine.evaluation import classes_of, latency_times, run_tflite
    from workbench.engine.sums import score_sums

    if "error" in converted:
        return {"error": converted["error"]}
    start = time.perf_counter()
    try:
        scoring = session(model, part)
        test = scoring.data.test
        outputs, reference = run_tflite(converted["tflite"], test.x), scoring.reference()
        kind = classes_of(reference, lambda: scoring.float_bytes, scoring.data.binary_labels)
        return {
            "sums": score_sums(outputs, reference, test.y, kind),
            "times_ms": latency_times(converted["tflite"], test.x[:1]),
            "task_s": time.perf_counter() - start,
        }
    except Exception as error:
        return {"error": one_line(error)}


def combine(
    head: dict[str, Any],
    config: QuantConfig,
    keep_tflite: bool,
    converted: dict[str, Any],
    *parts: dict[str, Any],
) -> tuple[dict[str, Any], bytes | None]:
    """The table row of a sharded variant (`head`: its first columns, `table.identity`; the
    shards' sums added, latency times pooled), and its bytes if asked."""
    from workbench.engine.evaluation import default_threads
    from workbench.engine.sums import pooled_latency

    row = dict(head)
    failed = [p["error"] for p in (converted, *parts) if "error" in p]
    if failed:
        row.update(where(), error=failed[0], task_s=0.0)
        return row, None
    sums = functools.reduce(operator.add, [p["sums"] for p in parts])
    accuracy, drop = sums.estimates()
    latency = pooled_latency([p["times_ms"] for p in parts], default_threads())
    result = VariantResult.measured(
        config,
        size_bytes=len(converted["tflite"]),
        float_size=converted["float_size"],
        scores=sums.evaluation(),
        latency=latency,
        convert_s=converted["convert_s"],
        accuracy=accuracy,
        drop=drop,
    )
    row.update(result.to_dict(), model_fingerprint=converted["model_fingerprint"])
    row["tflite_sha256"] = hashlib.sha256(converted["tflite"]).hexdigest()
    row.update(where())
    row["task_s"] = converted["convert_task_s"] + sum(p["task_s"] for p in parts)
    row["shards"] = len(parts)
    return row, converted["tflite"] if keep_tflite else None
