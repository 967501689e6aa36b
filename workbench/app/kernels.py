"""A Voila kernel manager with a ceiling on concurrent kernels that frees closed pages' kernels.

Every dashboard page gets its own kernel (1.0-1.4 GB each), so a room of visitors can exhaust
the machine's memory. `CappedKernelManager` refuses a new page with HTTP 503 and a one-line
reason once `max_kernels` are running. Voila never shuts a kernel down when its page closes
(a reload starts another), so a kernel whose last page closed is shut down `closed_grace`
seconds later unless a page reconnects; idle kernels are culled by jupyter-server's own culler
(`cull_idle_timeout`, `cull_interval`, `cull_connected`). Both free places again.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from tornado.web import HTTPError
from traitlets import Integer


class CappedKernelManager(AsyncMappingKernelManager):
    """`AsyncMappingKernelManager` that starts at most `max_kernels` kernels at once."""

    max_kernels = Integer(0, config=True, help="Most kernels running at once; 0 means no limit.")
    closed_grace = Integer(
        0,
        config=True,
        help="Seconds a kernel lives after its last page closed (a page may reconnect); "
        "0 leaves it to the idle culler. `workbench dashboard --closed-after` sets it.",
    )

    _starting = 0  # kernels asked for and not yet registered (visitors arriving together)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._closed_at: dict[str, float] = {}  # kernel id -> when its last page closed
        self._shutting: set[asyncio.Future] = set()

    def notify_connect(self, kernel_id: str) -> None:
        super().notify_connect(kernel_id)
        self._closed_at.pop(kernel_id, None)

    def notify_disconnect(self, kernel_id: str) -> None:
        super().notify_disconnect(kernel_id)
        if self.closed_grace > 0 and self._kernel_connections.get(kernel_id) == 0:
            closed = self._closed_at[kernel_id] = time.monotonic()
            asyncio.get_running_loop().call_later(self.closed_grace, self._later, kernel_id, closed)

    def _later(self, kernel_id: str, closed: float) -> None:
        task = asyncio.ensure_future(self._shut(kernel_id, closed))
        self._shutting.add(task)  # held until done: the loop keeps only a weak reference
        task.add_done_callback(self._shutting.discard)

    async def _shut(self, kernel_id: str, closed: float) -> None:
        """Shut the kernel down if no page has connected since it closed at `closed`."""
        if self._closed_at.get(kernel_id) != closed or kernel_id not in self:
            return
        self._closed_at.pop(kernel_id)
        self.log.info(
            "Shutting down kernel %s: its page closed %d s ago", kernel_id, self.closed_grace
        )
        await self.shutdown_kernel(kernel_id)

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
