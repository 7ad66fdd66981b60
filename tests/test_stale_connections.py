"""The project's nginx in front of an app whose kept-alive connections have all gone stale.

A worker that exits (recycled, crashed, replaced on reload) closes its idle kept-alive connections,
and nginx may send a request on one before it sees the close. It retries the request on the next
entry of the upstream block, each entry once; a uvicorn reload under load (test_faults) once met two
stale connections in a row, and with two entries the request got 502. These tests make every reused
connection stale, so that what the config survives is exact rather than a matter of timing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pyserve_template.baking import free_port

from .load import StaleUpstream
from .stack import Stack, is_listening, started
from .test_faults import in_background, wait_for
from .test_validators import NGINX, local_script

pytestmark = pytest.mark.e2e

# Twice what the reload met, plus one.
STALE_IN_A_ROW = 3


@pytest.fixture
def proxied(bake_to_run, tmp_path: Path) -> Iterator[tuple[Stack, StaleUpstream]]:
    """The baseline project's nginx config (as `make local` renders it) in front of a StaleUpstream."""
    project = bake_to_run()
    local = local_script(project)
    http_port = free_port()
    with StaleUpstream().running() as upstream:
        values = local.nginx_values({"HTTP_PORT": str(http_port), "APP_PORT": str(upstream.port)})
        config = local.write_nginx_config(tmp_path / "nginx", values)
        # One nginx worker, so that every request meets the same cache of kept-alive connections.
        with started(local.nginx_argv(NGINX, tmp_path / "nginx", config, "1"), tmp_path / "nginx.log"):
            wait_for(lambda: is_listening(http_port), 10, "nginx listening")
            yield Stack(project, http_port, upstream.port, tmp_path / "nginx.log"), upstream


def leave_stale_connections(stack: Stack, upstream: StaleUpstream, count: int) -> None:
    """`count` GETs at once: each gets a connection of its own, which nginx then keeps for reuse."""
    requests = [in_background(lambda: stack.get("/api/io")) for _ in range(count)]
    for thread, _ in requests:
        thread.join(timeout=10)
    assert [answered[0].status for _, answered in requests] == [200] * count, stack.proxy_errors()
    assert (upstream.connections, upstream.dropped) == (count, 0)


def test_a_get_is_retried_past_three_stale_connections_in_a_row(proxied: tuple[Stack, StaleUpstream]) -> None:
    stack, upstream = proxied
    leave_stale_connections(stack, upstream, STALE_IN_A_ROW)
    response = stack.get("/api/io")
    assert response.status == 200, stack.proxy_errors()
    # nginx did send it on each stale connection, and then on a new one.
    assert (upstream.dropped, upstream.connections) == (STALE_IN_A_ROW, STALE_IN_A_ROW + 1)


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_a_request_nginx_never_retries_never_meets_a_stale_connection(
    proxied: tuple[Stack, StaleUpstream], method: str
) -> None:
    stack, upstream = proxied
    leave_stale_connections(stack, upstream, STALE_IN_A_ROW)
    response = stack.request(method, "/api/io", body=b'{"sent": "once"}', headers={"Content-Type": "application/json"})
    assert response.status == 200, stack.proxy_errors()
    assert (upstream.dropped, upstream.connections) == (0, STALE_IN_A_ROW + 1)
