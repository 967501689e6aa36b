"""The search panel: find the variant to ship, watch the Pareto front grow, load a point.

Start runs `Session.search` on the panel's own background worker; after every trial the
scatter (size or latency against validation accuracy) gains a point, the best one so far is
marked, and the status line says what was tried. Stop cancels before the next trial and keeps
what was found. A click on a point puts that variant on the board (`state.config`).
"""

from __future__ import annotations

import html
import math
import threading
from collections.abc import Sequence
from typing import Any

import ipywidgets as w
import plotly.graph_objects as go

from workbench.search import Objective, SearchConfig, SearchResult, Trial
from workbench.search.result import pareto_front
from workbench.widgets.html import status_line
from workbench.widgets.plot import ClickPlot
from workbench.widgets.state import AppState
from workbench.widgets.tasks import Job, TaskState, TaskStatus, Worker
from workbench.widgets.view import View, heading, styled

BLUE, GREY, RED = "#1f77b4", "#9aa5b1", "#d62728"


def _x(trial: Trial, objective: Objective) -> float:
    """The scatter's x value: KB for size, ms for latency."""
    return trial.size_bytes / 1024 if objective is Objective.SIZE else trial.latency_ms


def pareto_scatter(
    trials: Sequence[Trial], objective: Objective, chosen: int | None, max_drop: float
) -> go.Figure:
    """Every validated trial a point (within the drop blue, over it grey), the Pareto front
    as a line, the chosen trial a red star."""
    validated = [t for t in trials if t.validated]
    unit = "KB" if objective is Objective.SIZE else "ms"
    fig = go.Figure()

    def points(group: Sequence[Trial], name: str, mode: str = "markers", **style: Any) -> None:
        fig.add_trace(
            go.Scatter(
                x=[_x(t, objective) for t in group],
                y=[t.accuracy.value for t in group],
                mode=mode,
                name=name,
                text=[f"trial {t.index} · {t.step}<br>{t.label}<br>drop {t.drop}" for t in group],
                hovertemplate=f"%{{text}}<br>%{{x:.3f}} {unit}, %{{y:.2f}} %<extra></extra>",
                **style,
            )
        )

    points([t for t in validated if t.within], "within the drop", marker={"color": BLUE, "size": 9})
    points([t for t in validated if not t.within], "over it", marker={"color": GREY, "size": 9})
    front = pareto_front(tuple(validated), objective)
    line = {"color": BLUE, "width": 1, "dash": "dot"}
    points(front, "Pareto front", "lines", line=line, hoverinfo="skip")
    star = {"color": RED, "size": 16, "symbol": "star"}
    points([t for t in validated if t.index == chosen], "chosen", marker=star)
    title = f"Trials: {'size' if objective is Objective.SIZE else 'latency'} vs accuracy"
    fig.update_layout(
        title={"text": f"{title} (validation split; drop at most {max_drop:g} points)"},
        height=340,
        margin={"l": 50, "r": 20, "t": 40, "b": 40},
        template="plotly_white",
        xaxis_title=f"{'size' if objective is Objective.SIZE else 'latency'} ({unit})",
        yaxis_title="accuracy (%)",
        legend={"orientation": "h", "y": -0.25},
    )
    return fig


class SearchView(View):
    """Objective, max drop, budget; Start / Stop; the live Pareto scatter and status line."""

    def __init__(self, state: AppState) -> None:
        self.state = state
        self.worker = Worker(self._on_status, state.lock)
        self.trials: tuple[Trial, ...] = ()  # of the running or last search, for clicks
        self.result: SearchResult | None = None
        self._stop = threading.Event()  # Stop: the search ends after its trial and reports
        self.objective = styled(
            w.Dropdown(description="Objective", options=[o.value for o in Objective]),
            "wb-search-objective",
        )
        self.max_drop = styled(
            w.BoundedFloatText(value=1.0, min=0.0, max=100.0, step=0.1, description="Max drop"),
            "wb-search-max-drop",
        )
        self.budget = styled(
            w.BoundedIntText(value=20, min=1, max=200, description="Validations"),
            "wb-search-budget",
        )
        self.start = styled(w.Button(description="Search", icon="search"), "wb-search-start")
        self.stop = styled(
            w.Button(description="Stop", icon="stop", disabled=True), "wb-search-stop"
        )
        self.status = styled(w.HTML(), "wb-search-status")
        self.chart = ClickPlot(
            pareto_scatter((), Objective.SIZE, None, 1.0), "wb-search-chart", self.select
        )
        self.widget = styled(
            w.VBox(
                [
                    heading(
                        "Find the variant to ship",
                        "Per-layer precision (float32, int16x8, int8, int4 weights) on the "
                        "LiteRT route: the smallest or fastest variant whose accuracy drop "
                        "against float, on a validation split, is within the limit at 95 % "
                        "confidence. Each point is a real .tflite; click one to put it on "
                        "the board.",
                    ),
                    w.HBox([self.objective, self.max_drop, self.budget, self.start, self.stop]),
                    self.status,
                    self.chart.widget,
                ]
            ),
            "wb-search",
        )
        self.start.on_click(lambda _: self.run())
        self.stop.on_click(lambda _: self._stop.set())
        state.on_new_model(self._reset)

    def _reset(self) -> None:
        """Another model or dataset: stop a running search (its result is never drawn) and
        clear the last one's points."""
        self._stop.set()
        self.trials, self.result = (), None
        self.chart.show(pareto_scatter((), Objective(self.objective.value), None, 1.0))
        self.status.value = ""
        if self.worker.status.state.busy:
            self.worker.cancel()

    def config(self) -> SearchConfig:
        return SearchConfig(
            objective=self.objective.value, max_drop=self.max_drop.value, budget=self.budget.value
        )

    def run(self) -> int:
        """Start a search of the session's model in the background; returns its generation."""
        session = self.state.session
        if session is None:
            self.status.value = "load a model first"
            return self.worker.generation
        config = self.config()
        self._stop.set()  # a search still running stops; the new one gets its own event
        self._stop = stop = threading.Event()
        self.trials, self.result = (), None  # the last search's points go at once
        self.chart.show(pareto_scatter((), config.objective, None, config.max_drop))
        return self.worker.submit(lambda job: self._search(job, session, config, stop), "searching")

    def _search(self, job: Job, session: Any, config: SearchConfig, stop: threading.Event) -> None:
        job.step(TaskState.EVALUATING, "ranking layers, measuring float32")
        found: list[Trial] = []

        def progress(trial: Trial, best: Trial | None) -> None:
            found.append(trial)
            chosen = None if best is None else best.index
            job.deliver(lambda: self._draw(tuple(found), config, chosen, trial.line()))

        result = session.search(config, progress=progress, cancel=stop)
        job.deliver(lambda: self._finish(result))

    def _draw(
        self, trials: tuple[Trial, ...], config: SearchConfig, chosen: int | None, line: str
    ) -> None:
        self.trials = trials
        self.chart.show(pareto_scatter(trials, config.objective, chosen, config.max_drop))
        self.status.value = f"<code>{html.escape(line)}</code>"

    def _finish(self, result: SearchResult) -> None:
        self.result = result
        self._draw(result.trials, result.config, result.chosen, "")
        chosen = result.chosen_trial
        text = f"{result.status}: {len(result.trials)} trials, {result.validations} validations"
        if chosen is not None and result.test is not None:
            text += (
                f"; chosen trial {chosen.index} ({chosen.label}, {chosen.size_bytes / 1024:.1f}"
                f" KB): test accuracy {result.test.accuracy} %, drop {result.test.drop} points"
            )
        self.status.value = html.escape(text)

    def select(self, x: float) -> None:
        """Put the trial at `x` (size KB or latency ms) on the board; a click calls this."""
        objective = self.result.config.objective if self.result else Objective(self.objective.value)
        near = [t for t in self.trials if t.validated and math.isclose(_x(t, objective), x)]
        if near:
            self.state.config = max(near, key=lambda t: t.accuracy.value).config

    def _on_status(self, status: TaskStatus) -> None:
        """Until the first trial, what the search is doing; a failure's message; Search and
        Stop enabled only when they can act."""
        if status.state is TaskState.FAILED:
            self.status.value = html.escape(f"search failed: {status.message}")
        elif status.state.busy and not self.trials:
            self.status.value = status_line(status)
        self.start.disabled = status.state.busy
        self.stop.disabled = not status.state.busy

    def wait(self, timeout: float | None = None) -> bool:
        return self.worker.wait(timeout)

    def close(self, timeout: float = 0.0) -> None:
        """Cancel the run; wait at most `timeout` s for its thread to end."""
        self.worker.close(timeout)
