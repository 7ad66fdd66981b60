"""`pyserve migrate`'s parts that need no database: its settings, its lock's key and its one line.
The step itself runs against a real PostgreSQL in pyserve-template's tests/test_migrations.py."""

from __future__ import annotations

import pytest

from pyserve_runtime import migrate, settings
from pyserve_runtime.migrations import Applied
from pyserve_runtime.migrations.lock import key_for
from pyserve_runtime.tuning import model


@pytest.mark.parametrize(
    ("env", "refusal"),
    [
        ({}, "DATABASE_URL: not set; give postgresql://user:password@host:5432/name"),
        ({"DATABASE_URL": "mysql://db/app"}, "DATABASE_URL: 'mysql://db/app'; give postgresql://"),
        (
            {"DATABASE_URL": "postgresql://db/app", "MIGRATE_COMMAND": "alembic upgrade 'head"},
            'MIGRATE_COMMAND: "alembic upgrade \'head" cannot be split as a shell would',
        ),
    ],
    ids=["no-url", "not-postgres", "unbalanced-quote"],
)
def test_bad_settings_are_refused_in_one_line(env: dict[str, str], refusal: str) -> None:
    with pytest.raises(settings.SettingError) as refused:
        settings.migrate_settings(env)
    assert str(refused.value).startswith(refusal) and "\n" not in str(refused.value)


def test_a_teams_command_is_split_as_a_shell_would() -> None:
    given = {"DATABASE_URL": "postgresql://db/app", "MIGRATE_COMMAND": "alembic -x 'env=prod db' upgrade head"}
    assert settings.migrate_settings(given).command == ("alembic", "-x", "env=prod db", "upgrade", "head")


def test_the_lock_key_is_the_projects_own_and_a_bigint() -> None:
    """Every replica of one project computes the same key; another project sharing the database another."""
    assert key_for("my_service") == key_for("my_service") != key_for("billing")
    assert -(2**63) <= key_for("my_service") < 2**63
    # Fixed by its definition, so that two versions of the runtime agree during a rolling release.
    assert key_for("my_service") == 0x24E9F058AC3C5DB


@pytest.mark.parametrize(
    ("outcome", "line"),
    [
        (Applied("yoyo", (), 3), "the schema is current: 3 migrations applied before, none pending (yoyo)"),
        (Applied("django", ("app.0002_note",), 1), "applied 1 migration (django) in 0.4 s: app.0002_note"),
        (Applied("yoyo", ("0002_a", "0003_b"), 1), "applied 2 migrations (yoyo) in 0.4 s: 0002_a, 0003_b"),
        (Applied("MIGRATE_COMMAND", (), None), "MIGRATE_COMMAND done in 0.4 s"),
    ],
    ids=["current", "one", "two", "command"],
)
def test_the_step_says_what_it_did_in_one_line(outcome: Applied, line: str) -> None:
    assert migrate.summary(outcome, 0.4) == line


def test_the_budget_keeps_the_release_steps_connections() -> None:
    budget = model.Database(max_connections=10, max_replicas=1)
    pool, _, reasons = model.fit_database(workers=2, threads=8, interface="wsgi", database=budget)
    # Two workers on the replica and on a deploy's new one beside it, and the step's own.
    assert 2 * 2 * pool + model.RELEASE_STEP_CONNECTIONS <= 10 and pool == 2, reasons
    with pytest.raises(model.TuningError) as refused:
        model.fit_database(workers=4, threads=8, interface="wsgi", database=model.Database(5))
    assert "once the release step has its 2" in str(refused.value)
