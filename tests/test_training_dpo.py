"""DPO on the embedded model: our loss is TRL's on the same batch, a few steps lower it on toy pairs, and the tuned
model is keyed, carded and served like an SFT one. Bad settings fail before anything loads."""

from __future__ import annotations

import hashlib
import importlib.util
import json

import polars as pl
import pytest

import workbench as wb
from workbench.training.loop import OBJECTIVES, load_base
from workbench.training.settings import TrainingSettings

pytestmark = [pytest.mark.train]
needs_torch = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None or importlib.util.find_spec("peft") is None,
    reason="training needs the 'train' extra: pip install -e '.[train]' (see the README for the CPU build)",
)
needs_trl = pytest.mark.skipif(
    importlib.util.find_spec("trl") is None or importlib.util.find_spec("datasets") is None,
    reason="compares our DPO loss with TRL's, not a dependency: pip install -e '.[dpo-reference]'",
)

ASKED = ["What is 3 + 4? Answer with the number only.", "What is 2 + 2? Answer with the number only.",
         "Calculate 5 + 1. Give only the number.", "What is 6 + 2? Answer with the number only."]  # fmt: skip
CHOSEN = ["7", "4", "5 + 1 = 6", "8"]
REJECTED = ["The answer is 8.", "22", "5", "To find the sum of 6 +"]


def toy_pairs() -> pl.DataFrame:
    return pl.DataFrame(
        {"pair_id": [f"p{i}" for i in range(4)], "prompt": ASKED, "chosen": CHOSEN, "rejected": REJECTED}
    )


def _rows() -> list[dict]:
    return [
        {"prompt": [{"role": "user", "content": p}], "chosen": c, "rejected": r}
        for p, c, r in zip(ASKED, CHOSEN, REJECTED, strict=True)
    ]


@needs_torch
@needs_trl
@pytest.mark.parametrize(("dpo_loss", "nll", "trl_losses"), [("sigmoid", 0.0, ["sigmoid"]), ("ipo", 0.0, ["ipo"]),
                                                            ("sigmoid", 1.0, ["sigmoid", "sft"])])  # fmt: skip
def test_our_dpo_loss_is_trls_on_the_same_batch(dpo_loss, nll, trl_losses, tmp_path):
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from trl import DPOConfig, DPOTrainer

    from workbench.models.local import default_model_path

    base = default_model_path()
    sha = hashlib.sha256(base.read_bytes()).hexdigest()
    settings = TrainingSettings(method="dpo", dpo_loss=dpo_loss, nll=nll, beta=0.1, batch_size=4)
    model, tokenizer = load_base(base, sha, TrainingSettings(mode="full"))  # TRL wraps it in the same LoRA
    config = DPOConfig(
        output_dir=str(tmp_path), beta=0.1, loss_type=trl_losses, loss_weights=[1.0, nll] if nll else None,
        use_cpu=True, bf16=False, fp16=False, gradient_checkpointing=False, report_to=[], max_length=512,
    )  # fmt: skip
    lora = LoraConfig(r=settings.rank, lora_alpha=settings.lora_alpha, lora_dropout=0.0, target_modules="all-linear")
    data = Dataset.from_list(
        [{**row, "chosen": [{"role": "assistant", "content": row["chosen"]}],
          "rejected": [{"role": "assistant", "content": row["rejected"]}]} for row in _rows()]
    )  # fmt: skip
    trainer = DPOTrainer(model=model, args=config, train_dataset=data, processing_class=tokenizer, peft_config=lora)
    policy = trainer.model
    with torch.no_grad():  # a policy some way from the reference (a fresh LoRA is the reference exactly)
        generator = torch.Generator().manual_seed(0)
        for name, weight in policy.named_parameters():
            if "lora_B" in name:
                weight.copy_(torch.randn(weight.shape, generator=generator) * 0.05)
    theirs = trainer.compute_loss(policy, trainer.data_collator([data_row for data_row in trainer.train_dataset]))
    objective = OBJECTIVES["dpo"]
    ours, _ = objective.loss(policy, objective.prepare(policy, objective.tokenise(tokenizer, _rows(), settings),
                                                      settings), settings)  # fmt: skip
    assert abs(float(theirs) - 0.6931) > 0.01  # the policy differs from the reference: the test can fail
    assert float(ours) == pytest.approx(float(theirs), rel=1e-3)


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    if importlib.util.find_spec("torch") is None:
        pytest.skip("training needs the 'train' extra")
    data_dir = tmp_path_factory.mktemp("dpo-data")
    return wb.finetune(toy_pairs(), method="dpo", epochs=4, batch_size=4, data_dir=data_dir, progress=False), data_dir


@needs_torch
def test_dpo_steps_lower_the_loss_and_prefer_the_chosen_answers(tuned):
    tuned, _ = tuned
    stats = tuned.stats
    assert tuned.trained and stats["steps"] == 4 and stats["loss_first"] == pytest.approx(0.6931, abs=1e-3)
    assert stats["loss_last"] < stats["loss_first"] - 0.1  # the first step starts at the reference: log 2
    assert stats["pairs_preferred"] == 1.0 and stats["chosen_logratio"] > stats["rejected_logratio"]


@needs_torch
def test_a_dpo_model_is_keyed_carded_and_served_like_an_sft_one(tuned, local_llm):
    tuned, data_dir = tuned
    again = wb.finetune(toy_pairs(), method="dpo", epochs=4, batch_size=4, data_dir=data_dir, progress=False)
    assert not again.trained and again.path == tuned.path and again.key == tuned.key
    other = TrainingSettings(method="dpo", epochs=4, batch_size=4, beta=0.2).record()
    assert tuned.settings == {**other, "beta": 0.1}  # beta, the loss and nll are settings: part of the key
    card = tuned.card.read_text()
    assert "4 preference pairs" in card and "`sigmoid` with beta 0.1" in card and "the LoRA switched off" in card
    assert all(f"| p{i} |" in card for i in range(4))
    pairs = [json.loads(line) for line in (tuned.card.parent / "train.pairs.jsonl").read_text().splitlines()]
    assert pairs[0]["chosen"] == [{"role": "assistant", "content": "7"}]
    answers = tuned.connect(data_dir=data_dir).chat_many(ASKED, temperature=0.0, max_tokens=12, progress=False)
    assert answers["error"].null_count() == len(ASKED) and answers["response"].str.len_chars().min() > 0


def test_dpo_settings_are_checked_before_anything_loads(tmp_path):
    missing = tmp_path / "no-such-model.gguf"
    refused = [
        ({"method": "ppo"}, r"method must be one of sft \(supervised: .*\), dpo \(preferences: .*\); got 'ppo'"),
        ({"beta": 0.2}, r"beta sets the DPO loss, but method='sft': pass method='dpo'"),
        ({"method": "dpo", "beta": 0}, r"beta must be a number above 0, got 0"),
        ({"method": "dpo", "dpo_loss": "kto"}, r"dpo_loss must be one of sigmoid .*, ipo .*, dpop .*; got 'kto'"),
        ({"method": "dpo", "nll": -1}, r"nll must be a number of 0 or more"),
    ]
    for arguments, message in refused:
        with pytest.raises(wb.InputError, match=message):
            wb.finetune(toy_pairs(), base=missing, data_dir=tmp_path, **arguments)
    assert not (tmp_path / "models").exists()


@needs_torch
def test_chat_rows_given_to_dpo_say_what_pairs_look_like(tmp_path):
    rows = pl.DataFrame({"task": ["What is 1 + 1?"], "response": ["2"]})
    with pytest.raises(wb.InputError, match=r"no usable preference pairs for method='dpo'.*lacks prompt, chosen"):
        wb.finetune(rows, method="dpo", data_dir=tmp_path)
    assert not list((tmp_path / "models").glob("*/"))


def test_dpo_keys_differ_from_sft_keys_and_between_losses():
    rows, sha = b'{"prompt": [], "chosen": [], "rejected": []}\n', "0" * 64
    keys = {
        TrainingSettings().key(rows, sha),
        TrainingSettings(method="dpo").key(rows, sha),
        TrainingSettings(method="dpo", beta=0.5).key(rows, sha),
        TrainingSettings(method="dpo", dpo_loss="ipo").key(rows, sha),
        TrainingSettings(method="dpo", nll=1.0).key(rows, sha),
    }
    assert len(keys) == 5
    assert TrainingSettings(method="dpo").record()["beta"] == 0.1 and "beta" not in TrainingSettings().record()
