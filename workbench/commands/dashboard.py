"""`workbench dashboard [MODEL]`: serve the workbench as a Voila app on localhost."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from workbench.commands.arguments import add_data, add_model
from workbench.errors import ModelFileError

MODEL_ENV = "WORKBENCH_MODEL"  # read by notebooks/dashboard.ipynb
DATA_ENV = "WORKBENCH_DATA"
WEIGHTS_ENV = "WORKBENCH_WEIGHTS"  # read by workbench.models.pretrained


def find_notebook() -> Path:
    """notebooks/dashboard.ipynb of the checkout this package runs from."""
    here = Path(__file__).resolve()
    for folder in here.parents:
        candidate = folder / "notebooks" / "dashboard.ipynb"
        if candidate.is_file():
            return candidate
    raise ModelFileError(
        "dashboard: notebooks/dashboard.ipynb not found next to the workbench package; "
        "run from a source checkout (pip install -e .)"
    )


def voila_command(notebook: Path, *, port: int, host: str, browser: bool) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "voila",
        str(notebook),
        f"--port={port}",
        f"--Voila.ip={host}",
        "--theme=light",
        "--strip_sources=True",
        "--show_tracebacks=False",
    ]
    if not browser:
        command.append("--no-browser")
    return command


def dashboard_env(
    model: str | None, data: str | None, weights: str | None = None
) -> dict[str, str]:
    env = dict(os.environ)
    for name, value in ((MODEL_ENV, model), (DATA_ENV, data), (WEIGHTS_ENV, weights)):
        if value:
            path = Path(value)
            env[name] = str(path.resolve()) if path.exists() else value
    return env


def run(args: argparse.Namespace) -> int:
    if args.model and not Path(args.model).exists():
        from workbench.models import DEMO_MODELS
        from workbench.models.pretrained import parse_spec

        if args.model not in DEMO_MODELS and parse_spec(args.model) is None:
            names = ", ".join(DEMO_MODELS)
            raise ModelFileError(
                f"model {args.model!r}: no such file, not a demo ({names}) and not an "
                "architecture (mobilenet_v2, resnet50@160, ...)"
            )
    notebook = find_notebook()
    command = voila_command(notebook, port=args.port, host=args.host, browser=not args.no_browser)
    if shutil.which("voila") is None and not _voila_importable():
        raise ModelFileError("dashboard: voila is not installed; pip install voila")
    print(f"workbench dashboard on http://{args.host}:{args.port}/ (Ctrl-C to stop)")
    try:
        return subprocess.call(command, env=dashboard_env(args.model, args.data, args.weights))
    except KeyboardInterrupt:
        return 0


def _voila_importable() -> bool:
    import importlib.util

    return importlib.util.find_spec("voila") is not None


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dashboard",
        help="open the interactive workbench in the browser (Voila)",
        description="Serve notebooks/dashboard.ipynb with Voila: the whole workbench on one page.",
    )
    add_model(parser, "demo name or model file (default: demo)")
    add_data(parser, "dataset name or .npz file (default: the model's own)")
    parser.add_argument("--port", type=int, default=8866, help="port (default 8866)")
    parser.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")
    parser.set_defaults(run=run)
