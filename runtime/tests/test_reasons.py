"""`pyserve deploy` says why in one line: the line of a failed step's output that does."""

from __future__ import annotations

import pytest

from pyserve_runtime.reasons import last_line

NGINX_REFUSAL = (
    "nginx-start: worker_processes 1\n"
    '2026/12/06 16:38:05 [emerg] 39#39: invalid number of arguments in "limit_req_zone" directive\n'
    "nginx: configuration file /var/cache/nginx/nginx.conf test failed\n"
)
JSON_STEP = (
    '{"level": "info", "logger": "pyserve.migrate", "message": "waiting for the lock"}\n'
    '{"level": "error", "logger": "pyserve.migrate", "message": "migration 0002 failed (yoyo): no table"}\n'
)


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        (NGINX_REFUSAL, '2026/12/06 16:38:05 [emerg] 39#39: invalid number of arguments in "limit_req_zone" directive'),
        (JSON_STEP, "migration 0002 failed (yoyo): no table"),
        (
            "migration 0002 failed (yoyo): no table; the release stops here\n\n",
            "migration 0002 failed (yoyo): no table; the release stops here",
        ),
        ("[1, 2]\n", "[1, 2]"),
        ("", "(no output)"),
    ],
    ids=[
        "nginx's emerg, not its last line",
        "a JSON log line's message",
        "a text line",
        "JSON that is no log line",
        "nothing",
    ],
)
def test_the_reason_is_the_line_that_says_why(output: str, reason: str) -> None:
    assert last_line(output) == reason
