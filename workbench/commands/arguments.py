"""Arguments several subcommands share: the command itself, the model, the data, the output
file, comma-separated lists."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

MODEL_HELP = (
    "demo model name, architecture name (mobilenet_v2, mobilenet_v3_small, mobilenet_v3_large, "
    "efficientnet_b0, resnet50; NAME@SIZE for another input size), .keras, .h5 or .tflite file "
    "or SavedModel folder (default: the default demo model)"
)


def add_command(
    subparsers: Any, name: str, help: str, description: str, run: Callable[..., int]
) -> argparse.ArgumentParser:
    """A subcommand that runs `run(args)`, with its help, description and the MODEL argument."""
    parser = subparsers.add_parser(name, help=help, description=description)
    parser.set_defaults(run=run)
    add_model(parser)
    return parser


def add_output(parser: argparse.ArgumentParser, help: str) -> None:
    """`-o/--output FILE`."""
    parser.add_argument("-o", "--output", help=help)


def add_model(
    parser: argparse.ArgumentParser, help: str = MODEL_HELP, *, weights: bool = True
) -> None:
    """The optional positional MODEL (None means the default demo model) and, unless the
    command has its own, `--weights` for an architecture named as MODEL."""
    parser.add_argument("model", nargs="?", default=None, help=help)
    if weights:
        add_weights(parser, "an architecture named as MODEL")


def add_weights(parser: argparse.ArgumentParser, which: str) -> None:
    """`--weights imagenet|none|FILE` for `which` architectures."""
    parser.add_argument(
        "--weights",
        metavar="imagenet|none|FILE",
        help=f"weights of {which}: imagenet (the default; Keras' cache or a download), none "
        "(random, seeded) or a file saved with model.save_weights()",
    )


def add_data(parser: argparse.ArgumentParser, help: str) -> None:
    """`--data NAME_OR_PATH` (None means the demo model's own dataset)."""
    parser.add_argument("--data", metavar="NAME_OR_PATH", help=help)


def add_quiet(parser: argparse.ArgumentParser) -> None:
    """`--quiet`: no progress lines on stderr (they appear only when stderr is a terminal)."""
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")


def names(text: str | None) -> list[str]:
    """The non-empty, stripped items of a comma-separated option."""
    return [part.strip() for part in (text or "").split(",") if part.strip()]


# -- commands that measure one model on a dataset (compare, search), and cluster options ----

DATA_HELP = "dataset name, .npz file, image folder or its .zip (default: the demo model's dataset)"


def add_measured_model(parser: argparse.ArgumentParser) -> None:
    """MODEL, `--weights` and `--data`: the model a command measures, on its dataset."""
    add_model(parser)
    add_data(parser, DATA_HELP)


def add_calibration_samples(parser: argparse.ArgumentParser) -> None:
    """`--samples N`: calibration samples of the integer variants (200)."""
    parser.add_argument("--samples", type=positive, default=200, help="calibration samples")


def add_test_samples(parser: argparse.ArgumentParser) -> None:
    """`--test-samples N|all`: how many test samples each variant is measured on."""
    from workbench.session import TEST_SAMPLES

    parser.add_argument(
        "--test-samples",
        type=_test_samples,
        default=TEST_SAMPLES,
        metavar="N|all",
        help=f"test samples each variant is measured on (the first {TEST_SAMPLES}; all: every one)",
    )


def _test_samples(text: str) -> int | None:
    """A positive count, or `all` (None)."""
    return None if text == "all" else positive(text, " or all")


def positive(text: str, other: str = "") -> int:
    """A positive whole number of samples (an argparse type)."""
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a positive number of samples{other}")
    return count


def add_cluster(parser: argparse.ArgumentParser, workers: int | None, what: str) -> None:
    """`--scheduler ADDRESS` and `--workers N` (an embedded LocalCluster): where `what` runs."""
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help=f"run {what} on a running Dask scheduler, e.g. tcp://host:8786",
    )
    default = "" if workers is None else f" ({workers})"
    parser.add_argument(
        "--workers",
        type=int,
        default=workers,
        metavar="N",
        help=f"run {what} on an embedded Dask cluster of N worker processes{default}",
    )
