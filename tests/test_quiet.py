"""silenced() captures native output only; quiet_start() sets levels once; Python output of other
threads survives a conversion."""

import logging
import os
import sys
import threading
import time

import keras
import numpy as np
import pytest

from workbench.engine.quiet import quiet_start, silenced
from workbench.qtyping import Mode, QuantConfig
from workbench.session import Session


def test_native_output_is_captured_and_python_output_is_not(capfd):
    with silenced() as capture:
        os.write(1, b"native out\n")
        os.write(2, b"native err\n")
        print("python out")
    shown = capfd.readouterr()
    assert "native" not in shown.out + shown.err
    assert shown.out == "python out\n"
    assert "native out" in capture.text and "native err" in capture.text
    assert capture.tail(1) == "native err"


def test_output_restored_after_an_error(capfd):
    with pytest.raises(ValueError), silenced():
        os.write(1, b"hidden\n")
        raise ValueError("boom")
    os.write(1, b"visible\n")
    assert capfd.readouterr().out == "visible\n"


def test_quiet_start_sets_levels_and_no_block_changes_them():
    quiet_start()
    assert logging.getLogger("tensorflow").level == logging.ERROR
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"]
    filters = list(__import__("warnings").filters)
    streams = (sys.stdout, sys.stderr)
    with silenced():
        assert (sys.stdout, sys.stderr) == streams
        assert list(__import__("warnings").filters) == filters
        assert logging.getLogger("tensorflow").level == logging.ERROR


def _tiny_model() -> keras.Model:
    inputs = keras.Input((8, 8, 1))
    hidden = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    hidden = keras.layers.GlobalAveragePooling2D()(hidden)
    return keras.Model(inputs, keras.layers.Dense(3)(hidden), name="tiny")


def _redirected(original: os.stat_result) -> bool:
    now = os.fstat(1)
    return (now.st_dev, now.st_ino) != (original.st_dev, original.st_ino)


def test_main_thread_prints_survive_a_conversion_in_a_worker(capsys):
    """A real converter call on a worker thread while the main thread prints (the dashboard's
    kernel thread, the CLI's progress lines): the prints reach the screen."""
    x = np.random.default_rng(0).normal(size=(16, 8, 8, 1)).astype(np.float32)
    session = Session(_tiny_model(), (x, np.zeros(16, dtype=np.int64)))
    original = os.fstat(1)
    worker = threading.Thread(target=session.variant, args=(QuantConfig(mode=Mode.DYNAMIC),))
    worker.start()
    deadline = time.monotonic() + 60
    while not _redirected(original) and worker.is_alive() and time.monotonic() < deadline:
        time.sleep(0.0005)
    assert _redirected(original), "the conversion never captured fd 1"
    print("main thread output")
    print("main thread error", file=sys.stderr)
    worker.join()
    assert session.stats.conversions == 1
    shown = capsys.readouterr()
    assert "main thread output" in shown.out
    assert "main thread error" in shown.err
    assert "Saved artifact" not in shown.out  # the converter's Keras export message


def test_keras_messages_are_quiet_only_on_the_converting_thread():
    keras.config.enable_interactive_logging()
    seen = []
    with silenced():
        seen.append(keras.config.is_interactive_logging_enabled())
        other = threading.Thread(
            target=lambda: seen.append(keras.config.is_interactive_logging_enabled())
        )
        other.start()
        other.join()
    assert seen == [False, True]
    assert keras.config.is_interactive_logging_enabled()


def test_the_quantizers_progress_bar_stays_off_the_screen(digits_model, digits, capsys):
    """The LiteRT Quantizer draws a tqdm bar on `sys.stderr` while calibrating (a CLI run
    showed it between our own progress lines); no LiteRT variant prints one."""
    from workbench.qtyping import Route

    Session(digits_model, digits).variant(QuantConfig(route=Route.LITERT, mode=Mode.INT8))
    assert "Calibration" not in capsys.readouterr().err
