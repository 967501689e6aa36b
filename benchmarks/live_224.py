"""Where the time goes on a real-size model: Keras MobileNetV2 at 224x224 (random weights).

``python benchmarks/live_224.py [--images 600] [--profile]``

The setup of issue 9: 600 generated 224x224 images (120 in the test split), a Session on
``mobilenet_v2`` with ``weights="none"``. Times, one after the other as a dashboard user meets
them: opening the session, the float32 baseline on the LiteRT route, int8 per-channel, the
granularity toggle to per-tensor, float16, and int8 on the converter route, each through
`Session.evaluate_progressively` (when the first partial result and the full one arrive).
``--profile`` prints the functions that take the most cumulative time in each step.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def images(count: int, size: int = 224, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)
    corners = rng.uniform(0, 255, (count, 2, 1, 1, 3)).astype(np.float32)
    x = corners[:, 0] + (corners[:, 1] - corners[:, 0]) * ramp[:, None, None] * ramp[None, :, None]
    x += rng.normal(0, 12, x.shape).astype(np.float32)
    return np.clip(x, 0, 255).astype(np.uint8), np.arange(count) % 10


def timed(name: str, step: Callable[[], Any], profile: bool) -> Any:
    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    result = step()
    if profiler is not None:
        profiler.disable()
    print(f"{name}: {time.perf_counter() - started:.1f} s", flush=True)
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
        print("\n".join(out.getvalue().splitlines()[:45]), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    from workbench import QuantConfig
    from workbench.session import Session

    data = images(args.images)
    session = timed(
        "open (model + data)",
        lambda: Session("mobilenet_v2", data, weights="none"),
        args.profile,
    )
    print(f"  test samples: {len(session.data.test)}")
    steps = [
        ("float32, LiteRT route", QuantConfig(route="litert", mode="float32")),
        ("int8 per-channel, LiteRT route", QuantConfig(route="litert", mode="int8")),
        (
            "toggle to int8 per-tensor, LiteRT route",
            QuantConfig(route="litert", mode="int8", granularity="per-tensor"),
        ),
        ("float16, LiteRT route", QuantConfig(route="litert", mode="float16")),
        ("int8 per-channel, converter route", QuantConfig(mode="int8")),
    ]
    for name, config in steps:
        timed(name, lambda c=config: progressive(session, c), args.profile)
    timed("ranges (inspect)", session.inspect, args.profile)


def progressive(session: Any, config: Any) -> Any:
    """`evaluate_progressively`, printing when each partial result arrives."""
    started = time.perf_counter()
    for result in session.evaluate_progressively(config):
        elapsed = time.perf_counter() - started
        print(f"  {result.samples} samples after {elapsed:.1f} s", flush=True)
    return result


if __name__ == "__main__":
    main()
