"""The template's own Python: the compatibility table and the validation of answers.

The tuning model is not here: it is the runtime package's (runtime/src/pyserve_runtime/tuning/),
imported from this checkout, so generation and start-up share one model.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

TEMPLATE_ROOT = Path(__file__).resolve().parent.parent
PROJECT_TEMPLATE = TEMPLATE_ROOT / "{{cookiecutter.project_slug}}"
DEPLOY_TEMPLATE = PROJECT_TEMPLATE / "deploy"
# The runtime package, which every bake carries as vendor/pyserve-runtime (runtime_upgrade.vendor).
RUNTIME_ROOT = TEMPLATE_ROOT / "runtime"
RUNTIME_SOURCE = RUNTIME_ROOT / "src"
RUNTIME_PACKAGE = RUNTIME_SOURCE / "pyserve_runtime"
# What the tests and the benchmark build once and reuse, keyed by its recipe (the projects' venvs, the
# container engines' base images and build layers): outside the clone, so that a fresh clone on a
# used machine reuses them. PYSERVE_CACHE moves it.
CACHE_ROOT = Path(
    os.environ.get("PYSERVE_CACHE")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pyserve-template"
)


def source_stamp() -> tuple[tuple[str, int], ...]:
    """The template's own Python and records, each with when it last changed. `cruft update` renders
    two commits from one checkout in one process: local_extensions.py imports this package again
    when the stamp it was imported with no longer holds."""
    paths = [
        TEMPLATE_ROOT / "cookiecutter.json",
        *Path(__file__).parent.glob("*.py"),
        *RUNTIME_PACKAGE.rglob("*.py"),
        *DEPLOY_TEMPLATE.glob("_servers/*/server.toml"),
        *PROJECT_TEMPLATE.glob("*/_frameworks/*/framework.toml"),
    ]
    return tuple(sorted((str(path), path.stat().st_mtime_ns) for path in paths))


SOURCE_STAMP = source_stamp()


def runtime_of(project: Path, name: str, package: str) -> ModuleType:
    """pyserve_runtime.<name> as it runs in `project` (a generated project): imported under the name
    `package` with the project as the working directory, which is where its commands run and what its
    settings take as the project root; so that several projects' runtimes can live in one process."""
    # No __pycache__ in the runtime's source: cookiecutter would copy it into every project.
    writes_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        with contextlib.chdir(project):
            if package not in sys.modules:
                spec = importlib.util.spec_from_file_location(
                    package, RUNTIME_PACKAGE / "__init__.py", submodule_search_locations=[str(RUNTIME_PACKAGE)]
                )
                assert spec and spec.loader
                sys.modules[package] = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(sys.modules[package])
            return importlib.import_module(f"{package}.{name}")
    finally:
        sys.dont_write_bytecode = writes_bytecode


# This checkout's runtime, ahead of any installed one: a bake carries this checkout's.
if str(RUNTIME_SOURCE) not in sys.path:
    sys.path.insert(0, str(RUNTIME_SOURCE))
_writes_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
from pyserve_runtime import confine, runtime_upgrade, settings, values  # noqa: E402
from pyserve_runtime.tuning import inputs as plan_inputs  # noqa: E402
from pyserve_runtime.tuning import machine, presentation  # noqa: E402
from pyserve_runtime.tuning import model as tuning  # noqa: E402
from pyserve_runtime.tuning import nginx as nginx_sizing  # noqa: E402

sys.dont_write_bytecode = _writes_bytecode

__all__ = [
    "DEPLOY_TEMPLATE",
    "PROJECT_TEMPLATE",
    "TEMPLATE_ROOT",
    "SOURCE_STAMP",
    "RUNTIME_PACKAGE",
    "RUNTIME_ROOT",
    "RUNTIME_SOURCE",
    "confine",
    "runtime_of",
    "machine",
    "nginx_sizing",
    "plan_inputs",
    "presentation",
    "runtime_upgrade",
    "settings",
    "source_stamp",
    "tuning",
    "values",
]
