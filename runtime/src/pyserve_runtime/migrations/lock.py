"""One release step at a time: a PostgreSQL advisory lock, held for as long as the step runs.

Replicas that start together each run the step (compose's one-shot service, each pod's init
container); the first takes the lock and migrates, the others wait for it and then find nothing
pending. A session-level advisory lock goes with its connection, so a step that is killed never
leaves a lock behind (https://www.postgresql.org/docs/current/explicit-locking.html#ADVISORY-LOCKS).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

# Runs one statement on the connection the step holds the lock on, and returns its first row.
Query = Callable[[str, Sequence[object]], tuple[object, ...] | None]

# Who holds the lock: pg_locks splits a bigint key into its high (classid) and low (objid) halves.
HOLDER = (
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
    " AND classid::bigint = %s AND objid::bigint = %s AND objsubid = 1"
)


def on(connection: Any) -> Query:
    """Query on a psycopg connection in autocommit mode (the lock is the session's, not a transaction's)."""

    def query(sql: str, parameters: Sequence[object]) -> tuple[object, ...] | None:
        row: tuple[object, ...] | None = connection.execute(sql, parameters).fetchone()
        return row

    return query


def key_for(package: str) -> int:
    """The lock's key: the same for every replica of one project, another for another project
    sharing the database."""
    digest = hashlib.sha256(f"pyserve migrate {package}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def holder(query: Query, key: int) -> int | None:
    """The process id of the session holding the lock, if it is held."""
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    row = query(HOLDER, [unsigned >> 32, unsigned & 0xFFFF_FFFF])
    return None if row is None else int(str(row[0]))


@contextlib.contextmanager
def advisory_lock(query: Query, key: int, waiting: Callable[[int | None], None]) -> Iterator[None]:
    """Hold the lock for the block; `waiting` hears who holds it when it is not free at once."""
    row = query("SELECT pg_try_advisory_lock(%s)", [key])
    if not (row and row[0]):
        waiting(holder(query, key))
        query("SELECT pg_advisory_lock(%s)", [key])
    try:
        yield
    finally:
        # A connection the step broke has let the lock go with it: nothing is left to release.
        with contextlib.suppress(Exception):
            query("SELECT pg_advisory_unlock(%s)", [key])
