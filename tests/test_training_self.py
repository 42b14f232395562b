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
        sample=lambda rng, difficulty: {"word": rng.choice(["apple", "river", "cloud", "stone"]), "number": rng.randrange(1000)},
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
