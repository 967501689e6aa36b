"""A search whose trials run on a Dask cluster: the session it asks answers from a worker.

`run_search` asks its session for the float reference outputs, the search space, each
candidate's variant, validation outputs and latency, the int8 per-layer error, and the chosen
variant's test outputs and recipe. `RemoteSession` answers those from a worker's `Session`
(`worker.call`, through the worker session cache the sweeps use, so every candidate reuses the
float conversion and calibration made there), and the model and data themselves from the local
session. The search is the same code as a local one, so it tries the same candidates and
chooses the same variant.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from workbench.cluster import worker
from workbench.cluster.client import connect
from workbench.cluster.packages import pack_session
from workbench.cluster.runner import preferred, submit_package
from workbench.errors import WorkbenchError
from workbench.qtyping import QuantConfig


class RemoteError(WorkbenchError):
    """What the worker's session raised (a refused conversion, say), with its message."""


class RemoteSession:
    """The parts of a `Session` a search uses, computed by one worker's session (another
    worker's if that one dies); each answer fetched once."""

    def __init__(self, local: Any, client: Any) -> None:
        self.model, self.data = local.model, local.data
        self._client = client
        model, data = pack_session(local)
        self._packages = (submit_package(client, model), submit_package(client, data))
        home = preferred(client, {model.key: 1})[model.key]
        self._where = {"workers": [home], "allow_other_workers": True}
        self._answers: dict[tuple[Any, ...], Any] = {}

    def __repr__(self) -> str:
        return f"RemoteSession({self.model.name!r}, {self.data.name!r})"

    def _call(self, method: str, *args: Any, **options: Any) -> Any:
        found = self._client.submit(
            worker.call, *self._packages, method, *args, pure=False, **self._where, **options
        ).result()
        if "error" in found:
            raise RemoteError(found["error"])
        return found["value"]

    def _ask(self, method: str, *args: Any, **options: Any) -> Any:
        key = (method, *args, *sorted(options.items()))
        if key not in self._answers:
            self._answers[key] = self._call(method, *args, **options)
        return self._answers[key]

    @property
    def float_bytes(self) -> bytes:
        return self._ask("float_bytes")

    def reference(self, split: str = "test") -> Any:
        return self._ask("reference", split)

    def float_correct(self) -> Any:
        return self._ask("float_correct")

    def search_space(self) -> tuple[Any, ...]:
        return self._ask("search_space")

    def variant(self, config: QuantConfig) -> Any:
        return self._ask("variant", config)

    def outputs(self, config: QuantConfig, split: str = "test") -> Any:
        return self._ask("outputs", config, split)

    def cached_outputs(self, config: QuantConfig, split: str = "test") -> Any:
        """The outputs if this search or the worker's session has them, else None (the worker
        computes nothing for this question)."""
        key = ("outputs", config, split)
        if key not in self._answers:
            found = self._call("cached_outputs", config, split)
            if found is None:
                return None
            self._answers[key] = found
        return self._answers[key]

    def latency(self, config: QuantConfig) -> Any:
        return self._ask("latency", config)

    def cached_result(self, config: QuantConfig) -> Any:
        return self._call("cached_result", config)

    def evaluate(self, config: QuantConfig, *, layers: bool = False) -> Any:
        return self._ask("evaluate", config, layers=layers)

    def recipe(self, config: QuantConfig) -> list[dict[str, Any]]:
        return self._ask("recipe", config)


@contextmanager
def on_cluster(
    session: Any, *, client: Any = None, scheduler: str | None = None, workers: int | None = None
) -> Iterator[RemoteSession]:
    """`session` answered by a cluster: `client`'s, else one on `scheduler`, else an embedded
    LocalCluster of `workers` processes (closed on exit)."""
    if client is not None:
        yield RemoteSession(session, client)
        return
    with connect(scheduler, **({} if workers is None else {"workers": workers})) as own:
        yield RemoteSession(session, own)
