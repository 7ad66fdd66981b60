"""The migrations a release applies, linted before a database runs them (`make test`, CI).

During a rolling release the version still running serves on the new schema for a while: a
migration must not take away what it reads (a dropped or renamed column), nor hold a lock that
stalls its requests. Expand, release, then contract (README.md, Schema changes).
"""

from __future__ import annotations
{%- if cookiecutter | resolved('migrations_tool') == "yoyo" %}

import subprocess
import sys
from pathlib import Path

from pyserve_runtime import settings

MIGRATIONS = settings.PROJECT / "{{ cookiecutter.project_slug }}" / "migrations"
# squawk-cli's binary, installed beside this Python (the lint group).
SQUAWK = Path(sys.executable).with_name("squawk")


def test_squawk_finds_nothing_in_any_migration() -> None:
    """squawk (.squawk.toml) on every SQL file: a dropped column, a rename, a NOT NULL without a
    default, an index built without CONCURRENTLY, a lock taken without a lock_timeout."""
    files = sorted(MIGRATIONS.glob("*.sql"))
    assert files, f"no migration in {MIGRATIONS}"
    result = subprocess.run(
        [SQUAWK, "--reporter", "gcc", *files], cwd=settings.PROJECT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
{%- else %}

import os

import pytest
from pyserve_runtime import settings

# django-migration-linter reads from a database which migrations are applied (an empty one will
# do): CI gives it one; a run without DATABASE_URL skips it.
pytestmark = pytest.mark.skipif(not os.environ.get("DATABASE_URL"), reason="the linter needs DATABASE_URL")


def test_django_migration_linter_finds_nothing_in_any_migration() -> None:
    """django-migration-linter on every migration's SQL: a dropped or renamed column or table, a NOT
    NULL column without a default, and the like (https://github.com/3YOURMIND/django-migration-linter)."""
    os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "{{ cookiecutter.project_slug }}.settings")
    import django

    django.setup()
    from django_migration_linter import MigrationLinter

    linter = MigrationLinter(str(settings.PROJECT), no_cache=True)
    linter.lint_all_migrations(app_label="{{ cookiecutter.project_slug }}")
    assert not linter.has_errors, f"{linter.nb_erroneous} of {linter.nb_total} would break the version running (above)"
{%- endif %}
