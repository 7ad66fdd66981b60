"""Keeping up with pyserve-template, the template this project was generated from, through cruft.

    pyserve template-check             (make template-check) exit 1 when the template has moved on
    pyserve template-update            (make template-update) bring its changes here
    pyserve template-update --variables '{"cpu_limit": "2"}'   and change answers

.cruft.json records the template's repository, the commit this project is at and the answers given.
`update` renders that commit and the template's latest with the answers and applies the difference
to this project as a three-way merge: your own changes stay, and where the template changed a line
you changed too, the file is left with conflict markers (or a .rej file beside it) for you to resolve.

What `auto` chose at bake (the server, the interface) stays chosen. When the template's latest would
choose differently (its benchmark moved), `check` says so with its figures, and `update` records the
current choice as the answer instead of switching; an update that changes an answer the choice
follows from (framework, interface, server, workload) lets `auto` choose again.
The project's locks (uv.lock, loadtest/uv.lock) are its own: an update keeps them, whatever the
template's renders locked, and re-locks each with `uv lock` against the merged pyproject.toml beside
it (pins that did not change stay).
What stops a check or an update (no record, the template out of reach, no git repository,
uncommitted changes, an answer the template refuses) is said in one line, and nothing changes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import cruft
from cruft._commands.utils.cruft import json_dumps as cruft_json_dumps

from .checkout import git
from .settings import LOCK_FILES, PROJECT, uv_command

RECORD = PROJECT / ".cruft.json"
# The answers `auto` may stand for, and where a bake records what it chose for each.
CHOICES = {"interface": "__interface", "server": "__server"}
# The answers those choices follow from: an update that changes one lets `auto` choose again.
CHOSEN_FROM = frozenset({"framework", "interface", "server", "workload"})
# In .cruft.json beside cruft's own keys (it keeps those it does not know): the answers an update
# set to what `auto` had chosen, which `check` still compares with what `auto` would choose now.
KEPT_KEY = "kept_from_auto"


class Refused(Exception):
    """A reason not to go on, said on one line."""


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


def recorded_state() -> dict[str, Any]:
    return dict(json.loads(RECORD.read_text(encoding="utf-8")))


def asked_answers(state: dict[str, Any]) -> dict[str, Any]:
    """The recorded answers, with those an update kept from `auto` asked as `auto` again."""
    answers = dict(state["context"]["cookiecutter"])
    return {**answers, **{name: "auto" for name in state.get(KEPT_KEY, [])}}


def record_kept(kept: set[str]) -> None:
    """Written with cruft's own formatting, so that its next rewrite changes only what changed."""
    state = recorded_state()
    state.pop(KEPT_KEY, None)
    if kept:
        state[KEPT_KEY] = sorted(kept)
    RECORD.write_text(cruft_json_dumps(state), encoding="utf-8")


def latest_choices(template: str, answers: dict[str, Any]) -> tuple[dict[str, str], str]:
    """What the template's latest chooses for these answers (a bake of it, in a temporary
    directory, with the answers as given), and the line its bake says the server's reason on."""
    given = [f"{key}={value}" for key, value in answers.items() if not key.startswith("_")]
    with tempfile.TemporaryDirectory(prefix="template-choices-") as scratch:
        clone = subprocess.run(
            ["git", "clone", "-q", "--depth", "1", template, f"{scratch}/template"], capture_output=True
        )
        if clone.returncode != 0:
            raise Refused(f"cannot clone the template {template} to see what it would choose")
        # cookiecutter's replay and clones in the scratch directory too, not in HOME.
        config = Path(scratch, "config.yaml")
        config.write_text(
            f"replay_dir: {scratch}/replay\ncookiecutters_dir: {scratch}/cookiecutters\n", encoding="utf-8"
        )
        command = [sys.executable, "-m", "cookiecutter", "--no-input", "--config-file", str(config)]
        command += ["-o", f"{scratch}/out", f"{scratch}/template"]
        baked = subprocess.run([*command, *given], capture_output=True, text=True, check=False)
        if baked.returncode != 0:
            said = baked.stderr.strip().splitlines() or ["(nothing said)"]
            raise Refused(f"the template's latest refuses this project's answers: {said[-1]}")
        [record] = Path(scratch, "out").glob(f"*/{RECORD.name}")
        chosen = json.loads(record.read_text(encoding="utf-8"))["context"]["cookiecutter"]
    reason = next((line for line in baked.stdout.splitlines() if line.startswith("server: ")), "")
    return {name: str(chosen[derived]) for name, derived in CHOICES.items()}, reason


def moved_choices(template: str, answers: dict[str, Any]) -> tuple[dict[str, tuple[str, str]], str]:
    """The choices `auto` made at bake that the template's latest would make differently:
    {answer: (now, latest)}, and the latest's reason for its server."""
    left_to_auto = [name for name in CHOICES if answers.get(name) == "auto"]
    if not left_to_auto:
        return {}, ""
    latest, reason = latest_choices(template, answers)
    moved = {name: (str(answers[CHOICES[name]]), latest[name]) for name in left_to_auto}
    return {name: pair for name, pair in moved.items() if pair[0] != pair[1]}, reason


def ready_to_merge() -> None:
    if git("rev-parse", "--is-inside-work-tree").stdout.strip() != "true":
        raise Refused(f"{PROJECT} is not a git repository: commit the project first, so the update can be undone")
    if git("status", "--porcelain", "--untracked-files=no").stdout.strip():
        raise Refused("uncommitted changes: commit or stash them first, so the update is a change of its own")


def relock(lock: str) -> str | None:
    """The project's own `lock` back (a template's lock diff would only conflict), then `uv lock`
    against the merged pyproject.toml beside it; what went wrong, if anything."""
    if git("ls-files", "--error-unmatch", lock).returncode == 0:
        git("checkout", "HEAD", "--", lock)
    (PROJECT / f"{lock}.rej").unlink(missing_ok=True)
    uv = uv_command()
    if uv is None:
        return "uv is not installed: install it, run `make lock`, and commit the locks with the update"
    where = PROJECT / Path(lock).parent
    done = subprocess.run([uv, "lock", "--quiet"], cwd=where, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        said = [line.strip() for line in done.stderr.splitlines() if line.strip()] or ["(nothing said)"]
        return f"uv lock failed ({said[0]}): resolve {Path(lock).parent / 'pyproject.toml'}, then `make lock`"
    return None


def needing_a_hand() -> list[str]:
    conflicts = git("diff", "--name-only", "--diff-filter=U").stdout.split()
    rejects = git("ls-files", "--others", "--exclude-standard", "*.rej").stdout.split()
    marked = [f"{path} (conflict markers)" for path in conflicts]
    return marked + [f"{path} (hunks cruft could not place)" for path in rejects]


def check() -> int:
    template = recorded_template()
    reachable(template)
    if cruft.check(PROJECT):
        return 0
    print("template-check: the template has moved on: `make template-update` brings its changes here")
    moved, reason = moved_choices(template, asked_answers(recorded_state()))
    for name, (now, latest) in moved.items():
        print(f"template-check: `auto` would now choose {name} {latest}, not {now}; `make template-update` keeps {now}")
    if moved:
        print(f"template-check: the template's latest says {reason}")
        switch = json.dumps({name: latest for name, (_, latest) in moved.items()})
        print(f"template-check: to switch, `make template-update VARIABLES='{switch}'`")
    return 1


def update(variables: dict[str, str] | None) -> int:
    template = recorded_template()
    reachable(template)
    ready_to_merge()
    state = recorded_state()
    kept_before = set(state.get(KEPT_KEY, []))
    changes = dict(variables or {})
    if CHOSEN_FROM & changes.keys():
        # `auto` chooses again: what an earlier update kept is asked as `auto`, unless set now.
        changes = {**{name: "auto" for name in kept_before}, **changes}
        kept: set[str] = set()
    else:
        moved, _ = moved_choices(template, asked_answers(state))
        newly = {name: now for name, (now, _) in moved.items() if name not in kept_before}
        if newly:
            print(f"template-update: keeping {json.dumps(newly)}, which the template's latest would choose differently")
        changes = {**newly, **changes}
        kept = (kept_before - set(variables or {})) | set(newly)
    try:
        applied = cruft.update(PROJECT, skip_apply_ask=True, allow_untracked_files=True, extra_context=changes or None)
    except ValueError as error:  # cookiecutter's refusal of an answer outside a menu
        raise Refused(str(error)) from None
    if not applied:
        raise Refused("cruft did not apply the update (its reason is above)")
    if kept or kept_before:
        record_kept(kept)
    unlocked = {lock: relock(lock) for lock in LOCK_FILES}
    left = needing_a_hand() + [f"{lock} ({why})" for lock, why in unlocked.items() if why]
    if left:
        print("template-update: resolve these, `git add` them (delete each .rej), then commit:")
        print("\n".join(f"  {item}" for item in left))
        return 1
    print("template-update: applied; `git status` and `git diff HEAD` show it, then commit (.cruft.json and locks too)")
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
