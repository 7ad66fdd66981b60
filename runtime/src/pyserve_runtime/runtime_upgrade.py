"""Moving a project to a newer runtime: vendor/pyserve-runtime replaced, no other file touched.

    pyserve runtime-upgrade              the runtime of the template's latest (.cruft.json names it)
    pyserve runtime-upgrade --ref REF    of another branch, tag or commit of the template
    pyserve runtime-upgrade --from DIR   of a checkout of the template, or a runtime directory

A bake carries the runtime as a path dependency (pyproject.toml takes it from vendor/pyserve-runtime):
this replaces those files with another version's, as they are, so that no file its team owns changes
and there is nothing to merge; `make runtime-upgrade` then re-locks (uv.lock) and installs it. A
project that takes pyserve-runtime from a package index changes its pin in pyproject.toml instead.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from .settings import PROJECT

VENDOR_DIR = Path("vendor", "pyserve-runtime")
# What a vendored runtime holds: enough to build and install it (its tests stay in the template).
VENDORED_FILES = ("pyproject.toml", "README.md", "src")
PACKAGE_NAME = "pyserve-runtime"


class Refused(Exception):
    """A reason not to go on, said on one line."""


def version_of(runtime: Path) -> str:
    """The version a runtime directory builds (its package's __version__, which its pyproject.toml reads)."""
    with (runtime / "pyproject.toml").open("rb") as handle:
        name = tomllib.load(handle).get("project", {}).get("name")
    if name != PACKAGE_NAME:
        raise Refused(f"{runtime}: not a {PACKAGE_NAME} directory (its pyproject.toml names {name!r})")
    source = (runtime / "src" / "pyserve_runtime" / "__init__.py").read_text(encoding="utf-8")
    found = re.search(r'^__version__ = "([^"]+)"$', source, re.MULTILINE)
    if not found:
        raise Refused(f"{runtime}: no __version__ in src/pyserve_runtime/__init__.py")
    return found.group(1)


def vendor(runtime: Path, destination: Path) -> None:
    """`runtime`'s files (a runtime directory) into `destination`, replacing what was there."""
    shutil.rmtree(destination, ignore_errors=True)
    destination.mkdir(parents=True)
    for name in VENDORED_FILES:
        source = runtime / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copyfile(source, destination / name)


def runtime_in(directory: Path) -> Path:
    """A template checkout's runtime/, or the directory itself when it is one."""
    for candidate in (directory / "runtime", directory):
        if (candidate / "pyproject.toml").is_file():
            return candidate
    raise Refused(f"{directory}: neither a runtime directory nor a template checkout with runtime/")


def clone_template(ref: str | None, into: Path) -> Path:
    record = PROJECT / ".cruft.json"
    if not record.is_file():
        raise Refused(f"no {record.name} here to name the template: give --from DIR")
    template = str(json.loads(record.read_text(encoding="utf-8"))["template"])
    steps = [["git", "clone", "-q", *([] if ref else ["--depth", "1"]), template, str(into)]]
    if ref:
        steps.append(["git", "-C", str(into), "checkout", "-q", ref])
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            said = done.stderr.strip().splitlines() or ["(nothing said)"]
            raise Refused(f"cannot get the template {template}{f' at {ref}' if ref else ''}: {said[-1]}")
    return into


def upgrade(source: Path | None, ref: str | None) -> str:
    vendored = PROJECT / VENDOR_DIR
    if not vendored.is_dir():
        raise Refused(f"no {VENDOR_DIR} here: this project takes {PACKAGE_NAME} from an index; change its pin")
    before = version_of(vendored)
    with tempfile.TemporaryDirectory(prefix="runtime-upgrade-") as scratch:
        runtime = runtime_in(source if source else clone_template(ref, Path(scratch, "template")))
        after = version_of(runtime)
        vendor(runtime, vendored)
    return f"{PACKAGE_NAME} {before} -> {after} in {VENDOR_DIR}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--ref", help="a branch, tag or commit of the template (default: its latest)")
    where.add_argument("--from", dest="source", type=Path, metavar="DIR", help="a template checkout or runtime dir")
    args = parser.parse_args(argv)
    try:
        print(f"runtime-upgrade: {upgrade(args.source, args.ref)}; `make runtime-upgrade` installs it")
    except Refused as refusal:
        print(f"runtime-upgrade: {refusal}", file=sys.stderr)
        return 2
    return 0
