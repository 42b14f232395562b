"""The embedded server's compute threads leave the cores other work keeps busy (llama.cpp's threads wait
for each other, so one starved thread stalls them all)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

import workbench as wb
from workbench.models.local import busy_cores, compute_threads


@pytest.mark.parametrize(
    ("cores", "busy", "threads"),
    [(2, 0.1, 2), (2, 0.6, 1), (2, 1.4, 1), (2, 9.0, 1), (8, 3.2, 5), (8, 0.0, 8), (1, 0.0, 1)],
)
def test_threads_are_the_free_cores_and_never_fewer_than_one(cores, busy, threads):
    assert compute_threads(cores, busy) == threads


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="busy_cores reads /proc/stat on Linux")
def test_a_core_another_process_keeps_busy_is_counted_at_once(monkeypatch):
    """Measured now, not over the last minute: a competitor that started a moment ago already counts."""
    monkeypatch.delenv("WORKBENCH_LOCAL_THREADS", raising=False)
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        assert busy_cores(1.0) >= 0.8
        assert compute_threads(2) == 1
    finally:
        spinner.kill()
        spinner.wait()


def test_a_fixed_number_of_threads_wins_and_a_bad_one_is_refused(monkeypatch):
    monkeypatch.setenv("WORKBENCH_LOCAL_THREADS", "3")
    assert compute_threads(2, 5.0) == 3
    monkeypatch.setenv("WORKBENCH_LOCAL_THREADS", "two")
    with pytest.raises(wb.LocalModelError, match="must be a whole number of threads, 1 or more"):
        compute_threads()


def test_the_server_keeps_a_bounded_prompt_cache_in_memory(tmp_path):
    """llama-server's own default keeps up to 8 GiB of finished prompts a server; several servers on a laptop cannot."""
    from workbench.models.local import PROMPT_CACHE_MIB, LocalServer

    command = LocalServer(tmp_path / "model.gguf", tmp_path).command()
    assert command[command.index("--cache-ram") + 1] == str(PROMPT_CACHE_MIB) and PROMPT_CACHE_MIB <= 512
