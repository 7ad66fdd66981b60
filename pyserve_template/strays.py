"""What running things leaves in a project (bytecode, tool caches, a venv, `make local`'s files):
never part of a bake, even when something ran inside the template's own project folder.

The generated project's .gitignore is the list. cookiecutter copies what it names without rendering
it (cookiecutter.json's `_copy_without_render`: a cache may hold anything that looks like Jinja),
and the post-generation hook removes it. Patterns are .gitignore's: a trailing / matches directories
only, and a pattern with a / inside is anchored at the project's root.
"""

from __future__ import annotations

import shutil
from fnmatch import fnmatchcase
from pathlib import Path

GITIGNORE = ".gitignore"


def ignore_patterns(project: Path) -> list[str]:
    lines = (project / GITIGNORE).read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith(("#", "!"))]


def copy_without_render_pattern(pattern: str) -> str:
    """The `_copy_without_render` pattern (fnmatch on the path under the template) for one .gitignore line."""
    name = pattern.strip("/")
    return name if "/" in pattern.rstrip("/") or name.startswith("*") else f"*{name}"


def matches(relative: Path, is_dir: bool, pattern: str) -> bool:
    directories_only = pattern.endswith("/")
    name = pattern.strip("/")
    anchored = "/" in pattern.rstrip("/")
    target = relative.as_posix() if anchored else relative.name
    return fnmatchcase(target, name) and (is_dir or not directories_only)


def strays(project: Path) -> list[Path]:
    """Everything in `project` its .gitignore names: whole directories, not what is inside them."""
    patterns = ignore_patterns(project)
    found: list[Path] = []
    pending = [project]
    while pending:
        for path in sorted(pending.pop().iterdir()):
            is_dir = path.is_dir() and not path.is_symlink()
            if any(matches(path.relative_to(project), is_dir, pattern) for pattern in patterns):
                found.append(path)
            elif is_dir:
                pending.append(path)
    return found


def remove_strays(project: Path) -> list[Path]:
    removed = strays(project)
    for path in removed:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    return removed
