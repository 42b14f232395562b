"""The embedded server's compute threads leave the cores other work keeps busy (llama.cpp's threads wait
for each other, so one starved thread stalls them all)."""

from __future__ import annotations

import pytest

import workbench as wb
from workbench.models.local import compute_threads


@pytest.mark.parametrize(
    ("cores", "load", "threads"),
    [(2, 0.1, 2), (2, 0.6, 1), (2, 1.4, 1), (2, 9.0, 1), (8, 3.2, 5), (8, 0.0, 8), (1, 0.0, 1)],
)
def test_threads_are_the_free_cores_and_never_fewer_than_one(cores, load, threads):
    assert compute_threads(cores, load) == threads


def test_a_fixed_number_of_threads_wins_and_a_bad_one_is_refused(monkeypatch):
    monkeypatch.setenv("WORKBENCH_LOCAL_THREADS", "3")
    assert compute_threads(2, 5.0) == 3
    monkeypatch.setenv("WORKBENCH_LOCAL_THREADS", "two")
    with pytest.raises(
        wb.LocalModelError, match="WORKBENCH_LOCAL_THREADS must be a whole number of threads, 1 or more"
    ):
        compute_threads()
