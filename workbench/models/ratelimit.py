"""Rate limits: the ones you set (requests/tokens per minute) and the one the server announces.

Limits you set are token buckets: a bucket holds up to one minute's allowance and refills
continuously, so a batch may start with a burst of up to the whole allowance and then settles at
the limit.

The server's limit is read from the headers of its answers, 200s and 429s alike, so that a batch
runs close to it without anything configured on our side:

    OpenAI, and gateways in front of vLLM   x-ratelimit-{limit,remaining,reset}-requests
                                            (reset as a duration: "1s", "6m0s", "20ms")
    IETF draft (RateLimit fields)           ratelimit-limit / -remaining / -reset (seconds),
                                            or one ``ratelimit: limit=.., remaining=.., reset=..``
    older APIs                              x-ratelimit-limit / -remaining / -reset (seconds or
                                            a Unix time)
    Anthropic                               anthropic-ratelimit-requests-* (reset as a timestamp)

Many servers send none of these (vLLM, most gateways and self-hosted proxies) yet refuse requests
over a rate with 429s. For them the rate is learnt from the refusals themselves (:class:`LearnedLimit`).

Every request takes a ticket (its place in sending order). The answer to ticket ``t`` says how many
requests the server will still take; the requests sent after ``t`` come off that. When nothing is
left ("remaining: 0"), every request waits until the reset the server announced: that is a real
limit, not a one-off refusal.
"""

from __future__ import annotations

import asyncio
import bisect
import email.utils
import logging
import math
import re
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "Bucket",
    "LearnedLimit",
    "LimitReading",
    "RateLimiter",
    "ServerLimit",
    "parse_duration",
    "read_limit_headers",
]

log = logging.getLogger("workbench")

_UNKNOWN_RESET = 1.0  # seconds to wait when a server says "none left" but not when it comes back
# The limit learnt from 429s (LearnedLimit); measured against the fake server in bench/rate_limits.py, and on a
# simulated clock in tests/test_rate_limits.py.
_WINDOW = 32  # recent answers looked at to tell many refusals from a one-off 429
_CONGESTED_SHARE = 0.25  # many refusals: this share of the window or more (beyond the usual share of faults) ...
_MIN_REFUSALS = 3  # ... and at least this many
_MEASURED = 20  # requests admitted between refusals that make a measurement
_UNDER_BOUND = 1.25  # 20 admitted at the bound without a refusal: the bound is under the rate, raise it this much
_MARGIN = 0.97  # pace at this share of the rate measured ...
_GROWTH, _GROWTH_STEPS = 0.05, 60  # ... then grow: +5% in 60 requests admitted, +20% in 120, +80% in 240
_PROBED = 1.25  # refused once grown no further past the rate measured than this: about that rate
_ONE_OFF = 60  # requests admitted after a refusal without another: it was a one-off
_FOLLOWED = 0.93  # a measurement under this share of the one before followed our own pace down ...
_NOT_A_LIMIT = 2  # ... this many times in a row: the refusals are faults, not a limit ...
_NOISY = 0.15  # ... or once, with this share or more of the requests sent at the pace refused (a limit under
# the rate measured before would leave fewer)
_MOST_NOISE = 0.5  # refusals at any rate beyond this share are not told apart from a limit
_PACED_SHARE = 0.9  # the pace holds requests back while they go at least this share of it
_PACING_BURST = 2.0  # requests that may go back to back, so that a late timer does not lose its turn
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


class Bucket:
    """A token bucket of ``per_minute`` units that refills continuously."""

    def __init__(self, per_minute: float) -> None:
        self.capacity = float(per_minute)
        self.level = float(per_minute)
        self.rate = per_minute / 60.0
        self.stamp = time.monotonic()

    def wait_time(self, amount: float) -> float:
        """Seconds until ``amount`` units are available (0 when they are)."""
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        amount = min(amount, self.capacity)
        return 0.0 if self.level >= amount else (amount - self.level) / self.rate

    def take(self, amount: float) -> None:
        self.level -= min(amount, self.capacity)


@dataclass(frozen=True)
class LimitReading:
    """What one answer's headers say about the server's request allowance."""

    remaining: float
    limit: float | None = None  # requests per minute
    reset: float | None = None  # seconds until the allowance is back


def read_limit_headers(headers: Mapping[str, str] | None) -> LimitReading | None:
    """The request allowance announced in ``headers``, in any of the forms above; None without one."""
    if not headers:
        return None
    for read in (_openai, _anthropic, _ietf_fields, _ietf_structured, _legacy):
        reading = read(headers)
        if reading is not None:
            return reading
    return None


def _openai(headers: Mapping[str, str]) -> LimitReading | None:
    remaining = _number(headers.get("x-ratelimit-remaining-requests"))
    if remaining is None:
        return None
    reset = parse_duration(headers.get("x-ratelimit-reset-requests"))
    return LimitReading(remaining, _number(headers.get("x-ratelimit-limit-requests")), reset)


def _anthropic(headers: Mapping[str, str]) -> LimitReading | None:
    remaining = _number(headers.get("anthropic-ratelimit-requests-remaining"))
    if remaining is None:
        return None
    reset = _seconds_until(headers.get("anthropic-ratelimit-requests-reset"))
    return LimitReading(remaining, _number(headers.get("anthropic-ratelimit-requests-limit")), reset)


def _ietf_fields(headers: Mapping[str, str]) -> LimitReading | None:
    remaining = _number(headers.get("ratelimit-remaining"))
    if remaining is None:
        return None
    return LimitReading(remaining, None, _number(headers.get("ratelimit-reset")))


def _ietf_structured(headers: Mapping[str, str]) -> LimitReading | None:
    fields = dict(re.findall(r"(\w+)\s*=\s*([\d.]+)", headers.get("ratelimit", "")))
    remaining = _number(fields.get("remaining") or fields.get("r"))
    if remaining is None:
        return None
    return LimitReading(remaining, None, _number(fields.get("reset") or fields.get("t")))


def _legacy(headers: Mapping[str, str]) -> LimitReading | None:
    remaining = _number(headers.get("x-ratelimit-remaining"))
    if remaining is None:
        return None
    reset = _number(headers.get("x-ratelimit-reset"))
    if reset is not None and reset > 1e9:  # a Unix time, not a number of seconds
        reset = max(reset - time.time(), 0.0)
    return LimitReading(remaining, None, reset)


def _number(text: str | None) -> float | None:
    match = re.match(r"\s*(\d+(?:\.\d+)?)", text or "")
    return float(match.group(1)) if match else None


def _seconds_until(text: str | None) -> float | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(text).timestamp()
        except (TypeError, ValueError):
            return None
    return max(moment - time.time(), 0.0)


def parse_duration(text: str | None) -> float | None:
    """Seconds in a duration like OpenAI's ``"1s"``, ``"6m0s"``, ``"20ms"``, ``"1h2m3.5s"`` or ``"0.5"``."""
    if not text:
        return None
    text = text.strip()
    parts = _DURATION.findall(text)
    if parts and "".join(value + unit for value, unit in parts) == text:
        return sum(float(value) * _UNIT[unit] for value, unit in parts)
    return _number(text) if re.fullmatch(r"\d+(?:\.\d+)?", text) else None


class ServerLimit:
    """The server's request allowance as its headers last told it, counted down as we send.

    ``budget`` is how many more requests the server will take now: unknown (infinite) until a
    reading arrives. Only the reading for the latest ticket is used: older answers are staler.
    """

    def __init__(self) -> None:
        self.sent = 0
        self.budget = math.inf
        self.capacity = 1.0
        self.per_second: float | None = None
        self.reset_at: float | None = None
        self.reading_ticket = -1
        self.stamp = time.monotonic()

    @property
    def known(self) -> bool:
        """True once the server has announced a limit."""
        return self.reading_ticket >= 0

    def take(self) -> int:
        """Count one request as sent; its ticket."""
        ticket = self.sent
        self.sent += 1
        self.budget -= 1
        return ticket

    def observe(self, reading: LimitReading | None, ticket: int) -> None:
        """Take in the reading from the answer to ``ticket``."""
        if reading is None or ticket < self.reading_ticket:
            return
        now = time.monotonic()
        self.reading_ticket = ticket
        self.capacity = max(self.capacity, reading.remaining + 1)
        self.per_second = reading.limit / 60 if reading.limit else self.per_second
        self.budget = reading.remaining - self._sent_since_reading()
        reset = self._reset_after(reading)
        self.reset_at = now + reset if reset is not None else None
        self.stamp = now

    def _reset_after(self, reading: LimitReading) -> float | None:
        """Seconds until the allowance is back; None when it refills continuously at the limit."""
        if reading.reset is not None:
            return reading.reset
        return None if self.per_second else _UNKNOWN_RESET

    def wait_time(self) -> float:
        """Seconds until one more request may go (0 when it may go now)."""
        now = time.monotonic()
        if self.reset_at is not None and now >= self.reset_at:
            self.budget = max(self.budget, self.capacity - self._sent_since_reading())
            self.reset_at = None
        elif self.reset_at is None and self.per_second:
            self.budget = min(self.capacity, self.budget + (now - self.stamp) * self.per_second)
        self.stamp = now
        if self.budget >= 1:
            return 0.0
        if self.reset_at is not None:
            return self.reset_at - now
        return (1 - self.budget) / self.per_second if self.per_second else _UNKNOWN_RESET

    def _sent_since_reading(self) -> int:
        return self.sent - self.reading_ticket - 1


class LearnedLimit:
    """The server's request rate, learnt from its 429s when it announces none.

    A server that enforces a rate with a bucket (a burst, refilled at the rate) refuses a request
    only when its bucket is empty. Between two refused requests it therefore admitted the rate times
    the time between them, give or take one request, however fast or slowly we sent and whatever
    burst it had saved up before: counting them measures the rate (:meth:`_measure`). ::

        not paced ── until many are refused: 3 or more, and a quarter or more, of the last 32
           │         answers (a one-off 429 is only retried, and nothing is paced)
           ▼
        measuring ── requests go no faster than the bound the refusals so far set (the requests
           │         admitted between the first and the latest, plus two, over the time between
           │         them: over the rate, so refusals keep coming while it tightens; raised by a
           │         quarter when 20 go through at it without one), until 20 or more were admitted
           │         between refusals of requests sent at the bound: counted, measured
           ▼
        paced ─────  requests go evenly at 97% of the rate measured. Each request admitted while
           │  ▲      the pace is what holds requests back grows it, slowly at first (+5% in 60
           │  │      requests), faster past it (+20% in 120, +80% in 240): a limit that was
           │  │      higher, or went up, is found again
           │  ├───── a refusal once the pace grew back to the rate measured, or up to 25% past it:
           │  │      the rate is the requests admitted since the refusal that set the pace, over the
           │  │      time since (when 20 or more); back to 97% of it, growing again
           │  └───── a refusal at any other pace (under the rate measured: the limit went down;
           │         further past it: it went up) holds the pace and measures afresh, as above;
           │         60 requests admitted without another refusal: it was a one-off
           ▼
        not paced ── when the rate measured falls under 93% of the one before twice in a row (or
                     once, with 15% or more of the requests sent at the pace refused), it follows
                     our own pace down: the server refuses a share of the requests at any rate, its
                     429s are faults, not a limit. From then on only refusals beyond that usual
                     share count as many.

    Refusals of requests sent before the pace last changed are not looked at: that change answers
    for them. Times are ours, not the server's, which is why a measurement spans 20 requests or
    more: the variation of the delays between us is a small part of it.
    """

    def __init__(self) -> None:
        self.rate: float | None = None  # requests per second; None while not paced
        self.measured: float | None = None  # the rate last measured
        self.noise = 0.0  # the share of requests the server refuses at any rate
        self.level = 0.0
        self.stamp = time.monotonic()
        self._next_ticket = 0
        self._sent_at: dict[int, float] = {}
        self._outcome: dict[int, bool] = {}  # refused?, for the requests answered from _floor on
        self._refused_at: dict[int, float] = {}  # when the refusals came
        self._sends: deque[float] = deque(maxlen=_WINDOW)
        self._answers: deque[tuple[int, bool]] = deque(maxlen=_WINDOW)  # since the pace last changed
        self._recent: deque[bool] = deque(maxlen=8 * _WINDOW)  # refused?, whatever the pace
        self._floor = 0  # answers to the requests sent before this are not looked at (or no longer)
        self._round: list[int] | None = None  # the refused tickets of the measurement under way
        self._since_refusal = 0  # requests sent after the round's latest refusal, and admitted
        self._base = 0.0  # the pace set by the last measurement ...
        self._paced = 0  # ... and the requests admitted since while the pace held requests back
        self._counted: float | None = None  # the last rate measured by counting
        self._falls = 0  # measurements in a row that came out under _FOLLOWED of the one before
        self._paced_from: float = math.inf  # the first ticket sent at a pace: refusals from it on are measured
        self._since_ticket = 0  # the first ticket sent since the pace last changed ...
        self._since_at: float | None = None  # ... when, if that was at a refusal ...
        self._answered_since = 0  # ... how many of the requests sent since were answered ...
        self._refused_since = 0  # ... and refused

    # --- pacing -----------------------------------------------------------------------------------
    def wait_time(self) -> float:
        """Seconds until one more request may go (0 when it may go now, or while not paced)."""
        if self.rate is None:
            return 0.0
        now = time.monotonic()
        self.level = min(_PACING_BURST, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        return 0.0 if self.level >= 1 else (1 - self.level) / self.rate

    def take(self, ticket: int) -> None:
        """Count request ``ticket`` as sent now."""
        now = time.monotonic()
        self._sent_at[ticket] = now
        self._sends.append(now)
        self._next_ticket = max(self._next_ticket, ticket + 1)
        if self.rate is not None:
            self.level -= 1

    def send_rate(self) -> float:
        """Requests sent per second, over the last 32."""
        if len(self._sends) < 2:
            return math.inf
        return (len(self._sends) - 1) / max(self._sends[-1] - self._sends[0], 1e-3)

    # --- answers ----------------------------------------------------------------------------------
    def observe(self, ticket: int, status: int | None) -> None:
        """Take in the answer to ``ticket``: its HTTP status, or None when no answer came.

        Only a 429 is a refusal; any other outcome (an answer, an error, no answer) counts as admitted.
        """
        if ticket not in self._sent_at or ticket in self._outcome:
            return  # not sent through here, or answered already (a body that failed to parse)
        if ticket < self._floor:  # sent before the last change, which answers for it, or long ago
            del self._sent_at[ticket]
            return
        refused = status == 429
        self._outcome[ticket] = refused
        if refused:
            self._refused_at[ticket] = time.monotonic()
            self._refused_since += ticket >= self._since_ticket
        self._answered_since += ticket >= self._since_ticket
        self._answers.append((ticket, refused))
        self._recent.append(refused)
        if self._round is not None:
            self._in_round(ticket, refused)
        elif refused and self.measured is not None and self.measured <= self.rate <= _PROBED * self.measured:
            self._probed(ticket)
        elif refused and (self.rate is not None or self._congested()):
            first = min(t for t, was_refused in self._answers if was_refused) if self.rate is None else ticket
            self._round = [t for t, was_refused in self._answers if was_refused and t >= first]
            self._since_refusal = self._admitted_after(max(self._round))
            self._measure()
        elif not refused:
            self._grow()
        if self._round is None and self._answers:
            self._forget(min(t for t, _ in self._answers))

    def discard(self, ticket: int) -> None:
        """Forget request ``ticket``: its answer is for another kind of limit (one the server announces)."""
        self._sent_at.pop(ticket, None)

    def _in_round(self, ticket: int, refused: bool) -> None:
        latest = max(self._round)
        if refused:
            self._round.append(ticket)
            if ticket > latest:
                self._since_refusal = self._admitted_after(ticket)
            self._measure()
            return
        if ticket < latest:
            return  # sent before the latest refusal: says nothing of what the server does since
        self._since_refusal += 1
        bounded = self.measured is None and self.rate is not None
        if bounded and self._since_refusal % _MEASURED == 0 and self.send_rate() >= _PACED_SHARE * self.rate:
            self.rate *= _UNDER_BOUND  # none refused at the bound, which holds requests back: it is under the rate
            return
        if self._since_refusal < _ONE_OFF or bounded:
            return
        log.debug("the server's refusals stopped: pacing %s", self._describe())  # they were one-offs
        self._round = None
        if self.measured is None:
            self._paced_from = math.inf

    def _admitted_after(self, ticket: int) -> int:
        """How many of the requests sent after ``ticket`` were admitted so far."""
        return sum(self._outcome.get(t) is False for t in range(ticket + 1, self._next_ticket))

    def _measure(self) -> None:
        """Measure the rate from the requests admitted between the round's refusals.

        The refusals are placed when the server made them: when their answers came, less the quickest
        refusal's round trip (a request that waited for a connection was refused later than it was
        sent). A request admitted is placed when it was sent. For each refusal, the requests admitted
        since the first are the rate times the time since, give or take one: the rate is the slope of
        that line (least squares over every refusal up to which all requests were answered), once 20 or
        more requests were admitted. Until then, when measuring from scratch, requests go no faster than
        the upper bound the first and latest refusal set (with a request's slack for the timing).
        """
        trip = min(self._refused_at[t] - self._sent_at[t] for t in self._round)
        if self.measured is None:  # from scratch: no faster than the bound, and measured once paced at it
            admitted, pending, span = self._admitted(self._round, trip)
            if span > 0:
                self.rate = (len(admitted) + len(pending) + 2) / span
                self._paced_from = min(self._paced_from, self._next_ticket)
        clean = [t for t in self._round if t >= self._paced_from]
        if len(clean) < 2:
            return
        admitted, pending, _ = self._admitted(clean, trip)
        moments = sorted(self._refused_at[t] - trip for t in clean)
        unanswered_from = pending[0] if pending else math.inf
        points = [(moment, bisect.bisect_left(admitted, moment)) for moment in moments if moment <= unanswered_from]
        if points[-1][1] >= _MEASURED:
            self._measured(_slope(points), counted=True)

    def _admitted(self, refusals: list[int], trip: float) -> tuple[list[float], list[float], float]:
        """When the requests admitted between the first and latest of these refusals were sent, when those
        not answered yet were, and the time between the two refusals."""
        moments = sorted(self._refused_at[t] - trip for t in refusals)
        start, end = moments[0], moments[-1]
        admitted, pending = [], []
        for ticket in range(min(refusals) + 1, self._next_ticket):
            sent = self._sent_at.get(ticket, start)
            if sent >= end:
                break
            refused = self._outcome.get(ticket)
            if sent > start and not refused:
                (admitted if refused is not None else pending).append(sent)
        return admitted, pending, end - start

    def _measured(self, rate: float, *, counted: bool) -> None:
        """Pace at a share of the ``rate`` measured (``counted``: from the requests admitted between refusals,
        not only bounded by them), unless it follows our own pace down: a counted measurement under _FOLLOWED
        of the one before, which set the pace it was measured at. Then the refusals are faults."""
        falls = counted and self._counted is not None and rate < _FOLLOWED * self._counted
        self._falls = self._falls + 1 if falls else 0
        self._counted = rate if counted else None
        refused = self._refused_since / max(self._answered_since, 1)  # of the requests sent at the pace
        if self._falls >= _NOT_A_LIMIT or (falls and refused >= _NOISY):
            self._stop()
            return
        self.measured = rate
        self.rate = self._base = _MARGIN * rate
        self._paced = 0
        self._restart(at_refusal=counted)
        self._paced_from = self._next_ticket
        log.debug("the server refuses requests over about %.0f/min: pacing at %.0f/min", rate * 60, self.rate * 60)

    def _probed(self, ticket: int) -> None:
        """Refused once the pace grew back to the rate measured, or a little past it: about that rate. Since the
        refusal that set the pace, the server admitted the rate times the time since, give or take one: the rate,
        measured again without a refusal more (when 20 or more were admitted). Back to 95% of it; grow again."""
        admitted = ticket - self._since_ticket - (self._refused_since - 1)  # the unanswered, most likely admitted
        if self._since_at is not None and admitted >= _MEASURED:
            self.measured = admitted / (time.monotonic() - self._since_at)
            self._base = _MARGIN * self.measured
        self.rate, self._paced = self._base, 0
        self._restart(at_refusal=True)

    def _grow(self) -> None:
        if self.measured is None or self.send_rate() < _PACED_SHARE * self.rate:
            return  # not paced, or something else (the batch's concurrency, the server's speed) holds requests back
        self._paced += 1
        self.rate = self._base * (1 + _GROWTH * (self._paced / _GROWTH_STEPS) ** 2)

    def _stop(self) -> None:
        """The measured rate follows our pace down: the refusals are not a limit. Stop pacing; from now on
        only refusals beyond their usual share count as many."""
        self.noise = max(self.noise, min(sum(self._recent) / len(self._recent), _MOST_NOISE))
        self.rate = self.measured = self._counted = None
        self._falls, self._paced_from = 0, math.inf
        log.debug("the server refuses %.0f%% of requests at any rate: not pacing", self.noise * 100)
        self._restart()

    def _restart(self, *, at_refusal: bool = False) -> None:
        """Count afresh from the requests sent from now on (``at_refusal``: now the server just refused one)."""
        self.level, self.stamp = 0.0, time.monotonic()
        self._answers.clear()
        self._round = None
        self._forget(self._next_ticket)
        self._since_ticket, self._refused_since, self._answered_since = self._next_ticket, 0, 0
        self._since_at = self.stamp if at_refusal else None

    def _forget(self, below: int) -> None:
        """Drop the answers before ticket ``below``: no measurement can begin before it."""
        for ticket in range(self._floor, below):
            if self._outcome.pop(ticket, None) is not None:
                del self._sent_at[ticket]
                self._refused_at.pop(ticket, None)
        self._floor = max(self._floor, below)

    def _congested(self) -> bool:
        """Many refusals: 3 or more, and a quarter or more (beyond the usual share) of the last 32 answers, or
        of 16 while there are fewer, so that a few early ones do not count as many."""
        refusals = sum(refused for _, refused in self._answers)
        share = (_CONGESTED_SHARE + self.noise) * max(len(self._answers), _WINDOW // 2)
        return refusals >= _MIN_REFUSALS and refusals >= share

    def _describe(self) -> str:
        return f"at {self.rate * 60:.0f}/min" if self.rate else "no more"


def _slope(points: list[tuple[float, int]]) -> float:
    """The least-squares slope of ``count`` over ``moment``, once the refusals that came between the same two
    admissions are taken together (at their mean moment): the count is a staircase, and many refusals on one
    step would pull the line towards that step's level, not its middle."""
    steps: dict[int, list[float]] = {}
    for moment, count in points:
        steps.setdefault(count, []).append(moment)
    points = [(sum(moments) / len(moments), count) for count, moments in steps.items()]
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


class RateLimiter:
    """Holds each request until the limits you set and the server's allowance (announced or learnt) permit it."""

    def __init__(self, requests_per_minute: float | None = None, tokens_per_minute: float | None = None) -> None:
        self.requests = Bucket(requests_per_minute) if requests_per_minute else None
        self.tokens = Bucket(tokens_per_minute) if tokens_per_minute else None
        self.server = ServerLimit()
        self.learned = LearnedLimit()
        self._lock = asyncio.Lock()

    async def acquire(self, tokens: float = 0.0) -> int:
        """Wait until one request of about ``tokens`` tokens may be sent; its ticket for :meth:`observe`."""
        if self.requests is None and self.tokens is None and not self.server.known and self.learned.rate is None:
            return self._take()
        async with self._lock:
            while True:
                wait = max(
                    self._wait(self.requests, 1.0),
                    self._wait(self.tokens, tokens),
                    self.server.wait_time(),
                    self.learned.wait_time(),
                )
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            if self.requests:
                self.requests.take(1.0)
            if self.tokens:
                self.tokens.take(tokens)
            return self._take()

    def _take(self) -> int:
        ticket = self.server.take()
        self.learned.take(ticket)
        return ticket

    def observe(self, headers: Mapping[str, str] | None, ticket: int, status: int | None = 200) -> None:
        """Take in the answer to ``ticket``: its rate-limit headers and HTTP status (None: no answer came)."""
        reading = read_limit_headers(headers)
        self.server.observe(reading, ticket)
        if reading is None and not self.server.known:
            self.learned.observe(ticket, status)
        else:
            self.learned.discard(ticket)

    def refund(self, estimated: float, actual: float) -> None:
        """Correct the token bucket once the real usage of a request is known."""
        if self.tokens:
            self.tokens.level = min(self.tokens.capacity, self.tokens.level + estimated - actual)

    @staticmethod
    def _wait(bucket: Bucket | None, amount: float) -> float:
        return bucket.wait_time(amount) if bucket else 0.0
