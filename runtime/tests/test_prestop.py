"""The app's preStop hook returns once nginx's port stops listening, and not before."""

from __future__ import annotations

import socket
import threading

from pyserve_runtime import prestop

LISTENING_S = 1.5


def test_the_hook_returns_once_the_port_stops_listening() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    closing = threading.Timer(LISTENING_S, listener.close)
    closing.start()
    try:
        waited = prestop.wait_for_nginx_to_stop_listening(port, sleep_s=0, most_s=30)
    finally:
        closing.cancel()
        listener.close()
    assert LISTENING_S - prestop.POLL_S <= waited < LISTENING_S + 2 * prestop.POLL_S + 1


def test_with_nothing_listening_it_returns_after_its_sleep() -> None:
    with socket.socket() as unbound:
        unbound.bind(("127.0.0.1", 0))
        port = unbound.getsockname()[1]
    assert prestop.wait_for_nginx_to_stop_listening(port, sleep_s=0, most_s=30) < prestop.POLL_S
