"""The status line and the comparison board (table, bar charts, pins and downloads)."""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from workbench.widgets import figures, html
from workbench.widgets.plot import Plot
from workbench.widgets.state import AppState
from workbench.widgets.tasks import TaskState
from workbench.widgets.view import OfferedDropdown, View, heading, offer, styled

TEST_SAMPLE_CHOICES = (250, 1000, 2500, 10000)  # caps offered below the test split's size


class StatusView(View):
    """queued / converting / evaluating / done / failed, with the error text, and Cancel."""

    def __init__(self, state: AppState, cancel: Any = None) -> None:
        self.state = state
        self.line = styled(w.HTML(), "wb-status")
        self.cancel = styled(
            w.Button(description="Cancel", icon="stop", layout={"width": "auto"}), "wb-cancel"
        )
        if cancel is not None:
            self.cancel.on_click(lambda _: cancel())
        self.widget = styled(w.HBox([self.line, self.cancel]), "wb-status-bar")
        state.observe(
            lambda _: self._show(),
            ["status", "detail_status", "warmup_status", "result", "config"],
        )
        self._show()

    def _show(self) -> None:
        status = self.state.status
        result = self.state.result
        pending = result is None or result.config != self.state.config
        self.line.value = html.status_line(
            status, pending, self.state.detail_status, self.state.warmup_status
        )
        self.cancel.disabled = not (status.state.busy or self.state.detail_status.state.busy)


class BoardView(View):
    """float32 baseline, pinned variants and the current one, as a table and four bar charts."""

    def __init__(self, state: AppState) -> None:
        self.state = state
        self._shown: tuple = ()
        self.table = styled(w.HTML(), "wb-board")
        self.chart = Plot(figures.board_chart([]), "wb-board-chart")
        self.chart.widget.layout.min_height = "300px"
        self.pin = styled(w.Button(description="Pin current", icon="thumb-tack"), "wb-pin")
        self.unpin = styled(w.Button(description="Clear pins"), "wb-unpin")
        self.variant = styled(
            OfferedDropdown(description="Variant", layout={"width": "360px"}), "wb-download-variant"
        )
        self.prepare = styled(w.Button(description=".tflite link", icon="download"), "wb-prepare")
        self.links = styled(w.HTML(), "wb-downloads")
        self.test_samples = styled(
            OfferedDropdown(
                description="Test samples",
                tooltip="how many test samples each variant is measured on",
                style={"description_width": "initial"},
                layout={"width": "auto"},
            ),
            "wb-test-samples",
        )
        self.on_user_change(self.test_samples, self._on_test_samples)
        self.pin.on_click(lambda _: self._pin())
        self.unpin.on_click(lambda _: self.state.clear_pins())
        self.prepare.on_click(lambda _: self._tflite_link())
        self.widget = styled(
            w.VBox(
                [
                    heading(
                        "Comparison board",
                        "float32 is the baseline; the current variant is highlighted; "
                        "pin variants to keep them on the board.",
                    ),
                    self.table,
                    self.test_samples,
                    self.chart.widget,
                    w.HBox([self.pin, self.unpin]),
                    w.HBox([self.variant, self.prepare]),
                    self.links,
                ]
            ),
            "wb-board-view",
        )
        state.observe(
            lambda _: self._show(),
            [
                "result",
                "partial",
                "baseline",
                "pinned",
                "compressed",
                "results",
                "config",
                "status",
            ],
        )
        state.observe(lambda _: self._show_test_samples(), ["session", "test_samples"])
        self._show()
        self._show_test_samples()

    def _show_test_samples(self) -> None:
        """Offer the caps below the test split's size, and all of it (0 stands for all)."""
        session = self.state.session
        available = session.test_samples_available if session is not None else 0
        cap = self.state.test_samples
        value = 0 if cap is None or cap >= available else cap
        caps = sorted({n for n in TEST_SAMPLE_CHOICES if n < available} | ({value} - {0}))
        options = [*((str(n), n) for n in caps), (f"all ({available})", 0)]
        with self.showing():
            offer(self.test_samples, options)
            self.test_samples.value = value
        self.test_samples.disabled = len(options) < 2

    def _on_test_samples(self, change: dict[str, Any]) -> None:
        if change["new"] is not None:
            self.state.test_samples = change["new"] or None

    def _pin(self) -> None:
        with self.state.lock:
            result = self.state.result
            if result is not None and result.config not in self.state.pinned:
                self.state.pinned = (*self.state.pinned, result.config)

    def _show(self) -> None:
        rows = self.state.board_rows()
        config, result, status = self.state.config, self.state.result, self.state.status
        current = config.key
        previous = result.config.key if result is not None and result.config != config else None
        pinned = [config.key for config in self.state.pinned]
        pinned += [row.key for row in self.state.compressed]
        failed = None
        if status.state is TaskState.FAILED and status.label == config.label:
            failed = (config.label, status.message)
        session = self.state.session
        partial_of = len(session.data.test) if self.state.partial and session else None
        shown = (tuple(rows), current, previous, tuple(pinned), failed, partial_of)
        if shown == self._shown:  # several traits change per delivery: draw once
            return
        self._shown = shown
        self.table.value = html.board_table(
            rows,
            current_key=current,
            pinned_keys=pinned,
            previous_key=previous,
            failed=failed,
            partial_of=partial_of,
        )
        self.chart.show(figures.board_chart(rows, current))
        offer(self.variant, [(row.label, row.key) for row in rows])
        keys = [row.key for row in rows]
        self.variant.value = current if current in keys else previous if previous in keys else None
        self.pin.disabled = previous is not None or result is None or self.state.partial
        if rows:
            self.links.value = " ".join(
                [
                    html.download_link(
                        html.comparison_csv(rows).encode(),
                        "comparison.csv",
                        "comparison CSV",
                        "text/csv",
                    ),
                    html.download_link(
                        html.comparison_json(rows).encode(),
                        "comparison.json",
                        "comparison JSON",
                        "application/json",
                    ),
                ]
            )

    def _tflite_link(self) -> None:
        """A download link for the chosen variant (already converted, so a cache lookup)."""
        session, key = self.state.session, self.variant.value
        row = self.state.results.get(key)
        compressed = next((row for row in self.state.compressed if row.key == key), None)
        if compressed is not None and session is not None:  # its model's session, cached
            row, session = compressed, session.compressed(compressed.compression).session
        if session is None or row is None:
            return
        data = session.variant(row.config).tflite
        name = f"{self.state.session.model.name}-{row.key.replace(':', '-')}.tflite"
        link = html.download_link(data, name, f"{name} ({len(data) / 1024:.0f} KB)", "model/tflite")
        self.links.value = self.links.value.split("<br>")[0] + "<br>" + link
