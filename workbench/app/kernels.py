"""A Voila kernel manager with a ceiling on concurrent kernels.

Every dashboard page gets its own kernel (1.0-1.4 GB each), so a room of visitors can exhaust
the machine's memory. `CappedKernelManager` refuses a new page with HTTP 503 and a one-line
reason once `max_kernels` are running; idle kernels are culled by jupyter-server's own culler
(`cull_idle_timeout`, `cull_interval`, `cull_connected`), which frees places again.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from tornado.web import HTTPError
from traitlets import Integer


class CappedKernelManager(AsyncMappingKernelManager):
    """`AsyncMappingKernelManager` that starts at most `max_kernels` kernels at once."""

    max_kernels = Integer(0, config=True, help="Most kernels running at once; 0 means no limit.")

    _starting = 0  # kernels asked for and not yet registered (visitors arriving together)

    async def start_kernel(self, *args: Any, **kwargs: Any) -> str:
        if kwargs.get("kernel_id") is not None:  # restarting one of ours: not a new kernel
            return await super().start_kernel(*args, **kwargs)
        running = len(self) + self._starting
        if 0 < self.max_kernels <= running:
            self.log.warning("Refused a new kernel: %d of %d running", running, self.max_kernels)
            raise HTTPError(
                503,
                reason=(
                    f"The workbench is full ({self.max_kernels} dashboards open); "
                    "try again in a few minutes"
                ),
            )
        self._starting += 1
        try:
            return await super().start_kernel(*args, **kwargs)
        finally:
            self._starting -= 1
