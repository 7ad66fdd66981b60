"""The template's own Python: the compatibility table and the validation of answers.

The tuning model is not here: it lives in the generated project as deploy/tuning/ (shipped
verbatim), and `tuning` (the model) and `machine` (the reading of the limits) below are those very
files, imported from the project template, so generation and start-up share one model.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

TEMPLATE_ROOT = Path(__file__).resolve().parent.parent
PROJECT_TEMPLATE = TEMPLATE_ROOT / "{{cookiecutter.project_slug}}"
DEPLOY_TEMPLATE = PROJECT_TEMPLATE / "deploy"
TUNING_PACKAGE = DEPLOY_TEMPLATE / "tuning"
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
        *DEPLOY_TEMPLATE.glob("*.py"),
        *TUNING_PACKAGE.glob("*.py"),
        *DEPLOY_TEMPLATE.glob("_servers/*/server.toml"),
        *PROJECT_TEMPLATE.glob("*/_frameworks/*/framework.toml"),
    ]
    return tuple(sorted((str(path), path.stat().st_mtime_ns) for path in paths))


SOURCE_STAMP = source_stamp()


def deploy_module(project: Path, name: str, package: str) -> ModuleType:
    """deploy.<name> of `project` (the project template or a generated project), imported with its
    deploy/ package named `package`, so that several projects' deploy/ can live in one process."""
    # No __pycache__ inside the project template (cookiecutter would copy it into every project), nor
    # in a bake that other tests read as baked.
    writes_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        if package not in sys.modules:
            deploy = project / "deploy"
            spec = importlib.util.spec_from_file_location(
                package, deploy / "__init__.py", submodule_search_locations=[str(deploy)]
            )
            assert spec and spec.loader
            sys.modules[package] = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(sys.modules[package])
        return importlib.import_module(f"{package}.{name}")
    finally:
        sys.dont_write_bytecode = writes_bytecode


# The project template's own deploy/, under a name no generated project's `deploy` can clash with.
tuning = deploy_module(PROJECT_TEMPLATE, "tuning.model", "pyserve_deploy")
machine = deploy_module(PROJECT_TEMPLATE, "tuning.machine", "pyserve_deploy")
plan_inputs = deploy_module(PROJECT_TEMPLATE, "tuning.inputs", "pyserve_deploy")
presentation = deploy_module(PROJECT_TEMPLATE, "tuning.presentation", "pyserve_deploy")
nginx_sizing = deploy_module(PROJECT_TEMPLATE, "tuning.nginx", "pyserve_deploy")
confine = deploy_module(PROJECT_TEMPLATE, "confine", "pyserve_deploy")
settings = deploy_module(PROJECT_TEMPLATE, "settings", "pyserve_deploy")
values = deploy_module(PROJECT_TEMPLATE, "values", "pyserve_deploy")

__all__ = [
    "DEPLOY_TEMPLATE",
    "PROJECT_TEMPLATE",
    "TEMPLATE_ROOT",
    "SOURCE_STAMP",
    "TUNING_PACKAGE",
    "confine",
    "deploy_module",
    "machine",
    "nginx_sizing",
    "plan_inputs",
    "presentation",
    "settings",
    "source_stamp",
    "tuning",
    "values",
]
