"""The board streams results: partial numbers on the first test samples, each with its 95 %
interval, replaced by the full result; the test-sample cap re-measures on a session that shares
the conversions. Headless widgets on digits_cnn (400 test samples); waits on the worker."""

import re

import pytest

from workbench.display import interval_text
from workbench.qtyping import Mode, QuantConfig

TIMEOUT = 300


@pytest.fixture
def app(digits_model, digits):
    from workbench.session import Session
    from workbench.widgets import Workbench

    app = Workbench(Session(digits_model, digits))  # a fresh session: nothing measured yet
    assert app.wait(TIMEOUT), app.state.status
    yield app
    app.close(timeout=TIMEOUT)


def _current_row(table: str) -> str:
    return table.split('data-role="current"')[1].split("</tr>")[0]


def _cell(row: str, column: str) -> str:
    return re.search(f'data-col="{column}">(.*?)</td>', row).group(1)


def test_partial_results_come_first_and_the_full_one_replaces_them(app):
    shown: list[tuple[str, str]] = []  # (data-partial, samples cell) of each drawn current row

    def on_table(change):
        if 'data-role="current"' in change["new"]:
            row = _current_row(change["new"])
            shown.append((row.split('data-partial="')[1][0], _cell(row, "samples")))

    app.board.table.observe(on_table, "value")
    app.state.config = QuantConfig(mode=Mode.DYNAMIC)
    assert app.wait(TIMEOUT), app.state.status
    assert ("1", "32 of 400 …") in shown and ("1", "128 of 400 …") in shown
    assert shown[-1] == ("0", "400") and shown.index(("0", "400")) > shown.index(
        ("1", "32 of 400 …")
    )
    row = _current_row(app.board.table.value)
    accuracy = app.state.result.accuracy_estimate
    assert _cell(row, "accuracy").startswith(f"{accuracy.value:.1f} [{accuracy.low:.1f}, ")
    drop = app.state.result.drop_estimate
    assert _cell(row, "drop").startswith(interval_text(drop, sign=True, digits=1))
    assert ("≈" in _cell(row, "drop")) == (drop.low <= 0 <= drop.high)
    assert not app.state.partial and app.state.results[app.state.config.key].samples == 400


def test_raising_the_sample_cap_remeasures_without_converting_again(app):
    session = app.session
    conversions = session.stats.conversions
    assert [label for label, _ in app.board.test_samples.options] == ["250", "all (400)"]
    app.board.test_samples.value = 250
    assert app.wait(TIMEOUT), app.state.status
    twin = app.session
    assert twin is not session and app.state.test_samples == 250
    assert app.state.result.samples == 250 and app.state.baseline.samples == 250
    assert twin.variant(app.state.config).cached  # the conversion was shared
    assert session.stats.conversions == conversions and twin.stats.conversions == conversions
    assert 'data-samples="250"' in app.board.table.value
    app.board.test_samples.value = 0  # all of them again
    assert app.wait(TIMEOUT), app.state.status
    assert app.state.test_samples is None and app.state.result.samples == 400


def test_cancel_while_partial_numbers_show_brings_back_the_full_result(app):
    """Cancel as the first partial numbers are drawn: nothing more is coming, so the board
    does not keep "32 of 400 …" but the full result it showed before."""
    from workbench.widgets.tasks import TaskState

    before = app.state.result

    def on_partial(change):
        if change["new"]:
            app.state.unobserve(on_partial, "partial")
            app.status.cancel.click()

    app.state.observe(on_partial, "partial")
    app.state.config = QuantConfig(mode=Mode.DYNAMIC)
    assert app.wait(TIMEOUT), app.state.status
    assert app.state.status.state is TaskState.CANCELLED, app.state.status
    assert not app.state.partial and app.state.result is before
    assert app.state.summary is app.session.cached_summary(before.config)
    table = app.board.table.value
    assert 'data-partial="1"' not in table and " of 400" not in table
    assert f'data-key="{before.key}" data-role="previous"' in table
    assert 'data-idle="1"' in app.status.line.value
