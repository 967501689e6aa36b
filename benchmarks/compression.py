"""Compression lab on shapes_mobilenet: every technique, measured as the acceptance asks.

    .venv/bin/python benchmarks/compression.py [NAME ...] [--out benchmarks/compression.json]

Per run: fine-tuning seconds (wall time on the machine it ran on: compare runs of one session),
float accuracy of the compressed model, int8 per-channel and per-tensor accuracy and drop
against the ORIGINAL float model, gzip sizes against plain int8's, and what the `.tflite` holds
(zeros in pruned kernels, distinct int8 values per output channel and per kernel). NAMEs pick
runs (default: all); results are merged into the JSON file by name.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from workbench.compress import CompressConfig  # noqa: E402
from workbench.compress.readback import gzip_size, kernel_facts  # noqa: E402
from workbench.files import write_bytes_atomically  # noqa: E402
from workbench.qtyping import Granularity, QuantConfig  # noqa: E402
from workbench.session import Session  # noqa: E402

PER_CHANNEL = QuantConfig()
PER_TENSOR = QuantConfig(granularity=Granularity.PER_TENSOR)
RUNS: dict[str, CompressConfig] = {
    "equalize": CompressConfig(technique="equalize"),
    "equalize (no bias correction)": CompressConfig(technique="equalize", bias_correction=False),
    "qat": CompressConfig(technique="qat", epochs=2, learning_rate=1e-4),
    "qat per-tensor": CompressConfig(
        technique="qat", weights="per-tensor", epochs=6, learning_rate=3e-3
    ),
    "qat per-tensor, 2 epochs at 1e-4": CompressConfig(
        technique="qat", weights="per-tensor", epochs=2, learning_rate=1e-4
    ),
    "prune 50 %": CompressConfig(technique="prune", sparsity=0.5, epochs=3, learning_rate=1e-4),
    "cluster 16": CompressConfig(technique="cluster", clusters=16, epochs=2, learning_rate=1e-3),
    "cluster 16 at 1e-5": CompressConfig(
        technique="cluster", clusters=16, epochs=2, learning_rate=1e-5
    ),
    "prune 80 %": CompressConfig(technique="prune", sparsity=0.8, epochs=3, learning_rate=1e-4),
    "prune+qat": CompressConfig(technique="prune+qat", epochs=3, learning_rate=1e-4),
    "cluster+qat": CompressConfig(technique="cluster+qat", epochs=2, learning_rate=1e-3),
    "prune+cluster+qat": CompressConfig(
        technique="prune+cluster+qat", epochs=2, learning_rate=1e-3
    ),
    "distill 0.5x": CompressConfig(
        technique="distill", width=0.5, epochs=12, learning_rate=3e-3, alpha=0.1
    ),
    "distill 0.5x alpha 0.5 T 2": CompressConfig(
        technique="distill", width=0.5, epochs=12, learning_rate=3e-3, alpha=0.5, temperature=2.0
    ),
    "student 0.5x on labels alone": CompressConfig(
        technique="distill", width=0.5, epochs=12, learning_rate=3e-3, alpha=1.0
    ),
}


def variant_facts(
    session: Session, config: QuantConfig, pruned: tuple = (), clustered: tuple = ()
) -> dict[str, Any]:
    tflite = session.variant(config).tflite
    result = session.evaluate(config)
    facts = kernel_facts(tflite, session.layer_names)
    in_pruned = [f.zeros for f in facts if f.layer in pruned]
    in_clustered = [f for f in facts if f.layer in clustered]
    return {
        "min_zeros_pruned": min(in_pruned) if in_pruned else None,
        "max_distinct_per_channel_clustered": (
            max(f.distinct_per_channel for f in in_clustered) if in_clustered else None
        ),
        "max_distinct_per_kernel_clustered": (
            max(f.distinct for f in in_clustered) if in_clustered else None
        ),
        "accuracy": result.accuracy,
        "size_bytes": len(tflite),
        "gzip_bytes": gzip_size(tflite),
        "min_zeros": min(f.zeros for f in facts),
        "mean_zeros": sum(f.zeros * f.size for f in facts) / sum(f.size for f in facts),
        "max_distinct_per_channel": max(f.distinct_per_channel for f in facts),
        "max_distinct_per_kernel": max(f.distinct for f in facts),
    }


def measure(base: Session, name: str, config: CompressConfig) -> dict[str, Any]:
    float_accuracy = base.float_accuracy()
    compression = base.compressed(config)
    session = compression.session
    record: dict[str, Any] = {
        "name": name,
        "label": config.label,
        "config": config.to_dict(),
        "seconds": round(compression.seconds, 1),
        "float_accuracy": session.float_accuracy(),
    }
    for key, quant in (("int8_per_channel", PER_CHANNEL), ("int8_per_tensor", PER_TENSOR)):
        facts = variant_facts(session, quant, compression.pruned, compression.clustered)
        facts["drop"] = 100 * (float_accuracy - facts["accuracy"])
        plain = variant_facts(base, quant)["gzip_bytes"]
        facts["gzip_vs_plain_int8"] = facts["gzip_bytes"] / plain
        record[key] = facts
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", choices=[[], *RUNS], default=[])
    parser.add_argument("--out", type=Path, default=ROOT / "compression.json")
    args = parser.parse_args(argv)
    base = Session("shapes_mobilenet")
    records = json.loads(args.out.read_text()) if args.out.exists() else {}
    baseline = {
        "name": "baseline",
        "float_accuracy": base.float_accuracy(),
        "int8_per_channel": variant_facts(base, PER_CHANNEL),
        "int8_per_tensor": variant_facts(base, PER_TENSOR),
    }
    records["baseline"] = baseline
    print(json.dumps(baseline), flush=True)
    for name in args.names or RUNS:
        started = time.perf_counter()
        records[name] = measure(base, name, RUNS[name])
        records[name]["total_seconds"] = round(time.perf_counter() - started, 1)
        print(json.dumps(records[name]), flush=True)
        write_bytes_atomically(args.out, (json.dumps(records, indent=2) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
