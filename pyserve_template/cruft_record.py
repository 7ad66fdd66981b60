"""The record cruft keeps of how a project was made (`.cruft.json`), for projects baked with cookiecutter.

`cruft create` writes this record itself. A project baked with plain `cookiecutter` (the README's
Quick start) gets the same record from the post-gen hook, so that `cruft check` and `cruft update`
work on every project: `cruft link` could add it later, but it asks every question again, and
answers that differ from the bake's would make each later update render another stack.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cookiecutter.config import BUILTIN_ABBREVIATIONS
from cookiecutter.repository import expand_abbreviations, is_repo_url

CRUFT_FILE = ".cruft.json"
# Where cookiecutter ran, not how the project was made: cruft's own record has none of them.
WHERE_IT_RAN = ("_output_dir", "_repo_dir", "_checkout")


class NotRecordable(Exception):
    """The template is not a git repository of its own, so there is no commit to record."""


def rendered_by_cruft(context: Mapping[str, Any]) -> bool:
    """cruft (create, update) adds the template's commit to the context it renders with, and writes
    the record itself; cookiecutter's own runs never have it."""
    return "_commit" in context


def template_commit(template_root: Path) -> str:
    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", "-C", str(template_root), *args], capture_output=True, text=True, check=False)

    top = git("rev-parse", "--show-toplevel")
    if top.returncode != 0 or Path(top.stdout.strip()).resolve() != template_root.resolve():
        raise NotRecordable(f"the template at {template_root} is not a git repository of its own")
    return git("rev-parse", "HEAD").stdout.strip()


def template_url(asked: str, template_root: Path) -> str:
    """What cruft clones to update the project: the repository the user named (`gh:org/name` as
    git's URL), or the local template's absolute path."""
    url = expand_abbreviations(asked, BUILTIN_ABBREVIATIONS)
    return url if is_repo_url(url) else str(template_root.resolve())


def cruft_state(context: Mapping[str, Any], template_root: Path) -> dict[str, Any]:
    """The record `cruft create` would have written for this bake; NotRecordable says why there is none."""
    commit = template_commit(template_root)
    url = template_url(context["_template"], template_root)
    answers = {key: value for key, value in context.items() if key not in WHERE_IT_RAN}
    return {
        "template": url,
        "commit": commit,
        "checkout": context.get("_checkout"),
        "context": {"cookiecutter": {**answers, "_template": url, "_commit": commit}},
        "directory": None,
    }


def as_json(state: Mapping[str, Any]) -> str:
    """Formatted as cruft writes it, so that its own rewrite on update changes only what changed."""
    return json.dumps(state, ensure_ascii=False, indent=2, separators=(",", ": ")) + "\n"
