"""Find the variant to ship: an accuracy-budget search over per-layer precision.

`Session.search(SearchConfig(objective="size", max_drop=1.0, budget=20))` returns a frozen
`SearchResult`: every trial (a real `.tflite` measured on the LiteRT interpreter on the
validation split), the Pareto front, the chosen variant with its test-split report, and the
LiteRT Quantizer recipe that reproduces it.
"""

from workbench.search.config import Objective, SearchConfig
from workbench.search.result import SearchResult, TestReport, Trial
from workbench.search.runner import run_search
from workbench.search.space import LayerInfo, layer_space

__all__ = [
    "LayerInfo",
    "Objective",
    "SearchConfig",
    "SearchResult",
    "TestReport",
    "Trial",
    "layer_space",
    "run_search",
]
