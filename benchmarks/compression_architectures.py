"""Every compression technique on published architectures: does it run, and does the int8 file
hold what the technique promises (a structural check, not a benchmark of accuracy).

    .venv/bin/python benchmarks/compression_architectures.py [ARCH ...] [--techniques T ...]

ARCH: mobilenet_v3_small, efficientnet_b0, resnet50 (default: all three), random weights, 32x32
inputs, 96 generated images with random labels, 1 epoch of 2 batches of 16. Per technique one
line: `Session.compressed(config)`, then the compressed model's int8 variant (per-tensor for
QAT with per-tensor weights, else per-channel) evaluated by its session, and what the `.tflite`
holds: zeros in the pruned kernels, distinct int8 values per channel in the clustered ones, the
equalized pairs; or the one-line error. Accuracy on generated data means nothing: not printed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workbench.compress import CompressConfig  # noqa: E402
from workbench.errors import WorkbenchError  # noqa: E402
from workbench.qtyping import Granularity, QuantConfig  # noqa: E402
from workbench.session import Session  # noqa: E402

ARCHITECTURES = ("mobilenet_v3_small", "efficientnet_b0", "resnet50")
FEW = {"epochs": 1, "steps": 2, "batch_size": 16}
TECHNIQUES: dict[str, CompressConfig] = {
    "qat": CompressConfig("qat", **FEW),
    "qat per-tensor": CompressConfig("qat", weights="per-tensor", **FEW),
    "prune": CompressConfig("prune", **FEW),
    "prune 2:4": CompressConfig("prune", structured=True, **FEW),
    "cluster": CompressConfig("cluster", **FEW),
    "distill": CompressConfig("distill", **FEW),
    "equalize": CompressConfig("equalize"),
    "prune+qat": CompressConfig("prune+qat", **FEW),
    "cluster+qat": CompressConfig("cluster+qat", **FEW),
    "prune+cluster+qat": CompressConfig("prune+cluster+qat", **FEW),
}


def describe(name: str, session: Session) -> str:
    """One line: what the compressed int8 file holds, or the one-line error."""
    config = TECHNIQUES[name]
    per_tensor = name == "qat per-tensor"
    quant = QuantConfig(granularity=Granularity.PER_TENSOR) if per_tensor else QuantConfig()
    try:
        compression = session.compressed(config)
        result = compression.evaluate(quant)
        facts = {f.layer: f for f in compression.kernel_facts(quant)}
    except WorkbenchError as error:
        return f"error: {error}"
    notes = [f"int8 {result.size_bytes / 1e6:.2f} MB"]
    if result.unavailable:
        notes.append(f"unavailable: {result.unavailable}")
    if compression.pruned:
        zeros = min(facts[layer].zeros for layer in compression.pruned)
        notes.append(f"{len(compression.pruned)} kernels pruned, each >= {zeros:.0%} zeros")
    if compression.clustered:
        distinct = max(facts[layer].distinct_per_channel for layer in compression.clustered)
        count = len(compression.clustered)
        notes.append(f"{count} kernels clustered, <= {distinct} int8 values per channel")
    if compression.equalized:
        notes.append(f"{len(compression.equalized)} pairs equalized")
    return "runs: " + ", ".join(notes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("architectures", nargs="*", default=ARCHITECTURES)
    parser.add_argument("--techniques", nargs="*", default=list(TECHNIQUES))
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (96, 32, 32, 3)).astype(np.float32)
    y = rng.integers(0, 1000, 96)
    for architecture in args.architectures:
        session = Session(f"{architecture}@32", (x, y), weights="none")
        for name in args.techniques:
            start = time.perf_counter()
            line = describe(name, session)
            seconds = time.perf_counter() - start
            print(f"{architecture} | {name} | {line} | {seconds:.0f} s", flush=True)


if __name__ == "__main__":
    main()
