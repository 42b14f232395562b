"""G-Eval's weighted score: the expected score under the judge's probabilities, from a scripted logprob reply."""

from __future__ import annotations

import json
import math

import polars as pl
import pytest

import workbench as wb
from workbench.grading.grade import weighted_score

# The judge's JSON reply, token by token; at the score token the server's top alternatives are 4, 3, 5 and "x".
TOKENS = ['{"', "reason", '":', ' "', "fine", '",', ' "', "score", '":', " ", "4", "}"]
TOP_AT_SCORE = [("4", 0.60), ("3", 0.30), ("5", 0.05), ("x", 0.05)]


def scripted_logprobs() -> dict:
    content = [{"token": token, "logprob": -0.01, "top_logprobs": []} for token in TOKENS]
    content[10]["logprob"] = math.log(0.60)
    content[10]["top_logprobs"] = [{"token": t, "logprob": math.log(p)} for t, p in TOP_AT_SCORE]
    return {"content": content}


def judge(body: dict) -> str | dict:
    content = "".join(TOKENS)
    return {"content": content, "logprobs": scripted_logprobs()} if body.get("logprobs") else content


def test_weighted_score_is_the_hand_computed_expectation(fake_server, connect_to):
    server = fake_server(responder=judge)
    llm = connect_to(server)
    frame = pl.DataFrame({"task": ["What is 2 + 2?"], "response": ["4"]})
    graded = wb.grade(llm, frame, wb.Rubric("Is it correct?"), weighted=True, progress=False)
    # Only scale values count, renormalised: (4 * .60 + 3 * .30 + 5 * .05) / (.60 + .30 + .05)
    expected = (4 * 0.60 + 3 * 0.30 + 5 * 0.05) / 0.95
    assert graded["score"][0] == 4.0
    assert graded["weighted_score"][0] == pytest.approx(expected)  # 3.7368...
    assert graded["weighted_note"][0] is None
    assert server.stats.received == 1  # one judge call


def test_a_backend_without_logprobs_warns_and_keeps_the_sampled_score(fake_server, connect_to):
    server = fake_server(responder=lambda body: '{"reason": "fine", "score": 2}')
    frame = pl.DataFrame({"task": ["What is 2 + 2?"], "response": ["5"]})
    with pytest.warns(UserWarning, match="no logprobs"):
        graded = wb.grade(connect_to(server), frame, wb.Rubric("Is it correct?"), weighted=True, progress=False)
    assert graded["score"][0] == 2.0
    assert graded["weighted_score"][0] is None
    assert graded["weighted_note"][0] == "no logprobs from this backend"


def test_weighted_score_reads_only_the_score_token():
    rubric = wb.Rubric("Is it correct?")
    tokens = [{"token": t, "logprob": 0.0, "top_logprobs": []} for t in ['{"reason": "3 of 5", "score": ', "2", "}"]]
    tokens[1]["top_logprobs"] = [{"token": "2", "logprob": math.log(0.5)}, {"token": "1", "logprob": math.log(0.5)}]
    assert weighted_score(json.dumps(tokens), rubric) == (1.5, None)
    assert weighted_score(None, rubric) == (None, "no logprobs from this backend")
    no_score = json.dumps([{"token": "hello", "logprob": 0.0, "top_logprobs": []}])
    assert weighted_score(no_score, rubric)[0] is None


def test_the_judge_prompt_shows_no_placeholder_to_copy():
    text = wb.Rubric("Is it correct?").instructions()
    assert "<" not in text and ">" not in text
