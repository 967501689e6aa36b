"""The compression panel: pick a technique, train in the background, compare with PTQ.

Train runs `Session.compressed` in the panel's own worker (the dashboard's conversions keep
their worker): the curve follows the loss per batch and the validation accuracy per epoch,
Cancel stops between batches and leaves the session as it was. A finished run measures the
current quantization config (and float32) on the original and the compressed model, pins the
rows to the panel's board ("prune 50 % + int8 · per-channel" next to "int8 · per-channel",
with gzip sizes) and the compressed model's rows to the comparison board, draws per kernel the
zeros and distinct values read back from the `.tflite`, and for equalization the per-channel
ranges of each equalized layer before and after.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import ipywidgets as w
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.compress.config import (
    CompressConfig,
    Technique,
    WeightGranularity,
    default_learning_rate,
)
from workbench.compress.readback import gzip_size
from workbench.compress.training import TrainingProgress
from workbench.qtyping import Mode, QuantConfig, VariantResult
from workbench.widgets import html
from workbench.widgets.figures import BLUE, GREY, ORANGE, layer_axis, titled
from workbench.widgets.plot import Plot
from workbench.widgets.state import AppState
from workbench.widgets.tasks import Job, TaskState, TaskStatus, Worker
from workbench.widgets.view import OfferedDropdown, View, heading, styled

CURVE_EVERY_S = 0.5  # redraw the training curve at most this often
LEARNING_RATES = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3)
BOARD_COLUMNS = ("variant", "size KB", "gzip KB", "accuracy %", "drop pt", "agreement %")


def training_curve(points: Sequence[TrainingProgress]) -> go.Figure:
    """Loss per batch (left axis) and validation accuracy per epoch (right axis)."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    steps = [(p.epoch - 1) + p.batch / p.batches for p in points if p.val_accuracy is None]
    losses = [p.loss for p in points if p.val_accuracy is None]
    fig.add_trace(go.Scatter(x=steps, y=losses, name="loss", line_color=BLUE))
    epochs = [p.epoch for p in points if p.val_accuracy is not None]
    accuracy = [100 * p.val_accuracy for p in points if p.val_accuracy is not None]
    fig.add_trace(
        go.Scatter(x=epochs, y=accuracy, name="val accuracy %", mode="lines+markers"),
        secondary_y=True,
    )
    fig.update_xaxes(title_text="epoch")
    fig = titled(fig, "Training: loss per batch, validation accuracy per epoch", 280)
    fig.update_layout(showlegend=True)
    return fig


def kernel_chart(facts: Sequence[Any], title: str) -> go.Figure:
    """Per kernel of a `.tflite`: the fraction of zeros and the distinct values it stores."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("zeros %", "distinct values"))
    names = [f.layer for f in facts]
    fig.add_trace(go.Bar(x=names, y=[100 * f.zeros for f in facts], marker_color=BLUE), 1, 1)
    fig.add_trace(go.Bar(x=names, y=[f.distinct for f in facts], marker_color=ORANGE), 1, 2)
    fig.update_yaxes(type="log", row=1, col=2)
    return titled(fig, title, layer_axis(fig, names))


def equalization_chart(pair: Any) -> go.Figure:
    """Per output channel of one equalized layer: its range (|w| max) before and after."""
    fig = go.Figure()
    channels = list(range(len(pair.before)))
    fig.add_trace(go.Bar(x=channels, y=list(pair.before), name="before", marker_color=GREY))
    fig.add_trace(go.Bar(x=channels, y=list(pair.after), name="after", marker_color=ORANGE))
    fig.update_yaxes(type="log", title_text="max |w| (BatchNorm folded)")
    fig.update_xaxes(title_text="output channel")
    fig = titled(fig, f"{pair.first} → {pair.second}: channel ranges before and after", 300)
    fig.update_layout(showlegend=True, barmode="group")
    return fig


def _board_row(label: str, result: VariantResult, tflite: bytes) -> list[str]:
    cells = html.board_cells(result)
    gzip_text = f"{gzip_size(tflite) / 1024:.1f}"
    return [label, cells["size"], gzip_text, cells["accuracy"], cells["drop"], cells["agreement"]]


class CompressionView(View):
    """Technique, its sliders, Train / Cancel, the curve, the board and the read-back charts."""

    def __init__(self, state: AppState) -> None:
        self.state = state
        self.worker = Worker(self._on_status, state.lock)
        self.rows: list[list[str]] = []  # the pinned board rows, oldest first
        self.compression: Any = None  # the newest finished `Compression`
        self._points: list[TrainingProgress] = []
        self._drawn = 0.0
        style = {"description_width": "110px"}
        self.technique = styled(
            w.Dropdown(
                options=[t.value for t in Technique],
                value=Technique.EQUALIZE.value,
                description="Technique",
                style=style,
            ),
            "wb-technique",
        )
        slider = {"continuous_update": False, "style": style}
        self.sparsity = w.FloatSlider(
            0.5, min=0.1, max=0.9, step=0.05, description="Sparsity", **slider
        )
        self.clusters = w.IntSlider(16, min=2, max=64, description="Clusters", **slider)
        self.weights = w.ToggleButtons(
            options=[g.value for g in WeightGranularity], description="QAT weights", style=style
        )
        self.width = w.FloatSlider(
            0.5, min=0.25, max=1.0, step=0.25, description="Student width", **slider
        )
        self.epochs = w.IntSlider(2, min=1, max=20, description="Epochs", **slider)
        self.learning_rate = w.SelectionSlider(
            options=LEARNING_RATES, value=1e-4, description="Learning rate", **slider
        )
        self.steps = w.IntText(0, description="Steps/epoch", style=style, layout={"width": "200px"})
        self.train = styled(w.Button(description="Train", icon="play"), "wb-train")
        self.cancel = styled(
            w.Button(description="Cancel", icon="stop", disabled=True), "wb-compress-cancel"
        )
        self.status = styled(w.HTML(), "wb-compress-status")
        self.curve = Plot(training_curve([]), "wb-training-curve")
        self.board = styled(w.HTML(), "wb-compress-board")
        self.kernels = Plot(
            kernel_chart([], "Kernels of the compressed int8 file"), "wb-kernel-chart"
        )
        self.pair = OfferedDropdown(description="Equalized", style=style, layout={"width": "420px"})
        self.ranges = Plot(go.Figure(), "wb-equalization-chart")
        self.train.on_click(lambda _: self.start())
        self.cancel.on_click(lambda _: self.worker.cancel())
        self.technique.observe(lambda _: self._technique_changed(), "value")
        self.pair.observe(lambda _: self._show_pair(), "value")
        self.widget = styled(
            w.VBox(
                [
                    heading(
                        "Compression lab",
                        "Fine-tune (or equalize) the model, then compare it with post-training "
                        "quantization of the original on the same data. Training uses the train "
                        "split and validates on the calibration split, never the test split.",
                    ),
                    w.HBox([self.technique, self.train, self.cancel]),
                    self.sparsity,
                    self.clusters,
                    self.weights,
                    self.width,
                    w.HBox([self.epochs, self.learning_rate, self.steps]),
                    self.status,
                    self.curve.widget,
                    self.board,
                    self.kernels.widget,
                    self.pair,
                    self.ranges.widget,
                ]
            ),
            "wb-compression",
        )
        self._show_controls()
        state.on_new_model(self._reset)

    def _reset(self) -> None:
        """Another model or dataset: stop a run on the old one, whose rows would land on the
        new board, and clear its results."""
        self.compression, self.rows, self._points = None, [], []
        self.board.value = ""
        self.curve.show(training_curve([]))
        self.kernels.show(kernel_chart([], "Kernels of the compressed int8 file"))
        self.pair.options = []
        self._show_pair()
        if self.worker.status.state.busy:
            self.worker.cancel()

    def config(self) -> CompressConfig:
        """The compression run the controls describe."""
        return CompressConfig(
            technique=self.technique.value,
            sparsity=self.sparsity.value,
            clusters=self.clusters.value,
            weights=self.weights.value,
            width=self.width.value,
            epochs=self.epochs.value,
            learning_rate=self.learning_rate.value,
            steps=self.steps.value or None,
        )

    def start(self) -> int:
        """Submit a run of `config()` on the dashboard's session; returns its generation."""
        session, quant = self.state.session, self.state.config
        if session is None:
            self.status.value = "load a model first"
            return 0
        config = self.config()
        self._points = []
        self.curve.show(training_curve([]))  # not the last run's curve while this one starts
        return self.worker.submit(lambda job: self._run(job, session, config, quant), config.label)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the newest run has finished; False on timeout."""
        return self.worker.wait(timeout)

    def close(self, timeout: float = 0.0) -> None:
        """Cancel the run; wait at most `timeout` s for its thread to end."""
        self.worker.close(timeout)

    def _run(self, job: Job, session: Any, config: CompressConfig, quant: QuantConfig) -> None:
        job.step(TaskState.CONVERTING, "training" if config.technique.trains else "equalizing")
        compression = session.compressed(
            config, progress=lambda p: self._progress(job, p), cancel=job.cancel_event
        )
        job.step(TaskState.EVALUATING, config.label)
        float32 = QuantConfig(route=quant.route, mode=Mode.FLOAT32)
        rows = [_board_row(quant.label, session.evaluate(quant), session.variant(quant).tflite)]
        results = [compression.evaluate(shown) for shown in dict.fromkeys((float32, quant))]
        for result in results:
            rows.append(
                _board_row(result.label, result, compression.session.variant(result.config).tflite)
            )
        facts = compression.kernel_facts(quant) if quant.mode is not Mode.FLOAT32 else []
        job.deliver(lambda: self._show_result(compression, rows, results, facts, quant))

    def _progress(self, job: Job, progress: TrainingProgress) -> None:
        self._points.append(progress)
        now = time.perf_counter()
        if progress.val_accuracy is not None or now - self._drawn > CURVE_EVERY_S:
            self._drawn = now
            points = list(self._points)
            job.deliver(lambda: self.curve.show(training_curve(points)))

    def _show_result(
        self,
        compression: Any,
        rows: list[list[str]],
        results: list[VariantResult],
        facts: list,
        quant: QuantConfig,
    ) -> None:
        self.compression = compression
        self.state.pin_compressed(results)  # on the comparison board too
        self.rows = [row for row in self.rows if row not in rows] + rows
        self.board.value = html.table(BOARD_COLUMNS, self.rows, "wb-compress-table")
        self.kernels.show(kernel_chart(facts, f"Kernels of {compression.label(quant)}"))
        self.pair.options = [
            (f"{p.first} → {p.second}", i) for i, p in enumerate(compression.equalized)
        ]
        if compression.equalized:  # the widest layer first: where equalization shows most
            widest = max(
                range(len(compression.equalized)),
                key=lambda i: max(compression.equalized[i].before),
            )
            self.pair.value = widest
        self._show_pair()
        self.curve.show(training_curve(self._points))

    def _show_pair(self) -> None:
        pairs = self.compression.equalized if self.compression is not None else ()
        self.pair.layout.display = "" if pairs else "none"
        self.ranges.widget.layout.display = "" if pairs else "none"
        if pairs and self.pair.value is not None:
            self.ranges.show(equalization_chart(pairs[self.pair.value]))

    def _technique_changed(self) -> None:
        self.learning_rate.value = default_learning_rate(Technique(self.technique.value))
        self._show_controls()

    def _show_controls(self) -> None:
        technique = Technique(self.technique.value)
        visible = {
            self.sparsity: technique.prunes,
            self.clusters: technique.clusters,
            self.weights: technique is Technique.QAT,
            self.width: technique is Technique.DISTILL,
            self.epochs: technique.trains,
            self.learning_rate: technique.trains,
            self.steps: technique.trains,
        }
        for control, shown in visible.items():
            control.layout.display = "" if shown else "none"

    def _on_status(self, status: TaskStatus) -> None:
        self.status.value = html.status_line(status, False, None, None)
        self.cancel.disabled = not status.state.busy
        self.train.disabled = status.state.busy
