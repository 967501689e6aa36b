"""The dashboard app `workbench dashboard` serves: its notebook, the server's kernel limits and
the upload cap.

`dashboard.ipynb` ships as package data, so a wheel install serves it as a source checkout
does. `kernels.CappedKernelManager` is the kernel manager Voila runs with. The upload cap is one
setting: the launcher's `--max-upload-mb` sizes the server's largest websocket message and
reaches the kernel as `WORKBENCH_MAX_UPLOAD_MB`, which the upload buttons enforce with their
own message.
"""

import os
from pathlib import Path

NOTEBOOK = Path(__file__).resolve().parent / "dashboard.ipynb"
MAX_UPLOAD_ENV = "WORKBENCH_MAX_UPLOAD_MB"
DEFAULT_MAX_UPLOAD_MB = 100
MESSAGE_MARGIN_MB = 1  # a file within the cap, with its message's fields, always gets through


def max_upload_mb() -> float:
    """The upload cap in MB: `WORKBENCH_MAX_UPLOAD_MB`, else `DEFAULT_MAX_UPLOAD_MB`."""
    try:
        return float(os.environ.get(MAX_UPLOAD_ENV) or DEFAULT_MAX_UPLOAD_MB)
    except ValueError:
        return DEFAULT_MAX_UPLOAD_MB


def websocket_message_bytes(upload_mb: float) -> int:
    """The server's largest websocket message for an upload cap of `upload_mb`: the file and
    its message's fields, so a file just over the cap still reaches the upload button, which
    says why it refuses it."""
    return int((upload_mb + MESSAGE_MARGIN_MB) * 2**20)
