"""Which versions were deployed on this host, newest last: what `make rollback` goes back along.

One line per deploy that went live (`pyserve deploy`): its time (UTC) and its tag, or BUILT_HERE for
a deploy of the checkout, which has no tag to go back to. The file (DEPLOY_HISTORY) is the host's,
not the repository's: .gitignore and .dockerignore leave it out.
"""

from __future__ import annotations

import time
from pathlib import Path

BUILT_HERE = "(built-here)"


class NothingToGoBackTo(Exception):
    """No published version ran here before the current one; the message says which case."""


def deployed(path: Path) -> list[str]:
    """The tags deployed here, oldest first."""
    lines = path.read_text().splitlines() if path.exists() else []
    return [fields[1] for fields in (line.split() for line in lines) if len(fields) == 2]


def record(path: Path, tag: str | None) -> None:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with path.open("a") as lines:
        lines.write(f"{now} {tag or BUILT_HERE}\n")


def previous_tag(path: Path) -> str:
    """The published tag that ran before the current deploy."""
    tags = deployed(path)
    if not tags:
        raise NothingToGoBackTo(f"nothing was deployed here yet ({path.name} is empty): no version to go back to")
    current = tags[-1]
    earlier = [tag for tag in tags[:-1] if tag not in {current, BUILT_HERE}]
    if not earlier:
        raise NothingToGoBackTo(f"no published version ran here before {current}: nothing to go back to")
    return earlier[-1]
