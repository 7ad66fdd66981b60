"""The app's PostgreSQL connections: one pool per worker, sized by the plan, never shared across processes.

DATABASE_URL says where the database is (postgresql://user:password@host:5432/name). DB_POOL_SIZE
is how many connections this worker may hold: `pyserve serve` sets it from the plan, so that
replicas x workers x pool stays within DB_MAX_CONNECTIONS. A request that finds every connection
busy waits for one (up to REQUEST_TIMEOUT) instead of opening another.
{%- if cookiecutter.__interface == "asgi" %}

The pool is opened when the server starts the app in a worker (its lifespan startup), so each
worker has its own, and closed when the worker stops.
{%- else %}

The pool is opened by the worker's first query, after the server has forked it (a connection
inherited across a fork would be shared by two processes), and closed when the worker exits.
{%- endif %}
"""

from __future__ import annotations
{% if cookiecutter.__interface == "asgi" %}
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
{%- else %}
import atexit
import os
import threading
{%- endif %}

{%- if cookiecutter.__interface == "asgi" %}

from psycopg_pool import AsyncConnectionPool
{%- else %}

from psycopg_pool import ConnectionPool
{%- endif %}
from pyserve_runtime.settings import db_pool_size, request_timeout_s

# Without `pyserve serve` (a development server) there is no plan: a pool this small fits any budget.
DEVELOPMENT_POOL_SIZE = 2
# How long /readyz waits for a connection before it answers that the database is not there.
READY_TIMEOUT_S = 2.0
# A row in the sample's table (migrations/0001_visits.sql), whose id numbers the visit, and a wait
# of `ms` on the database that stands for what a real query spends there: one statement, one round trip.
VISIT = "WITH visit AS (INSERT INTO visits DEFAULT VALUES RETURNING id) SELECT id, pg_sleep(%s) FROM visit"


def pool_settings() -> dict[str, object]:
    """The pool's arguments from the environment: where, how many, how long a request waits."""
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        raise RuntimeError("DATABASE_URL is not set: give postgresql://user:password@host:5432/name")
    return {
        "conninfo": url,
        "min_size": 1,
        "max_size": db_pool_size(os.environ) or DEVELOPMENT_POOL_SIZE,
        "timeout": request_timeout_s(os.environ),
        "name": f"worker-{os.getpid()}",
    }
{%- if cookiecutter.__interface == "asgi" %}


_pool: AsyncConnectionPool | None = None


@asynccontextmanager
async def lifespan(app: object = None) -> AsyncIterator[None]:
    """Open this worker's pool for as long as the app is served. The opening does not wait for the
    database: the app starts while it is still coming up, and requests wait for a connection."""
    global _pool
    _pool = AsyncConnectionPool(**pool_settings(), open=False, check=AsyncConnectionPool.check_connection)
    await _pool.open(wait=False)
    try:
        yield
    finally:
        await _pool.close()
        _pool = None


def pool() -> AsyncConnectionPool:
    if _pool is None:
        raise RuntimeError("the database pool is not open: the server runs the app's lifespan, a test must too")
    return _pool


async def visit(ms: int) -> int:
    """A visit recorded by a query that takes `ms` on the database; its number."""
    async with pool().connection() as connection:
        row = await (await connection.execute(VISIT, [ms / 1000])).fetchone()
    assert row is not None
    return int(row[0])


async def ready() -> bool:
    """Whether a connection answers within READY_TIMEOUT_S: the readiness check, never the liveness one."""
    try:
        async with pool().connection(timeout=READY_TIMEOUT_S) as connection:
            await connection.execute("SELECT 1")
    except Exception:  # any failure means "not ready"; the pool logs the cause
        return False
    return True
{%- else %}


_pool: ConnectionPool | None = None
_opening = threading.Lock()


def pool() -> ConnectionPool:
    """This worker's pool, opened by its first query."""
    global _pool
    with _opening:
        if _pool is None:
            _pool = ConnectionPool(**pool_settings(), open=True, check=ConnectionPool.check_connection)
            atexit.register(_pool.close)
    return _pool


def visit(ms: int) -> int:
    """A visit recorded by a query that takes `ms` on the database; its number."""
    with pool().connection() as connection:
        row = connection.execute(VISIT, [ms / 1000]).fetchone()
    assert row is not None
    return int(row[0])


def ready() -> bool:
    """Whether a connection answers within READY_TIMEOUT_S: the readiness check, never the liveness one."""
    try:
        with pool().connection(timeout=READY_TIMEOUT_S) as connection:
            connection.execute("SELECT 1")
    except Exception:  # any failure means "not ready"; the pool logs the cause
        return False
    return True
{%- endif %}
