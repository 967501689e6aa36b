"""A Dask client: on a scheduler by address, or on an embedded `LocalCluster` of processes.

Embedded workers are spawned processes (TensorFlow is not fork-safe), one task thread each,
with distributed's own hygiene: a memory limit (the nanny restarts a worker that passes 95 % of
it) and optionally a lifetime after which a worker restarts. Failures to connect are one-line
`ClusterError`s raised within `CONNECT_TIMEOUT_S`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from workbench.errors import WorkbenchError

CONNECT_TIMEOUT_S = 5
DEFAULT_MEMORY_LIMIT = "4GiB"


class ClusterError(WorkbenchError):
    """The Dask scheduler cannot be reached or has no workers."""


def _local_cluster(workers: int, memory_limit: str, lifetime: str | None) -> Any:
    import dask
    from distributed import LocalCluster

    if workers < 1:
        raise ClusterError(f"--workers: {workers}; give at least one worker process")
    for text, parse, option, example in (
        (memory_limit, dask.utils.parse_bytes, "--memory-limit", "a size, e.g. 4GiB"),
        (lifetime, dask.utils.parse_timedelta, "--lifetime", "a time, e.g. 20m"),
    ):
        try:
            if text:
                parse(text)
        except (ValueError, KeyError, TypeError):
            raise ClusterError(f"{option}: {text!r}; give {example}") from None
    options: dict[str, Any] = {}
    if lifetime:
        options = {"lifetime": lifetime, "lifetime_restart": True, "lifetime_stagger": "10s"}
    with dask.config.set({"distributed.worker.multiprocessing-method": "spawn"}):
        return LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            memory_limit=memory_limit,
            silence_logs=logging.ERROR,
            **options,
        )


def _unreachable(address: str, error: BaseException) -> ClusterError:
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return ClusterError(
        f"--scheduler {address}: no Dask scheduler answers there ({reason}); start one with "
        "`dask scheduler` or check the address"
    )


def _probe(address: str) -> None:
    """Fail at once when nothing listens at a tcp:// address (distributed retries a refused
    connection until its timeout)."""
    import socket
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(address if "://" in address else f"tcp://{address}")
        if parts.scheme != "tcp" or not parts.hostname or parts.port is None:
            return  # another protocol, or no port: distributed decides
        socket.create_connection((parts.hostname, parts.port), timeout=CONNECT_TIMEOUT_S).close()
    except ValueError:  # a malformed port: distributed says what is wrong
        return
    except OSError as error:
        raise _unreachable(address, error) from None


def _remote_client(address: str) -> Any:
    from distributed import Client

    _probe(address)
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as error:
        raise _unreachable(address, error) from None
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
    except TimeoutError:
        client.close()
        raise ClusterError(
            f"--scheduler {address}: the scheduler has no workers; start some with "
            f"`dask worker {address}`"
        ) from None
    return client


@contextmanager
def connect(
    scheduler: str | None = None,
    *,
    workers: int = 2,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
    lifetime: str | None = None,
) -> Iterator[Any]:
    """A client on `scheduler`, or on a new LocalCluster closed (processes and all) on exit."""
    from distributed import Client

    if scheduler:
        client = _remote_client(scheduler)
        try:
            yield client
        finally:
            client.close()
        return
    cluster = _local_cluster(workers, memory_limit, lifetime)
    try:
        with Client(cluster) as client:
            yield client
    finally:
        cluster.close()
