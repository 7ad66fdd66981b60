"""What the runtime's tests share: a project directory as a bake leaves it, reduced to deploy/stack.toml."""

from __future__ import annotations

from pathlib import Path

import pytest

STACK_TOML = """\
[stack]
framework = "flask"
interface = "wsgi"
server = "gunicorn"
workload = "mixed"

[limits]
cpu = "1"
memory = "512MiB"

[memory]
worker = 50
server = 40

[app]
module = "my_service.app:app"
health_path = "/healthz"

[database]
engine = "none"

[template]
project_name = "My Service"
project_slug = "my_service"
static_strategy = "nginx"
python_version = "3.13"
use_kubernetes = false
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project root whose deploy/stack.toml answers flask, WSGI, gunicorn, 1 CPU and 512 MiB."""
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "stack.toml").write_text(STACK_TOML, encoding="utf-8")
    return tmp_path
