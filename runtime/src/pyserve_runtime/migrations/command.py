"""A team's own release step: MIGRATE_COMMAND, run under the advisory lock, held on a connection of its own.

The command's output goes to the log as it comes; when it fails, its last line on stderr (a
traceback's last line says what went wrong) is the reason the step gives.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

from . import Applied, MigrationFailed
from .lock import advisory_lock, on

TOOL = "MIGRATE_COMMAND"


def apply(
    command: tuple[str, ...], database_url: str, key: int, waiting: Callable[[int | None], None], application_name: str
) -> Applied:
    import psycopg

    with (
        psycopg.connect(database_url, autocommit=True, application_name=application_name) as connection,
        advisory_lock(on(connection), key, waiting),
    ):
        try:
            process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, errors="replace")
        except OSError as error:
            raise MigrationFailed(TOOL, None, f"{command[0]!r} cannot run: {error.strerror}") from None
        last = ""
        assert process.stderr is not None
        for line in process.stderr:
            sys.stderr.write(line)
            last = line.strip() or last
        if process.wait():
            shown = " ".join(command)
            raise MigrationFailed(TOOL, None, f"`{shown}` exited {process.returncode}: {last or 'nothing on stderr'}")
    return Applied(TOOL, (), None)
