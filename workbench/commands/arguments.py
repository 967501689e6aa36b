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
    if not weights:
        return
    parser.add_argument(
        "--weights",
        metavar="imagenet|none|FILE",
        help="weights of an architecture named as MODEL: imagenet (the default; Keras' cache "
        "or a download), none (random) or a file saved with model.save_weights()",
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
