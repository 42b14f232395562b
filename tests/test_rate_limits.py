"""Rate limits and the fault tail, against the fake server: every figure is counted on the server's side."""

from __future__ import annotations

import pytest
from fakeserver import Faults, RateLimit, openai_duration

from workbench.models.ratelimit import LimitReading, parse_duration, read_limit_headers


def prompts(count: int) -> list[str]:
    return [f"Write sample number {index}." for index in range(count)]


def outcomes_by_body(server) -> dict[str, list[tuple[float, str]]]:
    by_body: dict[str, list[tuple[float, str]]] = {}
    for moment, digest, outcome in server.stats.log:
        by_body.setdefault(digest, []).append((moment, outcome))
    return by_body


def test_a_one_off_429_holds_back_only_its_own_request(fake_server, connect_to):
    server = fake_server(faults=Faults(scripted={"Write sample number 0.": ("429",)}, retry_after=2.0))
    llm = connect_to(server, max_concurrency=4)

    table = llm.chat_many(prompts(40), progress=False)

    assert table["error"].null_count() == 40 and table["attempts"].to_list() == [2] + [1] * 39
    by_body = outcomes_by_body(server)
    [(refused_at, first), (retried_at, second)] = next(times for times in by_body.values() if len(times) == 2)
    assert (first, second) == ("429", "ok")
    others = [times[0][0] for times in by_body.values() if len(times) == 1]
    assert len(others) == 39
    assert retried_at - refused_at >= 2.0  # the refused request waited for its Retry-After ...
    assert max(others) < retried_at  # ... and every other request was answered meanwhile, not paused:
    assert sum(refused_at < moment < refused_at + 1.0 for moment in others) >= 30  # most in the first half


@pytest.mark.parametrize(("headers", "burst"), [("openai", 5), ("ietf", 20)])
def test_a_server_that_enforces_a_limit_is_not_hammered(fake_server, connect_to, headers, burst):
    server = fake_server(rate_limit=RateLimit(per_minute=1200, burst=burst, headers=headers))
    llm = connect_to(server, max_concurrency=32)  # no requests_per_minute: learnt from the headers

    table = llm.chat_many(prompts(60), progress=False)

    assert table["error"].null_count() == 60
    assert server.stats.answered == 60 and max(server.stats.answered_by_body.values()) == 1
    assert server.stats.limited <= 10, server.stats.limited  # the first 8 go before any header is read


def test_remaining_zero_with_a_reset_makes_the_next_requests_wait(fake_server, connect_to):
    server = fake_server(rate_limit=RateLimit(per_minute=120, burst=3))  # 3 at once, then one every 0.5 s
    llm = connect_to(server, max_concurrency=1)

    table = llm.chat_many(prompts(5), progress=False)

    assert table["error"].null_count() == 5
    assert server.stats.limited == 0  # the fourth request waited for the reset instead of being refused
    answered = [moment for moment, _, outcome in server.stats.log if outcome == "ok"]
    assert answered[3] - answered[2] >= 0.5


def test_a_server_without_limit_headers_gets_fewer_requests_once_it_refuses_many(fake_server, connect_to):
    server = fake_server(rate_limit=RateLimit(per_minute=1200, burst=5, headers="none"))
    llm = connect_to(server, max_concurrency=32)

    table = llm.chat_many(prompts(60), progress=False)

    assert table["error"].null_count() == 60 and server.stats.answered == 60  # 429s have their own retries
    assert server.stats.limited < 3 * 60, server.stats.limited  # a pause for all once many are refused


def test_no_row_is_lost_and_no_success_is_sent_twice_under_the_fault_mix(fake_server, connect_to):
    faults = Faults(rate_429=0.05, rate_500=0.03, rate_drop=0.02, rate_malformed=0.02, retry_after=0.05, seed=7)
    server = fake_server(faults=faults, latency=0.002)
    llm = connect_to(server, max_concurrency=32, max_retries=8)

    table = llm.chat_many(prompts(400), progress=False)

    assert table["error"].null_count() == 400
    assert table["response"].to_list() == [f"echo: {text}" for text in prompts(400)]
    assert sum(server.stats.faults.values()) > 20  # the faults really happened
    assert server.stats.answered == 400 and max(server.stats.answered_by_body.values()) == 1


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1.0), ("6m0s", 360.0), ("20ms", 0.02), ("1h2m3.5s", 3723.5), ("0.5", 0.5), ("soon", None), ("", None)],
)
def test_durations_in_openai_form_are_read(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds) if seconds is not None else parse_duration(text) is None


@pytest.mark.parametrize("seconds", [0.02, 0.999, 1.0, 1.5, 59.0, 360.0, 3723.0])
def test_the_fake_servers_durations_read_back(seconds):
    assert parse_duration(openai_duration(seconds)) == pytest.approx(seconds, abs=0.01)


@pytest.mark.parametrize(
    ("headers", "reading"),
    [
        (
            {
                "x-ratelimit-limit-requests": "600",
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": "6m0s",
            },
            LimitReading(remaining=0, limit=600, reset=360),
        ),
        ({"x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "59"}, LimitReading(59, 60, None)),
        ({"ratelimit-limit": "100", "ratelimit-remaining": "7", "ratelimit-reset": "30"}, LimitReading(7, None, 30)),
        ({"ratelimit": "limit=100, remaining=50, reset=12"}, LimitReading(50, None, 12)),
        ({"x-ratelimit-limit": "10", "x-ratelimit-remaining": "3", "x-ratelimit-reset": "4"}, LimitReading(3, None, 4)),
        ({"content-type": "application/json"}, None),
    ],
)
def test_rate_limit_headers_are_read_in_each_form(headers, reading):
    assert read_limit_headers(headers) == reading
