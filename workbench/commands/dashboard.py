"""`workbench dashboard [MODEL]`: serve the workbench as a Voila app.

Everything is checked before Voila starts: the model, data and weights (names, and files: that
they exist and are what their suffix says), the port, the host and whether the port is free
(Voila would silently move to another port). On an address other than loopback a token is
required (generated unless `--token` gives one) and printed in the URL, as Jupyter does. Voila
runs with a private config file: the token, the upload cap (largest websocket message; the
kernel's upload buttons get the same cap), the kernel cap, kernel culling and the grace after
a page closes. SIGTERM, SIGHUP and Ctrl-C stop Voila, which shuts its kernels down.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import ipaddress
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import webbrowser
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from workbench.app import (
    DEFAULT_MAX_UPLOAD_MB,
    MAX_UPLOAD_ENV,
    MESSAGE_MARGIN_MB,
    websocket_message_bytes,
)
from workbench.commands.arguments import DATA_HELP, add_data, add_model
from workbench.errors import DataError, ModelFileError, UnsupportedError

MODEL_ENV = "WORKBENCH_MODEL"  # read by workbench/app/dashboard.ipynb
DATA_ENV = "WORKBENCH_DATA"
WEIGHTS_ENV = "WORKBENCH_WEIGHTS"  # read by workbench.models.pretrained
KERNEL_GB = 1.5  # a dashboard kernel holds 1.0-1.4 GB (README); the default cap keeps room
SYSTEM_GB = 2.0  # left for the server and the system by the default kernel cap
STOP_SECONDS = 20  # Voila's grace to shut its kernels down before it is killed


@dataclass(frozen=True)
class Serving:
    """How Voila serves the room: access token, caps and culling."""

    token: str = ""
    max_upload_mb: int = DEFAULT_MAX_UPLOAD_MB
    max_kernels: int = 0
    cull_after: int = 900
    closed_after: int = 120

    def config(self) -> dict:
        """Voila's traitlets configuration (written to a private `voila.json`)."""
        return {
            "Voila": {
                "token": self.token,
                "tornado_settings": {
                    "websocket_max_message_size": websocket_message_bytes(self.max_upload_mb)
                },
            },
            "VoilaConfiguration": {
                "multi_kernel_manager_class": "workbench.app.kernels.CappedKernelManager",
            },
            "CappedKernelManager": {
                "max_kernels": self.max_kernels,
                "cull_idle_timeout": self.cull_after,
                "cull_interval": max(1, min(60, self.cull_after // 3)),
                "cull_connected": True,
                "closed_grace": self.closed_after,
            },
        }


def find_notebook() -> Path:
    """The dashboard notebook shipped inside the package."""
    from workbench.app import NOTEBOOK

    if not NOTEBOOK.is_file():
        raise ModelFileError(f"dashboard: {NOTEBOOK} is missing; reinstall quant-workbench")
    return NOTEBOOK


def voila_command(
    notebook: Path, *, port: int, host: str, browser: bool, config_dir: Path | None = None
) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "voila",
        str(notebook),
        f"--port={port}",
        f"--Voila.ip={host}",
        "--Voila.port_retries=0",  # a taken port is an error, never another port
        "--theme=light",
        "--strip_sources=True",
        "--show_tracebacks=False",
    ]
    if config_dir is not None:
        command.append(f"--Voila.config_file_paths={[str(config_dir)]!r}")
    if not browser:
        command.append("--no-browser")
    return command


def dashboard_env(
    model: str | None,
    data: str | None,
    weights: str | None = None,
    max_upload_mb: int = DEFAULT_MAX_UPLOAD_MB,
) -> dict[str, str]:
    """The kernel's environment: what to open, and the upload cap its upload buttons enforce
    (the same the server's websocket cap is sized for)."""
    env = dict(os.environ)
    for name, value in ((MODEL_ENV, model), (DATA_ENV, data), (WEIGHTS_ENV, weights)):
        if value:
            path = Path(value)
            env[name] = str(path.resolve()) if path.exists() else value
    env[MAX_UPLOAD_ENV] = str(max_upload_mb)
    return env


def check_sources(model: str | None, data: str | None, weights: str | None = None) -> None:
    """Refuse a model, data or weights the kernel could not open now, not in the browser a
    minute later: unknown names, missing files, files that are not what their suffix says (a
    text file named .keras), data folders without images. Nothing is loaded: a model file's
    first bytes are read, a data folder is listed and its first image opened (a compressed
    .npz is read whole)."""
    from workbench.datasets import DATASET_NAMES, load_dataset
    from workbench.models import DEMO_MODELS, check_model_path
    from workbench.models.pretrained import check_weights, parse_spec

    architecture = parse_spec(model, "none") is not None
    if model and Path(model).exists():
        check_model_path(Path(model))
    elif model and model not in DEMO_MODELS and not architecture:
        names = ", ".join(DEMO_MODELS)
        raise ModelFileError(
            f"model {model!r}: no such file, not a demo ({names}) and not an architecture "
            "(mobilenet_v2, resnet50@160, ...)"
        )
    check_weights(weights)
    if data and Path(data).exists():
        try:
            load_dataset(data)
        except DataError as error:
            raise DataError(f"--data {error}") from None
    elif data and data not in DATASET_NAMES:
        names = ", ".join(DATASET_NAMES)
        raise DataError(f"--data {data!r}: no such file or folder and not a dataset name ({names})")


def addresses(host: str, port: int) -> list[tuple]:
    """The socket addresses `host` resolves to; one-line errors for a bad host or port."""
    if not 1 <= port <= 65535:
        raise UnsupportedError(f"--port {port}: give a port between 1 and 65535")
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except UnicodeError:
        raise UnsupportedError(f"--host {host}: not a valid host name or address") from None
    except socket.gaierror as error:
        raise UnsupportedError(f"--host {host}: cannot resolve it ({error.strerror})") from None
    return [(family, address) for family, _, _, _, address in found]


def is_loopback(host: str, port: int) -> bool:
    return all(
        ipaddress.ip_address(address[0].split("%")[0]).is_loopback
        for _, address in addresses(host, port)
    )


def check_can_listen(host: str, port: int) -> None:
    """Bind every address of `host` on `port` once, as Voila will, and release it."""
    for family, address in addresses(host, port):
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as error:
                if error.errno == errno.EADDRINUSE:
                    raise UnsupportedError(
                        f"--port {port}: already in use on {host}; stop what serves it "
                        "or choose another port"
                    ) from None
                if error.errno == errno.EADDRNOTAVAIL:
                    raise UnsupportedError(
                        f"--host {host}: not an address of this machine; use 127.0.0.1, "
                        "0.0.0.0 or one of its own addresses"
                    ) from None
                if error.errno == errno.EACCES:
                    raise UnsupportedError(
                        f"--port {port}: not allowed for this user; use a port above 1023"
                    ) from None
                raise UnsupportedError(f"--host {host} --port {port}: {error.strerror}") from None


def serving_token(host: str, port: int, token: str | None) -> str:
    """The access token: the one given, else a new one when `host` is not loopback."""
    if token is not None and not token.strip() and not is_loopback(host, port):
        raise UnsupportedError(
            f"--token: an empty token on {host} lets anyone on the network in; "
            "omit --token to get a generated one"
        )
    if token is not None:
        return token.strip()
    return "" if is_loopback(host, port) else secrets.token_hex(24)


def default_max_kernels() -> int:
    """One kernel per KERNEL_GB of the machine's memory, after SYSTEM_GB for the rest."""
    try:
        total_gb = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
    except (ValueError, OSError, AttributeError):
        return 8
    return max(1, int((total_gb - SYSTEM_GB) // KERNEL_GB))


def urls(host: str, port: int, token: str) -> list[str]:
    """Where to open the dashboard (with the token), as Jupyter prints them."""
    query = f"?token={token}" if token else ""
    if host in ("0.0.0.0", "::", ""):
        hosts = [socket.gethostname(), "127.0.0.1"]
    else:
        hosts = [f"[{host}]" if ":" in host else host]
    return [f"http://{name}:{port}/{query}" for name in hosts]


@contextlib.contextmanager
def config_folder(serving: Serving) -> Iterator[Path]:
    """A private folder holding `voila.json` (the token stays out of the process list)."""
    with tempfile.TemporaryDirectory(prefix="workbench-dashboard-") as folder:
        path = Path(folder) / "voila.json"
        path.touch(mode=0o600)
        path.write_text(json.dumps(serving.config(), indent=1))
        yield Path(folder)


def _wait_until_listening(host: str, port: int, process: subprocess.Popen) -> None:
    target = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    while process.poll() is None:
        with contextlib.suppress(OSError), socket.create_connection((target, port), timeout=1):
            return
        time.sleep(0.2)  # polling a server that is starting
    raise UnsupportedError(
        f"dashboard: voila stopped while starting (exit {process.returncode}); see its log above"
    )


def _stop(process: subprocess.Popen) -> None:
    """Ask Voila to stop (it shuts its kernels down), kill it if it does not."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _closed_text(seconds: int) -> str:
    return f", closed pages' after {seconds} s" if seconds else ""


def run(args: argparse.Namespace) -> int:
    check_sources(args.model, args.data, args.weights)
    if args.cull_after < 1:
        raise UnsupportedError(f"--cull-after {args.cull_after}: give a number of seconds >= 1")
    if args.closed_after < 0:
        raise UnsupportedError(
            f"--closed-after {args.closed_after}: give 0 (never) or more seconds"
        )
    if args.max_kernels is not None and args.max_kernels < 0:
        raise UnsupportedError(f"--max-kernels {args.max_kernels}: give 0 (no limit) or more")
    if args.max_upload_mb < 1:
        raise UnsupportedError(f"--max-upload-mb {args.max_upload_mb}: give at least 1")
    check_can_listen(args.host, args.port)
    serving = Serving(
        token=serving_token(args.host, args.port, args.token),
        max_upload_mb=args.max_upload_mb,
        max_kernels=default_max_kernels() if args.max_kernels is None else args.max_kernels,
        cull_after=args.cull_after,
        closed_after=args.closed_after,
    )
    notebook = find_notebook()
    with config_folder(serving) as folder:
        command = voila_command(
            notebook, port=args.port, host=args.host, browser=False, config_dir=folder
        )
        env = dashboard_env(args.model, args.data, args.weights, serving.max_upload_mb)
        process = subprocess.Popen(command, env=env)

        def stop_on_signal(signum: int, frame: object) -> None:
            raise SystemExit(0)  # unwinds to the `finally` below, which stops Voila

        previous = {
            sig: signal.signal(sig, stop_on_signal) for sig in (signal.SIGTERM, signal.SIGHUP)
        }
        try:
            _wait_until_listening(args.host, args.port, process)
            addresses_text = "\n  ".join(urls(args.host, args.port, serving.token))
            print(f"workbench dashboard (Ctrl-C to stop) on\n  {addresses_text}", flush=True)
            print(
                f"at most {serving.max_kernels or 'unlimited'} dashboards at once, uploads up "
                f"to {serving.max_upload_mb} MB, idle dashboards closed after "
                f"{serving.cull_after} s{_closed_text(serving.closed_after)}",
                flush=True,
            )
            if not args.no_browser:
                webbrowser.open(urls(args.host, args.port, serving.token)[-1])
            return process.wait()
        except KeyboardInterrupt:
            return 0  # Ctrl-C reached Voila too; `_stop` waits for it to finish
        finally:
            _stop(process)
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dashboard",
        help="open the interactive workbench in the browser (Voila)",
        description=(
            "Serve the workbench dashboard with Voila: the whole workbench on one page. "
            "On an address other than loopback a token is required and printed in the URL."
        ),
    )
    add_model(parser)
    add_data(parser, DATA_HELP)
    parser.add_argument("--port", type=int, default=8866, help="port (default 8866)")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; 0.0.0.0 serves the whole network)",
    )
    parser.add_argument(
        "--token",
        help="access token (default: none on loopback, a generated one on any other address)",
    )
    parser.add_argument(
        "--cull-after",
        type=int,
        default=Serving.cull_after,
        metavar="SECONDS",
        help="close a dashboard's kernel after this long idle, page open or not "
        f"(default {Serving.cull_after})",
    )
    parser.add_argument(
        "--closed-after",
        type=int,
        default=Serving.closed_after,
        metavar="SECONDS",
        help="close a dashboard's kernel this long after its page closed, unless the page "
        f"reconnects (default {Serving.closed_after}; 0: only when idle for --cull-after)",
    )
    parser.add_argument(
        "--max-kernels",
        type=int,
        metavar="N",
        help=f"most dashboards open at once (default: one per {KERNEL_GB} GB of memory)",
    )
    parser.add_argument(
        "--max-upload-mb",
        type=int,
        default=DEFAULT_MAX_UPLOAD_MB,
        metavar="MB",
        help=f"largest file a visitor can upload, in MB (default {DEFAULT_MAX_UPLOAD_MB}); the "
        "upload buttons refuse a larger one with a message, the server drops a message "
        f"more than {MESSAGE_MARGIN_MB} MB larger",
    )
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")
    parser.set_defaults(run=run)
