"""Shipping a version: both images published to a real registry (Debian's docker-registry, the
Distribution registry, on 127.0.0.1 with a password) by the generated workflow's own publish step,
run on the Docker engine; compose runs a published tag, the next, and rolls back to the first; the
Kubernetes manifests name the tag `make release` set, and the pod podman plays runs it, the next,
and the first again. Which version answers is read from outside, in the app's own headers."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import os
import secrets
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from pyserve_template.baking import free_port, project_venv

from .conftest import bake_with
from .containers import CONTAINER_TEST_TIMEOUT, compose_stack, run_workflow_steps
from .engine import Engine, PodmanEngine, stop_process
from .stack import wait_for
from .test_deploy import release as new_sample_version
from .test_pod import READY_S, Pod, network_namespace

pytestmark = [pytest.mark.e2e, pytest.mark.container]

REGISTRY_USER = "ci"
VERSION_HEADER = "X-App-Version"
REVISION_HEADER = "X-App-Revision"
OCI_LABELS = ("version", "revision", "created", "source")
SOURCE = "https://github.com/org/my-service"


@dataclasses.dataclass
class Registry:
    port: int
    password: str

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def tags(self, repository: str) -> set[str]:
        """The tags the registry holds for `repository` (its HTTP API, as any client asks)."""
        request = urllib.request.Request(f"http://{self.host}/v2/{repository}/tags/list")
        token = base64.b64encode(f"{REGISTRY_USER}:{self.password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(request, timeout=10) as response:
            return set(json.load(response)["tags"] or [])


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """docker-registry on a free loopback port, its storage and its bcrypt password file in a
    temporary directory; stopped by PID."""
    directory = tmp_path_factory.mktemp("registry")
    password = secrets.token_urlsafe(16)
    htpasswd = subprocess.run(["htpasswd", "-Bbn", REGISTRY_USER, password], capture_output=True, text=True)
    (directory / "htpasswd").write_text(htpasswd.stdout)
    port = free_port()
    config = {
        "version": 0.1,
        "storage": {"filesystem": {"rootdirectory": str(directory / "data")}},
        "http": {"addr": f"127.0.0.1:{port}"},
        "auth": {"htpasswd": {"realm": "pyserve-tests", "path": str(directory / "htpasswd")}},
    }
    (directory / "config.yml").write_text(yaml.safe_dump(config))
    with (directory / "registry.log").open("ab") as log:
        process = subprocess.Popen(
            ["docker-registry", "serve", str(directory / "config.yml")],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def answers() -> bool:
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2)
            return bool((directory / "registry.log").read_text().count("listening on"))

        wait_for(answers, 30, "docker-registry listening")
        yield Registry(port, password)
    finally:
        stop_process(process)


def git(project: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=project, capture_output=True, text=True, check=True)
    return result.stdout.strip()


def commit_and_tag(project: Path, tag: str) -> str:
    """The project committed as it stands and tagged: the commit."""
    git(project, "add", "--all")
    git(project, "-c", "user.name=Test", "-c", "user.email=test@example.invalid", "commit", "-qm", tag)
    git(project, "tag", tag)
    return git(project, "rev-parse", "HEAD")


@dataclasses.dataclass
class Published:
    project: Path
    repository: str  # the app image's: IMAGE_REPOSITORY
    revisions: dict[str, str]  # the commit of each tag


def publish_steps(project: Path) -> list[str]:
    workflow = yaml.safe_load((project / ".github" / "workflows" / "ci.yml").read_text())
    return [step["run"] for step in workflow["jobs"]["publish"]["steps"] if "run" in step]


@pytest.fixture(scope="module")
def published(cookies_session, docker: Engine, registry: Registry, tmp_path_factory) -> Iterator[Published]:
    """A project with Kubernetes manifests, v1.0.0 published by the workflow's publish job as CI runs
    it (a fresh venv, the job's environment), then v2.0.0 (a new sample) by the same step."""
    project = bake_with(cookies_session, {"use_kubernetes": "yes"})
    git(project, "init", "-q", "-b", "main")
    repository = f"{registry.host}/my-service"
    venv = tmp_path_factory.mktemp("publish") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {
        **docker.env,
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "VIRTUAL_ENV": str(venv),
        # What the job's env: gives the step, and the runner's own variable.
        "IMAGE_REPOSITORY": repository,
        "REGISTRY_USER": REGISTRY_USER,
        "REGISTRY_PASSWORD": registry.password,
        "IMAGE_SOURCE": SOURCE,
        "GITHUB_REPOSITORY": "org/my-service",
    }
    revisions = {}
    for tag in ("v1.0.0", "v2.0.0"):
        if tag != "v1.0.0":
            new_sample_version(project, tag)
        revisions[tag] = commit_and_tag(project, tag)
        output = run_workflow_steps(publish_steps(project), project, env)
        assert f"publish: pushed {repository}-nginx:{tag}" in output, output
    tags = [*revisions, *revisions.values()]
    try:
        yield Published(project, repository, revisions)
    finally:
        # The engine's copies, by the names pushed (its data root outlives the run).
        docker.docker("rmi", "--force", *(f"{repository}{suffix}:{tag}" for suffix in ("", "-nginx") for tag in tags))


def test_ci_pushes_both_images_tagged_with_the_commit_and_the_version(published: Published, registry: Registry) -> None:
    for repository in ("my-service", "my-service-nginx"):
        assert registry.tags(repository) == {*published.revisions, *published.revisions.values()}


def test_the_images_carry_the_standard_labels(published: Published, docker: Engine) -> None:
    for image in (published.repository, f"{published.repository}-nginx"):
        inspected = json.loads(docker.docker("image", "inspect", f"{image}:v1.0.0").stdout)[0]
        labels = {name.rpartition(".")[2]: value for name, value in inspected["Config"]["Labels"].items()
                  if name.startswith("org.opencontainers.image.")}  # fmt: skip
        assert {name: labels[name] for name in OCI_LABELS if name != "created"} == {
            "version": "v1.0.0", "revision": published.revisions["v1.0.0"], "source": SOURCE
        }  # fmt: skip
        assert labels["created"].endswith("Z") and labels["created"][:4].isdigit()


def release_reported(stack: ModuleType) -> tuple[str, str]:
    response = stack.get("/healthz")
    return response.headers[VERSION_HEADER], response.headers[REVISION_HEADER]


def make(project: Path, engine: Engine, stack: ModuleType, *args: str, **variables: str) -> str:
    env = {**engine.env, "COMPOSE_PROJECT_NAME": stack.name, "HTTP_PORT": str(stack.http_port), **stack.defaults}
    command = ["make", *args, f"PYSERVE={project_venv(project) / 'bin' / 'pyserve'}"]
    command += [f"{name}={value}" for name, value in variables.items()]
    result = subprocess.run(
        command, cwd=project, env={**env, **stack.env}, capture_output=True, text=True, timeout=CONTAINER_TEST_TIMEOUT
    )
    output = result.stdout + result.stderr
    print(output)
    assert result.returncode == 0, output
    return output


def test_compose_runs_a_published_version_then_the_next_and_rolls_back(
    published: Published, docker: Engine, registry: Registry
) -> None:
    project, repository = published.project, published.repository
    login = subprocess.run(
        [*docker.cli, "login", registry.host, "--username", REGISTRY_USER, "--password-stdin"],
        input=registry.password, env=docker.env, capture_output=True, text=True,
    )  # fmt: skip
    assert login.returncode == 0, login.stderr
    # Pulled, not the copies the publish step left in the engine.
    local = [f"{repository}{suffix}:{tag}" for suffix in ("", "-nginx") for tag in published.revisions]
    removed = docker.docker("rmi", *local)
    assert removed.returncode == 0 and docker.docker("image", "inspect", local[0]).returncode != 0, removed.stderr
    with docker.healthchecks(), compose_stack(project, docker, "releases") as stack:
        first = make(project, docker, stack, "deploy", IMAGE_TAG="v1.0.0", IMAGE_REPOSITORY=repository)
        assert "v1.0.0's images pulled" in first and "nothing was running" in first, first
        assert release_reported(stack) == ("v1.0.0", published.revisions["v1.0.0"])
        second = make(project, docker, stack, "deploy", IMAGE_TAG="v2.0.0", IMAGE_REPOSITORY=repository)
        assert release_reported(stack) == ("v2.0.0", published.revisions["v2.0.0"])
        # Only the image's tag moved: nginx serves the same files under the same config, and stays.
        assert "nginx replaced" not in second, second
        back = make(project, docker, stack, "rollback", IMAGE_REPOSITORY=repository)
        assert "deploy: rolling back to v1.0.0" in back, back
        assert release_reported(stack) == ("v1.0.0", published.revisions["v1.0.0"])
        assert [line.split()[1] for line in (project / ".deploy-history").read_text().splitlines()] == [
            "v1.0.0", "v2.0.0", "v1.0.0"
        ]  # fmt: skip


def kustomized(project: Path) -> Path:
    """deploy/k8s/deployment.yaml with kustomization.yaml's `images:` applied, as `kubectl apply -k`
    applies them: each container image whose name is an entry's `name` gets its newName and newTag.
    (Written out here: Debian packages no kustomize new enough for the kustomization's `labels:`.)"""
    k8s = project / "deploy" / "k8s"
    images = {entry["name"]: entry for entry in yaml.safe_load((k8s / "kustomization.yaml").read_text())["images"]}
    deployment = yaml.safe_load((k8s / "deployment.yaml").read_text())
    spec = deployment["spec"]["template"]["spec"]
    for container in [*spec.get("initContainers", []), *spec["containers"]]:
        entry = images[container["image"].rpartition(":")[0]]
        container["image"] = f"{entry['newName']}:{entry['newTag']}"
    rendered = k8s.parent.parent / "build" / "deployment.rendered.yaml"
    rendered.parent.mkdir(exist_ok=True)
    rendered.write_text(yaml.safe_dump(deployment))
    return rendered


def test_the_pod_runs_the_tag_make_release_names_and_the_previous_tag_brings_it_back(
    published: Published, podman: PodmanEngine, registry: Registry
) -> None:
    project, repository = published.project, published.repository
    pyserve = project_venv(project) / "bin" / "pyserve"
    # Without DOCKER_CONFIG, where podman would look for a login (the docker CLI's has none for podman).
    env = {name: value for name, value in podman.env.items() if name != "DOCKER_CONFIG"}
    for tag in published.revisions:
        for image in (repository, f"{repository}-nginx"):
            pulled = subprocess.run(
                [*podman.podman, "pull", "--quiet", "--tls-verify=false",
                 "--creds", f"{REGISTRY_USER}:{registry.password}", f"{image}:{tag}"],
                env=env, capture_output=True, text=True, timeout=600,
            )  # fmt: skip
            assert pulled.returncode == 0, pulled.stderr
    network = f"pyserve-releases-{os.getpid()}"
    with network_namespace(network) as netns:
        pod: Pod | None = None
        try:
            for tag in ("v1.0.0", "v2.0.0", "v1.0.0"):
                released = subprocess.run(
                    [str(pyserve), "release"], cwd=project, capture_output=True, text=True,
                    env={**os.environ, "IMAGE_TAG": tag, "IMAGE_REPOSITORY": repository},
                )  # fmt: skip
                assert released.returncode == 0 and f"{repository}:{tag}" in released.stdout, released.stderr
                manifest = kustomized(project)
                if pod is None:
                    pod = Pod(podman, netns, manifest)
                    pod.podman("network", "create", network)
                else:
                    pod.podman("kube", "down", str(pod.manifest))
                    pod.manifest = manifest
                pod.podman("kube", "play", "--network", network, "--start=false", str(manifest))
                pod.podman("pod", "start", pod.name)
                wait_for(pod.ready, READY_S, f"the pod at {tag} ready")
                headers = pod.get("/healthz").lower()  # header names as the app server spelled them
                assert f"{VERSION_HEADER}: {tag}".lower() in headers, headers
                assert f"{REVISION_HEADER}: {published.revisions[tag]}".lower() in headers, headers
                assert f"{repository}:{tag}" == pod.container("app")["ImageName"]
                assert (pod.plan()["version"], pod.plan()["revision"]) == (tag, published.revisions[tag])
        finally:
            if pod is not None:
                pod.podman("kube", "down", str(pod.manifest), check=False)
                pod.podman("network", "rm", "--force", network, check=False)
