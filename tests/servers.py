"""Helpers for tests that start real servers: free ports, raw HTTP, the process tree."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
APP_RENDERED = "application/vnd.jupyter.widget-view+json"  # the dashboard widget's output


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(port: int, path: str) -> tuple[int, str]:
    """GET http://127.0.0.1:port/path without following redirects: status and body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


def close_code_after_sending(port: int, path: str, size: int) -> int | None:
    """Open ws://127.0.0.1:port/path, send `size` bytes, read until the server closes; return
    its close code (1009: message too big)."""
    import asyncio

    from tornado.websocket import websocket_connect

    async def exchange() -> int | None:
        connection = await websocket_connect(f"ws://127.0.0.1:{port}{path}")
        await connection.write_message(b"\0" * size, binary=True)
        while await asyncio.wait_for(connection.read_message(), 60) is not None:
            pass  # whatever the kernel says before the server closes the socket
        return connection.close_code

    return asyncio.run(exchange())


def read_banner(launcher: subprocess.Popen, log: Path) -> str:
    """What `workbench dashboard` prints once Voila listens: the addresses, then the limits."""
    printed = ""
    while "at most" not in printed:
        line = launcher.stdout.readline()
        assert line, f"launcher exited {launcher.poll()}: {log.read_text()[-3000:]}"
        printed += line
    return printed


def _stat(pid: int | str) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def alive(pid: int) -> bool:
    try:
        return _stat(pid)[0] != "Z"
    except OSError:
        return False


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = _stat(entry.name)
            except OSError:
                continue
            if fields[0] != "Z":
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def wait_for(condition: Callable[[], T], timeout: float, what: str) -> T:
    """Poll `condition` (a real process or server) until it returns something true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    raise TimeoutError(what)


def stop(launcher: subprocess.Popen, processes: set[int]) -> None:
    """Kill the launcher and whatever it left running (test clean-up only)."""
    if launcher.poll() is None:
        launcher.kill()
        launcher.wait()
    for pid in processes | descendants(launcher.pid):
        if alive(pid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def leaves_no_process(timeout: float = 30) -> Iterator[None]:
    """Check that every child process started inside the block has ended after it (but
    multiprocessing's resource tracker: one per process, it leaves when this process does)."""
    import psutil

    def started_here(process: psutil.Process) -> bool:
        try:
            return process.pid not in before and "resource_tracker" not in process.cmdline()[-1]
        except (psutil.NoSuchProcess, IndexError):
            return False

    before = {process.pid for process in psutil.Process().children(recursive=True)}
    yield
    children = [p for p in psutil.Process().children(recursive=True) if started_here(p)]
    _, alive = psutil.wait_procs(children, timeout=timeout)
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]
