"""silenced(): native and Python output, warnings and logs are captured, not shown."""

import logging
import os
import warnings

import pytest

from workbench.engine.quiet import silenced


def test_everything_is_captured(capfd):
    with silenced() as capture:
        print("python out")
        os.write(1, b"native out\n")
        os.write(2, b"native err\n")
        warnings.warn("converter warning", UserWarning, stacklevel=1)
        logging.getLogger("tensorflow").warning("tf log")
    shown = capfd.readouterr()
    assert shown.out == "" and shown.err == ""
    for text in ("python out", "native out", "native err", "converter warning"):
        assert text in capture.text
    assert capture.tail(1) == "warning: converter warning"


def test_output_restored_after_an_error(capfd):
    with pytest.raises(ValueError), silenced():
        os.write(1, b"hidden\n")
        raise ValueError("boom")
    os.write(1, b"visible\n")
    assert capfd.readouterr().out == "visible\n"
