"""The end-to-end harness: a baked project's venv, and its stack started with `make local`, probed, stopped.

Every e2e test goes through `running_stack`, so they all start and stop a stack the same way a user
does, and all share the checks that nothing is left running or listening afterwards.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from pyserve_template import confine
from pyserve_template.baking import free_port

TEMPLATE_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 90
STOP_TIMEOUT = 40


# The line `make local CONFINE=1` prints with the cgroup it made (pyserve_runtime.local).
CONFINED_TO = re.compile(r"local: the app server runs confined to .*\(cgroup v\d: (.+)\)")


CGROUP_ROOT = Path("/sys/fs/cgroup")


def cgroup_reader(directories: list[Path]) -> confine.Confinement:
    """The runtime's reader of a cgroup's CPU time and OOM kills, for cgroup directories made by
    someone else (`make local CONFINE=1`, an engine): one directory on cgroup v2, one per
    controller's hierarchy on v1 (cpu, memory, cpuacct; a hierarchy may mount several)."""
    if len(directories) == 1 and (directories[0] / "cgroup.controllers").exists():
        return confine.Confinement(0, None, {"cpu": directories[0], "memory": directories[0]}, 2)
    hierarchy = {place: place.relative_to(CGROUP_ROOT).parts[0] for place in directories}
    by_controller = {name: place for place in directories for name in hierarchy[place].split(",")}
    return confine.Confinement(0, None, by_controller, 1)


def wait_for(condition: Callable[[], bool], seconds: float, what: str, seen: Callable[[], str] | None = None) -> float:
    """Poll until `condition` holds; return when (monotonic), or fail naming `what` (and what `seen`
    then finds, to tell a slow fault from a different one)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return time.monotonic()
        time.sleep(0.1)
    raise AssertionError(f"not within {seconds} s: {what}" + (f"; seen: {seen()}" if seen else ""))


def is_listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes
    seconds: float

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass
class Stack:
    project: Path
    http_port: int
    app_port: int
    log: Path
    server_pid: int = 0  # the app server's master: pyserve serve execs into it, it leads the group
    make: subprocess.Popen[bytes] | None = None  # `make local`, leader of its own process group

    def stop(self) -> None:
        """What Ctrl-C or `docker stop` does: SIGTERM to make's group (make and pyserve_runtime.local)."""
        assert self.make is not None
        os.killpg(self.make.pid, signal.SIGTERM)

    def plan(self) -> dict:
        """The plan the server started with: the JSON line pyserve serve logs."""
        for line in self.written_lines():
            if line.startswith("{") and '"workers"' in line:
                return json.loads(line)
        raise AssertionError(f"no plan line in the log:\n{self.output()[-4000:]}")

    def worker_pids(self) -> list[int]:
        """The processes that serve requests: the master's children (not multiprocessing's resource
        tracker), or the master itself where it has none."""
        workers = [pid for pid in children(self.server_pid) if not runs_beside_the_workers(pid)]
        return workers or [self.server_pid]

    def helper_pids(self) -> list[int]:
        """What runs beside the workers: the master and its resource tracker, if any."""
        workers = self.worker_pids()
        return [pid for pid in [self.server_pid, *children(self.server_pid)] if pid not in workers]

    def get(
        self, path: str, host: str = "localhost", headers: Mapping[str, str] | None = None, source: str = "127.0.0.1"
    ) -> Response:
        """One request through nginx, as a browser addressing `host` sends it, from the loopback address
        `source` (127.0.0.2 and the like stand for a load balancer in front of nginx)."""
        return self.request("GET", path, host=host, headers=headers, source=source)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        host: str = "localhost",
        headers: Mapping[str, str] | None = None,
        source: str = "127.0.0.1",
    ) -> Response:
        connection = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=30, source_address=(source, 0))
        started = time.monotonic()
        try:
            connection.request(method, path, body=body, headers={"Host": host, **(headers or {})})
            response = connection.getresponse()
            body = response.read()
            return Response(response.status, response.headers, body, time.monotonic() - started)
        finally:
            connection.close()

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def written_lines(self) -> list[str]:
        """The log's lines that are whole: a read may catch the last one while a process is still
        writing it (nginx and the app server write their access lines after the response)."""
        text = self.output()
        return text.splitlines() if text.endswith("\n") else text.splitlines()[:-1]

    def proxy_errors(self) -> str:
        """nginx's error lines: why a request failed (a reset connection, no upstream left to try)."""
        return "\n".join(line for line in self.output().splitlines() if " [error] " in line)


# The server's children that serve no requests: multiprocessing's resource tracker and the metrics
# endpoint (the generated project's pyserve_runtime.container_test says the same).
BESIDE_THE_WORKERS = ("resource_tracker", "pyserve_runtime.metrics_server")


def runs_beside_the_workers(pid: int) -> bool:
    return any(name in command_line(pid) for name in BESIDE_THE_WORKERS)


def children(parent: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            # the command name in field 2 may hold spaces and parentheses: split after the last ")"
            state, parent_pid = stat.read_text().rpartition(")")[2].split()[:2]
            if int(parent_pid) == parent and state != "Z":  # a recycled worker not yet reaped
                found.append(int(stat.parent.name))
    return sorted(found)


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def resident_memory(pid: int) -> int:
    """RSS in bytes, from /proc/PID/status (VmRSS, in kB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"process {pid} has no VmRSS")


def wait_for_ready(process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        text = log.read_text(encoding="utf-8", errors="replace")
        if "local: ready on" in text:
            return
        if process.poll() is not None:
            raise AssertionError(f"make local exited with {process.returncode}:\n{text[-6000:]}")
        time.sleep(0.2)
    raise AssertionError(f"make local was not ready in {START_TIMEOUT} s:\n{log.read_text()[-6000:]}")


def metric_samples(port: int) -> dict[str, float]:
    """A metrics endpoint's samples on 127.0.0.1:`port`, by name with labels: {'app_workers_alive': 2.0, ...}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        lines = response.read().decode().splitlines()
    return {name: float(value) for name, _, value in (line.rpartition(" ") for line in lines if line[:1] not in "#")}


def require_writable_cgroups(project: Path, venv: Path) -> None:
    """Skip unless `make local CONFINE=1` can make its cgroup here (root and a writable cgroup tree)."""
    check = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pyserve_runtime.confine", "--check"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    if check.returncode != 0:
        pytest.skip(f"no real cgroup test here: {check.stdout.strip() or check.stderr.strip()}")


@contextlib.contextmanager
def running_stack(
    project: Path,
    venv: Path,
    env: Mapping[str, str] | None = None,
    make_args: tuple[str, ...] = (),
    *,
    server_exits: bool = False,
) -> Iterator[Stack]:
    """`make local` (with `make_args`, e.g. CONFINE=1) on free ports with the venv's python first on
    PATH; stopped by SIGTERM to its group.

    On the way out it checks what a user's Ctrl-C relies on: make exits 0, the server group
    (.local/stack.pgid) is gone, and neither port is listening. Anything still alive is killed by
    process group and the test fails. With `server_exits`, the test expects the app server to exit
    by itself: then `make local` must say so and exit non-zero instead.
    """
    stack = Stack(project, free_port(), free_port(), project / "make-local.log")
    environment = {
        **os.environ,
        # Its own metrics port too: on the default one (9464), stacks running side by side would leave
        # all but one without a metrics endpoint, and its memory out of the check.
        "METRICS_PORT": str(free_port()),
        **(env or {}),
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "HTTP_PORT": str(stack.http_port),
        "APP_PORT": str(stack.app_port),
        "VIRTUAL_ENV": str(venv),
    }
    environment.pop("PYTHONPATH", None)
    stack.log.write_bytes(b"")
    # Append mode: nginx reopens /dev/stderr with an offset of its own, which would overwrite the log.
    with stack.log.open("ab") as log:
        process = subprocess.Popen(
            ["make", "local", f"PYSERVE={venv / 'bin' / 'pyserve'}", *make_args],
            cwd=project,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    servers: int | None = None
    try:
        wait_for_ready(process, stack.log)
        servers = int((project / ".local" / "stack.pgid").read_text())
        stack.server_pid = servers
        stack.make = process
        yield stack
    finally:
        leftovers = stop_stack(process, servers)
        listening = [port for port in (stack.http_port, stack.app_port) if is_listening(port)]
    assert not leftovers, f"still running after stop: {leftovers}\n{stack.output()[-4000:]}"
    assert not listening, f"still listening after stop: {listening}"
    if server_exits:
        assert process.returncode not in {0, -signal.SIGTERM}, "make local reported success"
        assert "a server exited on its own; stopped both" in stack.output(), stack.output()[-4000:]
        return
    # make itself dies of the SIGTERM it was sent (-15); pyserve_runtime.local says whether the stack stopped cleanly.
    assert process.returncode in {0, -signal.SIGTERM}, f"make local exited {process.returncode}"
    assert stack.output().rstrip().endswith("local: stopped"), stack.output()[-4000:]


@contextlib.contextmanager
def started(
    command: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A process in a group of its own, stopped by that group (SIGTERM, then SIGKILL)."""
    log.write_bytes(b"")
    with log.open("ab") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True
        )
    try:
        yield process
    finally:
        stop_group(process)


def stop_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def stop_stack(process: subprocess.Popen[bytes], servers: int | None) -> list[str]:
    """SIGTERM to make's group (make, local.py); return which process groups had to be killed."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_TIMEOUT)
    leftovers = []
    for name, group in (("make local", process.pid), ("app server and nginx", servers)):
        if group is None:
            continue
        deadline = time.monotonic() + 5
        while group_alive(group) and time.monotonic() < deadline:
            time.sleep(0.1)
        if group_alive(group):
            leftovers.append(name)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
    process.wait(timeout=10)
    return leftovers
