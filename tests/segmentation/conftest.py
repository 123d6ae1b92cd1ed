"""Segmentation tests: quiet logs and torch on one thread (the data: `tiny_dataset` in
tests/conftest.py)."""

from __future__ import annotations

import logging

import pytest


@pytest.fixture(autouse=True)
def _quiet_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="segmentation")


@pytest.fixture(autouse=True)
def _one_thread(single_thread: None) -> None:
    """Every segmentation test runs torch on one thread (tests/conftest.py `single_thread`)."""
