"""Arguments several subcommands share: the model, the data, comma-separated lists."""

from __future__ import annotations

import argparse

MODEL_HELP = (
    "demo model name, .keras, .h5 or .tflite file or SavedModel folder "
    "(default: the default demo model)"
)


def add_model(parser: argparse.ArgumentParser, help: str = MODEL_HELP) -> None:
    """The optional positional MODEL (None means the default demo model)."""
    parser.add_argument("model", nargs="?", default=None, help=help)


def add_data(parser: argparse.ArgumentParser, help: str) -> None:
    """`--data NAME_OR_PATH` (None means the demo model's own dataset)."""
    parser.add_argument("--data", metavar="NAME_OR_PATH", help=help)


def add_quiet(parser: argparse.ArgumentParser) -> None:
    """`--quiet`: no progress lines on stderr (they appear only when stderr is a terminal)."""
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")


def names(text: str | None) -> list[str]:
    """The non-empty, stripped items of a comma-separated option."""
    return [part.strip() for part in (text or "").split(",") if part.strip()]
