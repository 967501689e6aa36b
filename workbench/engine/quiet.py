"""Silence the converter: its C++ and Python chatter is captured, never shown to the user.

`silenced()` redirects file descriptors 1 and 2 (where TensorFlow's C++ code writes), Python's
`sys.stdout` / `sys.stderr`, Python warnings and TensorFlow's loggers into one buffer. The
captured text is kept on the yielded `Capture`, so a failure can quote the converter's own
explanation.
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
_LOGGERS = ("tensorflow", "absl", "keras", "h5py")


@dataclass
class Capture:
    """The text the silenced block printed; filled when the block exits."""

    text: str = ""

    def tail(self, lines: int = 5) -> str:
        """The last non-empty lines, joined with `; ` (for one-line error messages)."""
        kept = [line.strip() for line in self.text.splitlines() if line.strip()]
        return "; ".join(kept[-lines:])


@contextlib.contextmanager
def silenced() -> Iterator[Capture]:
    """Run the block with stdout, stderr and TensorFlow logging captured."""
    capture = Capture()
    with _LOCK, tempfile.TemporaryFile(mode="w+b") as sink:
        python_text = io.StringIO()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(AttributeError, ValueError, OSError):
                stream.flush()
        saved = [os.dup(1), os.dup(2)]
        levels = {name: logging.getLogger(name).level for name in _LOGGERS}
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            for name in _LOGGERS:
                logging.getLogger(name).setLevel(logging.ERROR + 10)
            with (
                contextlib.redirect_stdout(python_text),
                contextlib.redirect_stderr(python_text),
                warnings.catch_warnings(record=True) as caught,
            ):
                warnings.simplefilter("always")
                yield capture
        finally:
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            sink.seek(0)
            native = sink.read().decode(errors="replace")
            recorded = "".join(f"warning: {w.message}\n" for w in caught)
            capture.text = python_text.getvalue() + native + recorded
