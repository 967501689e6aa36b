"""Progress on stderr while a command works, only when stderr is a terminal.

One tqdm status line shows the current step and what each variant is doing ("converting
float16 · evaluating int8 · per-tensor"); each variant that finishes leaves one line above it
("int8 · per-channel: done (4.1 s)"). Piped output and `--quiet` print nothing. The lines go to
a duplicate of stderr's file descriptor, so they reach the terminal even while the converter's
own chatter on descriptor 2 is being captured.
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

INTERRUPTED = threading.Event()  # set by the CLI's Ctrl-C handler (`workbench.cli`)


def stop_if_interrupted() -> None:
    """Raise `KeyboardInterrupt` once Ctrl-C was pressed, on whichever thread asks: TensorFlow
    can swallow the first one or turn it into another error, and the command must still stop."""
    if INTERRUPTED.is_set():
        raise KeyboardInterrupt


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
        self._bar: Any = None
        self._step = ""
        self._active: dict[QuantConfig, str] = {}
        self._started: dict[QuantConfig, float] = {}
        self._done = 0
        self._closing = threading.Event()
        self._ticker: threading.Thread | None = None

    def __enter__(self) -> Progress:
        if self.enabled:
            from tqdm import tqdm

            self._stream = os.fdopen(os.dup(self._source.fileno()), "w", buffering=1)
            self._bar = tqdm(file=self._stream, bar_format="{desc} [{elapsed}]", leave=False)
            self._ticker = threading.Thread(
                target=self._tick, name="workbench-progress", daemon=True
            )
            self._ticker.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._stream is not None:
            self._closing.set()
            self._ticker.join()
            with self._lock:
                self._bar.close()
                self._stream.close()
                self._stream = None
        if exc_info[0] is None:
            stop_if_interrupted()  # nothing is written after a Ctrl-C the work did not notice

    def _tick(self) -> None:
        """Redraw once a second, so the elapsed time moves during a long conversion."""
        while not self._closing.wait(1.0):
            with self._lock:
                self._bar.refresh()

    def _show(self) -> None:
        """Redraw the status line (the lock is held)."""
        doing = " · ".join(f"{stage} {config.label}" for config, stage in self._active.items())
        done = f"{self._done} done" if self._done else ""
        state = ", ".join(filter(None, [done, doing]))
        self._bar.set_description_str(f"{self._step}: {state}" if state else self._step)

    def step(self, text: str) -> None:
        """Show what the command is doing now; the elapsed time restarts."""
        stop_if_interrupted()
        if self._stream is None:
            return
        with self._lock:
            self._step = text
            self._bar.reset()
            self._show()

    def stage(self, config: QuantConfig, stage: str) -> None:
        """A variant's stage: converting, evaluating, per-layer error, or done (one line)."""
        stop_if_interrupted()
        if self._stream is None:
            return
        with self._lock:
            started = self._started.setdefault(config, time.perf_counter())
            if stage == "done":
                self._active.pop(config, None)
                self._done += 1
                seconds = time.perf_counter() - started
                self._bar.write(f"{config.label}: done ({seconds:.1f} s)", file=self._stream)
            else:
                self._active[config] = stage
            self._show()

    def _finished(self, result: VariantResult) -> None:
        self.stage(result.config, "done")

    @contextlib.contextmanager
    def watch(self, session: Any) -> Iterator[None]:
        """Show the stages of every variant `session` works on inside the block (and stop at
        the next stage after a Ctrl-C, even when nothing is shown)."""
        self.step(session.model.name)
        unsubscribe = [session.on_stage(self.stage), session.on_result(self._finished)]
        try:
            yield
        finally:
            for stop in unsubscribe:
                stop()
