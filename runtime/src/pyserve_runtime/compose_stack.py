"""A compose project on a real engine, as `make container-test` drives it: built, started and
waited on until healthy, asked through nginx, inspected, and taken down leaving nothing.

Stdlib only, like container_test.py, whose checks run against it.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from .settings import PROJECT, project

UP_TIMEOUT = 300
# compose.yaml's healthchecks at this interval (unless HEALTHCHECK_INTERVAL is set): `up --wait` then
# waits seconds for the app, then nginx, to pass their first check rather than two 10 s intervals.
HEALTHCHECK_INTERVAL = "2s"
SERVICES = ("app", "nginx") if project().database == "none" else ("app", "nginx", "db")
# The one-shot release step, which compose starts before the app (its dependency) and `up --wait`
# is not asked to wait for: it exits.
RELEASE_STEP = () if project().database == "none" else ("migrate",)
# nginx over plain HTTP on HTTP_PORT, with no ACME client: what is checked here is the stack behind
# it, the same with TLS on (pyserve-template's own tests prove the TLS edge, with a real ACME CA).
ENVIRONMENT = {"HEALTHCHECK_INTERVAL": HEALTHCHECK_INTERVAL, "TLS": "none"}


class CheckFailed(Exception):
    pass


def check(condition: object, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


@dataclass
class Response:
    status: int
    headers: Message  # looked up case-insensitively: servers differ in how they spell header names
    body: bytes
    seconds: float


@dataclass
class ComposeStack:
    """One compose project: `compose` and `docker` commands, its name and the port nginx listens on
    (None: compose.yaml's, the user's HTTP_PORT). `defaults` stand where the environment is silent."""

    compose: list[str]
    docker: list[str]
    name: str
    http_port: int | None
    env: dict[str, str] = field(default_factory=dict)
    defaults: dict[str, str] = field(default_factory=lambda: dict(ENVIRONMENT))

    @property
    def port(self) -> int:
        """The port this stack's nginx was published on, to be asked through."""
        if self.http_port is None:
            raise CheckFailed(f"{self.name}: published on compose.yaml's port, not one of its own")
        return self.http_port

    def run(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        environment = {**self.defaults, **os.environ}
        if self.http_port is not None:
            environment["HTTP_PORT"] = str(self.http_port)
        environment |= self.env
        command = [*self.compose, "--project-name", self.name, *args]
        result = subprocess.run(command, cwd=PROJECT, env=environment, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise CheckFailed(f"{shlex.join(command)} exited {result.returncode}:\n{result.stdout}{result.stderr}")
        return result

    def docker_run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        environment = {**os.environ, **self.env}
        return subprocess.run([*self.docker, *args], env=environment, capture_output=True, text=True, timeout=timeout)

    def inspect(self, target: str) -> dict[str, Any]:
        """What the engine knows of a container or an image (`docker inspect`)."""
        result = self.docker_run("inspect", target)
        check(result.returncode == 0, f"docker inspect {target}: {result.stderr}")
        inspected: dict[str, Any] = json.loads(result.stdout)[0]
        return inspected

    def image(self, service: str) -> str:
        return str(self.inspect(self.container(service))["Image"])

    def containers(self, service: str) -> list[str]:
        found = self.run("ps", "-q", service).stdout.split()
        if not found:
            every = self.run("ps", "--all", check=False)
            raise CheckFailed(f"no {service} container is running; the project's containers:\n{every.stdout}")
        return found

    def container(self, service: str) -> str:
        return self.containers(service)[0]

    def exec(self, service: str, *command: str) -> subprocess.CompletedProcess[str]:
        """`docker exec`, not `compose exec`: some Compose versions exit 0 whatever the command returned."""
        return self.docker_run("exec", self.container(service), *command)

    def logs(self, service: str) -> str:
        result = self.run("logs", "--no-color", "--no-log-prefix", service)
        return result.stdout + result.stderr

    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = json.loads(self.run("config", "--format", "json").stdout)
        return config

    def get(
        self, path: str, headers: dict[str, str] | None = None, timeout: float = 30, data: bytes | None = None
    ) -> Response:
        """One request through nginx, as a browser addressing localhost sends it (a POST with `data`)."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", headers={"Host": "localhost", **(headers or {})}, data=data
        )
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return Response(response.status, response.headers, response.read(), time.monotonic() - started)
        except urllib.error.HTTPError as error:
            return Response(error.code, error.headers, error.read(), time.monotonic() - started)

    def up(self, *options: str, services: tuple[str, ...] = SERVICES) -> None:
        """`up --wait` of `services` (with `options`, e.g. --scale app=3), then each container healthy."""
        wait = ("--detach", "--wait", "--wait-timeout", str(UP_TIMEOUT))
        self.run("up", *wait, *options, *services, timeout=UP_TIMEOUT + 60)
        # Some Compose versions print "is unhealthy" and still exit 0: ask the engine itself.
        for service in services:
            for container in self.containers(service):
                health = self.inspect(container)["State"].get("Health", {}).get("Status")
                check(health == "healthy", f"{service} {container[:12]} is {health}")

    def leftovers(self) -> list[str]:
        label = f"label=com.docker.compose.project={self.name}"
        found = []
        for kind, listing in (("container", ["ps", "-a", "-q"]), ("network", ["network", "ls", "-q"])):
            found += [f"{kind} {line}" for line in self.docker_run(*listing, "--filter", label).stdout.split()]
        found += [f"volume {line}" for line in self.docker_run("volume", "ls", "-q", "--filter", label).stdout.split()]
        return found

    def down(self, remove_images: bool) -> None:
        self.run("down", "--volumes", "--remove-orphans", *(["--rmi", "local"] if remove_images else []), check=False)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
