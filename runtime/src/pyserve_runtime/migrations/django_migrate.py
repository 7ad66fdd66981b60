"""Django's own migrations (`manage.py migrate`), applied in this process under the advisory lock,
taken on the connection Django migrates on.

Django records each applied migration in django_migrations; which one failed is the first of the
plan that is not recorded after the failure (each runs in a transaction of its own on PostgreSQL).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from . import Applied, MigrationFailed, first_line
from .lock import advisory_lock

TOOL = "django"


def apply(package: str, key: int, waiting: Callable[[int | None], None], application_name: str) -> Applied:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", f"{package}.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor
    from django.db.migrations.recorder import MigrationRecorder

    # One connection, made at once: the step needs no pool, and a pool would retry an unreachable
    # database for REQUEST_TIMEOUT before the step could say so.
    options = connection.settings_dict.setdefault("OPTIONS", {})
    options.pop("pool", None)
    options["application_name"] = application_name

    def query(sql: str, parameters: Sequence[object]) -> tuple[object, ...] | None:
        with connection.cursor() as cursor:
            cursor.execute(sql, parameters)
            row: tuple[object, ...] | None = cursor.fetchone()
            return row

    def recorded() -> set[str]:
        return {f"{app}.{name}" for app, name in MigrationRecorder(connection).applied_migrations()}

    try:
        with advisory_lock(query, key, waiting):
            executor = MigrationExecutor(connection)
            targets = executor.loader.graph.leaf_nodes()
            plan = [f"{migration.app_label}.{migration.name}" for migration, _ in executor.migration_plan(targets)]
            before = len(recorded())
            if plan:
                try:
                    call_command("migrate", interactive=False, verbosity=0)
                except Exception as error:
                    done = recorded()
                    failed = next((name for name in plan if name not in done), None)
                    raise MigrationFailed(TOOL, failed, first_line(error)) from error
            return Applied(TOOL, tuple(plan), before)
    finally:
        connection.close()
