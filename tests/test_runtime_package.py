"""The runtime as a package: what `uv build` makes installs and passes the runtime's own tests, and a
project moves to a newer runtime without a file its team owns changing, vendored or from an index.

The index is a real one: pypiserver on 127.0.0.1, serving the wheels this test builds.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from pyserve_template import RUNTIME_ROOT, runtime_upgrade
from pyserve_template.baking import TOOLS, free_port
from pyserve_template.locking import LOCK_FILE

from .stack import stop_group

NEWER = "99.0.0"
# A comment in each kind of file a team owns, so that the edit is theirs and the file still parses.
COMMENT = {".md": "<!-- ours -->", ".html": "<!-- ours -->", ".svg": "<!-- ours -->", ".css": "/* ours */"}
COMMENT |= {".js": "// ours", ".json": None}


def run(*command: str | Path, cwd: Path | None = None, timeout: float = 300, env: dict[str, str] | None = None) -> str:
    inherited = {key: value for key, value in os.environ.items() if key not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env = {**inherited, "UV_PYTHON_DOWNLOADS": "never", **(env or {})}
    result = subprocess.run(
        [str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"{command}: {result.stdout[-3000:]}{result.stderr[-3000:]}"
    return result.stdout


def runtime_at(version: str, into: Path) -> Path:
    """This checkout's runtime/, its version set to `version`: a release that is not this one."""
    copy = into / f"runtime-{version}"
    runtime_upgrade.vendor(RUNTIME_ROOT, copy)  # what a release builds from
    init = copy / "src" / "pyserve_runtime" / "__init__.py"
    init.write_text(re.sub(r'^__version__ = ".*"$', f'__version__ = "{version}"', init.read_text(), flags=re.M))
    return copy


def build(runtime: Path, out: Path) -> tuple[Path, Path]:
    """`uv build`: the wheel and the sdist (which the wheel is built from)."""
    run(TOOLS / "uv", "build", "--quiet", "--out-dir", out, runtime)
    [wheel], [sdist] = out.glob("*.whl"), out.glob("*.tar.gz")
    return wheel, sdist


def venv(path: Path, *requirements: str) -> Path:
    """A fresh venv with `requirements` installed by uv."""
    run(TOOLS / "uv", "venv", "--quiet", "--python", sys.executable, path)
    run(TOOLS / "uv", "pip", "install", "--quiet", "--python", path / "bin" / "python", *requirements)
    return path


def pinned_runtime_test_group() -> list[str]:
    """The runtime's test dependency group, each pinned to the version this suite runs with."""
    group = tomllib.loads((RUNTIME_ROOT / "pyproject.toml").read_text())["dependency-groups"]["test"]
    pinned = []
    for requirement in map(Requirement, group):
        extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
        pinned.append(f"{requirement.name}{extras}=={importlib.metadata.version(requirement.name)}")
    return pinned


def replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def version_installed(environment: Path) -> str:
    return run(environment / "bin" / "pyserve", "--version").strip().removeprefix("pyserve-runtime ")


def files(project: Path) -> dict[str, str]:
    """Every file of the project, by digest."""
    return {
        path.relative_to(project).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(project.rglob("*"))
        if path.is_file()
    }


def edit_every_owned_file(project: Path) -> None:
    """What a team does over time: each file outside vendor/ changed by its owner (.cruft.json is
    cruft's, uv.lock uv's)."""
    for path in project.rglob("*"):
        if not path.is_file() or path.is_relative_to(project / "vendor") or path.name in {".cruft.json", LOCK_FILE}:
            continue
        comment = COMMENT.get(path.suffix, "# ours")
        if comment:
            path.write_text(path.read_text(encoding="utf-8") + f"\n{comment}\n", encoding="utf-8")


@contextlib.contextmanager
def package_index(packages: Path) -> Iterator[str]:
    """pypiserver on 127.0.0.1 serving `packages`; stopped by its process group."""
    port = free_port()
    command = [TOOLS / "pypi-server", "run", "--host", "127.0.0.1", "--port", str(port), "--disable-fallback", packages]
    server = subprocess.Popen(
        [str(part) for part in command], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}/simple/"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "pypiserver did not start"
                time.sleep(0.2)
        yield url
    finally:
        stop_group(server)


def test_uv_build_makes_a_wheel_and_an_sdist_that_install_and_pass_the_runtime_tests(tmp_path: Path) -> None:
    wheel, sdist = build(RUNTIME_ROOT, tmp_path / "dist")
    assert (wheel.suffix, sdist.name.endswith(".tar.gz")) == (".whl", True)
    environment = venv(tmp_path / "venv", str(wheel), *pinned_runtime_test_group())
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path / "sdist", filter="data")
    [unpacked] = (tmp_path / "sdist").iterdir()
    # The sdist's tests against the installed wheel: src/ is not on the path, so nothing else imports.
    output = run(environment / "bin" / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=unpacked)
    assert re.search(r"^\d+ passed", output.splitlines()[-1]), output[-2000:]
    where = run(environment / "bin" / "python", "-c", "import pyserve_runtime; print(pyserve_runtime.__file__)")
    assert Path(where.strip()).is_relative_to(environment / "lib")


def sync(project: Path, environment: Path, index: str | None = None) -> None:
    """`uv sync --locked` of the project into `environment`; with `index`, that index before PyPI."""
    env = {"UV_PROJECT_ENVIRONMENT": str(environment), **({"UV_INDEX": index} if index else {})}
    run(TOOLS / "uv", "sync", "--quiet", "--locked", "--python", sys.executable, cwd=project, env=env)


def lock(project: Path, index: str) -> None:
    run(TOOLS / "uv", "lock", "--quiet", "--python", sys.executable, cwd=project, env={"UV_INDEX": index})


@pytest.mark.e2e
def test_a_project_moves_to_a_newer_runtime_vendored_or_from_an_index_with_no_owned_file_changed(
    fresh_bake, tmp_path: Path
) -> None:
    newer = runtime_at(NEWER, tmp_path)

    # Vendored: `make runtime-upgrade FROM=...` replaces vendor/pyserve-runtime, re-locks, installs.
    project = fresh_bake()
    edit_every_owned_file(project)
    before = files(project)
    environment = tmp_path / "vendored"
    sync(project, environment)
    current = version_installed(environment)
    make = ["make", "runtime-upgrade", f"PYTHON={environment / 'bin' / 'python'}", f"UV={TOOLS / 'uv'}"]
    run(*make, f"FROM={newer}", cwd=project, env={"UV_PROJECT_ENVIRONMENT": str(environment)})
    after = files(project)
    changed = {name for name in before.keys() | after.keys() if before.get(name) != after.get(name)}
    vendored = {name for name in changed if name.startswith(f"{runtime_upgrade.VENDOR_DIR.as_posix()}/")}
    # The lock names the vendored runtime by its path, not its version: it may stay as it was.
    assert vendored and changed <= vendored | {LOCK_FILE}
    assert (version_installed(environment), current) == (NEWER, runtime_upgrade.version_of(RUNTIME_ROOT))

    # From an index: the project pins pyserve-runtime instead of vendoring it (its README's steps),
    # and upgrades by changing that pin and re-locking.
    project = fresh_bake()
    shutil.rmtree(project / "vendor")
    replace_in(project / "pyproject.toml", '"pyserve-runtime",', f'"pyserve-runtime=={current}",')
    replace_in(project / "pyproject.toml", 'pyserve-runtime = { path = "vendor/pyserve-runtime" }\n', "")
    replace_in(project / "Dockerfile", "COPY vendor/ vendor/\n", "")
    edit_every_owned_file(project)
    packages = tmp_path / "packages"
    packages.mkdir()
    for release in (RUNTIME_ROOT, newer):
        wheel, _ = build(release, tmp_path / f"dist-{release.name}")
        shutil.copy(wheel, packages)
    with package_index(packages) as index:
        lock(project, index)
        environment = tmp_path / "indexed"
        sync(project, environment, index)
        assert version_installed(environment) == current
        before = files(project)
        replace_in(project / "pyproject.toml", f'"pyserve-runtime=={current}",', f'"pyserve-runtime=={NEWER}",')
        lock(project, index)
        sync(project, environment, index)
    after = files(project)
    assert {name for name in before if before[name] != after.get(name)} == {"pyproject.toml", LOCK_FILE}
    assert version_installed(environment) == NEWER
