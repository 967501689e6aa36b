"""Shared, session-scoped fixtures: the demo datasets and models are loaded once per run."""

import pytest

from workbench.datasets import load_dataset
from workbench.models import load_model


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="session")
def shapes():
    return load_dataset("shapes")


@pytest.fixture(scope="session")
def digits_model():
    return load_model("digits_cnn")


@pytest.fixture(scope="session")
def shapes_model():
    return load_model("shapes_mobilenet")


@pytest.fixture(scope="session")
def digits_session():
    """One digits_cnn Session whose variant cache the search tests share (each test still
    passes on a fresh one; sharing only saves conversions)."""
    from workbench.session import Session

    return Session("digits_cnn")
