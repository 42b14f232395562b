"""Build llama.cpp's ``llama-server`` once per machine, from a pinned source, and cache it.

    python -m workbench.models.llama_build          # what `make demo` and `make test` run; a no-op once built

The source is llama.cpp as vendored (pinned to one commit) in the PyPI sdist of ``llama-cpp-python``
(MIT): pip fetches it from the package registry, checked against its sha256, so the build needs no network
but PyPI. Only the ``llama-server`` target is built, statically, with CPU flags that run on these machines
(a default native build crashed at the first decode). The result goes to
``~/.cache/workbench/llama.cpp/<version>-<hash of flags>/`` (``$XDG_CACHE_HOME`` is honoured), with the
binary in ``bin/llama-server`` and the llama.cpp source tree in ``src/`` (its ``convert_hf_to_gguf.py``
turns a fine-tuned Hugging Face model into a GGUF). ``WORKBENCH_LLAMA_SERVER=/path/to/llama-server``
uses another binary instead.

The build runs in a temporary folder beside the cache entry and is renamed into place when it has
succeeded, under a file lock, so two set-ups at once build it once and an interrupted build leaves nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from ..errors import LocalModelError

__all__ = ["CMAKE_FLAGS", "build_llama_server", "llama_cpp_source_dir", "llama_server_path"]

LLAMA_CPP_PYTHON_VERSION = "0.3.36"
SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
CMAKE_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DGGML_NATIVE=OFF",
    "-DGGML_AVX=ON",
    "-DGGML_AVX2=ON",
    "-DGGML_FMA=ON",
    "-DGGML_F16C=ON",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",  # ON (the default) would download the web UI from a model hub
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DBUILD_SHARED_LIBS=OFF",
)
BUILD_COMMAND = "python -m workbench.models.llama_build"
_APT_HINT = "On Debian/Ubuntu: sudo apt-get install cmake g++ make (conda: conda install cmake cxx-compiler)."


def cache_dir() -> Path:
    """The cache entry for this llama.cpp version and these build flags."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "workbench" / "llama.cpp"
    flags = hashlib.sha256(json.dumps([SDIST_SHA256, *CMAKE_FLAGS]).encode()).hexdigest()[:10]
    return root / f"{LLAMA_CPP_PYTHON_VERSION}-{flags}"


def llama_server_path() -> Path:
    """The ``llama-server`` binary to run: ``WORKBENCH_LLAMA_SERVER`` if set, else the cached build."""
    override = os.environ.get("WORKBENCH_LLAMA_SERVER")
    if override:
        path = Path(override).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise LocalModelError(f"WORKBENCH_LLAMA_SERVER={override} is not an executable file. Fix or unset it.")
        return path
    path = cache_dir() / "bin" / "llama-server"
    if not path.is_file():
        raise LocalModelError(
            f"llama.cpp's server is not built yet (looked for {path}). Build it once with `{BUILD_COMMAND}` "
            "(`make demo` and `make test` do it; about 7 minutes on 2 cores), "
            "or point WORKBENCH_LLAMA_SERVER at a llama-server binary."
        )
    return path


def llama_cpp_source_dir() -> Path:
    """The pinned llama.cpp source tree kept beside the build (``convert_hf_to_gguf.py``, ``gguf-py/``)."""
    path = cache_dir() / "src"
    if not (path / "convert_hf_to_gguf.py").is_file():
        raise LocalModelError(f"the llama.cpp source is not in {path} yet. Fetch and build it with `{BUILD_COMMAND}`.")
    return path


def build_llama_server(jobs: int | None = None, log=print) -> Path:
    """Build ``llama-server`` into the cache unless it is there already; return the binary's path."""
    target = cache_dir()
    if (target / "bin" / "llama-server").is_file():
        return target / "bin" / "llama-server"
    _check_tools()
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent / f".{target.name}.lock"):
        if not (target / "bin" / "llama-server").is_file():  # another set-up may have built it while we waited
            with tempfile.TemporaryDirectory(prefix=f".{target.name}-", dir=target.parent) as work:
                _build_into(Path(work), target, jobs or os.cpu_count() or 1, log)
    return target / "bin" / "llama-server"


def _build_into(work: Path, target: Path, jobs: int, log) -> None:
    started = time.monotonic()
    log(f"Building llama.cpp's llama-server from llama-cpp-python {LLAMA_CPP_PYTHON_VERSION}'s sdist, once per machine")
    log(f"(about 7 minutes on 2 cores); it is cached in {target}.")
    source = _fetch_source(work, log)
    build = work / "build"
    build_log = work / "build.log"
    _run(["cmake", "-S", str(source), "-B", str(build), *CMAKE_FLAGS], build_log, "configuring llama.cpp")
    _run(
        ["cmake", "--build", str(build), "--target", "llama-server", "-j", str(jobs)],
        build_log,
        "compiling llama-server",
    )
    staged = work / "entry"
    (staged / "bin").mkdir(parents=True)
    shutil.copy2(build / "bin" / "llama-server", staged / "bin" / "llama-server")
    _run([str(staged / "bin" / "llama-server"), "--version"], build_log, "running the new llama-server")
    source.rename(staged / "src")
    minutes = (time.monotonic() - started) / 60
    info = {"llama_cpp_python": LLAMA_CPP_PYTHON_VERSION, "cmake_flags": CMAKE_FLAGS, "minutes": round(minutes, 1)}
    (staged / "build.json").write_text(json.dumps(info, indent=2) + "\n")
    staged.rename(target)
    log(f"Built {target / 'bin' / 'llama-server'} in {minutes:.1f} minutes.")


def _fetch_source(work: Path, log) -> Path:
    """Download the pinned sdist with pip (hash-checked) and unpack its vendored llama.cpp."""
    requirement = work / "requirement.txt"
    requirement.write_text(f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION} --hash=sha256:{SDIST_SHA256}\n")
    download = work / "download"
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:"]
    _run([*command, "--require-hashes", "-r", str(requirement), "-d", str(download)], work / "pip.log", "fetching")
    archive = next(download.glob("llama_cpp_python-*.tar.gz"))
    log(f"Fetched {archive.name}; unpacking llama.cpp.")
    prefix = f"{archive.name.removesuffix('.tar.gz')}/vendor/llama.cpp/"
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(prefix)]
        tar.extractall(work / "unpacked", members=members, filter="data")
    archive.unlink()
    return work / "unpacked" / prefix.rstrip("/")


def _run(command: list[str], log_path: Path, what: str) -> None:
    with open(log_path, "ab") as log_file:
        done = subprocess.run(command, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-25:])
        raise LocalModelError(
            f"building llama-server failed while {what} (exit code {done.returncode}). Last lines of its log:\n"
            f"{tail}\nIf a compiler or cmake is missing: {_APT_HINT}"
        )


def _check_tools() -> None:
    missing = [tool for tool in ("cmake", "make") if shutil.which(tool) is None]
    if not any(shutil.which(cxx) for cxx in (os.environ.get("CXX", ""), "c++", "g++", "clang++") if cxx):
        missing.append("a C++ compiler")
    if missing:
        raise LocalModelError(f"building llama-server needs {', '.join(missing)}, not found on PATH. {_APT_HINT}")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def main() -> None:
    """Build (or find) llama-server and print where it is."""
    try:
        path = llama_server_path() if os.environ.get("WORKBENCH_LLAMA_SERVER") else build_llama_server()
    except LocalModelError as exc:
        sys.exit(f"error: {exc}")
    print(f"llama-server: {path}")


if __name__ == "__main__":
    main()
