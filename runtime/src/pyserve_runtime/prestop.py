"""`pyserve prestop`: the app container's preStop hook in a Kubernetes pod, which orders the drain.

The kubelet runs each container's preStop hook, then sends the container SIGTERM. Both containers'
hooks first wait PRESTOP_S while the pod leaves the Service's endpoints. nginx's then quits
gracefully: it stops listening at once and finishes what it holds. The app's (this one) returns
only once nginx has stopped listening, so the app server's graceful stop comes after nginx took its
last request: every request nginx accepted still finds the app, and each WebSocket's 1001 close,
sent by the app on SIGTERM, still passes through nginx, which then exits as its connections end.
https://kubernetes.io/docs/concepts/containers/container-lifecycle-hooks/
"""

from __future__ import annotations

import argparse
import socket
import time

from .settings import PRESTOP_S, STOP_GRACE_PERIOD_S

POLL_S = 0.5


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=POLL_S):
            return True
    except OSError:
        return False


def wait_for_nginx_to_stop_listening(port: int, sleep_s: float, most_s: float) -> float:
    """Sleep `sleep_s`, then until nothing listens on `port` of the pod's loopback, for `most_s` at
    most (the kubelet's own bound is the grace period). Returns the seconds waited after the sleep."""
    time.sleep(sleep_s)
    started = time.monotonic()
    while listening(port) and time.monotonic() - started < most_s:
        time.sleep(POLL_S)
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The app's preStop hook: return once nginx has stopped listening.")
    parser.add_argument("--nginx-port", type=int, required=True, help="the port nginx listens on in the pod")
    parser.add_argument("--sleep", type=float, default=PRESTOP_S, help=f"seconds before (default {PRESTOP_S})")
    args = parser.parse_args(argv)
    waited = wait_for_nginx_to_stop_listening(args.nginx_port, args.sleep, STOP_GRACE_PERIOD_S)
    print(f"prestop: nginx stopped listening {waited:.1f} s after the {args.sleep:g} s sleep", flush=True)
    return 0
