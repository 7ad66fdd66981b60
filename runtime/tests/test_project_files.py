"""What the runtime writes into a project or its images: the collected static files, the nginx and
acme images' entrypoints (and the acme loop's refusals), and a newer runtime in vendor/ with nothing
else touched."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from commands import pyserve

from pyserve_runtime import collect_static, entrypoints, runtime_upgrade

# This runtime's directory, which these tests are in: the checkout's runtime/ or an unpacked sdist.
RUNTIME_ROOT = Path(__file__).resolve().parents[1]


def test_static_files_are_collected_under_their_names_and_hashed_ones_text_gzipped(tmp_path: Path) -> None:
    source = tmp_path / "static"
    (source / "css").mkdir(parents=True)
    (source / "css" / "site.css").write_text("body { color: black; }\n")
    (source / "logo.png").write_bytes(b"\x89PNG not really")
    root = tmp_path / "build" / "static"
    paths = collect_static.collect(source, root, "staticfiles.json")
    assert set(paths) == {"css/site.css", "logo.png"}
    assert re.fullmatch(r"css/site\.[0-9a-f]{12}\.css", paths["css/site.css"])
    assert json.loads((root / "staticfiles.json").read_text())["paths"] == paths
    for name in ("css/site.css", paths["css/site.css"]):
        assert gzip.decompress((root / f"{name}.gz").read_bytes()) == (source / "css" / "site.css").read_bytes()
    assert not (root / "logo.png.gz").exists(), "an image is not compressed again"
    first = (root / f"{paths['css/site.css']}.gz").read_bytes()
    collect_static.collect(source, root, "staticfiles.json")
    assert (root / f"{paths['css/site.css']}.gz").read_bytes() == first, "the same input, the same bytes"


@pytest.mark.parametrize("image", sorted(entrypoints.SCRIPTS))
def test_an_image_s_entrypoint_is_written_as_shipped_and_executable(tmp_path: Path, image: str) -> None:
    target = tmp_path / "build" / "start.sh"
    assert entrypoints.main([image, str(target)]) == 0
    assert target.read_bytes() == entrypoints.SCRIPTS[image].read_bytes()
    assert target.read_text().startswith("#!/bin/sh\n") and os.access(target, os.X_OK)


def runtime_at(version: str, into: Path) -> Path:
    """A copy of this runtime whose version is `version`."""
    copy = into / f"runtime-{version}"
    runtime_upgrade.vendor(RUNTIME_ROOT, copy)
    init = copy / "src" / "pyserve_runtime" / "__init__.py"
    init.write_text(re.sub(r'^__version__ = ".*"$', f'__version__ = "{version}"', init.read_text(), flags=re.M))
    return copy


def test_runtime_upgrade_replaces_vendor_alone(project: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    vendored = project / runtime_upgrade.VENDOR_DIR
    runtime_upgrade.vendor(RUNTIME_ROOT, vendored)
    (vendored / "src" / "pyserve_runtime" / "left_over.py").write_text("")  # a file the newer one lacks
    before = {path: path.read_bytes() for path in project.rglob("*") if path.is_file() and vendored not in path.parents}
    newer = runtime_at("99.0.0", tmp_path_factory.mktemp("releases"))  # outside the project

    result = pyserve(project, "runtime-upgrade", "--from", str(newer))
    assert result.returncode == 0, result.stderr
    current = runtime_upgrade.version_of(RUNTIME_ROOT)
    assert f"pyserve-runtime {current} -> 99.0.0 in vendor/pyserve-runtime" in result.stdout
    assert runtime_upgrade.version_of(vendored) == "99.0.0"
    assert sorted(path.name for path in vendored.iterdir()) == sorted(runtime_upgrade.VENDORED_FILES)
    assert not (vendored / "src" / "pyserve_runtime" / "left_over.py").exists()
    after = {path: path.read_bytes() for path in project.rglob("*") if path.is_file() and vendored not in path.parents}
    assert after == before


@pytest.mark.parametrize(
    ("vendored", "source", "refusal"),
    [
        (False, "runtime", "no vendor/pyserve-runtime here: this project takes pyserve-runtime from an index"),
        (True, "elsewhere", "neither a runtime directory nor a template checkout with runtime/"),
        (True, "another package", "not a pyserve-runtime directory (its pyproject.toml names 'another')"),
    ],
    ids=["from-an-index", "no-runtime-there", "another-package"],
)
def test_runtime_upgrade_refuses_in_one_line(
    project: Path, tmp_path: Path, vendored: bool, source: str, refusal: str
) -> None:
    if vendored:
        runtime_upgrade.vendor(RUNTIME_ROOT, project / runtime_upgrade.VENDOR_DIR)
    sources = {"runtime": RUNTIME_ROOT, "elsewhere": tmp_path / "elsewhere", "another package": tmp_path / "another"}
    sources["elsewhere"].mkdir()
    sources["another package"].mkdir()
    (sources["another package"] / "pyproject.toml").write_text('[project]\nname = "another"\n')
    result = pyserve(project, "runtime-upgrade", "--from", str(sources[source]))
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("runtime-upgrade: ") and refusal in line


@pytest.mark.parametrize(
    ("settings", "refusal"),
    [
        ({}, "SERVER_NAMES: not set; give the site's domain names, e.g. SERVER_NAMES=example.com"),
        (
            {"SERVER_NAMES": "example.com localhost"},
            "SERVER_NAMES: 'localhost' cannot have a certificate from a public CA; give the site's domain"
            " names, e.g. SERVER_NAMES=example.com",
        ),
        (
            {"SERVER_NAMES": "*.example.com"},
            "SERVER_NAMES: '*.example.com' cannot have a certificate from a public CA; give the site's domain"
            " names, e.g. SERVER_NAMES=example.com",
        ),
        (
            {"SERVER_NAMES": "example.com", "ACME_CHECK_INTERVAL": "12h"},
            "ACME_CHECK_INTERVAL: '12h' is not a whole number of seconds > 0; unset it or give e.g. 600",
        ),
    ],
    ids=["no-names", "localhost", "wildcard", "interval"],
)
def test_the_acme_loop_refuses_what_no_ca_would_certify_in_one_line(
    tmp_path: Path, settings: dict[str, str], refusal: str
) -> None:
    """Before lego runs at all (it is not on PATH here): one line naming the setting and the value."""
    environment = {"PATH": "/usr/bin:/bin", "LEGO_PATH": str(tmp_path), **settings}
    script = entrypoints.SCRIPTS["acme"]
    result = subprocess.run(["sh", str(script)], env=environment, capture_output=True, text=True, timeout=10)
    assert (result.returncode, result.stderr) == (1, f"acme: {refusal}\n")
