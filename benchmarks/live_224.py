"""Issue 9's "live at 224" targets on a Keras MobileNetV2 at 224x224 (random weights).

``python benchmarks/live_224.py [--images 600] [--profile] [--compare converter|litert]``

The setup of issue 9: 600 generated 224x224 images (120 in the test split), a Session on
``mobilenet_v2`` with ``weights="none"``. Times, one after the other as a dashboard user meets
them: opening the session; the first page (the float32 baseline's first numbers, then the
first weight and activation ranges, `Session.inspect_progressively`, then the rest of both);
int8 per-channel on the LiteRT route, the granularity toggle to per-tensor, float16, and int8
on the converter route, each through `Session.evaluate_progressively` (its first partial
result, then the rest).
``--profile`` prints the functions that take the most cumulative time in each step;
``--compare ROUTE`` adds `Session.compare` of the standard variants against run.py's naive
side (a fresh converter call per variant + the per-sample loop), each from a fresh model.

Prints every target figure with its target and ok/MISS, writes them to ``live_224.json``
(``--out``) and exits 1 when one is missed. Absolute seconds: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Timed:
    """A step's result and its wall time."""

    value: Any
    seconds: float


def images(count: int, size: int = 224, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)
    corners = rng.uniform(0, 255, (count, 2, 1, 1, 3)).astype(np.float32)
    x = corners[:, 0] + (corners[:, 1] - corners[:, 0]) * ramp[:, None, None] * ramp[None, :, None]
    x += rng.normal(0, 12, x.shape).astype(np.float32)
    return np.clip(x, 0, 255).astype(np.uint8), np.arange(count) % 10


def timed(name: str, step: Callable[[], Any], profile: bool) -> Timed:
    """`step()` and its wall time, printed (with the top of a cProfile when `profile`)."""
    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    result = step()
    if profiler is not None:
        profiler.disable()
    seconds = time.perf_counter() - started
    print(f"{name}: {seconds:.1f} s", flush=True)
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
        print("\n".join(out.getvalue().splitlines()[:45]), flush=True)
    return Timed(result, seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--compare",
        choices=("converter", "litert"),
        help="also time Session.compare of the standard variants on this route against the "
        "naive converter calls + per-sample loops (run.py's naive side); several minutes",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "live_224.json")
    args = parser.parse_args()
    from run import Figure, report, standard_variants

    from workbench import QuantConfig
    from workbench.models import load_model
    from workbench.qtyping import Route
    from workbench.session import Session

    print(f"load average at the start: {_load()}")
    data = images(args.images)
    session = timed(
        "open (model + data)",
        lambda: Session("mobilenet_v2", data, weights="none"),
        args.profile,
    ).value
    print(f"  test samples: {len(session.data.test)}, calibration: {len(session.data.calibration)}")
    # the first page: the float baseline's first numbers, then the ranges, then the rest
    float32 = progressive(session, QuantConfig(route="litert", mode="float32"))
    first_float = timed("float32, LiteRT route: first numbers", lambda: next(float32), args.profile)
    inspections = session.inspect_progressively()
    ranges = timed("ranges: first numbers", lambda: next(inspections), args.profile)
    print(f"  {ranges.value.message or 'all calibration samples'}")
    timed("ranges: the rest", lambda: list(inspections), args.profile)
    timed("float32, LiteRT route: the rest", lambda: list(float32), args.profile)
    figures = [
        Figure(
            "MobileNetV2 224: first page after a warm start (float baseline + ranges, first)",
            first_float.seconds + ranges.seconds,
            20.0,
            "s",
            higher_is_better=False,
        )
    ]
    steps = [
        ("int8 per-channel, LiteRT route", QuantConfig(route="litert", mode="int8")),
        (
            "toggle to int8 per-tensor, LiteRT route",
            QuantConfig(route="litert", mode="int8", granularity="per-tensor"),
        ),
        ("float16, LiteRT route", QuantConfig(route="litert", mode="float16")),
        ("int8 per-channel, converter route", QuantConfig(mode="int8")),
    ]
    for name, config in steps:
        results = progressive(session, config)
        first = timed(f"{name}: first numbers", lambda r=results: next(r), args.profile)
        timed(f"{name}: the rest", lambda r=results: list(r), args.profile)
        if "toggle" in name:
            figures.append(
                Figure(
                    "MobileNetV2 224: toggle per-channel -> per-tensor, LiteRT route, first",
                    first.seconds,
                    1.0,
                    "s",
                    higher_is_better=False,
                )
            )
    if args.compare:

        def load() -> Any:
            return load_model("mobilenet_v2", weights="none")

        figures.append(standard_variants(session.data, Route(args.compare), load, target=3.0))
    print(f"load average at the end: {_load()}")
    return report(figures, args.out)


def _load() -> str:
    return ", ".join(f"{value:.1f}" for value in os.getloadavg())


def progressive(session: Any, config: Any) -> Iterator[Timed]:
    """`evaluate_progressively`, printing how long each result took since the one before."""
    started = time.perf_counter()
    for result in session.evaluate_progressively(config):
        elapsed = time.perf_counter() - started
        print(f"  {result.samples} samples: {elapsed:.1f} s", flush=True)
        yield Timed(result, elapsed)
        started = time.perf_counter()


if __name__ == "__main__":
    sys.exit(main())
