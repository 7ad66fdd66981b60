"""A project generated once takes the template's later changes through cruft (`make template-update`),
keeps its owner's edits, and renders again what follows from a changed answer; `cookiecutter --replay`
bakes the same project again.

Each test makes a real git repository of the template as it is now (its first commit) and, where it
needs one, commits a change to it as a maintainer would (the second). Projects are baked from that
repository as the README's Quick start does (`cookiecutter`), or with `cruft create`, and committed
by their owner; the project's own make targets run in its dev venv (cruft is in it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from pyserve_template.baking import TOOLS, add_dependency, project_venv, run_cookiecutter

from .conftest import TEMPLATE_ROOT, context, variation_id

PROJECT_TEMPLATE = "{{cookiecutter.project_slug}}"
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Owner",
    "GIT_AUTHOR_EMAIL": "owner@example.com",
    "GIT_COMMITTER_NAME": "Owner",
    "GIT_COMMITTER_EMAIL": "owner@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}
# The sample's load-test task: the owner points it at their own path, a maintainer changes its wait.
SAMPLE_TASK = 'self.client.get("/api/io?ms=100", name="/api/io")'
OWNERS_TASK = 'self.client.get("/orders")'
MAINTAINERS_TASK = 'self.client.get("/api/io?ms=50", name="/api/io")'
OWNERS_APP = '''"""Orders: this service's own app."""

from fastapi import FastAPI

app = FastAPI(title="orders")


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/orders")
async def orders() -> list[dict[str, int]]:
    return [{"id": 1}]
'''
OWNERS_TEST = """from fastapi.testclient import TestClient

from my_service.orders import app


def test_orders() -> None:
    assert TestClient(app).get("/orders").json() == [{"id": 1}]
"""
# The owner's app calls another service: a dependency of its own (`uv add`).
OWNERS_REQUIREMENT = "httpx==0.28.1"
# A pin a template release moves (the lint group's pre-commit): it reaches the project's lock.
PRE_COMMIT_BEFORE, PRE_COMMIT_RELEASED = "4.7.0", "4.6.0"
# A later benchmark's reason for choosing another server.
MOVED_REASON = "measured best for io-bound ASGI: granian 700 req/s, uvicorn 610 (a later run)"


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=False, env={**os.environ, **GIT_IDENTITY}
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@dataclass
class TemplateRepo:
    """A git repository of the template: released as it is now, then changed commit by commit."""

    path: Path

    @classmethod
    def release(cls, where: Path) -> TemplateRepo:
        files = git(TEMPLATE_ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
        for name in filter(None, files):
            if (TEMPLATE_ROOT / name).is_file():
                (where / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(TEMPLATE_ROOT / name, where / name)
        git(where, "init", "-q")
        git(where, "add", "-A")
        git(where, "commit", "-qm", "The template as released")
        return cls(where)

    @property
    def project(self) -> Path:
        return self.path / PROJECT_TEMPLATE

    @property
    def head(self) -> str:
        return git(self.path, "rev-parse", "HEAD").strip()

    def commit(self, message: str, change: Callable[[Path], None]) -> None:
        change(self.project)
        git(self.path, "add", "-A")
        git(self.path, "commit", "-qm", message)


def locked_versions(project: Path) -> dict[str, str]:
    with (project / "uv.lock").open("rb") as lock:
        return {package["name"]: package.get("version", "") for package in tomllib.load(lock)["package"]}


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} in {path}"
    path.write_text(text.replace(old, new))


def maintainers_improvements(project: Path) -> None:
    """What a template release brings: a changed nginx directive, a re-measured figure in a server's
    record (the plan and deploy/stack.toml follow it), a moved pin, a new file and a removed one."""
    edit(project / "deploy/nginx/nginx.conf", "keepalive_timeout 65s;", "keepalive_timeout 70s;")
    edit(project / "pyproject.toml", f'"pre-commit=={PRE_COMMIT_BEFORE}"', f'"pre-commit=={PRE_COMMIT_RELEASED}"')
    edit(project / "deploy/_servers/uvicorn/server.toml", "rss_mib = 41.2\n", "rss_mib = 47.0\n")
    (project / "SECURITY.md").write_text(
        "# Security\n\nReport a vulnerability in {{ cookiecutter.project_name }} to its owners, not in an issue.\n"
    )
    (project / PROJECT_TEMPLATE / "static/js/site.js").unlink()
    edit(
        project / PROJECT_TEMPLATE / "templates/index.html", '  <script src="@static/js/site.js" defer></script>\n', ""
    )


def maintainers_new_wait(project: Path) -> None:
    edit(project / "loadtest/locustfile.py", SAMPLE_TASK, MAINTAINERS_TASK)


def bake(repo: TemplateRepo, workdir: Path, **changes: str) -> Path:
    """The README's Quick start against the template repository; the project's post-gen hook writes
    .cruft.json."""
    workdir.mkdir()
    run = run_cookiecutter(workdir, context(**changes), template=repo.path)
    assert run.result.returncode == 0, run.result.stderr
    return run.output_dir / "my_service"


def owned(project: Path, owners_edits: Callable[[Path], None] | None = None) -> Path:
    """The owner's repository: the generated project committed, then their own edits committed."""
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "Generated by pyserve-template")
    if owners_edits:
        owners_edits(project)
        git(project, "add", "-A")
        git(project, "commit", "-qm", "Our own app")
    return project


def replace_the_sample_app(project: Path) -> None:
    (project / "my_service/app.py").unlink()
    (project / "tests/test_app.py").unlink()
    (project / "my_service/orders.py").write_text(OWNERS_APP)
    (project / "tests/test_orders.py").write_text(OWNERS_TEST)
    edit(project / "deploy/stack.toml", 'module = "my_service.app:app"', 'module = "my_service.orders:app"')
    add_dependency(project, OWNERS_REQUIREMENT)
    edit(project / "loadtest/locustfile.py", SAMPLE_TASK, OWNERS_TASK)


@dataclass
class Make:
    """The project's make targets in its dev venv, asking nothing (no terminal), with a temp directory
    and a home of their own, so that whatever a run leaves outside the project shows."""

    project: Path
    python: Path
    temp: Path
    home: Path

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            **GIT_IDENTITY,
            "PATH": f"{self.python.parent}{os.pathsep}{os.environ['PATH']}",
            "TMPDIR": str(self.temp),
            "HOME": str(self.home),
            "PYTHONDONTWRITEBYTECODE": "1",
            # The owner's uv keeps its cache where it always does (the re-lock reads it), not in the
            # project, and trusts what this machine's TLS trusts.
            "UV_CACHE_DIR": os.environ.get("UV_CACHE_DIR") or str(Path.home() / ".cache" / "uv"),
            **{name: os.environ[name] for name in ("SSL_CERT_FILE", "SSL_CERT_DIR") if name in os.environ},
        }
        return subprocess.run(
            ["make", *args, f"PYTHON={self.python}", f"UV={TOOLS / 'uv'}"],
            cwd=self.project,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def left_outside(self) -> list[Path]:
        return [*self.temp.iterdir(), *self.home.iterdir()]


@pytest.fixture
def make_in(tmp_path: Path) -> Callable[[Path], Make]:
    def make(project: Path) -> Make:
        venv = project_venv(project, dev=True)  # the owner's pins, once they edit them
        (tmp_path / "temp").mkdir(exist_ok=True)
        (tmp_path / "home").mkdir(exist_ok=True)
        return Make(project, venv / "bin" / "python", tmp_path / "temp", tmp_path / "home")

    return make


@pytest.fixture
def template_repo(tmp_path: Path) -> TemplateRepo:
    (tmp_path / "template").mkdir()
    return TemplateRepo.release(tmp_path / "template")


def files_of(tree: Path, leave_out: tuple[str, ...] = ()) -> dict[str, bytes]:
    return {
        str(path.relative_to(tree)): path.read_bytes()
        for path in sorted(tree.rglob("*"))
        if path.is_file()
        and ".git" not in path.relative_to(tree).parts
        and str(path.relative_to(tree)) not in leave_out
    }


def recorded(project: Path) -> dict:
    return json.loads((project / ".cruft.json").read_text())


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def ci_template_job(project: Path) -> list[str]:
    """The generated CI's `template` job: its `run:` steps after installing the tools."""
    jobs = yaml.safe_load((project / ".github/workflows/ci.yml").read_text())["jobs"]
    steps = [step["run"] for step in jobs["template"]["steps"] if "run" in step]
    install = [step["run"] for step in jobs["test"]["steps"] if step.get("name", "").startswith("Install uv")]
    assert steps[0] == install[0] and install[0].splitlines()[-1] == "uv sync --locked"
    return steps[1:]


def test_an_update_brings_the_templates_changes_and_keeps_the_owners(
    template_repo: TemplateRepo, tmp_path: Path, make_in
) -> None:
    project = owned(bake(template_repo, tmp_path / "owner"), replace_the_sample_app)
    make = make_in(project)
    assert ci_template_job(project) == ["make template-check"]
    assert make("template-check").returncode == 0

    template_repo.commit("A release: nginx, a figure, a new file, a removed one", maintainers_improvements)
    behind = make("template-check")
    assert behind.returncode != 0 and "the template has moved on" in behind.stdout, output(behind)

    updated = make("template-update")
    assert updated.returncode == 0, output(updated)
    assert "template-update: applied" in updated.stdout
    # Every file the owner left alone is now what the template renders today, new and removed files too.
    today = files_of(bake(template_repo, tmp_path / "today"), leave_out=(".cruft.json",))
    owners = {
        "my_service/app.py",
        "tests/test_app.py",
        "deploy/stack.toml",
        "pyproject.toml",
        "uv.lock",
        "loadtest/locustfile.py",
    }
    mine = files_of(project, leave_out=(".cruft.json",))
    assert {name: mine.get(name) for name in today if name not in owners} == {
        name: text for name, text in today.items() if name not in owners
    }
    assert b"keepalive_timeout 70s;" in mine["deploy/nginx/nginx.conf"] and b"My Service" in mine["SECURITY.md"]
    assert "my_service/static/js/site.js" not in mine
    # ... and the owner's edits stand.
    assert "my_service/app.py" not in mine and "tests/test_app.py" not in mine
    assert mine["my_service/orders.py"].decode() == OWNERS_APP and mine["tests/test_orders.py"].decode() == OWNERS_TEST
    assert b'module = "my_service.orders:app"' in mine["deploy/stack.toml"]
    assert b"\nserver = 85\n" in mine["deploy/stack.toml"], "uvicorn's new figure (55 MiB) and the metrics endpoint's"
    assert f'"{OWNERS_REQUIREMENT}"' in mine["pyproject.toml"].decode()
    # The owner's locks, re-locked against the merged pyproject.toml: current, holding the owner's
    # requirement and the release's moved pin.
    for locked in (project, project / "loadtest"):
        relocked = subprocess.run([TOOLS / "uv", "lock", "--locked", "--quiet"], cwd=locked, check=False)
        assert relocked.returncode == 0, f"{locked / 'uv.lock'} is stale"
    assert f'"pre-commit=={PRE_COMMIT_RELEASED}"' in mine["pyproject.toml"].decode()
    assert locked_versions(project)["pre-commit"] == PRE_COMMIT_RELEASED
    assert OWNERS_REQUIREMENT.partition("==")[0] in locked_versions(project)
    assert OWNERS_TASK in mine["loadtest/locustfile.py"].decode()
    assert recorded(project)["commit"] == template_repo.head
    assert ".cruft.json" in git(project, "ls-files").split(), "the owner's `git add -A` left the record out"
    # Nothing asked, nothing left behind outside the project (cookiecutter's rendered hooks included).
    assert make.left_outside() == []

    git(project, "add", "-A")
    git(project, "commit", "-qm", "The template's latest")
    for step in ci_template_job(project):
        assert make(*step.split()[1:]).returncode == 0
    for target in ("lint", "test"):
        result = make(target)
        assert result.returncode == 0, output(result)


def test_a_change_to_a_line_the_owner_changed_is_left_for_them_to_resolve(
    template_repo: TemplateRepo, tmp_path: Path, make_in
) -> None:
    project = owned(bake(template_repo, tmp_path / "owner"), replace_the_sample_app)
    template_repo.commit("A shorter wait in the load test", maintainers_new_wait)
    template_repo.commit("A release: nginx, a figure, a new file, a removed one", maintainers_improvements)
    result = make_in(project)("template-update")
    assert result.returncode != 0
    assert "  loadtest/locustfile.py (conflict markers)" in result.stdout, output(result)
    assert git(project, "diff", "--name-only", "--diff-filter=U").split() == ["loadtest/locustfile.py"]
    locustfile = (project / "loadtest/locustfile.py").read_text()
    # Both sides are there for the owner to choose from; nothing was lost.
    assert "<<<<<<<" in locustfile and OWNERS_TASK in locustfile and MAINTAINERS_TASK in locustfile
    assert "keepalive_timeout 70s;" in (project / "deploy/nginx/nginx.conf").read_text()


def test_without_the_generated_commit_a_conflicting_change_is_left_in_a_rej_file(
    template_repo: TemplateRepo, tmp_path: Path, make_in
) -> None:
    # The owner edited before their first commit: git has no copy of the generated file to merge
    # from, so cruft applies what it can and leaves the rest in a .rej file.
    project = bake(template_repo, tmp_path / "owner")
    edit(project / "loadtest/locustfile.py", SAMPLE_TASK, OWNERS_TASK)
    owned(project)
    template_repo.commit("A shorter wait in the load test", maintainers_new_wait)
    result = make_in(project)("template-update")
    assert result.returncode != 0
    assert "  loadtest/locustfile.py.rej (hunks cruft could not place)" in result.stdout, output(result)
    assert OWNERS_TASK in (project / "loadtest/locustfile.py").read_text()
    assert MAINTAINERS_TASK in (project / "loadtest/locustfile.py.rej").read_text()


CHANGED_ANSWERS = [
    ({"use_kubernetes": "true"}, {"cpu_limit": "2"}),
    ({"framework": "flask", "server": "gunicorn"}, {"server": "granian"}),
    ({"framework": "django", "static_strategy": "nginx"}, {"static_strategy": "whitenoise", "workload": "mixed"}),
]


@pytest.mark.parametrize(
    ("first", "changed"), CHANGED_ANSWERS, ids=[f"{variation_id(a)}->{variation_id(b)}" for a, b in CHANGED_ANSWERS]
)
def test_a_changed_answer_renders_again_everything_that_follows_from_it(
    template_repo: TemplateRepo, tmp_path: Path, make_in, first: Mapping[str, str], changed: Mapping[str, str]
) -> None:
    """The derived values (the server `auto` picks, the cores, the plan) are worked out again from
    the answers: the updated project is the one a bake with the new answers makes."""
    project = owned(bake(template_repo, tmp_path / "owner", **first))
    make = make_in(project)
    result = make("template-update", f"VARIABLES={json.dumps(changed)}")
    assert result.returncode == 0, output(result)
    fresh = bake(template_repo, tmp_path / "fresh", **{**first, **changed})
    assert files_of(project, leave_out=(".cruft.json",)) == files_of(fresh, leave_out=(".cruft.json",))
    assert recorded(project)["context"]["cookiecutter"] == recorded(fresh)["context"]["cookiecutter"]
    assert make.left_outside() == []


def benchmark_now_prefers_granian(project: Path) -> None:
    """A release whose benchmark moved: `auto` would now choose granian for io-bound ASGI."""
    auto = project.parent / "bench" / "results" / "auto.json"
    record = json.loads(auto.read_text())
    [choice] = [it for it in record["choices"] if (it["interface"], it["workload"]) == ("asgi", "io_bound")]
    choice["server"], choice["reason"] = "granian", MOVED_REASON
    auto.write_text(json.dumps(record, indent=2) + "\n")


def test_what_auto_chose_stays_chosen_and_the_check_says_what_it_would_choose_now(
    template_repo: TemplateRepo, tmp_path: Path, make_in
) -> None:
    project = owned(bake(template_repo, tmp_path / "owner"))
    make = make_in(project)
    template_repo.commit("The benchmark moved: granian for io-bound ASGI", benchmark_now_prefers_granian)

    checked = make("template-check")
    assert checked.returncode != 0, output(checked)
    assert "`auto` would now choose server granian, not uvicorn" in checked.stdout, output(checked)
    assert MOVED_REASON in checked.stdout

    updated = make("template-update")
    assert updated.returncode == 0, output(updated)
    with (project / "deploy/stack.toml").open("rb") as stack:
        assert tomllib.load(stack)["stack"]["server"] == "uvicorn"
    assert recorded(project)["context"]["cookiecutter"]["server"] == "uvicorn"
    # The project is today's template with the choice as an answer, and a check finds nothing more to do.
    fresh = bake(template_repo, tmp_path / "fresh", server="uvicorn")
    assert files_of(project, leave_out=(".cruft.json",)) == files_of(fresh, leave_out=(".cruft.json",))
    assert recorded(project)["kept_from_auto"] == ["server"]
    git(project, "add", "-A")
    git(project, "commit", "-qm", "The template's latest, on the same server")
    assert make("template-check").returncode == 0

    # The next release: the check still says what `auto` would choose, and the update still keeps it.
    template_repo.commit("A release: nginx, a figure, a new file, a removed one", maintainers_improvements)
    checked = make("template-check")
    assert "`auto` would now choose server granian, not uvicorn" in checked.stdout, output(checked)
    updated = make("template-update")
    assert updated.returncode == 0, output(updated)
    assert recorded(project)["context"]["cookiecutter"]["server"] == "uvicorn"
    git(project, "add", "-A")
    git(project, "commit", "-qm", "The template's next release")

    # Changing the workload lets `auto` choose again, from the benchmark as it is now.
    changed = make("template-update", 'VARIABLES={"workload": "mixed"}')
    assert changed.returncode == 0, output(changed)
    assert recorded(project)["context"]["cookiecutter"]["server"] == "auto"
    assert "kept_from_auto" not in recorded(project)
    fresh = bake(template_repo, tmp_path / "mixed", workload="mixed")
    assert files_of(project, leave_out=(".cruft.json",)) == files_of(fresh, leave_out=(".cruft.json",))
    assert make.left_outside() == []


def test_cruft_create_makes_the_project_and_the_record_cookiecutter_does(
    template_repo: TemplateRepo, tmp_path: Path
) -> None:
    baked = bake(template_repo, tmp_path / "baked")
    created = subprocess.run(
        [
            str(TOOLS / "cruft"),
            "create",
            "--no-input",
            "--output-dir",
            str(tmp_path / "created"),
            str(template_repo.path),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    assert created.returncode == 0, created.stderr
    project = tmp_path / "created" / "my_service"
    assert files_of(project, leave_out=(".cruft.json",)) == files_of(baked, leave_out=(".cruft.json",))
    assert recorded(project) == recorded(baked)


def test_cookiecutter_replay_bakes_the_same_project(tmp_path: Path) -> None:
    first = run_cookiecutter(tmp_path, context(framework="django", server="granian", cpu_limit="1.5"))
    assert first.result.returncode == 0, first.result.stderr
    again = run_cookiecutter(tmp_path, {}, "--replay", "-f", "-o", str(tmp_path / "again"))
    assert again.result.returncode == 0, again.result.stderr
    assert files_of(tmp_path / "again" / "my_service") == files_of(first.output_dir / "my_service")


@dataclass
class Stopped:
    """A project in a state `make template-check` or `template-update` cannot go on from."""

    target: str
    arrange: Callable[[Path, TemplateRepo], None]
    says: str


def uncommitted(project: Path, _: TemplateRepo) -> None:
    with (project / "README.md").open("a") as readme:
        readme.write("A note not yet committed.\n")


STOPPED = {
    "no record": Stopped(
        "template-check",
        lambda project, _: git(project, "rm", "-q", ".cruft.json"),
        "template-check: no .cruft.json here: the project is not linked to its template (`cruft link URL` links it)",
    ),
    "template gone": Stopped(
        "template-check",
        lambda _, repo: shutil.rmtree(repo.path),
        "template-check: cannot reach the template {template}: '{template}' does not appear to be a git repository",
    ),
    "not a git repository": Stopped(
        "template-update",
        lambda project, _: shutil.rmtree(project / ".git"),
        "template-update: {project} is not a git repository: commit the project first, so the update can be undone",
    ),
    "uncommitted changes": Stopped(
        "template-update",
        uncommitted,
        "template-update: uncommitted changes: commit or stash them first, so the update is a change of its own",
    ),
    "an answer out of range": Stopped(
        'template-update VARIABLES={"cpu_limit": "0"}',
        lambda project, repo: None,
        "pyserve-template: cpu_limit: '0' is not a finite number > 0; give cores as a number > 0 and <= 1024"
        " (e.g. 0.5, 2 or 500m)",
    ),
    "an answer off the menu": Stopped(
        'template-update VARIABLES={"framework": "rails"}',
        lambda project, repo: None,
        "template-update: rails provided for choice variable framework, but the choices are"
        " ['fastapi', 'django', 'flask', 'quart', 'starlette', 'litestar'].",
    ),
}


@pytest.mark.parametrize("case", STOPPED.values(), ids=STOPPED.keys())
def test_what_stops_a_check_or_an_update_is_said_in_one_line(
    template_repo: TemplateRepo, tmp_path: Path, make_in, case: Stopped
) -> None:
    project = owned(bake(template_repo, tmp_path / "owner"))
    make = make_in(project)
    case.arrange(project, template_repo)
    before = files_of(project)
    result = make(*case.target.split(" ", 1))
    assert result.returncode != 0
    said = [line for line in output(result).splitlines() if line and not line.startswith("make: ***")]
    assert said[-1] == case.says.format(template=template_repo.path, project=project), output(result)
    assert "Traceback" not in output(result)
    assert files_of(project) == before, "a refused update changed the project"
