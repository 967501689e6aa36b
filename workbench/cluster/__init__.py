"""Sweeps of models x variants on Dask: `sweep(models, configs, data)` returns a tidy table.

`runner` submits the tasks, `worker` is what runs on a worker (sessions cached per process),
`shards` splits a large evaluation, `packages` is what travels, `table` the rows written as
they arrive, `client` the connection (an embedded LocalCluster or a scheduler's address).
"""

from workbench.cluster.runner import sweep
from workbench.cluster.table import SweepTable

__all__ = ["SweepTable", "sweep"]
