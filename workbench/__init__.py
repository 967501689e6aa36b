"""Quant Workbench: what does int8 do to my model, layer by layer, and is it worth it?

Importing `workbench` is cheap: TensorFlow, ipywidgets and plotly load only when a function
that needs them is called.
"""

__version__ = "0.1.0"

from typing import Any  # noqa: E402

from workbench.engine.quiet import silenced  # noqa: E402
from workbench.errors import (  # noqa: E402
    ConversionError,
    DataError,
    ModelFileError,
    UnsupportedError,
    WorkbenchError,
)
from workbench.qtyping import (  # noqa: E402
    Granularity,
    IOType,
    Mode,
    QuantConfig,
    Route,
)


def sweep(
    models: Any, configs: Any = None, data: Any = None, *, client: Any = None, **options: Any
) -> Any:
    """Models x configurations on Dask, one tidy row each (see `workbench.cluster.sweep`)."""
    from workbench.cluster import sweep as run

    return run(models, configs, data, client=client, **options)


__all__ = [
    "__version__",
    "ConversionError",
    "DataError",
    "Granularity",
    "IOType",
    "Mode",
    "ModelFileError",
    "QuantConfig",
    "Route",
    "UnsupportedError",
    "WorkbenchError",
    "silenced",
    "sweep",
]
