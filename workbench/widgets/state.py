"""The one state object every view observes, and the results it holds.

Controls write `config`, `pinned`, `selected_layer` and `test_samples`; the live controller
(`live.py`) writes the measured results and the status from its worker. Views only read and
observe. `lock` keeps the two writers apart: the workers deliver under it (on their threads)
and the views handle the user's changes under it (on the kernel's thread), so a delivery never
interleaves with a user's change (see `view.View.on_user_change`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import traitlets

from workbench.inspection.report import Inspection
from workbench.qtyping import Mode, QuantConfig, VariantResult
from workbench.session import TEST_SAMPLES
from workbench.widgets.tasks import TaskStatus


class AppState(traitlets.HasTraits):
    """Model, data, the current configuration, pinned variants, selection and results."""

    session = traitlets.Any(None, allow_none=True)  # workbench.session.Session
    model_name = traitlets.Unicode("")
    dataset_name = traitlets.Unicode("")
    data_source = traitlets.Any(None, allow_none=True)  # the `data` the session was opened with
    config = traitlets.Instance(QuantConfig, kw={})
    pinned = traitlets.Tuple()  # QuantConfigs the board keeps next to the current one
    compressed = traitlets.Tuple()  # VariantResults of compressed models the board keeps too
    selected_layer = traitlets.Unicode("")
    status = traitlets.Instance(TaskStatus, kw={})  # converting and evaluating `config`
    detail_status = traitlets.Instance(TaskStatus, kw={})  # per-layer error, range statistics
    warmup_status = traitlets.Instance(TaskStatus, kw={})  # the LiteRT route's one-time work
    result = traitlets.Instance(VariantResult, allow_none=True)  # of `config`, once measured
    partial = traitlets.Bool(False)  # `result` rests on the first test samples; more to come
    test_samples = traitlets.Int(TEST_SAMPLES, allow_none=True)  # the cap (None: all)
    baseline = traitlets.Instance(VariantResult, allow_none=True)  # float32 on the same route
    results = traitlets.Dict()  # config.key -> VariantResult, everything measured this session
    summary = traitlets.Any(None, allow_none=True)  # tflite_file.QuantizationSummary of `config`
    float_summary = traitlets.Any(None, allow_none=True)  # the same for the float model
    inspection = traitlets.Instance(Inspection, allow_none=True)

    def __init__(self, **traits: Any) -> None:
        super().__init__(**traits)
        self.lock = threading.RLock()

    @property
    def layer_names(self) -> list[str]:
        return list(self.session.layer_names) if self.session is not None else []

    def board_rows(self) -> list[VariantResult]:
        """The float32 baseline, the pinned variants, the compressed models' variants, then the
        current one (no repeats)."""
        rows: list[VariantResult] = []
        keys: set[str] = set()
        candidates = [self.baseline]
        candidates += [self.results.get(config.key) for config in self.pinned]
        candidates += [*self.compressed, self.result]
        for row in candidates:
            if row is not None and row.key not in keys:
                rows.append(row)
                keys.add(row.key)
        return rows

    def pin_compressed(self, rows: Sequence[VariantResult]) -> None:
        """Keep `rows` (variants of a compressed model) on the board, replacing older ones."""
        keys = {row.key for row in rows}
        self.compressed = (*(row for row in self.compressed if row.key not in keys), *rows)

    def on_new_model(self, handler: Callable[[], Any]) -> None:
        """Call `handler()` when another model or dataset is opened (not when the same ones
        are measured on another number of test samples)."""

        def changed(change: dict) -> None:
            if _model_and_data(change["old"]) != _model_and_data(change["new"]):
                handler()

        self.observe(changed, "session")

    def clear_pins(self) -> None:
        self.pinned, self.compressed = (), ()

    def baseline_config(self) -> QuantConfig:
        return QuantConfig(route=self.config.route, mode=Mode.FLOAT32)


def _model_and_data(session: Any) -> tuple[int, str | None]:
    """Which model object (by identity) and which dataset (by name) a session holds."""
    data = getattr(session, "data", None)
    return id(getattr(session, "model", None)), data.name if data is not None else None
