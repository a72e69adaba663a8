"""Unit tests run with the network off: anything that tries a socket fails loudly."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_socket import disable_socket, enable_socket

from tests.fakes import Fakes


@pytest.fixture(autouse=True)
def _no_network() -> Iterator[None]:
    disable_socket(allow_unix_socket=True)
    yield
    enable_socket()


@pytest.fixture
def fakes() -> Fakes:
    """The scan gate's ports as in-memory fakes (tests/fakes.py), new for each test."""
    return Fakes()
