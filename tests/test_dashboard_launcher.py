"""`workbench dashboard`: refusals before Voila starts, and a real server with its token, kernel
cap, culling and SIGTERM. Traffic goes to 127.0.0.1 only (a 0.0.0.0 bind is reached there)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from servers import (
    APP_RENDERED,
    alive,
    close_code_after_sending,
    command_line,
    descendants,
    free_port,
    get,
    read_banner,
    stop,
    wait_for,
)

from workbench.cli import main

ROOT = Path(__file__).resolve().parent.parent
KERNEL_ID = re.compile(r'"kernelId":\s*"([0-9a-f-]+)"')


@pytest.fixture
def taken_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


REFUSALS = {
    "unknown-data": (["--data", "no_such_data"], "--data 'no_such_data'"),
    "port-too-big": (["--port", "70000"], "--port 70000"),
    "port-zero": (["--port", "0"], "--port 0"),
    "invalid-host": (["--host", "no..such.host"], "--host no..such.host"),
    "foreign-address": (["--host", "192.0.2.1"], "not an address of this machine"),
    "empty-token-off-loopback": (["--host", "0.0.0.0", "--token", ""], "--token"),
    "cull-after-zero": (["--cull-after", "0"], "--cull-after"),
}


@pytest.mark.parametrize(("args", "message"), REFUSALS.values(), ids=REFUSALS.keys())
def test_launcher_refuses_in_one_line_before_starting_voila(capsys, args, message):
    port = ["--port", str(free_port())] if "--port" not in args else []
    assert main(["dashboard", "digits_cnn", "--no-browser", *port, *args]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert captured.out == ""  # no URL printed: nothing was started


def test_launcher_refuses_a_taken_port(capsys, taken_port):
    """Voila alone would move to the next port while the launcher printed the taken one."""
    assert main(["dashboard", "digits_cnn", "--no-browser", "--port", str(taken_port)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and f"--port {taken_port}: already in use" in lines[0], lines


def test_dashboard_committed_without_outputs():
    import json

    from workbench.commands.dashboard import find_notebook

    cells = json.loads(find_notebook().read_text())["cells"]
    assert cells and not any(c.get("outputs") or c.get("execution_count") for c in cells)


def test_served_room_token_cap_culling_and_sigterm(tmp_path):
    """0.0.0.0 needs a token; with one the app renders; a second page over the cap is refused,
    so is a websocket message over the upload cap; the idle kernel is culled; SIGTERM during a
    page load leaves no process behind."""
    port = free_port()
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "workbench.cli", "dashboard", "digits_cnn", "--no-browser"]
    command += ["--host", "0.0.0.0", "--port", str(port), "--cull-after", "5", "--max-kernels", "1"]
    command += ["--max-upload-mb", "1"]
    log = tmp_path / "voila.log"
    with log.open("w") as stderr:
        launcher = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env, cwd=tmp_path
        )
    processes: set[int] = set()
    try:
        printed = read_banner(launcher, log)
        token = re.search(r"\?token=([0-9a-f]+)", printed).group(1)
        assert len(token) >= 32 and f"http://127.0.0.1:{port}/?token={token}" in printed

        status, _ = get(port, "/")
        assert status in (302, 403)  # to the login page: no token, no app
        status, page = get(port, f"/?token={token}")
        assert status == 200 and "Quant Workbench" in page and APP_RENDERED in page
        kernel = KERNEL_ID.search(page).group(1)
        status, refused = get(port, f"/?token={token}")  # a second visitor, over the cap
        assert status == 503 and "full (1 dashboards open)" in refused
        channels = f"/api/kernels/{kernel}/channels?token={token}"
        assert close_code_after_sending(port, channels, 2**20 + 1) == 1009  # upload over the cap

        def culled() -> bool:
            return get(port, f"/api/kernels/{kernel}?token={token}")[0] == 404

        wait_for(culled, 120, "the idle kernel was never culled")

        loading = threading.Thread(target=lambda: _ignore_errors(get, port, f"/?token={token}"))
        loading.start()
        kernels = wait_for(
            lambda: [pid for pid in descendants(launcher.pid) if "ipykernel" in command_line(pid)],
            120,
            "no kernel started for the second page",
        )
        processes = descendants(launcher.pid)
        assert set(kernels) <= processes and len(processes) >= 2  # voila and a kernel
        launcher.send_signal(signal.SIGTERM)
        assert launcher.wait(60) == 0
        wait_for(lambda: not any(alive(pid) for pid in processes), 30, "processes left running")
        loading.join(60)
    finally:
        stop(launcher, processes)


def _ignore_errors(function, *args) -> None:
    try:
        function(*args)
    except OSError:
        pass  # the server stopped while the page was loading: what the test does


def test_simultaneous_visitors_do_not_pass_the_kernel_cap():
    """Two pages asking at once: the cap counts kernels still starting, so one is refused."""
    from tornado.web import HTTPError

    from workbench.app.kernels import CappedKernelManager

    async def arrive_together():
        manager = CappedKernelManager(max_kernels=1)
        try:
            return await asyncio.gather(
                manager.start_kernel(), manager.start_kernel(), return_exceptions=True
            )
        finally:
            await manager.shutdown_all(now=True)

    outcomes = asyncio.run(arrive_together())
    refused = [o for o in outcomes if isinstance(o, HTTPError)]
    assert len(refused) == 1 and refused[0].status_code == 503, outcomes
    assert sum(isinstance(o, str) for o in outcomes) == 1
