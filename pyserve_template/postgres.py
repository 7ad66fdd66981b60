"""A real PostgreSQL for the database tests and the benchmark: Debian's server in a temporary data
directory, on 127.0.0.1 and a port of its own, with a small max_connections so that running out is
quick to show.

The app connects as `app`, a role without superuser rights (PostgreSQL keeps its reserved slots
from it, as from any application); the test watches pg_stat_activity as the superuser over the
Unix socket. Everything is stopped and removed on the way out.
"""

from __future__ import annotations

import contextlib
import itertools
import pwd
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import psycopg

from .baking import free_port

POSTGRES_USER = "postgres"  # the OS user Debian's package makes; the server refuses to run as root
APP_ROLE = "app"
APP_PASSWORD = "app-test-only"
# The test's own connection as the app's role, which the counts leave out.
PROBE = "pyserve-test-probe"
APP_CONNECTIONS = "SELECT count(*) FROM pg_stat_activity WHERE usename = %s AND application_name <> %s"
ADVISORY_LOCKS = (
    "SELECT granted FROM pg_locks WHERE locktype = 'advisory'"
    " AND database = (SELECT oid FROM pg_database WHERE datname = %s)"
)


def server_binaries() -> Path:
    """Debian keeps initdb and pg_ctl out of PATH, per major version: the newest installed."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda path: int(path.parent.parent.name))
    if not found:
        raise RuntimeError(
            "PostgreSQL's server is not installed (./run-tests and bench/run install Debian's postgresql)"
        )
    return found[-1].parent


def as_postgres(*command: str | Path) -> list[str]:
    return ["runuser", "-u", POSTGRES_USER, "--", *map(str, command)]


@dataclass
class Postgres:
    directory: Path
    port: int
    max_connections: int
    log: Path
    _databases: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def url(self) -> str:
        """What the app gets as DATABASE_URL."""
        return self.url_of(APP_ROLE)

    def url_of(self, database: str) -> str:
        return f"postgresql://{APP_ROLE}:{APP_PASSWORD}@127.0.0.1:{self.port}/{database}"

    def fresh_database(self) -> str:
        """A new, empty database the app's role owns, and its URL: each project migrates its own schema."""
        name = f"{APP_ROLE}_{next(self._databases)}"
        with self.admin() as connection:
            connection.execute(f"CREATE DATABASE {name} OWNER {APP_ROLE}")
        return self.url_of(name)

    def query(self, database_url: str, sql: str, parameters: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of `sql` in the database of `database_url`, read as the superuser (no app slot taken)."""
        database = database_url.rpartition("/")[2]
        with psycopg.connect(host=str(self.directory), port=self.port, user=POSTGRES_USER, dbname=database,
                             autocommit=True) as connection:  # fmt: skip
            return connection.execute(sql, parameters).fetchall()

    def admin(self) -> psycopg.Connection:
        """A superuser connection over the Unix socket: it takes none of the app's slots."""
        return psycopg.connect(host=str(self.directory), port=self.port, user=POSTGRES_USER, dbname="postgres",
                               autocommit=True)  # fmt: skip

    def app_connections(self) -> int:
        with self.admin() as connection:
            row = connection.execute(APP_CONNECTIONS, [APP_ROLE, PROBE]).fetchone()
        assert row is not None
        return int(row[0])

    def refusals(self) -> int:
        """How often the server refused a connection for want of a slot, from its own log: none left,
        or only the ones it keeps for superusers."""
        log = self.log.read_text(errors="replace")
        return log.count("too many clients already") + log.count("remaining connection slots are reserved")

    def another_client_connects(self) -> bool:
        """Whether one more connection as the app (another replica, a migration) gets a slot now."""
        try:
            with psycopg.connect(self.url, connect_timeout=5, application_name=PROBE):
                return True
        except psycopg.OperationalError:
            return False

    def wait_until_no_app_connections(self, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while self.app_connections():
            if time.monotonic() > deadline:
                raise AssertionError(f"the app's connections were still open after {seconds} s")
            time.sleep(0.1)


@dataclass
class Watch:
    """Samples the server every `interval` seconds, on a superuser connection, while it runs."""

    postgres: Postgres
    interval: float = 0.02
    _stop: threading.Event = field(default_factory=threading.Event)

    def sample(self, connection: psycopg.Connection) -> None:
        raise NotImplementedError

    def _watch(self) -> None:
        with self.postgres.admin() as connection:
            while not self._stop.is_set():
                self.sample(connection)
                self._stop.wait(self.interval)

    @contextlib.contextmanager
    def running(self) -> Iterator[Self]:
        thread = threading.Thread(target=self._watch, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(timeout=10)


@dataclass
class ConnectionWatch(Watch):
    """The app's connections in pg_stat_activity."""

    samples: list[int] = field(default_factory=list)

    @property
    def most(self) -> int:
        return max(self.samples, default=0)

    def sample(self, connection: psycopg.Connection) -> None:
        row = connection.execute(APP_CONNECTIONS, [APP_ROLE, PROBE]).fetchone()
        self.samples.append(int(row[0]) if row else 0)


@dataclass
class AdvisoryLockWatch(Watch):
    """The advisory locks in one database (pg_locks): how many are held, and how many waited for."""

    database: str = ""
    held: list[int] = field(default_factory=list)
    waiting: list[int] = field(default_factory=list)

    def sample(self, connection: psycopg.Connection) -> None:
        granted = [row[0] for row in connection.execute(ADVISORY_LOCKS, [self.database]).fetchall()]
        self.held.append(granted.count(True))
        self.waiting.append(granted.count(False))


@contextlib.contextmanager
def running_postgres(max_connections: int) -> Iterator[Postgres]:
    """initdb, start, a role and a database for the app; then stop (fast) and remove everything."""
    binaries = server_binaries()
    owner = pwd.getpwnam(POSTGRES_USER)
    directory = Path(tempfile.mkdtemp(prefix="pyserve-postgres-"))
    directory.chmod(0o755)  # the server runs as postgres and must reach its data and socket here
    data = directory / "data"
    data.mkdir()
    for path in (directory, data):
        shutil.chown(path, owner.pw_uid, owner.pw_gid)
    postgres = Postgres(directory, free_port(), max_connections, directory / "server.log")
    options = (
        f"-c listen_addresses=127.0.0.1 -p {postgres.port} -k {directory} -c max_connections={max_connections}"
        " -c fsync=off -c shared_buffers=16MB"
    )
    subprocess.run(as_postgres(binaries / "initdb", "-D", data, "-A", "trust", "-U", POSTGRES_USER),
                   check=True, capture_output=True)  # fmt: skip
    # The app's role authenticates with its password over TCP; the superuser stays on the socket.
    (data / "pg_hba.conf").write_text(
        f"local all {POSTGRES_USER} trust\nhost all {APP_ROLE} 127.0.0.1/32 scram-sha-256\n"
    )
    started = False
    try:
        subprocess.run(
            as_postgres(binaries / "pg_ctl", "-D", data, "-l", postgres.log, "-o", options, "-w", "start"),
            check=True,
            capture_output=True,
            timeout=60,
        )
        started = True
        with postgres.admin() as connection:
            connection.execute(f"CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{APP_PASSWORD}'")
            connection.execute(f"CREATE DATABASE {APP_ROLE} OWNER {APP_ROLE}")
        yield postgres
    finally:
        if started:
            subprocess.run(as_postgres(binaries / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop"),
                           check=False, capture_output=True, timeout=60)  # fmt: skip
        shutil.rmtree(directory, ignore_errors=True)
