"""A real Prometheus (Debian's package) on 127.0.0.1, scraping the targets a test names every second,
with its storage in a temporary directory; stopped by PID."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from pyserve_template.baking import free_port

from .stack import wait_for

SCRAPE_INTERVAL_S = 1


@dataclass(frozen=True)
class Autoscaler:
    """The generated ScaledObject's target and triggers (deploy/k8s/scaledobject.yaml)."""

    deployment: str
    query: str
    threshold: float
    cpu_percent: float

    @classmethod
    def of(cls, project: Path) -> Autoscaler:
        [scaled] = yaml.safe_load_all((project / "deploy" / "k8s" / "scaledobject.yaml").read_text())
        triggers = {trigger["type"]: trigger["metadata"] for trigger in scaled["spec"]["triggers"]}
        return cls(
            scaled["spec"]["scaleTargetRef"]["name"],
            triggers["prometheus"]["query"],
            float(triggers["prometheus"]["threshold"]),
            float(triggers["cpu"]["value"]),
        )


def pod_labels(deployment: str, number: int = 0) -> dict[str, str]:
    """The labels a Kubernetes scrape gives a Deployment's pod (its ReplicaSet's hash and a suffix of
    its own), so that the ScaledObject's pod=~"<name>-..." matcher finds it."""
    return {"pod": f"{deployment}-5d8f7c9b4-x7k2{number}", "namespace": "default"}


@dataclass(frozen=True)
class Prometheus:
    port: int

    def api(self, endpoint: str, **params: str) -> dict:
        url = f"http://127.0.0.1:{self.port}/api/v1/{endpoint}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as response:
            answer = json.load(response)
        assert answer["status"] == "success", answer
        return answer["data"]

    def series_range(self, query: str, start: float, end: float) -> list[dict]:
        """Each series of the query evaluated every scrape interval from `start` to `end` (wall-clock
        seconds): {"metric": its labels, "values": [[time, "value"], ...]}."""
        data = self.api("query_range", query=query, start=f"{start:.3f}", end=f"{end:.3f}", step=f"{SCRAPE_INTERVAL_S}")
        return data["result"]

    def query_range(self, query: str, start: float, end: float) -> list[tuple[float, float]]:
        """A query of one series (a sum, say): its values from `start` to `end`."""
        [series] = self.series_range(query, start, end) or [{"values": []}]
        return [(float(at), float(value)) for at, value in series["values"]]

    def targets_up(self) -> bool:
        try:
            active = self.api("targets")["activeTargets"]
        except OSError:  # not listening yet
            return False
        return bool(active) and all(target["health"] == "up" for target in active)


def config(targets: Mapping[str, Mapping[str, str]]) -> str:
    """One job scraping each `host:port` with its labels (a pod's, as a Kubernetes scrape would set them)."""
    static = [{"targets": [target], "labels": dict(labels)} for target, labels in targets.items()]
    return yaml.safe_dump(
        {
            "global": {"scrape_interval": f"{SCRAPE_INTERVAL_S}s", "evaluation_interval": f"{SCRAPE_INTERVAL_S}s"},
            "scrape_configs": [{"job_name": "app", "static_configs": static}],
        }
    )


@contextlib.contextmanager
def running_prometheus(targets: Mapping[str, Mapping[str, str]], directory: Path) -> Iterator[Prometheus]:
    binary = shutil.which("prometheus")
    assert binary, "prometheus is not installed (./run-tests installs Debian's)"
    (directory / "prometheus.yml").write_text(config(targets))
    prometheus = Prometheus(free_port())
    command = [
        binary,
        f"--config.file={directory / 'prometheus.yml'}",
        f"--storage.tsdb.path={directory / 'data'}",
        f"--web.listen-address=127.0.0.1:{prometheus.port}",
    ]
    log = directory / "prometheus.log"
    with log.open("ab") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_for(prometheus.targets_up, 30, "Prometheus scraping its targets", seen=lambda: log.read_text()[-2000:])
        yield prometheus
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
