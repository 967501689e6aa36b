"""`workbench` as a real process: clean stderr, one-line load errors, progress only on a
terminal, Ctrl-C in one line with exit status 130."""

import os
import pty
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WORKBENCH = [sys.executable, "-m", "workbench.cli"]


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    command = [*WORKBENCH, *args]
    return subprocess.run(
        command, capture_output=True, text=True, cwd=cwd, env=environment(), timeout=300
    )


def on_terminal(*args: str, cwd: Path, interrupt_on: str | None = None) -> tuple[int, str]:
    """Run with stderr on a pseudo-terminal; return the exit status and what stderr showed.
    With `interrupt_on`, send SIGINT (Ctrl-C) once that text has appeared."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [*WORKBENCH, *args],
        stdout=subprocess.DEVNULL,
        stderr=follower,
        cwd=cwd,
        env=environment(),
    )
    os.close(follower)
    shown, interrupted = b"", False
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed: every writer has exited
            break
        if not chunk:
            break
        shown += chunk
        if interrupt_on and not interrupted and interrupt_on.encode() in shown:
            process.send_signal(signal.SIGINT)
            interrupted = True
    os.close(leader)
    return process.wait(timeout=120), shown.decode(errors="replace")


def test_load_error_on_a_terminal_is_one_line_without_chatter(tmp_path):
    """TensorFlow's start-up chatter never precedes the error line; `--quiet` shows no
    progress even on a terminal."""
    (tmp_path / "notes.keras").write_text("these are notes, not a model\n")
    code, shown = on_terminal("inspect", "notes.keras", "--quiet", cwd=tmp_path)
    lines = shown.strip().splitlines()
    assert code == 2 and len(lines) == 1, shown
    assert lines[0].startswith("error: notes.keras: not a .keras archive"), lines


def test_piped_run_prints_no_progress_and_no_chatter(tmp_path):
    result = run("inspect", "digits_cnn", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.startswith("digits_cnn (keras")


def test_progress_on_a_terminal(tmp_path):
    args = ["convert", "digits_cnn", "--mode", "int8", "--samples", "50", "-o", "d.tflite"]
    code, shown = on_terminal(*args, cwd=tmp_path)
    assert code == 0, shown
    assert "loading the model and data" in shown
    assert "converting int8 · per-channel" in shown and "int8 · per-channel: done (" in shown


def test_ctrl_c_is_one_line_and_exit_130(tmp_path):
    args = ["compare", "digits_cnn", "--json", "r.json"]
    code, shown = on_terminal(*args, cwd=tmp_path, interrupt_on="converting ")
    assert code == 130, shown
    assert "Traceback" not in shown and shown.rstrip().endswith("interrupted"), shown[-300:]
    assert list(tmp_path.iterdir()) == []


def test_a_swallowed_ctrl_c_still_stops_the_command_before_it_writes():
    """TensorFlow can swallow a Ctrl-C (or print it as a SystemError and go on): the command
    still stops at its next progress step, and at the latest when its work ends, before any
    output is written."""
    from workbench.commands.progress import INTERRUPTED, Progress

    INTERRUPTED.set()
    try:
        with pytest.raises(KeyboardInterrupt), Progress(quiet=True) as progress:
            progress.step("converting")
        with pytest.raises(KeyboardInterrupt), Progress(quiet=True):
            pass  # work that never reported a step
    finally:
        INTERRUPTED.clear()
