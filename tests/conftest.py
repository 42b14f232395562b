"""Shared fixtures: a fake OpenAI-compatible server on loopback, and connections to it."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fakeserver import FakeServer, Faults  # noqa: E402

import workbench as wb  # noqa: E402

SECRET = "sk-test-THIS-KEY-MUST-NEVER-BE-STORED-0123456789"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def fake_server() -> Iterator[Callable[..., FakeServer]]:
    """Start fake servers on free loopback ports; all are stopped after the test."""
    started: list[FakeServer] = []

    def start(**options) -> FakeServer:
        server = FakeServer(**options).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def connect_to(data_dir: Path) -> Callable[..., wb.LLM]:
    """Connect to a fake server with a key, a short timeout and fast retries (overridable)."""

    def connect(server: FakeServer, **settings) -> wb.LLM:
        options = {"api_key": SECRET, "timeout": 1.0, "retry_base_delay": 0.01, "data_dir": data_dir, **settings}
        return wb.connect(base_url=server.base_url, model="fake-model", **options)

    return connect


@pytest.fixture(scope="session")
def local_llm(tmp_path_factory) -> wb.LLM:
    """The embedded model (started once for the whole run), with its own empty cache."""
    return wb.connect(data_dir=tmp_path_factory.mktemp("local-data"))


__all__ = ["SECRET", "Faults"]
