"""The `workbench` command: subcommands live in `workbench.commands`, one module each."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

from workbench import __version__
from workbench.commands.progress import INTERRUPTED
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


@contextlib.contextmanager
def _remembering_interrupts() -> Iterator[threading.Event]:
    """Ctrl-C raises KeyboardInterrupt as usual and is remembered (`progress.INTERRUPTED`), so
    that a library that swallows it or turns it into another error on its way up (TensorFlow
    can) still ends as one line: the command stops at its next progress step, and whatever a
    library prints about it afterwards is not shown."""
    INTERRUPTED.clear()
    unraisable, stderr = sys.unraisablehook, sys.stderr

    def interrupt(signum: int, frame: object) -> None:
        INTERRUPTED.set()
        if sys.stderr is stderr:  # a second Ctrl-C keeps the first one's sink
            sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - closed when the command ends
        raise KeyboardInterrupt

    def quiet_unraisable(info: Any) -> None:
        if not INTERRUPTED.is_set():
            unraisable(info)  # Ctrl-C landing in a finalizer is no traceback worth showing

    if threading.current_thread() is not threading.main_thread():
        yield INTERRUPTED
        return
    previous = signal.signal(signal.SIGINT, interrupt)
    sys.unraisablehook = quiet_unraisable
    try:
        yield INTERRUPTED
    finally:
        signal.signal(signal.SIGINT, previous)
        sys.unraisablehook = unraisable
        if sys.stderr is not stderr:
            sys.stderr.close()
            sys.stderr = stderr


def main(argv: list[str] | None = None) -> int:
    quiet_start(own_streams=True)  # before TensorFlow loads: its C++ log level is read then
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    with _remembering_interrupts() as interrupted:
        try:
            return int(args.run(args) or 0)
        except KeyboardInterrupt:
            pass
        except WorkbenchError as error:
            if not interrupted.is_set():
                print(f"error: {error}", file=sys.stderr)
                return 2
        except Exception:
            if not interrupted.is_set():
                raise
    print("interrupted", file=sys.stderr)
    return 130  # 128 + SIGINT, as shells report it


if __name__ == "__main__":
    sys.exit(main())
