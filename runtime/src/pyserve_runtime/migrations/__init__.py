"""The release step's migrations: each tool applies what is pending under one advisory lock.

`pyserve migrate` (migrate.py) picks the tool deploy/stack.toml names, or the team's MIGRATE_COMMAND,
and turns what it reports into one line of the log.
"""

from __future__ import annotations

from dataclasses import dataclass

# What one run of the step may hold on the database, which the plan keeps out of the pools' budget
# (tuning/model.py): yoyo applies each migration on a second connection beside its own; Django uses
# one; a MIGRATE_COMMAND one beside the lock's.
CONNECTIONS = 2


@dataclass(frozen=True)
class Applied:
    """What a run did: the migrations it applied, in order, and how many were applied before it.
    `before` is None where the tool cannot say (a team's own command)."""

    tool: str
    applied: tuple[str, ...]
    before: int | None


class MigrationFailed(Exception):
    """A migration that did not apply: which one (None where the tool cannot say), and why."""

    def __init__(self, tool: str, migration: str | None, reason: str) -> None:
        super().__init__(reason)
        self.tool = tool
        self.migration = migration
        self.reason = reason


def first_line(error: BaseException) -> str:
    """An error's message, as the one line a log gets: the database's first line says what failed."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
