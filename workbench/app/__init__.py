"""The dashboard app `workbench dashboard` serves: its notebook and the server's kernel limits.

`dashboard.ipynb` ships as package data, so a wheel install serves it as a source checkout
does. `kernels.CappedKernelManager` is the kernel manager Voila runs with.
"""

from pathlib import Path

NOTEBOOK = Path(__file__).resolve().parent / "dashboard.ipynb"
