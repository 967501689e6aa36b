"""Keep TensorFlow's and LiteRT's chatter off the screen without touching Python's own output.

Two parts, so that nothing process-wide is swapped back and forth from worker threads:

- `quiet_start()`, called once at the edges (the CLI's start, a `Session`'s creation): sets
  TensorFlow's C++ log level (read when TensorFlow loads), the Python loggers of TensorFlow,
  absl and Keras to errors only, and warning filters for the converter's known chatter. With
  `own_streams=True` (the CLI) it also gives `sys.stdout` / `sys.stderr` their own copies of
  file descriptors 1 and 2, so Python output never passes through the descriptors `silenced()`
  redirects.
- `silenced()`, around one native call (a converter, quantizer or interpreter call): file
  descriptors 1 and 2, where C++ code writes, go into a buffer kept on the yielded `Capture`,
  so a failure can quote the tool's own explanation, and Keras' messages on the calling thread
  (the converter's "Saved artifact at ...") go to its logger: Keras keeps that switch per
  thread. One block at a time in the process; it never replaces `sys.stdout`, `sys.stderr`,
  loggers or warning filters.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

_LOCK = threading.RLock()  # fd redirection is process-wide: one silenced block at a time
_STARTED = threading.Lock()
_started: set[str] = set()
_LOGGERS = ("tensorflow", "absl", "keras", "h5py")
# Warnings the converter, the quantizer and the interpreter raise on every call.
_CHATTER = (r"tensorflow\.lite(\..*)?\Z", r"litert_quantizer(\..*)?\Z", r"ai_edge_litert(\..*)?\Z")


@dataclass
class Capture:
    """The text the silenced block printed; filled when the block exits."""

    text: str = ""

    def tail(self, lines: int = 5) -> str:
        """The last non-empty lines, joined with `; ` (for one-line error messages)."""
        kept = [line.strip() for line in self.text.splitlines() if line.strip()]
        return "; ".join(kept[-lines:])


def quiet_start(*, own_streams: bool = False) -> None:
    """Set log levels and warning filters once per process (later calls do nothing).

    Call it where the program starts, before TensorFlow is imported when possible; a user's own
    `TF_CPP_MIN_LOG_LEVEL` is kept.
    """
    with _STARTED:
        if "levels" not in _started:
            _started.add("levels")
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
            for name in _LOGGERS:
                logging.getLogger(name).setLevel(logging.ERROR)
            for module in _CHATTER:
                warnings.filterwarnings("ignore", module=module)
        if own_streams and "streams" not in _started:
            _started.add("streams")
            sys.stdout = _own_copy(sys.stdout, 1)
            sys.stderr = _own_copy(sys.stderr, 2)


def _own_copy(stream: object, fd: int) -> object:
    """`stream` writing to its own duplicate of `fd` when it writes to `fd` itself."""
    if not isinstance(stream, io.TextIOWrapper):
        return stream  # a notebook's or a test runner's stream: not a file descriptor
    with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
        if stream.fileno() == fd:
            stream.flush()
            return open(  # noqa: SIM115 - it lives as long as the process
                os.dup(fd),
                "w",
                buffering=1 if stream.line_buffering else -1,
                encoding=stream.encoding,
                errors=stream.errors,
            )
    return stream


@contextlib.contextmanager
def _keras_messages_logged() -> Iterator[None]:
    """Keras' `print_msg` to its logger instead of stdout, on this thread only."""
    config = getattr(sys.modules.get("keras"), "config", None)  # never imports Keras itself
    if config is None or not hasattr(config, "is_interactive_logging_enabled"):
        yield
        return
    interactive = config.is_interactive_logging_enabled()
    config.disable_interactive_logging()  # Keras 3 keeps it in a threading.local
    try:
        yield
    finally:
        if interactive:
            config.enable_interactive_logging()


@contextlib.contextmanager
def silenced() -> Iterator[Capture]:
    """Run the block with file descriptors 1 and 2 captured (one block at a time)."""
    capture = Capture()
    with _LOCK, tempfile.TemporaryFile(mode="w+b") as sink:
        for stream in (sys.stdout, sys.stderr):  # what Python wrote before stays outside
            with contextlib.suppress(AttributeError, ValueError, OSError):
                stream.flush()
        saved = [os.dup(1), os.dup(2)]
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            with _keras_messages_logged():
                yield capture
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            sink.seek(0)
            capture.text = sink.read().decode(errors="replace")
