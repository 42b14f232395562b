"""Self-training rounds: held-out items never reach training, and a round with nothing accepted says so."""

from __future__ import annotations

import json
import subprocess
import sys

import polars as pl
import pytest

import workbench as wb
from workbench.grading import tasks
from workbench.training.self_train import check_heldout, split_items


def test_the_split_keeps_held_out_items_out_of_training():
    train, heldout = split_items("arithmetic", train=30, heldout=20, seed=0)
    assert train.height == 30 and heldout.height == 20
    assert not set(train["variables"]) & set(heldout["variables"])
    assert set(train["split"]) == {"train"} and set(heldout["split"]) == {"heldout"}
    check_heldout(train.with_columns(pl.col("item_id").alias("sample_id")), heldout, "arithmetic")


def test_a_leaking_training_set_is_refused_naming_the_rows():
    train, heldout = split_items("arithmetic", train=10, heldout=10, seed=1)
    task = tasks.get("arithmetic")
    leaked = heldout.head(2).with_columns(
        pl.Series("prompt", [task.phrasings["train"][0].format(**json.loads(v)) for v in heldout["variables"][:2]]),
        pl.Series("sample_id", ["leak-a", "leak-b"]),
    )
    rows = pl.concat(
        [train.with_columns(pl.col("item_id").alias("sample_id")), leaked.drop("variables")], how="diagonal"
    )
    with pytest.raises(wb.InputError, match=r"2 training row\(s\) repeat held-out items: leak-a, leak-b"):
        check_heldout(rows, heldout, "arithmetic")


@pytest.mark.local_model
def test_a_round_where_the_verifier_accepts_nothing_says_what_to_change(tmp_path):
    never = tasks.Task(
        name="never_right",
        phrasings={"train": ["Say {word} {number}."], "heldout": ["Please say {word} {number}."]},
        sample=lambda rng, difficulty: {"word": rng.choice(["apple", "river", "cloud"]), "number": rng.randrange(1000)},
        check=lambda response, variables: (False, "this verifier accepts nothing"),
        max_tokens=8,
    )
    with pytest.raises(wb.InputError, match="accepted none of the 4 samples.*larger k"):
        wb.self_train(never, k=1, train_items=4, heldout_items=2, arms=("verifier",), data_dir=tmp_path, progress=False)
    assert not list(tmp_path.glob("models/*/*.gguf"))


def test_the_command_line_runs_without_importing_itself_twice():
    # runpy warns when the module it runs was already imported (through ``import workbench``)
    done = subprocess.run(
        [sys.executable, "-W", "error::RuntimeWarning", "-m", "workbench.training", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "--iterations" in done.stdout and "python -m workbench.training" in done.stdout


def test_the_old_command_says_where_it_went():
    done = subprocess.run(
        [sys.executable, "-m", "workbench.training.self_train", "--iterations", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "python -m workbench.training" in done.stderr


@pytest.mark.parametrize("counts", [{"k": 0}, {"iterations": 0}, {"train_items": -1}, {"heldout_items": 2.5}])
def test_a_count_below_one_is_refused_before_any_model_starts(counts, tmp_path):
    name = next(iter(counts))
    with pytest.raises(wb.InputError, match=f"{name} must be a positive whole number"):
        wb.self_train("arithmetic", data_dir=tmp_path, serve=_never_served, **counts)


def _never_served(path):
    raise AssertionError("bad input must be refused before a model is served")


def test_bad_input_on_the_command_line_is_one_line_that_says_what_to_change():
    done = subprocess.run(
        [sys.executable, "-m", "workbench.training", "--arms", "unfiltered"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "InputError: arms are chosen from verifier" in done.stderr and "must include 'verifier'" in done.stderr


def test_a_held_out_item_in_the_training_pairs_is_refused_as_for_sft():
    train, heldout = split_items("arithmetic", train=10, heldout=10, seed=2)
    task = tasks.get("arithmetic")
    asked = task.phrasings["train"][1].format(**json.loads(heldout["variables"][0]))
    pairs = pl.DataFrame(
        {
            "pair_id": ["p-train", "p-leak"],
            "prompt": [train["prompt"][0], asked],
            "chosen": ["7", "9"],
            "rejected": ["8", "10"],
        }
    )
    with pytest.raises(wb.InputError, match=r"1 training row\(s\) repeat held-out items: p-leak\. Held-out items"):
        check_heldout(pairs, heldout, "arithmetic")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"method": "ppo"}, r"method must be one of sft, dpo; got 'ppo'"),
        ({"data": "mix"}, r"data must be one of replace, accumulate; got 'mix'"),
        (
            {"method": "dpo", "arms": ("verifier", "gold")},
            r"arms are chosen from verifier, judge, compare, random, sft",
        ),
        ({"method": "sft", "arms": ("verifier", "random")}, r"arms are chosen from verifier, unfiltered, judge, gold"),
    ],
)
def test_an_unknown_method_data_or_arm_lists_the_choices_before_any_model_starts(options, message, tmp_path):
    with pytest.raises(wb.InputError, match=message):
        wb.self_train("arithmetic", data_dir=tmp_path, serve=_never_served, **options)


WORDS = [
    "apple",
    "river",
    "cloud",
    "stone",
    "maple",
    "ocean",
    "tiger",
    "lemon",
    "piano",
    "candle",
    "garden",
    "window",
    "silver",
    "bridge",
    "forest",
    "meadow",
]
ECHO = tasks.Task(
    name="echo_word_generations",
    phrasings={"train": ["Write the word {word}."], "heldout": ["Please write the word {word}."]},
    sample=lambda rng, difficulty: {"word": rng.choice(WORDS)},
    check=lambda response, v: (v["word"] in response.lower(), f"the reply does not say {v['word']!r}"),
    max_tokens=8,
)


@pytest.mark.local_model
@pytest.mark.train
def test_generations_are_measured_and_a_second_identical_call_trains_and_samples_nothing(tmp_path, capsys):
    pytest.importorskip("torch", reason="training needs the 'train' extra")
    options = {"iterations": 2, "k": 2, "train_items": 4, "heldout_items": 3, "epochs": 1, "data": "accumulate",
               "arms": ("verifier", "unfiltered"), "data_dir": tmp_path}  # fmt: skip
    first = wb.self_train(ECHO, **options)
    assert "generation 1 of 2 took" in capsys.readouterr().out  # the estimate, before the second generation
    table = first.table
    assert table.select("iteration", "arm").rows() == [(0, "base"), (1, "verifier"), (1, "unfiltered"),
                                                       (2, "verifier"), (2, "unfiltered")]  # fmt: skip
    for measure in ("heldout_rate", "ci_low", "entropy", "distinct_2", "self_bleu", "answer_words", "distinct_answers"):
        assert table[measure].null_count() == 0, measure
    trained = table.filter(pl.col("iteration") == 2)
    assert (trained["rows_trained"] > table.filter(pl.col("iteration") == 1)["rows_trained"]).all()  # accumulated
    assert first.heldout.height == 5 * 3 and set(first.heldout.columns) == {"iteration", "arm", "item_id", "correct"}

    again = wb.self_train(ECHO, **options)
    assert "was already done" in capsys.readouterr().out
    assert not any(model.trained for model in again.models.values())
    assert again.samples["cached"].all() and again.samples.height == first.samples.height
    same = ["iteration", "arm", "heldout_correct", "entropy", "self_bleu", "rows_trained"]
    assert again.table.select(same).equals(first.table.select(same))

    other_seed = wb.self_train(ECHO, **{**options, "iterations": 1, "seed": 1})  # new samples of the same items
    assert set(other_seed.heldout["item_id"]) == set(first.heldout["item_id"])
    assert set(other_seed.samples["item_id"]) == set(first.samples["item_id"])
    assert not other_seed.samples["cached"].any()


@pytest.mark.local_model
@pytest.mark.train
def test_a_dpo_round_on_verifier_pairs_is_tested_against_the_base_and_against_sft_at_equal_data(tmp_path):
    pytest.importorskip("torch", reason="training needs the 'train' extra")
    result = wb.self_train("arithmetic", method="dpo", arms=("verifier", "sft"), k=4, train_items=8,
                           heldout_items=6, epochs=1, data_dir=tmp_path, progress=False)  # fmt: skip
    table = result.table
    dpo, sft = (table.filter(arm=arm).row(0, named=True) for arm in ("verifier", "sft"))
    assert dpo["method"] == "dpo" and sft["method"] == "sft"
    assert dpo["rows_trained"] == sft["rows_trained"] > 0  # as many pairs as chosen answers: equal data
    assert 0 < dpo["p_vs_base"] <= 1 and 0 < dpo["p_vs_sft"] <= 1 and dpo["chosen_logratio"] is not None
    pairs = pl.read_parquet(result.models[(1, "verifier")].card.parent / "train.parquet")
    verdicts = dict(zip(result.samples["sample_id"], result.samples["verified"], strict=True))
    assert all(verdicts[s] for s in pairs["chosen_sample_id"]) and not any(
        verdicts[s] for s in pairs["rejected_sample_id"]
    )
