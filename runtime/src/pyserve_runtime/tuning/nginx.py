"""nginx's size for the WebSockets and event streams the plan expects: what
deploy/nginx/templates/main/connections.conf is rendered with."""

from __future__ import annotations

# nginx's connections per worker beside the long-lived ones, each of which holds two, the client's
# and the app's (nginx_connections below; nginx_start.sh, in an image with no Python, computes the same).
NGINX_BASE_CONNECTIONS = 4096


def nginx_worker_connections(long_lived_connections: int) -> int:
    return NGINX_BASE_CONNECTIONS + 2 * long_lived_connections


def nginx_connections(long_lived_connections: int) -> dict[str, int]:
    """What deploy/nginx/templates/main/connections.conf is rendered with: each worker's connections
    and, a descriptor each with as many again for files and logs, its open files."""
    connections = nginx_worker_connections(long_lived_connections)
    return {"NGINX_WORKER_CONNECTIONS": connections, "NGINX_OPEN_FILES": 2 * connections}
