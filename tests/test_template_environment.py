"""The template's own test environment is installed from a lock (requirements-dev.txt, hashed) made
from its direct requirements (requirements-dev.in): the lock holds each of them as pinned, and was
made by the command the .in file names. A project's tools are pinned where the suite's are, so the
suite runs them at the versions a team gets."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement

from .conftest import TEMPLATE_ROOT

DIRECT = TEMPLATE_ROOT / "requirements-dev.in"
LOCK = TEMPLATE_ROOT / "requirements-dev.txt"


def pins(text: str) -> dict[str, str]:
    """Package name -> pinned version, from a requirements file's requirement lines."""
    found = {}
    for line in text.splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            requirement = Requirement(line.removesuffix("\\").strip())
            [specifier] = requirement.specifier
            found[requirement.name.lower().replace("_", "-")] = specifier.version
    return found


def test_the_lock_holds_every_direct_requirement_as_pinned() -> None:
    direct, locked = pins(DIRECT.read_text()), pins(LOCK.read_text())
    assert {name: locked.get(name) for name in direct} == direct


def test_every_locked_package_is_hashed() -> None:
    entries = re.split(r"\n(?=\S)", LOCK.read_text())
    packages = [entry for entry in entries if not entry.startswith("#")]
    assert packages and all("--hash=sha256:" in entry for entry in packages)


def test_the_lock_was_made_by_the_command_the_direct_file_names() -> None:
    named = re.search(r"^#\s+(uv pip compile .*)$", DIRECT.read_text(), re.MULTILINE)
    made_by = re.search(r"^#\s+(uv pip compile .*)$", LOCK.read_text(), re.MULTILINE)
    assert named and made_by and named.group(1) == made_by.group(1)


def test_a_projects_tools_are_pinned_at_the_suites_versions(bake) -> None:
    project = bake()
    service = tomllib.loads((project / "pyproject.toml").read_text())
    loadtest = tomllib.loads((project / "loadtest" / "pyproject.toml").read_text())
    groups = service["dependency-groups"]
    tools = [item for group in groups.values() for item in group if isinstance(item, str)]
    tools += loadtest["project"]["dependencies"]
    suite = pins(LOCK.read_text())
    projects = pins("\n".join(tools))
    # Locust, ruff, pytest, cruft and matplotlib run from the suite's environment; httpx only in the
    # project's tests, from its own lock.
    shared = {name: projects[name] for name in projects if name in suite}
    assert {"locust", "ruff", "pytest", "cruft"} <= shared.keys()
    assert {name: suite[name] for name in shared} == shared
