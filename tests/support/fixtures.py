"""Pytest fixtures shared by the test suite (usable as the plugin ``tests.support.fixtures``)."""

from __future__ import annotations

from typing import Iterator

import pytest

from tests.support.llm_server import LLMServer


@pytest.fixture
def llm_server() -> Iterator[LLMServer]:
    """A started OpenAI-compatible server on 127.0.0.1; use ``llm_server.url`` as api_base."""
    server = LLMServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
