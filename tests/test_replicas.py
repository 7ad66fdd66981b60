"""`docker compose up --scale app=N`, without Docker: nginx, rendered with compose's settings, finds
the app's replicas through DNS as they come and go, and spreads requests over them.

The pieces are real: the project's nginx config (APP_TARGET "app:PORT", as compose sets it), nginx,
app servers started by `pyserve serve` on 127.0.0.2 and 127.0.0.3 (two "containers" on one port),
and dnsmasq on 127.0.0.1 answering for "app" as Docker's DNS does, from a hosts file it re-reads
on SIGHUP.
"""

from __future__ import annotations

import collections
import contextlib
import getpass
import os
import re
import shutil
import signal
import time
from pathlib import Path

import pytest

from pyserve_template import settings
from pyserve_template.baking import free_port, project_venv

from .stack import Stack, started, stop_group, wait_for
from .test_validators import NGINX, local_script

pytestmark = pytest.mark.e2e

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
REPLICAS = ("127.0.0.2", "127.0.0.3")
UPSTREAM = re.compile(r'"GET /healthz\?n=\d+ HTTP/1.1" (\d+) .* ua=([\d.:, ]+) "')


def answers_healthz(address: str, port: int) -> bool:
    import http.client

    try:
        connection = http.client.HTTPConnection(address, port, timeout=2)
        connection.request("GET", "/healthz")
        return connection.getresponse().status == 200
    except OSError:
        return False


def served_by(stack: Stack, count: int) -> collections.Counter[str]:
    """`count` requests through nginx; which replica answered each, from nginx's log ($upstream_addr
    lists every replica tried, the one that answered last)."""
    tag = time.monotonic_ns()
    for number in range(count):
        assert stack.get(f"/healthz?n={tag + number}").status == 200
    time.sleep(0.3)  # nginx writes the log line after the response
    wanted = {str(tag + number) for number in range(count)}
    found: collections.Counter[str] = collections.Counter()
    for line in stack.written_lines():
        match = UPSTREAM.search(line)
        if match and re.search(r"n=(\d+)", line).group(1) in wanted:
            found[match.group(2).split(",")[-1].strip().split(":")[0]] += 1
    assert sum(found.values()) == count, stack.output()[-3000:]
    return found


def test_nginx_follows_the_replicas_through_dns(bake_to_run, tmp_path: Path) -> None:
    project = bake_to_run()
    venv = project_venv(project)
    app_port, http_port, dns_port = free_port(), free_port(), free_port()
    hosts = tmp_path / "hosts"
    hosts.write_text(f"{REPLICAS[0]} app\n")
    hosts.chmod(0o644)
    dns = [DNSMASQ, "--keep-in-foreground", "--no-resolv", "--no-hosts", f"--addn-hosts={hosts}",
           "--listen-address=127.0.0.1", "--bind-interfaces", f"--port={dns_port}", "--pid-file=",
           f"--user={getpass.getuser()}", "--log-facility=-"]  # fmt: skip
    local = local_script(project)
    values = {
        **local.nginx_values({"HTTP_PORT": str(http_port), "APP_PORT": str(app_port)}),
        # As compose.yaml sets them for its nginx service.
        "APP_UPSTREAM": f"{REPLICAS[0]}:{app_port}",
        "APP_TARGET": f"app:{app_port}",
        "RESOLVER": f"127.0.0.1:{dns_port}",
    }
    config = local.write_nginx_config(tmp_path / "nginx", values)
    app_env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    app_env.pop("PYTHONPATH", None)
    serve = [str(venv / "bin" / "pyserve"), *local.SERVE]

    with contextlib.ExitStack() as running:
        dnsmasq = running.enter_context(started(dns, tmp_path / "dnsmasq.log"))
        replicas = {
            address: running.enter_context(
                # Each replica's run-time files its own, as each container's /tmp is.
                started(
                    serve,
                    tmp_path / f"app-{address}.log",
                    {**app_env, "BIND": f"{address}:{app_port}", "RUNTIME_DIR": str(tmp_path / f"app-{address}")},
                    project,
                )
            )
            for address in REPLICAS
        }
        for address in REPLICAS:
            wait_for(lambda address=address: answers_healthz(address, app_port), 60, f"the replica on {address}")
        nginx = local.nginx_argv(NGINX, tmp_path / "nginx", config)
        running.enter_context(started(nginx, tmp_path / "nginx.log"))
        stack = Stack(project, http_port, app_port, tmp_path / "nginx.log")
        wait_for(lambda: answers_healthz("127.0.0.1", http_port), 60, "nginx")

        # One replica in DNS: every request goes there, though another one listens.
        assert served_by(stack, 20) == {REPLICAS[0]: 20}

        # Scaled to two: once nginx's cached answer expires, requests are spread over both.
        hosts.write_text("".join(f"{address} app\n" for address in REPLICAS))
        dnsmasq.send_signal(signal.SIGHUP)
        time.sleep(settings.NGINX_DNS_VALID_S + 1)
        spread = served_by(stack, 40)
        assert set(spread) == set(REPLICAS) and min(spread.values()) >= 10, spread

        # The first replica goes away before DNS says so: nginx retries the other, nothing fails.
        stop_group(replicas[REPLICAS[0]])
        assert served_by(stack, 20) == {REPLICAS[1]: 20}
        hosts.write_text(f"{REPLICAS[1]} app\n")
        dnsmasq.send_signal(signal.SIGHUP)
        time.sleep(settings.NGINX_DNS_VALID_S + 1)
        assert served_by(stack, 20) == {REPLICAS[1]: 20}
