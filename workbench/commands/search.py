"""`workbench search [MODEL]`: the smallest (or fastest) variant within a drop of float accuracy.

Prints one line per trial as it is measured, then the chosen variant with its accuracy and
paired drop on the test split, and the Pareto front. `--json` writes the whole result,
`--save-dir` the chosen `.tflite`, its LiteRT Quantizer recipe and the front (JSON and CSV);
all written atomically. Ctrl-C stops the search and still reports the best variant so far.
`--scheduler ADDRESS` or `--workers N` convert and validate the candidates on Dask workers (a
running cluster, or an embedded one of N processes) instead of in this process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from pathlib import Path
from typing import Any

from workbench.commands.arguments import add_calibration_samples, add_cluster, add_measured_model
from workbench.commands.compare import _size
from workbench.errors import UnsupportedError
from workbench.search import Objective, SearchConfig, SearchResult


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "search",
        help="find the smallest or fastest variant within an accuracy drop",
        description=(
            "Search per-layer precision (float32, int16x8, int8 per-channel or per-tensor, "
            "int4 weights) on the LiteRT Quantizer route for the smallest (or fastest) "
            "variant whose accuracy drop against float, on a validation split, is within "
            "--max-drop points at 95 % confidence; report it on the test split."
        ),
    )
    add_measured_model(parser)
    parser.add_argument(
        "--max-drop", type=float, default=1.0, metavar="POINTS", help="accepted drop (1.0)"
    )
    parser.add_argument(
        "--objective",
        default=Objective.SIZE.value,
        metavar="size|latency",
        help="what to minimise (size)",
    )
    parser.add_argument(
        "--budget", type=int, default=20, metavar="N", help="full validations at most (20)"
    )
    parser.add_argument("--seconds", type=float, metavar="S", help="time budget in seconds")
    parser.add_argument("--seed", type=int, default=0, help="orders layers whose ranks tie")
    add_calibration_samples(parser)
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the whole result")
    parser.add_argument(
        "--save-dir",
        type=Path,
        metavar="DIR",
        help="write chosen.tflite, chosen.recipe.json, front.json, front.csv, search.json",
    )
    add_cluster(parser, None, "the trials")
    parser.set_defaults(run=run)


def summary(result: SearchResult) -> str:
    """The chosen variant, its test report and the Pareto front, as plain text."""
    lines = [
        f"{result.status}: {len(result.trials)} trials, {result.validations} full validations, "
        f"{result.seconds:.1f} s"
    ]
    chosen = result.chosen_trial
    if chosen is None:
        lines.append("nothing within the drop was found")
        return "\n".join(lines)
    lines.append(f"chosen: trial {chosen.index}, {chosen.label}")
    lines.append(f"  size {_size(chosen.size_bytes)}, latency {chosen.latency_ms:.3f} ms")
    for name, precision in chosen.config.layers.items():
        lines.append(f"  {name}: {precision.value}")
    if result.test is not None:
        test = result.test
        lines.append(
            f"  test split ({test.accuracy.samples} samples): accuracy {test.accuracy} % "
            f"(float {test.float_accuracy} %), drop {test.drop} points"
        )
    lines.append("Pareto front (validation split):")
    for trial in result.front:
        mark = "*" if trial.index == result.chosen else " "
        lines.append(
            f" {mark} trial {trial.index:2d}  {_size(trial.size_bytes):>9}  "
            f"{trial.latency_ms:7.3f} ms  accuracy {trial.accuracy} %  {trial.label}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from workbench.cluster.client import connect
    from workbench.files import check_distinct, check_output, write_bytes_atomically
    from workbench.session import Session

    check_distinct([(args.json, "--json"), (args.save_dir, "--save-dir")])
    check_output(args.json, "--json")  # bad output paths fail before any work
    check_output(args.save_dir, "--save-dir", folder=True)
    try:  # bad options fail before the model is loaded
        config = SearchConfig(
            objective=args.objective,
            max_drop=args.max_drop,
            budget=args.budget,
            seconds=args.seconds,
            seed=args.seed,
            calibration_samples=args.samples,
        )
    except UnsupportedError as error:  # name the option as typed: max_drop -> --max-drop
        field, _, rest = str(error).partition(":")
        option = "--samples" if field == "calibration_samples" else f"--{field.replace('_', '-')}"
        raise UnsupportedError(f"{option}:{rest}") from None
    with contextlib.ExitStack() as stack:  # the cluster first: a bad address fails at once
        client = None
        if args.scheduler is not None or args.workers is not None:
            workers = args.workers or 0  # unused with a scheduler; 0 is refused without one
            client = stack.enter_context(connect(args.scheduler, workers=workers))
            print(f"Dask dashboard: {client.dashboard_link}", flush=True)
        session = Session(args.model, args.data, weights=args.weights)
        print(
            f"{session.model.name} on {session.data.name if session.data else 'no data'}: "
            f"{config.objective.value} within {config.max_drop:g} points, "
            f"{len(session.data.validation) if session.data else 0} validation samples",
            flush=True,
        )
        result = session.search(
            config, progress=lambda trial, best: print(trial.line(), flush=True), client=client
        )
    print(summary(result))
    if args.json is not None:
        text = json.dumps(result.to_dict(), indent=2, allow_nan=False)
        write_bytes_atomically(args.json, (text + "\n").encode())
        print(f"wrote {args.json}")
    if args.save_dir is not None:
        written = result.save(args.save_dir)
        print(f"wrote {', '.join(path.name for path in written.values())} to {args.save_dir}")
    return 0
