"""The Kubernetes manifests (use_kubernetes=yes): valid under `kubernetes-validate --strict` for the
oldest and newest Kubernetes it bundles, and coupled to the rest of the project as their comments say."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from pyserve_template import answers, machine, plan_inputs, settings, tuning, values
from pyserve_template.baking import TOOLS

from .conftest import TEMPLATE_ROOT, variation_id
from .kustomize import with_component

SCHEMAS = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
BUNDLED = sorted(
    (tuple(int(part) for part in path.name[1:].split("-")[0].split(".")) for path in SCHEMAS.glob("v*-local-strict")),
)
OLDEST, NEWEST = (".".join(map(str, version)) for version in (BUNDLED[0], BUNDLED[-1]))
# hpa.yaml is the autoscaler for a cluster without KEDA, listed in kustomization.yaml in place of scaledobject.yaml.
RESOURCES = ("deployment.yaml", "service.yaml", "hpa.yaml", "pdb.yaml")
# The cluster's edge, Gateway API resources: validated with their own schemas (tests/crd_schemas.mjs).
EDGE = ("gateway.yaml", "httproute.yaml")
# KEDA's autoscaler, validated with its schema too.
SCALED_OBJECT = "scaledobject.yaml"
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


@pytest.mark.parametrize("version", sorted({OLDEST, NEWEST}))
def test_the_deployment_without_a_cpu_limit_passes_too_and_keeps_its_request(
    bake, version: str, tmp_path: Path
) -> None:
    """The no-cpu-limit component's patch, applied as kustomize does (RFC 6902), leaves a valid Deployment."""
    deployment = with_component(bake(use_kubernetes="yes") / "deploy" / "k8s", "no-cpu-limit", "deployment.yaml")
    (tmp_path / "deployment.yaml").write_text(yaml.safe_dump(deployment))
    command = [str(TOOLS / "kubernetes-validate"), "--strict", "--kubernetes-version", version, "deployment.yaml"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert result.returncode == 0 and " passed for resource " in result.stdout, result.stdout + result.stderr
    [app] = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "app"]
    assert "cpu" not in app["resources"]["limits"] and app["resources"]["requests"]["cpu"]


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
    request_ref = env["CPU_REQUEST_MILLICORES"]["valueFrom"]["resourceFieldRef"]
    memory_ref = env["MEMORY_LIMIT"]["valueFrom"]["resourceFieldRef"]
    assert (cpu_ref["resource"], cpu_ref["divisor"]) == ("limits.cpu", "1m")
    assert (request_ref["resource"], request_ref["divisor"]) == ("requests.cpu", "1m")
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
        # The release step before the pod's containers, from the app's image and its Secret.
        [migrate] = pod["initContainers"]
        assert migrate["command"] == ["pyserve", "migrate"] and migrate["image"] == app["image"]
        assert {item["name"]: item for item in migrate["env"]}["DATABASE_URL"] == env["DATABASE_URL"]
        assert migrate["securityContext"] == app["securityContext"]

    # Stopping: the app's hook waits for nginx to stop listening; the grace period outlasts preStop
    # plus the app server's own graceful stop.
    nginx_port = containers["nginx"]["ports"][0]["containerPort"]
    assert app["lifecycle"]["preStop"]["exec"]["command"] == ["pyserve", "prestop", "--nginx-port", str(nginx_port)]
    assert pod["terminationGracePeriodSeconds"] == settings.PRESTOP_S + settings.STOP_GRACE_PERIOD_S
    assert settings.STOP_GRACE_PERIOD_S > settings.GRACEFUL_STOP_S
    # Rolling out as `make deploy` does: one pod more (which the database budget counts), none fewer.
    deployment = found["deployment.yaml"]["spec"]
    assert deployment["strategy"]["rollingUpdate"] == {"maxSurge": settings.DEPLOY_SURGE, "maxUnavailable": 0}
    assert deployment["minReadySeconds"] == settings.NGINX_DNS_VALID_S

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
    listed = [name for name in RESOURCES if name != "hpa.yaml"]
    assert sorted(kustomization["resources"]) == sorted([*listed, SCALED_OBJECT, *EDGE])


def custom_resources(project: Path, names: tuple[str, ...]) -> list[dict]:
    k8s = project / "deploy" / "k8s"
    return [resource for name in names for resource in yaml.safe_load_all((k8s / name).read_text())]


def edge_resources(project: Path) -> list[dict]:
    return custom_resources(project, EDGE)


def crd_schema_check(resources: list[dict]) -> subprocess.CompletedProcess[str]:
    command = ["node", str(TEMPLATE_ROOT / "tests" / "crd_schemas.mjs")]
    return subprocess.run(command, input=json.dumps(resources), capture_output=True, text=True, check=False)


@pytest.mark.parametrize("changes", CASES, ids=variation_id)
def test_the_autoscaler_scales_on_the_plans_requests_in_flight_and_the_cpu(bake, changes: dict[str, str]) -> None:
    """KEDA's ScaledObject passes its schema and sizes from the plan the pod makes of its limits."""
    project = bake(**changes)
    [scaled] = custom_resources(project, (SCALED_OBJECT,))
    result = crd_schema_check([scaled])
    assert result.returncode == 0 and result.stdout == f"ScaledObject {scaled['metadata']['name']}: valid\n", (
        result.stdout + result.stderr
    )
    found = manifests(project)
    name, hpa = found["deployment.yaml"]["metadata"]["name"], found["hpa.yaml"]["spec"]
    spec = scaled["spec"]
    assert spec["scaleTargetRef"] == {"name": name} and hpa["scaleTargetRef"]["name"] == name
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (hpa["minReplicas"], hpa["maxReplicas"])
    assert spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"] == hpa["behavior"]
    in_flight, cpu = spec["triggers"]
    # The plan the pod makes of its limits (the answers): AUTOSCALE_AT of the requests in flight that
    # saturate its CPU, which it is sized for.
    plan = plan_inputs.plan_from_environment({}, machine.load_stack(project / "deploy" / "stack.toml"))
    planned = math.ceil(tuning.SATURATING_IN_FLIGHT_PER_CPU[plan.workload] * plan.cpus)
    assert int(in_flight["metadata"]["threshold"]) == max(1, math.floor(tuning.AUTOSCALE_AT * planned))
    assert in_flight["metadata"]["query"] == f'sum(app_requests_in_flight{{pod=~"{name}-[a-z0-9]+-[a-z0-9]+"}})'
    assert in_flight["metricType"] == "AverageValue"  # the query's sum over the pods, per pod
    percent = round(tuning.AUTOSCALE_AT * 100)
    assert (cpu["type"], cpu["metadata"]) == ("cpu", {"containerName": "app", "value": str(percent)})
    assert hpa["metrics"][0]["resource"]["target"]["averageUtilization"] == percent


def test_a_schema_violation_fails_the_keda_check(bake) -> None:
    """The check can fail: a trigger's threshold given as a number, where KEDA's metadata holds strings."""
    [scaled] = custom_resources(bake(use_kubernetes="yes"), (SCALED_OBJECT,))
    scaled["spec"]["triggers"][0]["metadata"]["threshold"] = 45
    result = crd_schema_check([scaled])
    assert result.returncode == 1 and "must be string" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("changes", CASES[:2], ids=variation_id)
def test_the_gateway_and_its_routes_pass_the_gateway_api_schemas(bake, changes: dict[str, str]) -> None:
    resources = edge_resources(bake(**changes))
    result = crd_schema_check(resources)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(": valid\n") == len(resources) == 3


def test_a_schema_violation_fails_the_crd_schema_check(bake) -> None:
    """The check can fail: a port given as text, as YAML makes of "80", is refused."""
    _, route, _ = edge_resources(bake(use_kubernetes="yes"))
    route["spec"]["rules"][0]["backendRefs"][0]["port"] = "80"
    result = crd_schema_check([route])
    assert result.returncode == 1 and "port must be integer" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("changes", CASES[:2], ids=variation_id)
def test_https_ends_at_the_gateway_with_cert_manager_s_certificate(bake, changes: dict[str, str]) -> None:
    """The Gateway's certificate comes from cert-manager; https goes to the Service, http is
    redirected; and nginx in the pod answers for the name the Gateway serves and believes it."""
    project = bake(**changes)
    [gateway, route, redirect] = edge_resources(project)
    found = manifests(project)
    name = found["service.yaml"]["metadata"]["name"]
    assert "cert-manager.io/cluster-issuer" in gateway["metadata"]["annotations"]
    listeners = {listener["name"]: listener for listener in gateway["spec"]["listeners"]}
    assert (listeners["https"]["port"], listeners["http"]["port"]) == (443, 80)
    assert listeners["https"]["tls"]["mode"] == "Terminate" and listeners["https"]["tls"]["certificateRefs"]
    for each, section in ((route, "https"), (redirect, "http")):
        assert each["spec"]["parentRefs"] == [{"name": gateway["metadata"]["name"], "sectionName": section}]
        assert each["spec"]["hostnames"] == [listeners[section]["hostname"]]
    [backend] = route["spec"]["rules"][0]["backendRefs"]
    assert (backend["name"], backend["port"]) == (name, found["service.yaml"]["spec"]["ports"][0]["port"])
    assert redirect["spec"]["rules"][0]["filters"][0]["requestRedirect"]["scheme"] == "https"
    pod = found["deployment.yaml"]["spec"]["template"]["spec"]
    nginx_env = {
        item["name"]: item.get("value") for item in next(c for c in pod["containers"] if c["name"] == "nginx")["env"]
    }
    assert listeners["https"]["hostname"] in nginx_env["SERVER_NAMES"].split()
    assert nginx_env["TRUSTED_PROXIES"], "nginx believes the Gateway's X-Forwarded-Proto"
