"""The release step (`pyserve migrate`) on a real PostgreSQL (pyserve_template/postgres.py), for both kinds
of migrations a project gets: yoyo's SQL files (every framework but Django) and Django's own.

Three replicas started at the same moment apply each migration exactly once, taking turns on the
advisory lock; a release whose schema is current says so in one line; a migration that fails exits 1
with one line naming it and the database's reason while the version already running goes on serving,
within the connection budget; the project's own tests refuse a migration that drops a column the
running code reads; a team's MIGRATE_COMMAND replaces the sample's step.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pyserve_template.baking import free_port, project_venv
from pyserve_template.postgres import AdvisoryLockWatch, ConnectionWatch, Postgres, running_postgres

from .load import SteadyLoad
from .stack import running_stack

pytestmark = pytest.mark.e2e

SERVER_MAX_CONNECTIONS = 30
BUDGET = 10
# One framework for each kind of migrations.
TOOLS = {"yoyo": "fastapi", "django": "django"}
REPLICAS = 3

DJANGO_MIGRATION = """from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("{package}", "{previous}")]

    operations = [
        {operations},
    ]
"""
# Each tool's spelling of one change: a migration that takes a second (the lock is seen held while
# the other replicas wait) and adds a column; one the database refuses; one that drops a column the
# sample's code reads (yoyo's sample reads `id`, Django's model `visited_at`).
MIGRATIONS = {
    "yoyo": {
        "slow": ("0002_visit_note.sql", "SELECT pg_sleep(1);\nALTER TABLE visits ADD COLUMN note text;\n"),
        "broken": ("0003_referrer.sql", "ALTER TABLE visits ADD COLUMN referrer bigint REFERENCES nowhere (id);\n"),
        "drops": ("0003_drop_id.sql", "ALTER TABLE visits DROP COLUMN id;\n"),
    },
    "django": {
        "slow": (
            "0002_visit_note.py",
            'migrations.RunSQL("SELECT pg_sleep(1)", migrations.RunSQL.noop),\n'
            '        migrations.AddField("visit", "note", models.TextField(null=True))',
        ),
        "broken": (
            "0003_referrer.py",
            'migrations.RunSQL("ALTER TABLE visits ADD COLUMN referrer bigint REFERENCES nowhere (id)")',
        ),
        "drops": ("0003_drop_visited_at.py", 'migrations.RemoveField("visit", "visited_at")'),
    },
}
# What each tool records of the migrations it applied, in the project's database.
APPLIED = {
    "yoyo": "SELECT migration_id, count(*) FROM _yoyo_migration GROUP BY migration_id",
    "django": "SELECT name, count(*) FROM django_migrations WHERE app = %s GROUP BY name",
}


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    with running_postgres(SERVER_MAX_CONNECTIONS) as server:
        yield server


@dataclass
class Project:
    """A baked project of its own (its migrations/ gets files), with a database of its own."""

    path: Path
    venv: Path
    tool: str
    database_url: str

    @property
    def package(self) -> str:
        with (self.path / "deploy" / "stack.toml").open("rb") as stack:
            return str(tomllib.load(stack)["template"]["project_slug"])

    def add(self, kind: str) -> str:
        """One of MIGRATIONS' changes as the project's next migration; its name."""
        name, text = MIGRATIONS[self.tool][kind]
        if self.tool == "django":
            previous = sorted(path.stem for path in (self.path / self.package / "migrations").glob("0*.py"))[-1]
            text = DJANGO_MIGRATION.format(package=self.package, previous=previous, operations=text)
        (self.path / self.package / "migrations" / name).write_text(text, encoding="utf-8")
        return name.rpartition(".")[0]

    def shown(self, name: str) -> str:
        """A migration as the step's line names it: Django's with its app."""
        return f"{self.package}.{name}" if self.tool == "django" else name

    def remove(self, name: str) -> None:
        for path in (self.path / self.package / "migrations").glob(f"{name}.*"):
            path.unlink()

    def env(self, **changes: str) -> dict[str, str]:
        return {
            "PATH": f"{self.venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
            "DATABASE_URL": self.database_url,
            "DJANGO_SECRET_KEY": "tests-only",
            "LOG_FORMAT": "text",
            **changes,
        }

    def start_migrate(self, **changes: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [self.venv / "bin" / "pyserve", "migrate"],
            cwd=self.path,
            env=self.env(**changes),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def migrate(self, **changes: str) -> tuple[int, list[str]]:
        """`pyserve migrate`: its exit status and the lines it logged."""
        process = self.start_migrate(**changes)
        output, _ = process.communicate(timeout=120)
        return process.returncode, output.splitlines()

    def applied(self, postgres: Postgres) -> dict[str, int]:
        parameters = (self.package,) if self.tool == "django" else ()
        return dict(postgres.query(self.database_url, APPLIED[self.tool], parameters))


def step_lines(lines: list[str], level: str = "") -> list[str]:
    return [line for line in lines if " pyserve.migrate " in line and f" {level}" in line]


@pytest.fixture(params=list(TOOLS))
def project(request, fresh_bake, postgres: Postgres) -> Project:
    tool = request.param
    path = fresh_bake(framework=TOOLS[tool], database="postgres", db_max_connections=str(BUDGET))
    return Project(path, project_venv(path, dev=True), tool, postgres.fresh_database())


def test_replicas_started_together_apply_each_migration_once(project: Project, postgres: Postgres) -> None:
    slow = project.add("slow")
    database = project.database_url.rpartition("/")[2]
    with AdvisoryLockWatch(postgres, interval=0.01, database=database).running() as locks:
        processes = [project.start_migrate() for _ in range(REPLICAS)]
        outputs = [process.communicate(timeout=120)[0].splitlines() for process in processes]
    assert [process.returncode for process in processes] == [0] * REPLICAS, outputs
    summaries = sorted(step_lines(lines, "INFO")[-1].partition(" pyserve.migrate ")[2] for lines in outputs)
    print(*summaries, sep="\n")
    first = "0001_initial" if project.tool == "django" else "0001_visits"
    assert project.applied(postgres) == {first: 1, slow: 1}
    assert sum("applied 2 migrations" in line for line in summaries) == 1, summaries
    current = f"the schema is current: 2 migrations applied before, none pending ({project.tool})"
    assert summaries.count(current) == REPLICAS - 1, summaries
    # One replica held the lock at a time while the others waited on it, and each waiter said so.
    assert max(locks.held) == 1 and max(locks.waiting) >= 1, (max(locks.held), max(locks.waiting))
    assert sum(any("waiting for the migration lock" in line for line in lines) for lines in outputs) >= 1


def test_a_release_whose_schema_is_current_does_nothing_and_says_so(project: Project, postgres: Postgres) -> None:
    assert project.migrate()[0] == 0
    before = project.applied(postgres)
    status, lines = project.migrate()
    assert status == 0 and project.applied(postgres) == before
    assert [line.partition(" pyserve.migrate ")[2] for line in step_lines(lines)] == [
        f"the schema is current: 1 migration applied before, none pending ({project.tool})"
    ]


def test_a_failed_migration_stops_the_release_while_the_running_version_serves(
    project: Project, postgres: Postgres
) -> None:
    """`make local` serves the release before; under a steady load on /api/db the next release's
    migration fails: one line names it and the database's reason, nothing of it is recorded, no request
    fails, and the app's connections with the step's never pass the budget. A release that works
    then applies under the same load."""
    with running_stack(project.path, project.venv, env={"DATABASE_URL": project.database_url}) as stack:
        plan = stack.plan()
        users = 2 * plan["workers"] * plan["db_pool_size"]  # every pool full, requests queued behind them
        load = SteadyLoad(stack.http_port, "/api/db?ms=20", users)
        with ConnectionWatch(postgres).running() as watch, load.running():
            time.sleep(1)
            broken = project.add("broken")
            status, lines = project.migrate()
            project.remove(broken)
            slow = project.add("slow")
            applied_status, applied_lines = project.migrate()
            time.sleep(1)
        answered = stack.get("/api/db?ms=1")
    print(f"{project.tool}: {load.count()} requests, {len(load.failures())} failed, at most {watch.most} connections")
    print(*step_lines(lines), *step_lines(applied_lines), sep="\n")
    [failure] = step_lines(lines, "ERROR")
    assert status == 1 and "Traceback" not in "\n".join(lines)
    assert f"migration {project.shown(broken)} failed ({project.tool}): " in failure
    assert 'relation "nowhere" does not exist' in failure and failure.endswith("the release stops here")
    assert broken not in project.applied(postgres)
    assert applied_status == 0 and slow in project.applied(postgres), applied_lines
    assert load.count() > users and not load.failures(), load.failures()[:5]
    assert answered.status == 200 and json.loads(answered.body)["visit"] == load.count() + 1
    assert 0 < watch.most <= BUDGET, watch.most


def test_an_unreachable_database_stops_the_release_in_one_line(project: Project) -> None:
    status, lines = project.migrate(DATABASE_URL=f"postgresql://app:app@127.0.0.1:{free_port()}/app")
    [failure] = step_lines(lines, "ERROR")
    assert status == 1 and "Traceback" not in "\n".join(lines)
    assert "the release step could not run: connection failed" in failure and "Connection refused" in failure


def test_the_projects_tests_refuse_a_migration_that_drops_a_column_the_code_reads(project: Project) -> None:
    """`make test` (tests/test_migrations.py): squawk on yoyo's SQL, django-migration-linter on Django's."""

    def make_test() -> subprocess.CompletedProcess[str]:
        command = ["make", "test", f"PYTHON={project.venv / 'bin' / 'python'}", "PYTEST_ADDOPTS=-p no:cacheprovider"]
        env = {**project.env(), "PYTHONDONTWRITEBYTECODE": "1"}
        return subprocess.run(command, cwd=project.path, env=env, capture_output=True, text=True, check=False)

    clean = make_test()
    assert clean.returncode == 0 and " skipped" not in clean.stdout, clean.stdout + clean.stderr
    project.add("drops")
    refused = make_test()
    assert refused.returncode != 0, refused.stdout
    rule = "ban-drop-column" if project.tool == "yoyo" else "DROPPING columns (table: visits, column: visited_at)"
    assert rule in refused.stdout + refused.stderr, refused.stdout


def test_make_migration_writes_the_next_migration(project: Project) -> None:
    """The README's one command for a new migration: an empty SQL file that depends on the last
    (yoyo), or Django's makemigrations from a change to the model."""
    migrations = project.path / project.package / "migrations"
    if project.tool == "django":
        models = project.path / project.package / "models.py"
        models.write_text(
            models.read_text().replace("    class Meta:", "    note = models.TextField(null=True)\n\n    class Meta:")
        )
    before = set(migrations.glob("0*")) | set(migrations.glob("2*"))
    command = ["make", "migration", "NAME=add_note", f"PYTHON={project.venv / 'bin' / 'python'}"]
    made = subprocess.run(command, cwd=project.path, env=project.env(), capture_output=True, text=True, check=False)
    assert made.returncode == 0, made.stdout + made.stderr
    [new] = (set(migrations.glob("0*")) | set(migrations.glob("2*"))) - before
    text = new.read_text()
    if project.tool == "django":
        assert new.name == "0002_add_note.py" and "migrations.AddField(" in text and 'name="note"' in text, text
    else:
        assert new.name.endswith("-add-note.sql") and "-- depends: 0001_visits" in text, (new.name, text)
    status, lines = project.migrate()
    assert status == 0 and "applied 2 migrations" in step_lines(lines)[-1], lines


@pytest.mark.parametrize("tool", ["yoyo"])
def test_a_teams_own_command_replaces_the_sample_step(fresh_bake, postgres: Postgres, tool: str) -> None:
    """MIGRATE_COMMAND runs under the same lock in place of the sample's migrations; its failure is
    one line with its exit status and its last line on stderr."""
    path = fresh_bake(framework=TOOLS[tool], database="postgres")
    project = Project(path, project_venv(path), tool, postgres.fresh_database())
    succeeds = "python -c \"import os; print('migrated', os.environ['DATABASE_URL'].rpartition('/')[2])\""
    status, lines = project.migrate(MIGRATE_COMMAND=succeeds)
    assert status == 0 and f"migrated {project.database_url.rpartition('/')[2]}" in lines, lines
    assert postgres.query(project.database_url, "SELECT to_regclass('visits')") == [(None,)]  # not the sample's
    fails = "python -c \"import sys; sys.exit('no such table: accounts')\""
    status, lines = project.migrate(MIGRATE_COMMAND=fails)
    [failure] = step_lines(lines, "ERROR")
    assert status == 1 and "exited 1: no such table: accounts" in failure, lines
