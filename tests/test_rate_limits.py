"""Rate limits and the fault tail, against the fake server: every figure is counted on the server's side."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest
from fakeserver import Faults, RateLimit, openai_duration

from workbench.models import ratelimit
from workbench.models.ratelimit import LearnedLimit, LimitReading, parse_duration, read_limit_headers


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


def after_the_start(server, seconds: float = 2.0, tail: int = 5) -> tuple[float, float]:
    """The share of requests refused from ``seconds`` after the first refusal on, and the requests per minute admitted
    from then until the last ``tail`` admissions (a batch's last few requests are too few to run at any limit, and one
    of them delayed on a loaded machine would decide the figure). Both from the server's log."""
    log = sorted((moment, outcome) for moment, _, outcome in server.stats.log)
    start = next(moment for moment, outcome in log if outcome == "limited") + seconds
    later = [(moment, outcome) for moment, outcome in log if moment >= start]
    admitted = [moment for moment, outcome in later if outcome == "ok"][:-tail]
    refused = sum(outcome == "limited" for _, outcome in later)
    return refused / len(later), (len(admitted) - 1) / (admitted[-1] - admitted[0]) * 60


def timeline(server) -> str:
    """Admitted/refused per half second, from the server's log: what a failed assertion shows."""
    start, bins = min(moment for moment, _, _ in server.stats.log), {}
    for moment, _, outcome in server.stats.log:
        counts = bins.setdefault(int((moment - start) * 2), [0, 0])
        counts[outcome != "ok"] += 1
    return "  ".join(f"{index / 2:.1f}s {ok}/{refused}" for index, (ok, refused) in sorted(bins.items()))


@pytest.mark.parametrize(
    ("limit", "latency", "concurrency"),
    [
        (RateLimit(per_minute=1200, burst=20, headers="none"), 0.02, 32),
        (RateLimit(per_minute=1200, burst=20, headers="none", retry_after=False), 0.02, 32),
        # a gateway in front of a slow model: refusals come at once, answers after 1.5 s, so 30 must be in flight
        (RateLimit(per_minute=1200, burst=20, headers="none", refuse_at_once=True), 1.5, 48),
    ],
    ids=["retry-after", "no-retry-after", "slow-answers"],
)
def test_a_server_without_limit_headers_is_paced_at_the_rate_its_429s_reveal(
    fake_server, connect_to, limit, latency, concurrency
):
    server = fake_server(rate_limit=limit, latency=latency)
    llm = connect_to(server, max_concurrency=concurrency, timeout=10)  # nothing configured, and nothing announced

    table = llm.chat_many(prompts(160), progress=False)

    assert table["error"].null_count() == 160 and server.stats.answered == 160
    refused, per_minute = after_the_start(server)
    # before: a third to a half of the requests refused all along (one 429 per success without retry-after), and
    # the slow server held to 70% of its limit by the halved concurrency
    assert refused <= 0.05, (refused, timeline(server))
    assert per_minute >= 0.9 * 1200, (per_minute, timeline(server))


def attempts_per_second(server, after: float = 0.5) -> float:
    """Requests the server received per second, over the last ``after`` share of the batch, from its log."""
    moments = sorted(moment for moment, _, _ in server.stats.log)
    later = moments[int(len(moments) * (1 - after)) :]
    return (len(later) - 1) / (later[-1] - later[0])


def test_429s_that_come_at_any_rate_are_faults_and_do_not_slow_the_batch(fake_server, connect_to):
    clean = fake_server(latency=0.01)
    faulty = fake_server(faults=Faults(rate_429=0.2, retry_after=0.01, seed=5), latency=0.01)

    for server in (clean, faulty):
        table = connect_to(server, max_concurrency=16, max_retries=8).chat_many(prompts(600), progress=False)
        assert table["error"].null_count() == 600

    # once the 429s are seen to come as often at any pace, requests go as fast as without them (before: a quarter
    # as fast, as the concurrency was halved again and again); the first part of the batch is the finding out
    ratio = attempts_per_second(faulty) / attempts_per_second(clean)
    assert ratio >= 0.6, (ratio, attempts_per_second(faulty), attempts_per_second(clean))


class Simulated:
    """A clock for the rate limiter, and a client that sends one request after another through a LearnedLimit, as
    fast as the limit lets it and no faster than ``most_per_second``, each answered at once."""

    def __init__(self, monkeypatch) -> None:
        self.now = 0.0
        monkeypatch.setattr(ratelimit, "time", SimpleNamespace(monotonic=lambda: self.now))
        self.learned = LearnedLimit()
        self.sent: list[tuple[float, bool]] = []  # (when, admitted)

    def run(self, admits, requests: int, most_per_second: float = 200.0) -> None:
        for _ in range(requests):
            self.now += max(self.learned.wait_time(), 1 / most_per_second)
            ticket = len(self.sent)
            self.learned.take(ticket)
            admitted = admits(self.now)
            self.learned.observe(ticket, 200 if admitted else 429)
            self.sent.append((self.now, admitted))

    def last(self, count: int) -> tuple[float, float]:
        """The share refused of the last ``count`` requests, and the requests admitted per second among them."""
        last = self.sent[-count:]
        admitted = [moment for moment, ok in last if ok]
        return sum(not ok for _, ok in last) / count, (len(admitted) - 1) / (admitted[-1] - admitted[0])


def bucket(per_second, burst: float):
    """A server's limit: ``burst`` requests at once, refilled at ``per_second`` (a number, or a function of time)."""
    state = {"level": burst, "at": 0.0}

    def admits(now: float) -> bool:
        rate = per_second(now) if callable(per_second) else per_second
        state["level"] = min(burst, state["level"] + (now - state["at"]) * rate)
        state["at"] = now
        if state["level"] < 1:
            return False
        state["level"] -= 1
        return True

    return admits


@pytest.mark.parametrize(("per_second", "burst"), [(20, 20), (100, 5), (10, 60), (5, 10)])
def test_the_rate_learnt_from_refusals_is_the_servers_whatever_its_burst(monkeypatch, per_second, burst):
    client = Simulated(monkeypatch)

    client.run(bucket(per_second, burst), requests=400)  # from 200 requests/s, 2 to 100 times the limit

    assert client.learned.measured == pytest.approx(per_second, rel=0.05)
    refused, admitted = client.last(200)
    assert refused <= 0.02 and admitted >= 0.9 * per_second, (refused, admitted)


@pytest.mark.parametrize(("before", "after"), [(20, 10), (10, 20)], ids=["lowered", "raised"])
def test_a_limit_that_changes_is_learnt_again(monkeypatch, before, after):
    client = Simulated(monkeypatch)

    client.run(bucket(lambda now: before if now < 20 else after, 20), requests=40 * before + 30 * after)

    assert client.learned.measured == pytest.approx(after, rel=0.05)
    refused, admitted = client.last(10 * after)  # the last 10 seconds
    assert refused <= 0.05 and admitted >= 0.9 * after, (refused, admitted)


@pytest.mark.parametrize("share", [0.1, 0.2, 0.3])
@pytest.mark.parametrize("seed", range(3))
def test_refusals_at_a_share_whatever_the_pace_end_the_pacing(monkeypatch, share, seed):
    client, draw = Simulated(monkeypatch), random.Random(seed)

    client.run(lambda now: draw.random() >= share, requests=1200)

    assert client.learned.rate is None  # not paced at the end: the refusals were seen to be faults, or never many
    assert client.learned.noise == 0 or abs(client.learned.noise - share) <= 0.06
    assert client.now < 1.2 * 1200 / 200  # at most a fifth slower than never paced (finding out takes a while)


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
