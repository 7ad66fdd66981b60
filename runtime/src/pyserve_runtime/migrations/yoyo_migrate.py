"""The sample's migrations for apps that talk to PostgreSQL through psycopg: plain SQL files applied by
yoyo-migrations (https://ollycope.com/software/yoyo/latest/), in the package's migrations/ directory.

yoyo records each applied migration in _yoyo_migration. Its own lock (a row in yoyo_lock) outlives a
process killed while holding it, until someone runs `yoyo break-lock`; the step takes the advisory
lock on yoyo's connection instead, which goes with the connection.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from . import Applied, MigrationFailed, first_line
from .lock import advisory_lock, on

TOOL = "yoyo"


def yoyo_url(database_url: str, application_name: str) -> str:
    """DATABASE_URL as yoyo's URL: its psycopg 3 backend, and a name pg_stat_activity shows."""
    parts = urlsplit(database_url)
    arguments = dict(parse_qsl(parts.query))
    arguments.setdefault("application_name", application_name)
    return urlunsplit(("postgresql+psycopg", parts.netloc, parts.path, urlencode(arguments), ""))


def named_user() -> None:
    """yoyo logs who applied each migration (getpass.getuser()), which fails for a container's user
    that has no name (10001 in the app image): LOGNAME names it then."""
    try:
        getpass.getuser()
    except OSError:
        os.environ["LOGNAME"] = "pyserve-migrate"


def apply(
    database_url: str, directory: Path, key: int, waiting: Callable[[int | None], None], application_name: str
) -> Applied:
    from yoyo import read_migrations
    from yoyo.connections import get_backend_class, parse_uri
    from yoyo.migrations import default_migration_table

    named_user()

    # yoyo.get_backend() would create yoyo's tables at once, and two replicas creating one table
    # at the same moment collide in PostgreSQL's catalog: the backend is made first, its tables
    # under the lock.
    uri = parse_uri(yoyo_url(database_url, application_name))
    backend = get_backend_class(uri.scheme)(uri, default_migration_table)
    connection = backend.connection  # autocommit, as yoyo's PostgreSQL backend opens it
    try:
        with advisory_lock(on(connection), key, waiting):
            backend.init_database()
            migrations = read_migrations(str(directory))
            before = len(backend.get_applied_migration_hashes())
            applied: list[str] = []
            for migration in backend.to_apply(migrations):
                try:
                    backend.apply_one(migration)
                except Exception as error:  # the database's error, in a transaction yoyo rolled back
                    raise MigrationFailed(TOOL, migration.id, first_line(error)) from error
                applied.append(migration.id)
            return Applied(TOOL, tuple(applied), before)
    finally:
        connection.close()
