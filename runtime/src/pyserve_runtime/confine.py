"""A cgroup with the container's CPU quota and memory limit, for running the app server on a host
as it runs in its container: `make local CONFINE=1` and `make tune` use it.

It needs a writable cgroup tree: root on a cgroup v1 host, or on cgroup v2 root or a delegated
subtree (systemd-run --user --scope -p Delegate=yes). Where there is none, `Confinement.create`
raises CannotConfine with the reason, and the caller says what it ran under instead.

The cgroup is made next to this process's own (a child in v1, a sibling in v2, where a cgroup
with processes in it may not have children with controllers) and removed by `remove()`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from pathlib import Path

from .tuning import machine
from .values import MIB, format_memory

PERIOD_US = 100_000  # the kernel's default CFS period: the quota is cpus x this, per period


class CannotConfine(RuntimeError):
    """No cgroup could be made here; the message says why."""


class Confinement:
    def __init__(self, cpus: float, memory_bytes: int | None, directories: dict[str, Path], version: int) -> None:
        self.cpus, self.memory_bytes, self.directories, self.version = cpus, memory_bytes, directories, version

    @classmethod
    def create(cls, cpus: float, memory_bytes: int | None, name: str | None = None) -> Confinement:
        name = name or f"pyserve-{os.getpid()}"
        own = machine.cgroups_of_this_process(controllers=(*machine.CONTROLLERS, machine.ACCOUNTING))
        if "cpu" not in own or "memory" not in own:
            raise CannotConfine("no cpu or memory cgroup controller is mounted here")
        quota = str(max(1000, round(cpus * PERIOD_US)))  # the kernel's smallest quota is 1 ms
        if own["cpu"].version == 1 and own["memory"].version == 1:
            directories = {"cpu": own["cpu"].directory / name, "memory": own["memory"].directory / name}
            if machine.ACCOUNTING in own and own[machine.ACCOUNTING].version == 1:  # CPU time, where v1 counts it
                directories[machine.ACCOUNTING] = own[machine.ACCOUNTING].directory / name
            settings = [
                ("cpu", "cpu.cfs_period_us", str(PERIOD_US)),
                ("cpu", "cpu.cfs_quota_us", quota),
            ]
            if memory_bytes:
                settings.append(("memory", "memory.limit_in_bytes", str(memory_bytes)))
            version = 1
        else:
            parent = own["cpu"].directory.parent if own["cpu"].directory != own["cpu"].top else own["cpu"].top
            directories = {"cpu": parent / name, "memory": parent / name}
            settings = [("cpu", "cpu.max", f"{quota} {PERIOD_US}")]
            if memory_bytes:
                settings += [("memory", "memory.max", str(memory_bytes)), ("memory", "memory.swap.max", "0")]
            version = 2
        confinement = cls(cpus, memory_bytes, directories, version)
        try:
            if version == 2:  # let the new cgroup have the controllers (the parent may have done so already)
                (parent / "cgroup.subtree_control").write_text("+cpu +memory")
            for directory in set(directories.values()):
                directory.mkdir()
            for controller, filename, value in settings:
                (directories[controller] / filename).write_text(value)
        except OSError as error:
            confinement.remove()
            raise CannotConfine(f"cannot make a cgroup in {directories['cpu'].parent}: {error.strerror}") from None
        return confinement

    def describe(self) -> str:
        memory = format_memory(self.memory_bytes)
        places = ", ".join(sorted({str(path) for path in self.directories.values()}))
        return f"{self.cpus:g} CPU, {memory} (cgroup v{self.version}: {places})"

    def enter(self) -> None:
        """Move the calling process in; its children follow. Use as Popen(preexec_fn=...)."""
        for directory in set(self.directories.values()):
            (directory / "cgroup.procs").write_text(str(os.getpid()))

    def pids(self) -> list[int]:
        text = _read(self.directories["memory"] / "cgroup.procs")
        return [int(pid) for pid in text.split()]

    def oom_kills(self) -> int:
        """Processes the kernel killed for passing the memory limit."""
        name = "memory.oom_control" if self.version == 1 else "memory.events"
        for line in _read(self.directories["memory"] / name).splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def cpu_seconds(self) -> float | None:
        """CPU time the cgroup's processes have used so far (user and system), if the kernel counts it."""
        if self.version == 2:
            for line in _read(self.directories["cpu"] / "cpu.stat").splitlines():
                key, _, value = line.partition(" ")
                if key == "usage_usec":
                    return int(value) / 1e6
            return None
        if machine.ACCOUNTING not in self.directories:
            return None
        text = _read(self.directories[machine.ACCOUNTING] / "cpuacct.usage")  # nanoseconds
        return int(text) / 1e9 if text.isdigit() else None

    def peak_memory(self) -> int | None:
        """The most memory the cgroup used (page cache included), if the kernel keeps count."""
        name = "memory.max_usage_in_bytes" if self.version == 1 else "memory.peak"
        text = _read(self.directories["memory"] / name)
        return int(text) if text.isdigit() else None

    def usage(self) -> str:
        """Peak memory against the limit and OOM kills, as one line: what `make tune` reads."""
        peak = self.peak_memory()
        shown = "unknown" if peak is None else format_memory(peak)
        return f"peak memory {shown} of {format_memory(self.memory_bytes)}, OOM kills {self.oom_kills()}"

    def remove(self, timeout: float = 10) -> None:
        """Kill what is still inside (by PID, from cgroup.procs), then remove the cgroup."""
        deadline = time.monotonic() + timeout
        for directory in set(self.directories.values()):
            while directory.exists():
                for pid in [int(pid) for pid in _read(directory / "cgroup.procs").split()]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                try:
                    directory.rmdir()
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Whether a cgroup can be made here for the app server.")
    parser.add_argument("--check", action="store_true", help="make and remove a test cgroup; say why not")
    parser.parse_args(argv)
    try:
        Confinement.create(1, 64 * MIB, f"pyserve-check-{os.getpid()}").remove()
    except CannotConfine as error:
        print(f"confine: {error}")
        return 1
    print("confine: cgroups are writable here")
    return 0


if __name__ == "__main__":
    sys.exit(main())
