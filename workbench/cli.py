"""The `workbench` command: subcommands live in `workbench.commands`, one module each."""

from __future__ import annotations

import argparse
import importlib
import sys

from workbench import __version__
from workbench.engine.quiet import quiet_start
from workbench.errors import WorkbenchError

COMMANDS = ("inspect", "compare", "convert", "compress", "search", "dashboard", "sweep")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench",
        description=(
            "Quantize TensorFlow models to TFLite / LiteRT and see what it does, layer by layer."
        ),
    )
    parser.add_argument("--version", action="version", version=f"workbench {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"workbench.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    quiet_start(own_streams=True)  # before TensorFlow loads: its C++ log level is read then
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args.run(args) or 0)
    except WorkbenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130  # 128 + SIGINT, as shells report it


if __name__ == "__main__":
    sys.exit(main())
