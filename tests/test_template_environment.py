"""The template's own test environment is installed from a lock (requirements-dev.txt, hashed) made
from its direct requirements (requirements-dev.in): the lock holds each of them as pinned, and was
made by the command the .in file names."""

from __future__ import annotations

import re

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
