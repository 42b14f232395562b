"""Between GGUF and Hugging Face: read a GGUF file's facts, write a GGUF back; the training packages' install hint.

The base model is a GGUF file (the embedded SmolLM2 is one). ``transformers`` loads it dequantised to float32
for training (in ``loop.py``, the one module that imports torch, transformers and peft); llama.cpp's own
``convert_hf_to_gguf.py``, from the same pinned llama.cpp source the server is built from, writes the trained
weights back as GGUF (Q8_0 by default, which the converter writes directly: no ``llama-quantize`` needed). Its
``convert_lora_to_gguf.py`` turns a LoRA adapter into a GGUF adapter for ``llama-server --lora``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..errors import ConversionError, InputError, TrainingDependencyError

__all__ = [
    "CPU_TORCH_HINT",
    "ConversionError",
    "TrainingDependencyError",
    "convert_adapter_to_gguf",
    "convert_to_gguf",
    "gguf_facts",
    "llama_cpp_source",
    "require_training_packages",
]

CPU_TORCH_HINT = (
    "pip install torch --index-url https://download.pytorch.org/whl/cpu, then, in the workbench's folder, "
    "pip install -e '.[train]' (the CPU build of torch first: a plain `pip install torch` on Linux downloads a "
    "CUDA build of several GB; `make test` and `make report` install everything)"
)


def require_training_packages() -> None:
    """Raise :class:`TrainingDependencyError` with the install hint when a training package is missing."""
    missing = [name for name in ("torch", "transformers", "peft", "gguf", "sentencepiece") if not _found(name)]
    if missing:
        raise TrainingDependencyError(f"training needs {', '.join(missing)}, not installed here: {CPU_TORCH_HINT}.")


def _found(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def gguf_facts(path: str | Path) -> dict[str, Any]:
    """``architecture``, ``name`` and ``parameters`` (element count) of a GGUF file; InputError if it is none.
    Whether transformers can load that architecture for training is ``loop.check_loadable``'s question."""
    require_training_packages()
    from gguf import GGUFReader

    path = Path(path)
    if not path.is_file():
        raise InputError(f"no model file at {path}. Name a GGUF file, e.g. the one wb.connect() serves.")
    try:
        reader = GGUFReader(str(path))
    except Exception as error:  # noqa: BLE001 - any parse failure means the same thing to the user
        raise InputError(f"{path} is not a GGUF model file ({type(error).__name__}: {error}).") from None
    parameters = sum(int(tensor.n_elements) for tensor in reader.tensors)
    return {
        "architecture": _field_text(reader, "general.architecture"),
        "name": _field_text(reader, "general.name"),
        "parameters": parameters,
    }


def _field_text(reader: Any, key: str) -> str | None:
    field = reader.fields.get(key)
    if field is None:
        return None
    return bytes(field.parts[field.data[0]]).decode("utf-8", errors="replace")


def llama_cpp_source() -> Path:
    """The pinned llama.cpp source tree (``convert_hf_to_gguf.py``, ``gguf-py``) kept beside the server build;
    ``WORKBENCH_LLAMA_CPP_SOURCE`` names another tree of the same version."""
    from ..models.local import llama_cpp_source_dir

    named = os.environ.get("WORKBENCH_LLAMA_CPP_SOURCE")
    if named:
        if not (Path(named) / "convert_hf_to_gguf.py").is_file():
            raise ConversionError(f"WORKBENCH_LLAMA_CPP_SOURCE={named} holds no convert_hf_to_gguf.py.")
        return Path(named)
    return llama_cpp_source_dir()


def convert_to_gguf(hf_dir: str | Path, target: str | Path, outtype: str = "q8_0") -> Path:
    """Write the Hugging Face model in ``hf_dir`` as one GGUF file at ``target`` with llama.cpp's converter."""
    return _run_converter("convert_hf_to_gguf.py", [str(hf_dir), "--outtype", outtype], Path(target))


def convert_adapter_to_gguf(adapter_dir: str | Path, target: str | Path, outtype: str = "f16") -> Path:
    """Write a peft LoRA adapter as a GGUF adapter at ``target`` (for ``wb.connect(..., lora=target)``, which
    is ``llama-server --lora``) with llama.cpp's ``convert_lora_to_gguf.py``. The base's config comes from the
    local folder the adapter was trained on, never from the network."""
    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise InputError(
            f"{adapter_dir} holds no adapter_config.json: pass the adapter folder of a LoRA fine-tune "
            "(tuned.adapter; a full fine-tune has none)."
        )
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    named = config.get("base_model_name_or_path")
    if not named:
        raise ConversionError(f"the adapter in {adapter_dir} does not name its base model folder.")
    if not (Path(named) / "config.json").is_file():
        raise ConversionError(
            f"the adapter's base model folder {named} is gone (it is a cache of the base GGUF, dequantised); "
            "run wb.finetune once more on any rows to rebuild it, then convert again."
        )
    arguments = [str(adapter_dir), "--base", named, "--outtype", outtype]
    return _run_converter("convert_lora_to_gguf.py", arguments, Path(target))


def _run_converter(script: str, arguments: list[str], target: Path) -> Path:
    source = llama_cpp_source()
    partial = target.with_suffix(".partial")
    command = [sys.executable, str(source / script), *arguments, "--outfile", str(partial)]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(source / "gguf-py"), str(source)])}
    environment["HF_HUB_OFFLINE"] = "1"
    done = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
    if done.returncode != 0 or not partial.is_file():
        tail = "\n".join((done.stderr or done.stdout).splitlines()[-15:])
        raise ConversionError(f"llama.cpp's {script} failed (exit {done.returncode}):\n{tail}")
    partial.replace(target)
    return target
