"""The Kubernetes manifests (use_kubernetes=yes): valid under `kubernetes-validate --strict` for the
oldest and newest Kubernetes it bundles, and coupled to the rest of the project as their comments say."""

from __future__ import annotations

import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from pyserve_template import answers, machine, settings, values
from pyserve_template.baking import TOOLS

from .conftest import TEMPLATE_ROOT, variation_id

SCHEMAS = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
BUNDLED = sorted(
    (tuple(int(part) for part in path.name[1:].split("-")[0].split(".")) for path in SCHEMAS.glob("v*-local-strict")),
)
OLDEST, NEWEST = (".".join(map(str, version)) for version in (BUNDLED[0], BUNDLED[-1]))
RESOURCES = ("deployment.yaml", "service.yaml", "hpa.yaml", "pdb.yaml")
# The app server's graceful timeout, as each server's config spells it.

# Every server, both interfaces, Django's secret, a fractional CPU and a large memory limit.
CASES = [
    {"use_kubernetes": "yes"},
    {"use_kubernetes": "yes", "framework": "django", "cpu_limit": "0.5"},
    {"use_kubernetes": "yes", "framework": "flask", "memory_limit": "2GiB"},
    {"use_kubernetes": "yes", "server": "hypercorn", "cpu_limit": "1.5"},
    {"use_kubernetes": "yes", "server": "granian", "static_strategy": "none"},
    {"use_kubernetes": "yes", "server": "gunicorn", "framework": "quart"},
    {"use_kubernetes": "yes", "database": "postgres", "max_replicas": "6", "db_max_connections": "60"},
]


def manifests(project: Path) -> dict[str, dict]:
    return {name: yaml.safe_load((project / "deploy" / "k8s" / name).read_text()) for name in RESOURCES}


@pytest.mark.parametrize("version", sorted({OLDEST, NEWEST}))
@pytest.mark.parametrize("changes", CASES, ids=variation_id)
def test_manifests_pass_kubernetes_validate_strict(bake, changes: dict[str, str], version: str) -> None:
    k8s = bake(**changes) / "deploy" / "k8s"
    command = [str(TOOLS / "kubernetes-validate"), "--strict", "--kubernetes-version", version, *RESOURCES]
    result = subprocess.run(command, cwd=k8s, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(" passed for resource ") == len(RESOURCES)


def test_the_readme_names_the_versions_validated() -> None:
    readme = (TEMPLATE_ROOT / "{{cookiecutter.project_slug}}" / "README.md").read_text()
    assert f"Kubernetes {OLDEST.rsplit('.', 1)[0]} to {NEWEST.rsplit('.', 1)[0]}" in readme


@pytest.mark.parametrize("changes", CASES, ids=variation_id)
def test_the_pod_is_sized_and_stopped_as_the_project_says(bake, changes: dict[str, str]) -> None:
    project = bake(**changes)
    stack = machine.load_stack(project / "deploy" / "stack.toml")
    found = manifests(project)
    pod = found["deployment.yaml"]["spec"]["template"]["spec"]
    containers = {container["name"]: container for container in pod["containers"]}
    app = containers["app"]

    # Requests and limits are the answers; the plan's limits come from them (Downward API), in the
    # units the runtime's plan reads: millicores, and MiB (MEMORY_LIMIT's bare number).
    cpus = values.parse_cpus(app["resources"]["limits"]["cpu"])
    memory = values.parse_memory(app["resources"]["limits"]["memory"].removesuffix("i"))
    assert (cpus, memory) == (values.parse_cpus(stack["cpu_limit"]), values.parse_memory(stack["memory_limit"]))
    assert app["resources"]["requests"] == app["resources"]["limits"]
    env = {item["name"]: item for item in app["env"]}
    cpu_ref = env["CPU_LIMIT_MILLICORES"]["valueFrom"]["resourceFieldRef"]
    memory_ref = env["MEMORY_LIMIT"]["valueFrom"]["resourceFieldRef"]
    assert (cpu_ref["resource"], cpu_ref["divisor"]) == ("limits.cpu", "1m")
    assert (memory_ref["resource"], memory_ref["divisor"]) == ("limits.memory", "1Mi")
    # No $(VAR) references: podman kube play (4.3) passes them through unexpanded.
    assert not [item for item in app["env"] if "$(" in item.get("value", "")]

    # nginx has the same limits as in compose.yaml (its start script sizes its workers from the CPU one).
    compose_nginx = yaml.safe_load((project / "compose.yaml").read_text())["services"]["nginx"]
    compose_limits = compose_nginx["deploy"]["resources"]["limits"]
    nginx_limits = containers["nginx"]["resources"]["limits"]
    assert values.parse_cpus(nginx_limits["cpu"]) == values.parse_cpus(compose_limits["cpus"])
    assert values.parse_memory(nginx_limits["memory"].removesuffix("i")) == values.parse_memory(
        compose_limits["memory"]
    )
    # Startup and liveness need nothing of the app: the server layer's own answer.
    liveness = settings.LIVENESS_PATH
    assert app["startupProbe"]["httpGet"]["path"] == app["livenessProbe"]["httpGet"]["path"] == liveness
    if stack["database"] == "none":
        assert app["readinessProbe"]["exec"]["command"] == ["pyserve", "healthcheck"]
    else:
        # Ready only while the database answers; DATABASE_URL from the operator's Secret; every pod
        # up to the HPA's most splits the budget.
        assert app["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert "secretKeyRef" in env["DATABASE_URL"]["valueFrom"]
        assert int(env["MAX_REPLICAS"]["value"]) == found["hpa.yaml"]["spec"]["maxReplicas"]
        assert env["MAX_REPLICAS"]["value"] == stack["max_replicas"]
        assert env["DB_MAX_CONNECTIONS"]["value"] == stack["db_max_connections"]

    # Stopping: the grace period outlasts preStop plus the app server's own graceful stop.
    assert app["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", str(settings.PRESTOP_S)]
    assert pod["terminationGracePeriodSeconds"] == settings.PRESTOP_S + settings.STOP_GRACE_PERIOD_S
    assert settings.STOP_GRACE_PERIOD_S > settings.GRACEFUL_STOP_S

    # Restricted: non-root with numeric IDs, read-only root, no privilege escalation, no capabilities.
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    for container in containers.values():
        context = container["securityContext"]
        assert isinstance(context["runAsUser"], int) and context["runAsUser"] > 0
        assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert {"readinessProbe", "livenessProbe"} <= set(container)
    assert "startupProbe" in app

    # The Service, the autoscaler and the budget all point at these pods.
    selector = found["deployment.yaml"]["spec"]["selector"]["matchLabels"]
    assert found["service.yaml"]["spec"]["selector"] == selector
    assert found["pdb.yaml"]["spec"]["selector"]["matchLabels"] == selector
    assert found["hpa.yaml"]["spec"]["scaleTargetRef"]["name"] == found["deployment.yaml"]["metadata"]["name"]
    assert found["service.yaml"]["spec"]["ports"][0]["targetPort"] == containers["nginx"]["ports"][0]["name"]
    assert found["pdb.yaml"]["spec"]["minAvailable"] < found["hpa.yaml"]["spec"]["minReplicas"]
    assert found["hpa.yaml"]["spec"]["maxReplicas"] == int(
        stack.get("max_replicas", answers.default_for("max_replicas", changes))
    )
    kustomization = yaml.safe_load((project / "deploy" / "k8s" / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(RESOURCES)
