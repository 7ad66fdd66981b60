"""A starter load test: people using {{ cookiecutter.project_name }} with a browser.

Each simulated user
- waits 3 to 5 s between actions (--think-time), as a person reads before clicking: N users make
  about N/4 requests a second, so size N from your real concurrent users, not from requests per
  second. `make tune` sets --think-time 0: every user then asks again at once, to find capacity;
- opens the page {%- if cookiecutter.static_strategy != "none" %} and fetches the stylesheets, scripts and images it references the first time
  only, as a browser with a cache does; page views outweigh API calls{% else %}; page views outweigh API calls{% endif %};
- calls /api/io, which stands for a request that waits on a database.

The run exits non-zero when the failure ratio or the 95th percentile passes its threshold
(--max-fail-ratio, --max-p95-ms; their defaults are in locust.conf). Replace the tasks with your
own app's paths: `make loadtest` runs whatever is here.
"""

from __future__ import annotations

import random
import re
from urllib.parse import urlsplit

from locust import FastHttpUser, events, task

# The page's own assets: what a browser fetches after the HTML.
ASSET = re.compile(r'(?:href|src)="([^"]+\.(?:css|js|mjs|svg|png|jpe?g|gif|webp|ico|woff2?))"')


@events.init_command_line_parser.add_listener
def add_thresholds(parser) -> None:
    # env_var: LOCUST_* variables set these as they set Locust's own options.
    parser.add_argument(
        "--max-fail-ratio",
        type=float,
        default=0.01,
        env_var="LOCUST_MAX_FAIL_RATIO",
        help="fail the run above this failure ratio",
    )
    parser.add_argument(
        "--max-p95-ms", type=float, default=1000, env_var="LOCUST_MAX_P95_MS", help="fail the run above this p95 (ms)"
    )
    parser.add_argument(
        "--think-time",
        default="3-5",
        env_var="LOCUST_THINK_TIME",
        help="seconds each user waits between actions: 3-5, 1 or 0",
    )


def think_time(text: str) -> tuple[float, float]:
    low, _, high = text.partition("-")
    return float(low), float(high or low)


@events.quitting.add_listener
def apply_thresholds(environment, **kwargs) -> None:
    total = environment.stats.total
    options = environment.parsed_options
    p95 = total.get_response_time_percentile(0.95) or 0
    problems = []
    if total.fail_ratio > options.max_fail_ratio:
        problems.append(f"failure ratio {total.fail_ratio:.2%} > {options.max_fail_ratio:.2%}")
    if p95 > options.max_p95_ms:
        problems.append(f"p95 {p95:.0f} ms > {options.max_p95_ms:.0f} ms")
    if total.num_requests == 0:
        problems.append("no request was made")
    if problems:
        print("loadtest: FAILED: " + "; ".join(problems))
        environment.process_exit_code = 1
    else:
        print(f"loadtest: passed: {total.num_requests} requests, p95 {p95:.0f} ms, failures {total.fail_ratio:.2%}")


class Visitor(FastHttpUser):
    def wait_time(self) -> float:
        return random.uniform(*think_time(self.environment.parsed_options.think_time))

    def on_start(self) -> None:
        self.cached: set[str] = set()
        self.view_page()  # people arrive on the page

    @task(6)
    def view_page(self) -> None:
        with self.client.get("/", name="/", catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"status {response.status_code}")
                return
            page = response.text or ""
        for url in ASSET.findall(page):
            if urlsplit(url).netloc:  # on a CDN: not this service's load
                continue
            if url not in self.cached:
                self.client.get(url, name="static asset (first visit)")
                self.cached.add(url)

    @task(3)
    def api_io(self) -> None:
        self.client.get("/api/io?ms=100", name="/api/io")

    @task(1)
    def healthz(self) -> None:
        self.client.get("/healthz", name="/healthz")
