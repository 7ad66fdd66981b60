"""Keeping up with pyserve-template, the template this project was generated from, through cruft.

    python -m deploy.template_updates check     (make template-check) exit 1 when the template has moved on
    python -m deploy.template_updates update    (make template-update) bring its changes here
    python -m deploy.template_updates update --variables '{"cpu_limit": "2"}'   and change answers

.cruft.json records the template's repository, the commit this project is at and the answers given.
`update` renders that commit and the template's latest with the answers (the derived values, such as
the server `auto` picks, are worked out again from them) and applies the difference to this
project as a three-way merge: your own changes stay, and where the template changed a line you
changed too, the file is left with conflict markers (or a .rej file beside it) for you to resolve.
What stops a check or an update (no record, the template out of reach, no git repository,
uncommitted changes, an answer the template refuses) is said in one line, and nothing changes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import cruft

from .settings import PROJECT

RECORD = PROJECT / ".cruft.json"


class Refused(Exception):
    """A reason not to go on, said on one line."""


def git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=PROJECT, capture_output=True, text=True, check=False)


def recorded_template() -> str:
    if not RECORD.is_file():
        raise Refused(f"no {RECORD.name} here: the project is not linked to its template (`cruft link URL` links it)")
    return str(json.loads(RECORD.read_text(encoding="utf-8"))["template"])


def reachable(template: str) -> None:
    """cruft's own error is a box of git's output: check first, and say it in a line."""
    probe = subprocess.run(["git", "ls-remote", "--exit-code", template, "HEAD"], capture_output=True, text=True)
    if probe.returncode != 0:
        errors = [line for line in probe.stderr.splitlines() if line.startswith("fatal: ")] or ["fatal: no HEAD there"]
        reason = errors[0].removeprefix("fatal: ")
        raise Refused(f"cannot reach the template {template}: {reason}")


def ready_to_merge() -> None:
    if git("rev-parse", "--is-inside-work-tree").stdout.strip() != "true":
        raise Refused(f"{PROJECT} is not a git repository: commit the project first, so the update can be undone")
    if git("status", "--porcelain", "--untracked-files=no").stdout.strip():
        raise Refused("uncommitted changes: commit or stash them first, so the update is a change of its own")


def needing_a_hand() -> list[str]:
    conflicts = git("diff", "--name-only", "--diff-filter=U").stdout.split()
    rejects = git("ls-files", "--others", "--exclude-standard", "*.rej").stdout.split()
    marked = [f"{path} (conflict markers)" for path in conflicts]
    return marked + [f"{path} (hunks cruft could not place)" for path in rejects]


def check() -> int:
    reachable(recorded_template())
    if cruft.check(PROJECT):
        return 0
    print("template-check: the template has moved on: `make template-update` brings its changes here")
    return 1


def update(variables: dict[str, str] | None) -> int:
    reachable(recorded_template())
    ready_to_merge()
    try:
        applied = cruft.update(PROJECT, skip_apply_ask=True, allow_untracked_files=True, extra_context=variables)
    except ValueError as error:  # cookiecutter's refusal of an answer outside a menu
        raise Refused(str(error)) from None
    if not applied:
        raise Refused("cruft did not apply the update (its reason is above)")
    left = needing_a_hand()
    if left:
        print("template-update: resolve these, `git add` them (delete each .rej), then commit:")
        print("\n".join(f"  {item}" for item in left))
        return 1
    print("template-update: applied; `git status` and `git diff HEAD` show it, then commit (with .cruft.json)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check", help="exit 1 when the template has moved on")
    updating = commands.add_parser("update", help="bring the template's changes here")
    updating.add_argument("--variables", type=json.loads, help='answers to change, as JSON: \'{"cpu_limit": "2"}\'')
    args = parser.parse_args(argv)
    try:
        return check() if args.command == "check" else update(args.variables)
    except Refused as refusal:
        print(f"template-{args.command}: {refusal}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
