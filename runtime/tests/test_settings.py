"""settings.py alone reads the environment, and VARIABLES lists every variable it reads."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pyserve_runtime import settings

PACKAGE = Path(settings.__file__).parent
RUNTIME = sorted(path for path in PACKAGE.rglob("*.py") if path.name != "settings.py")
# What a module calls the environment it was handed (a WSGI app's `environ` is a request, not this).
ENVIRONMENT_NAMES = {"env"}


def is_os_environ(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ" and getattr(node.value, "id", "") == "os"


def environment_reads(tree: ast.AST) -> list[str]:
    """Where a module looks a variable up: os.environ[...], os.environ.get(...), os.getenv(...), and
    env.get("NAME") or env["NAME"] on an environment it was handed. Writes (a child's environment,
    setdefault for a library that reads its own) are not reads."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            if is_os_environ(node.value) or getattr(node.value, "id", "") in ENVIRONMENT_NAMES:
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner, method = node.func.value, node.func.attr
            environment = is_os_environ(owner) or getattr(owner, "id", "") in ENVIRONMENT_NAMES
            if (environment and method == "get") or (getattr(owner, "id", "") == "os" and method == "getenv"):
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


@pytest.mark.parametrize("module", RUNTIME, ids=lambda path: str(path.relative_to(PACKAGE)))
def test_only_settings_reads_the_environment(module: Path) -> None:
    assert environment_reads(ast.parse(module.read_text(encoding="utf-8"))) == []


def test_the_check_finds_what_it_looks_for() -> None:
    reads = environment_reads(
        ast.parse('import os\nos.environ["A"]\nos.environ.get("B")\nos.getenv("C")\nenv.get("D")\nenv["E"]\n')
    )
    assert len(reads) == 5
    writes = 'import os\nos.environ["A"] = "1"\nos.environ.setdefault("B", "2")\nchild = {**os.environ, "C": "3"}\n'
    assert environment_reads(ast.parse(writes)) == []
    assert environment_reads(ast.parse('environ.get("PATH_INFO")\n')) == []  # a WSGI request


def test_the_plan_overrides_name_the_variable_they_refuse() -> None:
    with pytest.raises(settings.values.TuningError, match="^WEB_THREADS: '0' is not a whole number >= 1"):
        settings.plan_overrides({"WEB_THREADS": "0"}, with_database=False)
    # A database budget is read only where there is a database to budget.
    assert settings.plan_overrides({"DB_MAX_CONNECTIONS": "junk"}, with_database=False).db_max_connections is None
    assert settings.plan_overrides({"DB_MAX_CONNECTIONS": "none"}, with_database=True).db_max_connections == "none"
    assert settings.plan_overrides({"CPU_LIMIT_MILLICORES": "500"}, with_database=False).cpu_limit_millicores == 0.5


def variables_settings_reads() -> set[str]:
    """The names settings.py looks up: the string constants in env.get(...), env[...] and given(...)."""
    tree = ast.parse((PACKAGE / "settings.py").read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if called in {"get", "given"} and str(node.args[0].value).isupper():
                names.add(node.args[0].value)
        elif (
            isinstance(node, ast.Subscript)
            and isinstance(node.slice, ast.Constant)
            and getattr(node.value, "id", "") == "env"
        ):
            names.add(node.slice.value)
    return names


def test_every_variable_settings_reads_is_listed_with_a_default_and_a_line() -> None:
    listed = {variable.name for variable in settings.VARIABLES}
    # PATH is the system's; the app reads STATIC_URL (site.py) itself.
    assert variables_settings_reads() - {"PATH"} == listed - {"STATIC_URL"}
    assert len(listed) == len(settings.VARIABLES)
    assert all(variable.default and variable.doc for variable in settings.VARIABLES)
    assert {variable.only_for for variable in settings.VARIABLES} <= {"", "asgi", "database", "django"}


def test_the_release_the_app_reports_is_a_tag_or_a_commit_else_refused_by_name() -> None:
    assert settings.header_value("APP_VERSION", None, settings.UNRELEASED_VERSION) == "dev"
    assert settings.header_value("APP_VERSION", " v1.4.0 ", settings.UNRELEASED_VERSION) == "v1.4.0"
    with pytest.raises(settings.SettingError, match=r"^APP_REVISION: '3f2c 1ab' is not a version or a commit"):
        settings.header_value("APP_REVISION", "3f2c 1ab", settings.UNKNOWN_REVISION)
    with pytest.raises(settings.SettingError, match=r"^APP_VERSION: 'v1.4.0é' is not"):
        settings.header_value("APP_VERSION", "v1.4.0é", settings.UNRELEASED_VERSION)
