"""The wheel, not the checkout: build it, install it into a fresh venv made with ANOTHER Python
(3.12 or 3.13 while the suite runs on 3.11), and serve the dashboard from that install.

Pip's cache is reused (a second run downloads nothing). Set WORKBENCH_OTHER_PYTHON to choose the
interpreter; without one the test is skipped, unless WORKBENCH_REQUIRE_OTHER_PYTHON=1 (CI).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from servers import APP_RENDERED, command_line, descendants, free_port, get, read_banner, stop

ROOT = Path(__file__).resolve().parent.parent
SUPPORTED = ((3, 11), (3, 12), (3, 13))  # requires-python in pyproject.toml


def _version(python: str) -> tuple[int, int] | None:
    try:
        found = subprocess.run(
            [python, "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except OSError:
        return None
    words = found.stdout.split()
    return (int(words[0]), int(words[1])) if found.returncode == 0 and len(words) == 2 else None


def other_python() -> str | None:
    """A supported Python other than the one running the tests (PATH, then pyenv's)."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = [os.environ.get("WORKBENCH_OTHER_PYTHON")]
    for minor in (12, 13, 11):  # 3.12 first: the most common Python besides 3.11
        candidates.append(shutil.which(f"python3.{minor}"))
        candidates += [str(path) for path in sorted(pyenv.glob(f"3.{minor}.*/bin/python3"))]
    for python in filter(None, candidates):
        version = _version(python)
        if version in SUPPORTED and version != sys.version_info[:2]:
            return python
    return None


@pytest.fixture(scope="module")
def python() -> str:
    found = other_python()
    if found is None:
        message = f"no supported Python other than {sys.version_info[:2]} found"
        if os.environ.get("WORKBENCH_REQUIRE_OTHER_PYTHON") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return found


def build_wheel(folder: Path) -> Path:
    """Build from a copy of the sources, so the checkout gets no build/ or egg-info."""
    source = folder / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "workbench", source / "workbench", ignore=shutil.ignore_patterns("__pycache__")
    )
    pip = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(folder / "dist")]
    subprocess.run([*pip, str(source)], check=True, capture_output=True, timeout=600)
    (wheel,) = (folder / "dist").glob("quant_workbench-*.whl")
    return wheel


def test_wheel_installs_with_another_python_and_serves_the_dashboard(tmp_path, python):
    wheel = build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    assert "workbench/app/dashboard.ipynb" in names and "workbench/demo/digits_cnn.keras" in names

    venv = tmp_path / "venv"
    subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-compile"]
    subprocess.run([*pip, str(wheel)], check=True, capture_output=True, timeout=1500)

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["JUPYTER_RUNTIME_DIR"] = str(tmp_path / "runtime")
    port = free_port()
    command = [str(venv / "bin" / "workbench"), "dashboard", "digits_cnn", "--no-browser"]
    log = tmp_path / "voila.log"
    with log.open("w") as stderr:
        launcher = subprocess.Popen(
            [*command, "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
            cwd=tmp_path,  # not the checkout: nothing of the source tree is importable
        )
    try:
        assert f"http://127.0.0.1:{port}/" in read_banner(launcher, log)
        voila = [command_line(pid) for pid in descendants(launcher.pid)]
        site = str(venv / "lib")
        assert any("voila" in line and site in line and "dashboard.ipynb" in line for line in voila)
        status, page = get(port, "/")
        assert status == 200 and "Quant Workbench" in page and APP_RENDERED in page, page[-2000:]
        kernels = [
            line for line in map(command_line, descendants(launcher.pid)) if "ipykernel" in line
        ]
        assert kernels and all(line.startswith(str(venv)) for line in kernels)  # the venv's Python
        launcher.send_signal(signal.SIGTERM)
        assert launcher.wait(60) == 0
    finally:
        stop(launcher, set())
        shutil.rmtree(venv, ignore_errors=True)  # about 2 GB; pytest keeps old tmp folders
