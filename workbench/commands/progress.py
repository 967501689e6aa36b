"""Progress lines on stderr while a command works, only when stderr is a terminal.

One tqdm line for the current step ("loading the model and data") and one line per variant
that changes in place: converting, evaluating, done. Piped output and `--quiet` print nothing.
The lines go to a duplicate of stderr's file descriptor, so they still reach the terminal while
the converter's own chatter on descriptor 2 is being captured.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import IO, Any

from workbench.qtyping import QuantConfig, VariantResult


def is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


class Progress:
    """Status lines for one command run; use as a context manager."""

    def __init__(self, *, quiet: bool = False, stream: IO[str] | None = None) -> None:
        self._source = sys.stderr if stream is None else stream
        self.enabled = not quiet and is_terminal(self._source)
        self._stream: IO[str] | None = None
        self._lock = threading.Lock()
        self._step: Any = None
        self._lines: dict[QuantConfig, Any] = {}
        self._started: dict[QuantConfig, float] = {}

    def __enter__(self) -> Progress:
        if self.enabled:
            self._stream = os.fdopen(os.dup(self._source.fileno()), "w", buffering=1)
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            bars = [self._step, *self._lines.values()]
            self._step, self._lines = None, {}
        for bar in bars:
            if bar is not None:
                bar.close()
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def _bar(self, text: str, *, leave: bool) -> Any:
        from tqdm import tqdm

        return tqdm(
            file=self._stream,
            bar_format="{desc} [{elapsed}]",
            desc=text,
            leave=leave,
            position=len(self._lines) + 1,
        )

    def step(self, text: str) -> None:
        """Show what the command is doing now (one line, replaced by the next step)."""
        if self._stream is None:
            return
        with self._lock:
            if self._step is None:
                from tqdm import tqdm

                self._step = tqdm(
                    file=self._stream, bar_format="{desc} [{elapsed}]", leave=False, position=0
                )
            self._step.reset()  # the elapsed time counts from this step's start
            self._step.set_description_str(text)

    def stage(self, config: QuantConfig, stage: str) -> None:
        """Show a variant's stage on its own line: converting, evaluating, done."""
        if self._stream is None:
            return
        with self._lock:
            line = self._lines.get(config)
            if line is None:
                line = self._lines[config] = self._bar(config.label, leave=True)
                self._started[config] = time.perf_counter()
            if stage == "done":
                seconds = time.perf_counter() - self._started[config]
                line.bar_format = f"{{desc}} ({seconds:.1f} s)"
            line.set_description_str(f"{config.label}: {stage}")

    def _done(self, result: VariantResult) -> None:
        self.stage(result.config, "done")

    @contextlib.contextmanager
    def watch(self, session: Any) -> Iterator[None]:
        """Show the stages of every variant `session` works on inside the block."""
        if self._stream is None:
            yield
            return
        self.step(f"{session.model.name}: converting and evaluating")
        unsubscribe = [session.on_stage(self.stage), session.on_result(self._done)]
        try:
            yield
        finally:
            for stop in unsubscribe:
                stop()
