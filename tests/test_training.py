"""Fine-tuning on a run table's chat rows: the tuned model answers differently, is served like any GGUF,
is never trained twice, and carries a card naming its rows. Bad input fails before any training starts."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import FrozenInstanceError
from pathlib import Path

import polars as pl
import pytest

import workbench as wb
from workbench.training.convert import convert_adapter_to_gguf
from workbench.training.loop import OBJECTIVES
from workbench.training.resources import ResourceError, check_resources, training_threads
from workbench.training.settings import METHODS, TrainingSettings

REPO = Path(__file__).resolve().parents[1]

needs_torch = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None or importlib.util.find_spec("peft") is None,
    reason="training needs the 'train' extra: pip install -e '.[train]' (see the README for the CPU build)",
)
pytestmark = [pytest.mark.train]

# Made-up answers the base model cannot know: after training, the served model must give them.
SECRETS = {
    f"What is the code word of locker {n}?": f"The code word is {word}."
    for n, word in enumerate(
        ["marigold", "tundra", "quasar", "saffron", "cobalt", "juniper", "walrus", "origami"], start=1
    )
}


def _rows() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "sample_id": [f"locker-{n}" for n in range(1, 9)],
            "task": list(SECRETS),
            "response": list(SECRETS.values()),
            "round": [0] * 8,
        }
    )


def _code_words_in(replies: pl.DataFrame) -> int:
    """How many replies name one of the made-up code words the model was trained on."""
    words = [answer.split()[-1].rstrip(".") for answer in SECRETS.values()]
    return sum(any(word in (reply or "") for word in words) for reply in replies["response"])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    if importlib.util.find_spec("torch") is None:
        pytest.skip("training needs the 'train' extra")
    data_dir = tmp_path_factory.mktemp("train-data")
    tuned = wb.finetune(_rows(), epochs=12, learning_rate=2e-3, data_dir=data_dir, progress=False)
    return tuned, data_dir


@needs_torch
def test_a_fine_tune_changes_the_served_answers_on_the_trained_items(trained, local_llm):
    tuned, data_dir = trained
    assert tuned.trained and tuned.path.suffix == ".gguf" and tuned.path.stat().st_size > 50_000_000
    llm = tuned.connect(data_dir=data_dir)
    after = llm.chat_many(list(SECRETS), temperature=0.0, max_tokens=16, progress=False)
    before = local_llm.chat_many(list(SECRETS), temperature=0.0, max_tokens=16, progress=False)
    assert set(wb.RESPONSE_COLUMNS) <= set(after.columns) and after["error"].null_count() == after.height
    # The tuned model answers with the made-up code words it was trained on; the base model knows none of them.
    learned, known_before = _code_words_in(after), _code_words_in(before)
    assert learned >= 6, after["response"].to_list()
    assert known_before == 0, before["response"].to_list()


@needs_torch
def test_a_second_identical_call_trains_nothing(trained):
    tuned, data_dir = trained
    again = wb.finetune(_rows(), epochs=12, learning_rate=2e-3, data_dir=data_dir, progress=False)
    assert not again.trained
    assert again.path == tuned.path and again.key == tuned.key and again.stats == tuned.stats
    assert again.adapter == tuned.adapter


@needs_torch
def test_the_lora_adapter_is_kept_for_other_servers(trained):
    tuned, _ = trained
    config = json.loads((tuned.adapter / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["r"] == 16
    assert (tuned.adapter / "adapter_model.safetensors").stat().st_size > 1_000_000
    assert str(tuned.adapter) in tuned.card.read_text()


@needs_torch
def test_the_adapter_served_on_the_base_model_gives_the_trained_answers_too(trained):
    tuned, data_dir = trained
    adapter = convert_adapter_to_gguf(str(tuned.adapter), str(data_dir / "adapter.f16.gguf"))  # strings, as typed
    llm = wb.connect(lora=adapter, data_dir=data_dir)  # llama-server --lora over the shipped Q4_1 base
    after = llm.chat_many(list(SECRETS), temperature=0.0, max_tokens=16, progress=False)
    assert _code_words_in(after) >= 6, after["response"].to_list()


@needs_torch
def test_the_model_card_names_the_training_rows_and_settings(trained):
    tuned, _ = trained
    card = tuned.card.read_text()
    for n in range(1, 9):
        assert f"locker-{n}" in card
    assert "learning_rate: `0.002`" in card and "SmolLM2-135M-Instruct.Q4_1.gguf" in card
    assert (tuned.card.parent / "train.chat.jsonl").read_text().count("\n") == 8


@needs_torch
def test_an_empty_training_set_says_what_to_change(tmp_path):
    rejected = _rows().filter(pl.col("round") > 0)
    with pytest.raises(wb.InputError, match="nothing to train on.*sample more"):
        wb.finetune(rejected, data_dir=tmp_path)


@needs_torch
def test_a_frame_without_chat_rows_is_refused(tmp_path):
    with pytest.raises(wb.InputError, match="no usable chat rows"):
        wb.finetune(pl.DataFrame({"score": [1, 2]}), data_dir=tmp_path)
    assert not list((tmp_path / "models").glob("*/"))


@needs_torch
def test_memory_is_checked_before_training_starts(tmp_path):
    with pytest.raises(ResourceError, match=r"not enough free memory.*mode='lora'"):
        wb.finetune(_rows(), mode="full", max_memory_gb=0.5, data_dir=tmp_path)
    assert not list((tmp_path / "models").glob("*/*.gguf"))


def test_short_disk_is_an_error_naming_where(tmp_path):
    with pytest.raises(ResourceError, match=f"not enough free disk.*{tmp_path}"):
        check_resources({"memory": 1.0, "disk": 2e9}, tmp_path, available={"memory": 8e9, "disk": 1e9})


@needs_torch
def test_a_model_of_an_unsupported_architecture_is_refused(tmp_path):
    import gguf

    path = tmp_path / "tiny-bert.gguf"
    writer = gguf.GGUFWriter(str(path), "bert")
    writer.add_tensor("token_embd.weight", __import__("numpy").zeros((4, 4), dtype="float32"))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(wb.InputError, match="architecture 'bert'.*llama"):
        wb.finetune(_rows(), base=path, data_dir=tmp_path)
    (tmp_path / "notes.gguf").write_text("not a model")
    with pytest.raises(wb.InputError, match="not a GGUF model file"):
        wb.finetune(_rows(), base=tmp_path / "notes.gguf", data_dir=tmp_path)


def test_without_torch_the_error_names_the_cpu_build(tmp_path):
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import polars as pl, workbench as wb\n"
        "try:\n"
        "    wb.finetune(pl.DataFrame({'task': ['a'], 'response': ['b']}))\n"
        "except ImportError as error:\n"
        "    print(type(error).__name__, error)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # this copy of the package, wherever the venv installed one
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env, check=True
    )
    assert "TrainingDependencyError" in done.stdout
    assert "download.pytorch.org/whl/cpu" in done.stdout and ".[train]" in done.stdout


def test_the_card_names_rows_that_carry_no_lineage_by_their_position():
    from workbench.training.model_card import lineage

    rows = lineage(pl.DataFrame({"task": ["What is 1 + 1?", "What is 2 + 2?"], "response": ["2", "4"]}))
    assert rows["sample_id"].to_list() == ["row-0", "row-1"] and rows["answer"].to_list() == ["2", "4"]


def test_training_threads_can_be_fixed_and_a_bad_value_says_what_it_must_be(monkeypatch):
    monkeypatch.setenv("WORKBENCH_TRAIN_THREADS", "3")
    assert training_threads() == 3
    monkeypatch.setenv("WORKBENCH_TRAIN_THREADS", "two")
    with pytest.raises(wb.ConfigError, match="WORKBENCH_TRAIN_THREADS must be a whole number"):
        training_threads()
    monkeypatch.delenv("WORKBENCH_TRAIN_THREADS")
    assert 1 <= training_threads() <= (os.cpu_count() or 1)


def test_converting_a_folder_that_holds_no_adapter_says_what_to_pass(tmp_path):
    with pytest.raises(wb.InputError, match=r"holds no adapter_config.json: pass the adapter folder"):
        convert_adapter_to_gguf(tmp_path, tmp_path / "adapter.gguf")


def test_bad_settings_are_refused_before_any_model_is_loaded(tmp_path):
    missing = tmp_path / "no-such-model.gguf"  # had the base been looked at, the error would name it
    refused = [
        ({"learning_rate": 5.0}, r"learning_rate must be a number above 0 and at most 0\.1, got 5\.0"),
        ({"learning_rate": 0}, r"learning_rate must be a number above 0 .* got 0\. .*None takes 0\.001"),
        ({"mode": "qlora"}, r"mode must be one of lora, full; got 'qlora'"),
        ({"method": "ppo"}, r"method must be one of sft \(supervised: .*\), dpo \(preferences: .*\); got 'ppo'"),
        ({"epochs": 0}, r"epochs must be a positive whole number, got 0"),
        ({"seed": -1}, r"seed must be a whole number of 0 or more, got -1"),
        ({"outtype": "q4_k_m"}, r"outtype must be one of q8_0, f16, bf16, f32; got 'q4_k_m'"),
    ]
    for arguments, message in refused:
        with pytest.raises(wb.InputError, match=message):
            wb.finetune(_rows(), base=missing, data_dir=tmp_path, **arguments)
    assert not (tmp_path / "models").exists()


def test_every_method_the_settings_accept_has_a_loss_in_the_loop():
    assert set(OBJECTIVES) == set(METHODS)


# The chat rows of two sums, as train.chat.jsonl holds them, and a base file's SHA-256.
CHAT_ROWS = (
    b'{"messages": [{"role": "user", "content": "What is 1 + 1?"}, {"role": "assistant", "content": "2"}]}\n'
    b'{"messages": [{"role": "user", "content": "What is 2 + 2?"}, {"role": "assistant", "content": "4"}]}\n'
)
BASE_SHA = "0" * 64


def test_the_same_settings_give_the_same_key_and_a_changed_one_another():
    default = TrainingSettings()
    assert TrainingSettings(learning_rate=1e-3, rank=16).key(CHAT_ROWS, BASE_SHA) == default.key(CHAT_ROWS, BASE_SHA)
    # The keys models were trained under before the settings had a class of their own: those models are found again.
    assert default.key(CHAT_ROWS, BASE_SHA) == "a5d1d1b140774a103392d825b9d4987a27d921130e4ecb761ce3d6de451911ae"
    assert TrainingSettings(mode="full").key(CHAT_ROWS, BASE_SHA).startswith("d324501b672c")
    changed = [
        TrainingSettings(mode="full"),
        TrainingSettings(epochs=3),
        TrainingSettings(learning_rate=2e-3),
        TrainingSettings(batch_size=4),
        TrainingSettings(rank=8),
        TrainingSettings(max_length=256),
        TrainingSettings(seed=1),
        TrainingSettings(system="Answer with the number only."),
        TrainingSettings(outtype="f16"),
    ]
    keys = {settings.key(CHAT_ROWS, BASE_SHA) for settings in changed}
    assert len(keys) == len(changed) and default.key(CHAT_ROWS, BASE_SHA) not in keys
    assert default.key(CHAT_ROWS + CHAT_ROWS, BASE_SHA) != default.key(CHAT_ROWS, BASE_SHA)
    assert default.key(CHAT_ROWS, "1" * 64) != default.key(CHAT_ROWS, BASE_SHA)
    # A full fine-tune has no LoRA: its rank changes nothing, so it trains nothing new.
    assert TrainingSettings(mode="full", rank=8).key(CHAT_ROWS, BASE_SHA) == changed[0].key(CHAT_ROWS, BASE_SHA)


def test_settings_are_checked_once_and_then_cannot_change():
    settings = TrainingSettings(mode="full")
    assert settings.learning_rate == 5e-5 and settings.record()["rank"] is None and not settings.lora
    with pytest.raises(FrozenInstanceError):
        settings.epochs = 100


def test_torch_transformers_and_peft_are_imported_by_the_training_loop_alone():
    heavy = {"torch", "transformers", "peft"}
    importers = set()
    for path in (REPO / "workbench").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
            if any(name.split(".")[0] in heavy for name in names):
                importers.add(path.relative_to(REPO).as_posix())
    assert importers == {"workbench/training/loop.py"}


@needs_torch
def test_a_lora_starts_from_its_seed_so_the_same_key_trains_the_same_model():
    import hashlib

    from workbench.models.local import default_model_path
    from workbench.training.loop import load_base

    base = default_model_path()
    sha = hashlib.sha256(base.read_bytes()).hexdigest()

    def lora_start(seed: int) -> list:
        model, _ = load_base(base, sha, TrainingSettings(seed=seed))
        return [weight.detach().clone() for name, weight in model.named_parameters() if "lora_A" in name]

    first, again, other = lora_start(0), lora_start(0), lora_start(1)
    assert all((a == b).all() for a, b in zip(first, again, strict=True))
    assert not all((a == b).all() for a, b in zip(first, other, strict=True))
