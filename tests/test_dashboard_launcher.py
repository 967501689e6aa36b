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

from workbench.app import MAX_UPLOAD_ENV, websocket_message_bytes
from workbench.cli import main
from workbench.errors import WorkbenchError

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
    "closed-after-negative": (["--closed-after", "-1"], "--closed-after"),
}


@pytest.mark.parametrize(("args", "message"), REFUSALS.values(), ids=REFUSALS.keys())
def test_launcher_refuses_in_one_line_before_starting_voila(capsys, args, message):
    port = ["--port", str(free_port())] if "--port" not in args else []
    assert main(["dashboard", "digits_cnn", "--no-browser", *port, *args]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert captured.out == ""  # no URL printed: nothing was started


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad-inputs")
    (folder / "notes.keras").write_text("these are notes, not a model\n")
    (folder / "notes.npz").write_text("these are notes, not arrays\n")
    (folder / "no-classes").mkdir()
    (folder / "no-saved-model").mkdir()
    return folder


BAD_INPUTS = {
    "text-named-keras": (["notes.keras"], "notes.keras: not a .keras archive"),
    "missing-model-file": (["missing.keras"], "'missing.keras': no such file"),
    "folder-not-a-saved-model": (["no-saved-model"], "without saved_model.pb"),
    "text-named-npz": (["digits_cnn", "--data", "notes.npz"], "notes.npz: not a readable .npz"),
    "folder-without-classes": (["digits_cnn", "--data", "no-classes"], "no class sub-folders"),
    "model-file-as-data": (["digits_cnn", "--data", "notes.keras"], "not a dataset"),
    "missing-weights-file": (["mobilenet_v2", "--weights", "gone.h5"], "--weights gone.h5"),
}


@pytest.mark.parametrize(("args", "message"), BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_launcher_refuses_bad_files_before_starting_voila(
    bad_inputs, capsys, monkeypatch, args, message
):
    """A file the kernel could not open fails at start in one line, not in the browser."""
    monkeypatch.chdir(bad_inputs)
    assert main(["dashboard", *args, "--no-browser", "--port", str(free_port())]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert captured.out == ""


def test_one_upload_cap_for_the_server_and_the_upload_buttons(monkeypatch, tmp_path):
    """`--max-upload-mb` sizes the server's websocket cap and reaches the kernel, whose upload
    buttons take a file of exactly that size and refuse one byte more, naming the option."""
    from workbench.commands.dashboard import Serving, dashboard_env
    from workbench.widgets.pickers import MODEL_SUFFIXES, saved_upload

    config = Serving(max_upload_mb=2).config()
    websocket = config["Voila"]["tornado_settings"]["websocket_max_message_size"]
    env = dashboard_env("digits_cnn", None, max_upload_mb=2)
    monkeypatch.setenv(MAX_UPLOAD_ENV, env[MAX_UPLOAD_ENV])
    exactly = b"PK\x03\x04" + b"\0" * (2 * 2**20 - 4)  # a .keras file's first bytes
    assert websocket > len(exactly) + 2**16  # the file and its message's fields get through
    assert saved_upload("m.keras", exactly, MODEL_SUFFIXES, "model", tmp_path).is_file()
    with pytest.raises(WorkbenchError, match=r"over the 2 MB upload limit.*--max-upload-mb"):
        saved_upload("m.keras", exactly + b"\0", MODEL_SUFFIXES, "model", tmp_path)


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
        too_big = websocket_message_bytes(1) + 1  # an upload the buttons could not even see
        assert close_code_after_sending(port, channels, too_big) == 1009

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


def test_a_closed_page_frees_its_kernel_after_the_grace_a_reconnected_one_keeps_it():
    """Voila starts a kernel per page and never shuts one down when the page closes: the
    manager does, `closed_grace` seconds after the last connection went, unless one came back."""
    from workbench.app.kernels import CappedKernelManager
    from workbench.commands.dashboard import Serving

    assert Serving(closed_after=7).config()["CappedKernelManager"]["closed_grace"] == 7

    async def two_pages():
        manager = CappedKernelManager(closed_grace=1)
        try:
            kept, closed = [await manager.start_kernel() for _ in range(2)]
            for kernel in (kept, closed):  # both pages connect, then their connections drop
                manager.notify_connect(kernel)
                manager.notify_disconnect(kernel)
            manager.notify_connect(kept)  # one page reconnects within the grace
            assert closed in manager
            for _ in range(600):  # its timer fired after the kept kernel's (which did nothing)
                if closed not in manager:
                    break
                await asyncio.sleep(0.1)
            return kept in manager, closed in manager
        finally:
            await manager.shutdown_all(now=True)

    assert asyncio.run(two_pages()) == (True, False)
