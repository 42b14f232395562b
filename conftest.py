"""Settings for every test run, the notebooks' included (the tests' own fixtures live in tests/conftest.py)."""

import pytest

# A notebook cell that trains models over several generations (09) takes minutes on 2 cores, more when the machine
# is shared: notebook cells get longer than the suite's 600 s per test (a cell that hangs still fails).
NOTEBOOK_CELL_TIMEOUT = 1800


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give notebook cells (nbval's items) their own timeout."""
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.timeout(NOTEBOOK_CELL_TIMEOUT))
