"""`pyserve migrate`: the release step, which brings the database's schema to this version's before it serves.

Compose runs it once per `up` as a one-shot service the app waits on, Kubernetes in each pod's init
container, `make local` before it starts the app server. Each run holds one advisory lock on the
database while it migrates (migrations/lock.py), so replicas that start together take turns: the
first applies what is pending, the others find the schema current. One line says what happened;
a migration that fails exits 1 with its name and the database's reason, and the new version does
not start.
"""

from __future__ import annotations

import logging
import logging.config
import os
import sys
import time
from pathlib import Path

from . import logs
from .migrations import Applied, MigrationFailed, first_line
from .migrations.lock import key_for
from .settings import Project, SettingError, from_environment, migrate_settings, project

LOG = logging.getLogger("pyserve.migrate")
# What pg_stat_activity shows for the step's connections.
APPLICATION_NAME = "pyserve migrate"
# yoyo's migrations, in the app's package.
MIGRATIONS_DIRECTORY = "migrations"


def waiting(holder: int | None) -> None:
    by = f"process {holder} on the database" if holder is not None else "another release step"
    LOG.info("waiting for the migration lock, held by %s", by)


def apply(chosen: Project, database_url: str, command: tuple[str, ...]) -> Applied:
    key = key_for(chosen.package)
    if command:
        from .migrations import command as team_command

        return team_command.apply(command, database_url, key, waiting, APPLICATION_NAME)
    if chosen.migrations == "django":
        from .migrations import django_migrate

        return django_migrate.apply(chosen.package, key, waiting, APPLICATION_NAME)
    if chosen.migrations == "yoyo":
        from .migrations import yoyo_migrate

        directory = Path(chosen.package) / MIGRATIONS_DIRECTORY
        return yoyo_migrate.apply(database_url, directory, key, waiting, APPLICATION_NAME)
    raise SettingError(
        f"migrations: {chosen.migrations!r} in deploy/stack.toml is not django or yoyo; set MIGRATE_COMMAND"
    )


def summary(outcome: Applied, seconds: float) -> str:
    if outcome.tool == "MIGRATE_COMMAND":
        return f"MIGRATE_COMMAND done in {seconds:.1f} s"
    if not outcome.applied:
        return f"the schema is current: {migrations(outcome.before or 0)} applied before, none pending ({outcome.tool})"
    names = ", ".join(outcome.applied)
    return f"applied {migrations(len(outcome.applied))} ({outcome.tool}) in {seconds:.1f} s: {names}"


def migrations(count: int) -> str:
    return f"{count} migration" + ("" if count == 1 else "s")


def main(argv: list[str]) -> int:
    try:
        settings = migrate_settings(os.environ)
        logging.config.dictConfig(logs.dict_config(from_environment(), ("yoyo", "django")))
        chosen = project()
    except SettingError as error:
        print(f"pyserve migrate: {error}", file=sys.stderr)
        return 2
    if chosen.database == "none":
        print("pyserve migrate: this project has no database (deploy/stack.toml); nothing to migrate", file=sys.stderr)
        return 2
    started = time.monotonic()
    try:
        outcome = apply(chosen, settings.database_url, settings.command)
    except MigrationFailed as failure:
        which = f"migration {failure.migration}" if failure.migration else "the release step"
        LOG.error("%s failed (%s): %s; the release stops here", which, failure.tool, failure.reason)
        return 1
    except SettingError as error:
        LOG.error("%s", error)
        return 2
    except Exception as error:  # the database unreachable, a tool missing: one line, not a traceback
        LOG.error("the release step could not run: %s", first_line(error))
        return 1
    LOG.info("%s", summary(outcome, time.monotonic() - started))
    return 0
