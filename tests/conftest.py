"""Shared fixtures: a fake OpenAI-compatible server on loopback, and connections to it."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fakeserver import FakeServer, Faults  # noqa: E402

import workbench as wb  # noqa: E402
from workbench.models.local import running_servers  # noqa: E402

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


# The embedded servers the whole run shares (local_llm's); a test file's other servers stop when the file ends.
SESSION_SERVERS: set[str] = set()


@pytest.fixture(scope="session")
def local_llm(tmp_path_factory) -> wb.LLM:
    """The embedded model (started once for the whole run), with its own empty cache."""
    llm = wb.connect(data_dir=tmp_path_factory.mktemp("local-data"))
    SESSION_SERVERS.add(llm.base_url)
    return llm


@pytest.fixture(autouse=True, scope="module")
def servers_stop_with_their_test_file() -> Iterator[None]:
    """Stop the embedded servers a test file started (LoRA adapters, other slot counts) when the file ends.

    A server stays up until its process exits, so without this the suite kept every test file's servers (each
    about 0.9 GB with its 8 slots) beside the next file's, to the end of the run.
    """
    before = running_servers()
    yield
    for server in running_servers():
        if not any(server is old for old in before) and server.base_url not in SESSION_SERVERS:
            server.stop()


# The fast loop (`make check`: `pytest -m "not slow" tests`) leaves out what takes minutes on 2 cores; `make test` runs
# everything. Marked here, in one place, rather than in each test file: every notebook, every test marked `train`,
# every test on a Ray cluster, and the files and tests named below.
SLOW_MARKERS = {"train"}
SLOW_FIXTURES = {"ray_cluster"}
SLOW_FILES = {
    "test_grading_local.py",  # the embedded model judging many requests
    "test_report_kernel.py",  # notebooks executed in a kernel
    "test_scale_ray.py",  # Ray
    "test_training_self.py",  # training: self_train on the embedded model, and its command line
}
SLOW_TESTS = {  # the embedded model's long runs (minutes on a busy machine), and a notebook executed in a kernel
    "test_explore.py::test_an_executed_notebook_keeps_a_static_snapshot_and_the_final_progress_count",
    "test_llama_server.py::test_several_requests_are_decoded_at_once",
    "test_llama_server.py::test_a_json_schema_is_honoured_through_generate",
    "test_llama_server.py::test_a_long_judge_prompt_fits_in_a_slot",
    "test_llama_server.py::test_logprobs_come_back_with_their_alternatives",
    "test_llama_server.py::test_the_server_stops_when_the_process_that_started_it_exits",
    "test_llama_server.py::test_the_server_stops_when_the_process_that_started_it_is_killed",
    "test_llama_server.py::test_a_fixed_free_port_is_used",
    "test_llama_server.py::test_a_server_killed_mid_batch_loses_nothing_and_comes_back",
    "test_local_model.py::test_json_schema_constrained_output_parses",
    "test_recipes.py::test_the_recipes_produce_filtered_output_on_the_embedded_model",
}


# A notebook cell that trains models over several generations (09) takes minutes on 2 cores, more when the machine
# is shared: in `make test` (which collects tests/ and notebooks/, so this file's hooks see the notebooks' cells)
# notebook cells get longer than the suite's 600 s per test; a cell that hangs still fails.
NOTEBOOK_CELL_TIMEOUT = 1800


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the slow tests ``slow``; give notebook cells their own timeout."""
    for item in items:
        if is_slow(item):
            item.add_marker(pytest.mark.slow)
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.timeout(NOTEBOOK_CELL_TIMEOUT))


def is_slow(item: pytest.Item) -> bool:
    """A notebook, a test marked or on a fixture listed above, or a test of ``SLOW_FILES``/``SLOW_TESTS``."""
    name = f"{item.path.name}::{getattr(item, 'originalname', item.name)}"
    return (
        item.path.suffix == ".ipynb"
        or item.path.name in SLOW_FILES
        or name in SLOW_TESTS
        or any(item.get_closest_marker(marker) for marker in SLOW_MARKERS)
        or bool(SLOW_FIXTURES & set(getattr(item, "fixturenames", ())))
    )


__all__ = ["SECRET", "Faults"]
