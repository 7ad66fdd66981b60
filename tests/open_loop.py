"""An open-loop load: requests sent on a clock, whatever comes back, as real users arrive.

Closed-loop tools (wrk, Locust, tests/load.py's SteadyLoad) send the next request when the last one
answers, so a slow server slows its own load and the queue never shows. Here each request goes out
at its own time on a new connection, and `Step.kept_clock` says whether the client managed that
(else a run would quietly turn closed-loop).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .load import REQUEST_TIMEOUT_S

# The client's own lateness it tolerates: requests sent within 5% of the offered rate.
CLOCK_TOLERANCE = 0.05


@dataclass(frozen=True)
class Sent:
    due: float  # time.monotonic() the clock set for it
    started: float
    ended: float
    status: int | None  # None: no answer (refused, reset, timed out)


@dataclass
class Step:
    """`rate` requests a second for `seconds`, and what came of them."""

    rate: float
    seconds: float
    began: float = 0.0  # time.monotonic()
    began_wall: float = 0.0  # time.time(), for a Prometheus range
    sent: list[Sent] = field(default_factory=list)

    @property
    def ended_wall(self) -> float:
        return self.began_wall + self.seconds

    def sent_rate(self) -> float:
        """Requests a second the client actually started: the last one's start bounds the step."""
        if not self.sent:
            return 0.0
        span = max(max(item.started for item in self.sent) - self.began, (len(self.sent) - 1) / self.rate)
        return (len(self.sent) - 1) / span if span > 0 else self.rate

    def kept_clock(self) -> bool:
        return self.rate == 0 or self.sent_rate() >= (1 - CLOCK_TOLERANCE) * self.rate

    def answered(self) -> list[Sent]:
        return [item for item in self.sent if item.status == 200]

    def p99_s(self) -> float | None:
        """The 99th percentile of the answered requests' latency (nearest rank), from when each was due."""
        latencies = sorted(item.ended - item.due for item in self.answered())
        return latencies[math.ceil(0.99 * len(latencies)) - 1] if latencies else None


async def _request(port: int, path: str, due: float) -> Sent:
    started = time.monotonic()
    status = None
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT_S):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
            status_line = await reader.readline()
            await reader.read()  # to the end: the response is complete when the server closes
            writer.close()
            status = int(status_line.split()[1])
    except (OSError, TimeoutError, ValueError, IndexError):
        pass
    return Sent(due, started, time.monotonic(), status)


async def _run(port: int, path: str, steps: list[Step], at_each_step: Callable[[int], None]) -> None:
    pending: list[asyncio.Task[Sent]] = []
    owner: list[Step] = []
    for index, step in enumerate(steps):
        at_each_step(index)
        step.began, step.began_wall = time.monotonic(), time.time()
        for number in range(round(step.rate * step.seconds)):
            due = step.began + number / step.rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            pending.append(asyncio.create_task(_request(port, path, due)))
            owner.append(step)
        await asyncio.sleep(max(0.0, step.began + step.seconds - time.monotonic()))
    at_each_step(len(steps))
    for step, sent in zip(owner, await asyncio.gather(*pending), strict=True):
        step.sent.append(sent)


def run_steps(
    port: int, path: str, steps: list[Step], at_each_step: Callable[[int], None] = lambda index: None
) -> None:
    """Send each step's requests on its clock, one after another; `at_each_step(i)` runs as step i
    begins (and with len(steps) after the last), for readings taken on the same boundaries."""
    asyncio.run(_run(port, path, steps, at_each_step))
