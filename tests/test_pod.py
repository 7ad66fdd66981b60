"""The generated Deployment as a pod, played by podman (`podman kube play`, podman 4.3 here): both
containers in one pod, nginx reaching the app on 127.0.0.1, with the manifest's securityContext,
read-only roots, env and limits, the plan line showing the limits passed in; and exactly what
podman 4.3 does differently from Kubernetes, as the generated README says.

podman 4.3 publishes every containerPort on all of the host's addresses, so the pod is played from
a network namespace of the test's own: what it publishes stays there. Every request is made inside
the pod, on its loopback.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from pyserve_template import settings, values

from .conftest import bake_with
from .containers import access_lines
from .engine import PodmanEngine, base_images, run
from .kustomize import with_component
from .stack import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.container]

READY_S = 90


class Pod:
    """The played Deployment's first pod: its containers are `<pod>-app` and `<pod>-nginx`."""

    def __init__(self, engine: PodmanEngine, netns: str, manifest: Path) -> None:
        self.engine, self.netns, self.manifest = engine, netns, manifest
        self.deployment = yaml.safe_load(manifest.read_text())
        self.name = f"{self.deployment['metadata']['name']}-pod-0"

    def podman(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """podman inside the test's network namespace (nsenter: the mounts stay the host's)."""
        # Without DOCKER_CONFIG, which podman would read for registry logins (the docker CLI's has none).
        env = {name: value for name, value in self.engine.env.items() if name != "DOCKER_CONFIG"}
        result = run(["nsenter", f"--net=/run/netns/{self.netns}", *self.engine.podman, *args], env)
        assert result.returncode == 0 or not check, f"podman {' '.join(args)}: {result.stderr}"
        return result

    def exec(self, container: str, *command: str) -> subprocess.CompletedProcess:
        return self.podman("exec", f"{self.name}-{container}", *command, check=False)

    def inspect(self, name: str) -> dict:
        return json.loads(self.podman("inspect", name).stdout)[0]

    def container(self, name: str) -> dict:
        return self.inspect(f"{self.name}-{name}")

    def spec(self, name: str) -> dict:
        [container] = [c for c in self.deployment["spec"]["template"]["spec"]["containers"] if c["name"] == name]
        return container

    def get(self, path: str, host: str = "localhost") -> str:
        """A request to nginx from inside the pod (busybox wget); its status line and body."""
        result = self.exec("nginx", "wget", "-S", "-q", "-O", "-", f"http://{host}:8080{path}")
        return result.stderr + result.stdout

    def ready(self) -> bool:
        """What the readiness probes ask: the app's healthcheck, and nginx's /nginx-health by the pod's
        address (the kubelet's Host), not by a server name."""
        app = self.exec("app", "pyserve", "healthcheck").returncode == 0
        return app and " 200 " in self.get("/nginx-health", host="127.0.0.1")

    def plan(self) -> dict:
        logs = self.podman("logs", f"{self.name}-app")
        lines = [line for line in (logs.stdout + logs.stderr).splitlines() if line.startswith('{"cpus"')]
        return json.loads(lines[-1])


@contextlib.contextmanager
def network_namespace(name: str) -> Iterator[str]:
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


def documented_builds(manifest: Path) -> list[list[str]]:
    """The image builds the manifest's header tells its reader to run."""
    lines = manifest.read_text().splitlines()
    return [shlex.split(line.lstrip("# ")) for line in lines if line.lstrip("# ").startswith("docker build ")]


@contextlib.contextmanager
def played(podman: PodmanEngine, manifest: Path, network: str) -> Iterator[Pod]:
    """The manifest's Deployment played in a network namespace and a network named `network`, ready."""
    with network_namespace(network) as netns:
        pod = Pod(podman, netns, manifest)
        pod.podman("network", "create", network)
        try:
            # --start=false: podman 4.3 makes a pod per replica, all publishing the same ports; one starts.
            pod.podman("kube", "play", "--network", network, "--start=false", str(manifest))
            pod.podman("pod", "start", pod.name)
            wait_for(pod.ready, READY_S, "the pod's app and nginx ready")
            yield pod
        finally:
            pod.podman("kube", "down", str(manifest), check=False)
            pod.podman("network", "rm", "--force", network, check=False)


@pytest.fixture(scope="module")
def project(cookies_session, podman: PodmanEngine) -> Path:
    """A Kubernetes project with its images built as the manifest's header says."""
    project = bake_with(cookies_session, {"use_kubernetes": "yes"})
    podman.ensure_images(base_images(project / "Dockerfile"))
    for build in documented_builds(project / "deploy" / "k8s" / "deployment.yaml"):
        built = subprocess.run(build, cwd=project, env=podman.env, capture_output=True, text=True, timeout=900)
        assert built.returncode == 0, built.stderr[-3000:]
    return project


@pytest.fixture(scope="module")
def pod(project: Path, podman: PodmanEngine) -> Iterator[Pod]:
    with played(podman, project / "deploy" / "k8s" / "deployment.yaml", f"pyserve-pod-{os.getpid()}") as pod:
        yield pod


def test_both_containers_share_one_pod_and_nginx_reaches_the_app_on_loopback(pod: Pod) -> None:
    infra = pod.inspect(pod.name)["InfraContainerID"]
    for name in ("app", "nginx"):
        assert pod.container(name)["HostConfig"]["NetworkMode"] == f"container:{infra}"
    answer = pod.get("/api/io?ms=5")
    assert " 200 " in answer and "waited_ms" in answer, answer
    access = pod.podman("logs", f"{pod.name}-nginx")
    [line] = [line for line in access_lines(access.stdout + access.stderr) if line["path"] == "/api/io"]
    assert line["status"] == 200 and line["upstream"] == "127.0.0.1:8000"  # the app, over the pod's loopback


def test_the_plan_line_shows_the_limits_passed_in(pod: Pod) -> None:
    limits = pod.spec("app")["resources"]["limits"]
    cpus, memory = values.parse_cpus(limits["cpu"]), values.parse_memory(limits["memory"].removesuffix("i"))
    plan = pod.plan()
    found_cpus, found_memory = plan["limits"]["cpus"]["found"], plan["limits"]["memory"]["found"]
    # The Downward API's values (resourceFieldRef) and the cgroup podman made from the same limits.
    assert found_cpus["CPU_LIMIT_MILLICORES"] == cpus
    assert found_memory["MEMORY_LIMIT"] == memory
    assert [value for source, value in found_cpus.items() if source.startswith("cgroup") and "quota" in source] == [
        cpus
    ]
    assert (plan["cpus"], plan["memory_limit_bytes"]) == (cpus, memory)
    print(f"pod plan: {plan['workers']} workers x {plan['threads']}, from {found_cpus} and {found_memory}")


def test_the_security_context_and_env_are_the_manifests(pod: Pod) -> None:
    for name, writable, read_only in (("app", "/tmp", "/app"), ("nginx", "/var/cache/nginx", "/etc/nginx")):
        spec, container = pod.spec(name), pod.container(name)
        context = spec["securityContext"]
        assert container["Config"]["User"] == f"{context['runAsUser']}:{context['runAsGroup']}"
        assert container["HostConfig"]["ReadonlyRootfs"] is context["readOnlyRootFilesystem"] is True
        assert container["EffectiveCaps"] in (None, [])  # drop: ["ALL"]
        assert "no-new-privileges" in container["HostConfig"]["SecurityOpt"]  # allowPrivilegeEscalation: false
        ids = pod.exec(name, "sh", "-c", "id -u; id -g").stdout.split()
        assert ids == [str(context["runAsUser"]), str(context["runAsGroup"])]
        assert pod.exec(name, "sh", "-c", f": > {read_only}/written").returncode != 0
        assert pod.exec(name, "sh", "-c", f": > {writable}/written").returncode == 0
        env = dict(item.split("=", 1) for item in container["Config"]["Env"])
        for variable in spec["env"]:
            if "value" in variable:
                assert env[variable["name"]] == variable["value"]
        limits = spec["resources"]["limits"]
        assert container["HostConfig"]["Memory"] == values.parse_memory(limits["memory"].removesuffix("i"))
        assert container["HostConfig"]["NanoCpus"] == values.parse_cpus(limits["cpu"]) * 1e9


def test_what_podman_4_3_does_differently_is_what_the_readme_says(pod: Pod) -> None:
    """Each difference the generated README lists under "Trying the pod with podman", as found."""
    deployment = pod.deployment
    pods = json.loads(pod.podman("pod", "ps", "--format", "json").stdout)
    # replicas: a pod each, publishing the same host ports: only one of them can start.
    assert len(pods) == deployment["spec"]["replicas"]
    infra = pod.inspect(pod.inspect(pod.name)["InfraContainerID"])
    published = infra["HostConfig"]["PortBindings"]
    assert {"8080/tcp", "8000/tcp"} <= set(published)
    assert all(binding["HostIp"] in ("", "0.0.0.0") for bindings in published.values() for binding in bindings)
    # The liveness probe becomes a healthcheck running curl (not in the images) against port 0 (a
    # named port is not resolved); startup and readiness probes leave no trace.
    for name in ("app", "nginx"):
        check = pod.container(name)["Config"]["Healthcheck"]["Test"]
        assert "curl" in check and any("localhost:0/" in part for part in check), check
        assert pod.exec(name, "sh", "-c", "command -v curl").returncode != 0
    # ... whose failure restarts the container: what systemd's timer would do every 10 s, done here.
    app = f"{pod.name}-app"
    assert pod.container("app")["Config"]["HealthcheckOnFailureAction"] == "restart"
    started_at = pod.container("app")["State"]["StartedAt"]
    checks = [pod.podman("healthcheck", "run", app, check=False).returncode for _ in range(3)]
    assert checks[-1] != 0 and pod.container("app")["State"]["StartedAt"] != started_at, checks
    wait_for(pod.ready, READY_S, "the restarted app ready")
    # terminationGracePeriodSeconds is not the stop timeout.
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert pod.container("app")["Config"]["StopTimeout"] == 10 != grace
    # emptyDir volumes are named volumes on disk (no tmpfs, no sizeLimit), one per name for every pod.
    mounts = {mount["Destination"]: mount for mount in pod.container("app")["Mounts"]}
    assert mounts["/tmp"]["Type"] == "volume" and mounts["/tmp"]["Name"] == "tmp"
    # lifecycle.preStop is not run: the pod stops at once (the app's hook alone would sleep PRESTOP_S).
    hook = pod.spec("app")["lifecycle"]["preStop"]["exec"]["command"]
    started = time.monotonic()
    pod.podman("pod", "stop", "--time", str(grace), pod.name)
    stopped_in = time.monotonic() - started
    assert hook[:2] == ["pyserve", "prestop"] and stopped_in < settings.PRESTOP_S, stopped_in
    assert {name: pod.container(name)["State"]["ExitCode"] for name in ("app", "nginx")} == {"app": 0, "nginx": 0}
    print(
        f"podman 4.3: {len(pods)} pods for {deployment['spec']['replicas']} replicas; pod stopped in {stopped_in:.1f} s"
    )


def test_without_a_cpu_limit_the_plan_sizes_from_the_request(
    project: Path, podman: PodmanEngine, tmp_path: Path
) -> None:
    """The Deployment with the no-cpu-limit component's patch, as kustomize applies it (RFC 6902)."""
    deployment = with_component(project / "deploy" / "k8s", "no-cpu-limit", "deployment.yaml")
    deployment["metadata"]["name"] += "-no-cpu-limit"  # beside the module's pod, which podman still knows
    manifest = tmp_path / "deployment.yaml"
    manifest.write_text(yaml.safe_dump(deployment))
    with played(podman, manifest, f"pyserve-pod-request-{os.getpid()}") as pod:
        resources = pod.spec("app")["resources"]
        assert "cpu" not in resources["limits"]
        requested = values.parse_cpus(resources["requests"]["cpu"])
        plan = pod.plan()
        cpus = plan["limits"]["cpus"]
        # No quota: the Downward API's limits.cpu is whatever podman reports for no limit, set aside.
        assert not [source for source in cpus["found"] if "quota" in source or "cpu.max" in source], cpus
        assert pod.container("app")["HostConfig"]["NanoCpus"] == 0
        assert (plan["cpus"], cpus["from"]) == (requested, "CPU_REQUEST_MILLICORES"), cpus
        assert list(cpus.get("ignored", {})) == ["CPU_LIMIT_MILLICORES"], cpus
        print(f"pod without a CPU limit: {plan['workers']} workers x {plan['threads']}, from {cpus}")
