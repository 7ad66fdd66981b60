"""What cannot work is refused: one line naming the field, the value and what is accepted;
a non-zero exit; no traceback from the template's code; nothing left on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pyserve_template import compat
from pyserve_template.baking import run_cookiecutter

from .conftest import context, variation_id

# What each refusal says is accepted.
CPU = "give cores as a number > 0 and <= 1024 (e.g. 0.5, 2 or 500m)"
MEMORY = "give a size such as 512MiB, 2GiB, 1.5G, 768M, or a number of MiB"
SLUG = "give a Python identifier of ASCII letters, digits and _ (e.g. my_service)"
PLAIN = "give plain text, without {{, {% or {#"

# answers -> the one line the user reads
REFUSALS: list[tuple[dict[str, str], str]] = [
    (
        {"framework": "flask", "interface": "asgi"},
        "interface: 'asgi' is not spoken by flask (WSGI only); choose wsgi or auto",
    ),
    (
        {"framework": "fastapi", "interface": "wsgi"},
        "interface: 'wsgi' is not spoken by fastapi (ASGI only); choose asgi or auto",
    ),
    (
        {"framework": "flask", "server": "uvicorn"},
        "server: 'uvicorn' cannot serve flask (WSGI only); choose gunicorn, hypercorn, granian or auto",
    ),
    (
        {"framework": "django", "interface": "wsgi", "server": "uvicorn"},
        "server: 'uvicorn' does not serve WSGI; for WSGI choose gunicorn, hypercorn, granian or auto",
    ),
    ({"cpu_limit": "abc"}, "cpu_limit: 'abc' is not a number; " + CPU),
    ({"cpu_limit": "0"}, "cpu_limit: '0' is not a finite number > 0; " + CPU),
    ({"cpu_limit": "-2"}, "cpu_limit: '-2' is not a finite number > 0; " + CPU),
    ({"cpu_limit": "nan"}, "cpu_limit: 'nan' is not a finite number > 0; " + CPU),
    ({"cpu_limit": "inf"}, "cpu_limit: 'inf' is not a finite number > 0; " + CPU),
    ({"cpu_limit": "100000"}, "cpu_limit: '100000' is larger than any machine; " + CPU),
    ({"memory_limit": "lots"}, "memory_limit: 'lots' is not a memory size; " + MEMORY),
    ({"memory_limit": "0"}, "memory_limit: '0' is not more than 0; " + MEMORY),
    ({"memory_limit": "-512MiB"}, "memory_limit: '-512MiB' is not a memory size; " + MEMORY),
    (
        {"memory_limit": "64MiB"},
        "memory_limit: '64MiB' is too small for one fastapi worker under uvicorn;"
        " give at least 182MiB (65 MiB a worker + 80 MiB for uvicorn and its metrics + 20% headroom)",
    ),
    (
        {"framework": "django", "server": "gunicorn", "memory_limit": "162M"},
        "memory_limit: '162M' is too small for one django worker under gunicorn;"
        " give at least 163MiB (60 MiB a worker + 70 MiB for gunicorn and its metrics + 20% headroom)",
    ),
    ({"project_slug": "my-service"}, "project_slug: 'my-service' is not a Python identifier; " + SLUG),
    ({"project_slug": "2fast"}, "project_slug: '2fast' is not a Python identifier; " + SLUG),
    ({"project_slug": "../escape"}, "project_slug: '../escape' is not a Python identifier; " + SLUG),
    ({"project_slug": "class"}, "project_slug: 'class' is a Python keyword; " + SLUG),
    ({"project_slug": "match"}, "project_slug: 'match' is a Python keyword; " + SLUG),
    ({"project_slug": "flask"}, "project_slug: 'flask' would shadow a module the project imports; " + SLUG),
    ({"project_slug": "json"}, "project_slug: 'json' would shadow a module the project imports; " + SLUG),
    # cookiecutter renders a --no-input answer as Jinja: these would crash it, or run as templates.
    ({"project_name": "{% if %}"}, "project_name: '{% if %}' holds template syntax; " + PLAIN),
    ({"cpu_limit": "{{ 7 * 7 }}"}, "cpu_limit: '{{ 7 * 7 }}' holds template syntax; " + PLAIN),
    ({"memory_limit": "{#"}, "memory_limit: '{#' holds template syntax; " + PLAIN),
    (
        {"project_name": " "},
        "project_name: ' ' is not a usable name; give 1 to 100 printable characters, e.g. My Service",
    ),
    # A database budget that cannot give every worker a connection, and the counts themselves.
    (
        {"database": "postgres", "cpu_limit": "4", "max_replicas": "20"},
        "db_max_connections: '90' leaves 4 connections per container for 5 workers at 21 replicas (20 and a"
        " deploy's 1 more) once the release step has its 2; give at least 107 (one a worker, and the step's),"
        " or fewer replicas or CPUs",
    ),
    (
        {"database": "postgres", "framework": "flask", "db_max_connections": "2"},
        "db_max_connections: '2' leaves 0 connections per container for 3 workers at 2 replicas (1 and a"
        " deploy's 1 more) once the release step has its 2; give at least 8 (one a worker, and the step's),"
        " or fewer replicas or CPUs",
    ),
    (
        {"database": "postgres", "db_max_connections": "many"},
        "db_max_connections: 'many' is not a whole number >= 1;"
        " give the connections this service may hold, e.g. 90, or none",
    ),
    ({"max_replicas": "0"}, "max_replicas: '0' is not a whole number from 1 to 1000; give e.g. 1, or 10"),
    (
        {"use_kubernetes": "yes", "max_replicas": "1"},
        "max_replicas: '1' is below the 2 replicas the Kubernetes HPA keeps;"
        " give 2 or more, or no Kubernetes manifests",
    ),
]


# A menu's answer outside its list on the command line: cookiecutter refuses it itself, before any of
# the template's code runs, with a traceback whose last line names the field, the value and the choices.
COOKIECUTTER_REFUSALS: list[tuple[dict[str, str], str]] = [
    (
        {"framework": "bottle"},
        "ValueError: bottle provided for choice variable framework, but the choices are"
        " ['fastapi', 'django', 'flask', 'quart', 'starlette', 'litestar'].",
    ),
    (
        {"python_version": "2.7"},
        "ValueError: 2.7 provided for choice variable python_version, but the choices are ['3.13', '3.14'].",
    ),
    (
        {"server": "{#"},
        "ValueError: {# provided for choice variable server, but the choices are"
        " ['auto', 'gunicorn', 'uvicorn', 'hypercorn', 'granian'].",
    ),
    (
        {"use_kubernetes": "maybe"},
        "ValueError: maybe provided for variable use_kubernetes could not be converted to a boolean.",
    ),
]
# The same in a user config's default_context: cookiecutter only warns and would ask with its own
# default; the template refuses it, in one line after cookiecutter's warning.
REFUSED_DEFAULTS: list[tuple[dict[str, str], str]] = [
    (
        {"framework": "bottle"},
        "framework: 'bottle' is not a choice; choose one of fastapi, django, flask, quart, starlette, litestar",
    ),
    ({"use_kubernetes": "maybe"}, "use_kubernetes: 'maybe' is not a yes/no answer; answer yes or no"),
]


def refusal_id(case: tuple[dict[str, str], str]) -> str:
    return variation_id(case[0])


def assert_refused(workdir: Path, answers: dict[str, str], message: str) -> None:
    run = run_cookiecutter(workdir, answers)
    assert run.result.returncode != 0
    assert run.result.stderr.strip().splitlines() == [f"pyserve-template: {message}"]
    assert "Traceback" not in run.result.stdout + run.result.stderr
    assert run.left_behind == [], "a refused bake left files behind"


@pytest.mark.parametrize(
    ("changes", "last_line"), COOKIECUTTER_REFUSALS, ids=[refusal_id(case) for case in COOKIECUTTER_REFUSALS]
)
def test_a_value_outside_a_menu_is_refused_by_cookiecutter_before_anything_is_written(
    tmp_path: Path, changes: dict[str, str], last_line: str
) -> None:
    run = run_cookiecutter(tmp_path, context(**changes))
    assert run.result.returncode != 0
    assert run.result.stderr.strip().splitlines()[-1] == last_line
    assert "pyserve_template" not in run.result.stderr  # no frame of the template's code
    assert run.left_behind == []


@pytest.mark.parametrize(("defaults", "message"), REFUSED_DEFAULTS, ids=[refusal_id(case) for case in REFUSED_DEFAULTS])
def test_a_config_default_outside_a_menu_is_refused_in_one_line(
    tmp_path: Path, defaults: dict[str, str], message: str
) -> None:
    run = run_cookiecutter(tmp_path, {}, "--no-input", default_context=defaults)
    assert run.result.returncode != 0
    assert run.result.stderr.strip().splitlines()[-1] == f"pyserve-template: {message}"
    assert "Traceback" not in run.result.stderr
    assert run.left_behind == []


@pytest.mark.parametrize(("changes", "message"), REFUSALS, ids=[refusal_id(case) for case in REFUSALS])
def test_bad_answers_are_refused_in_one_line_before_anything_is_written(
    tmp_path: Path, changes: dict[str, str], message: str
) -> None:
    assert_refused(tmp_path, context(**changes), message)


@pytest.mark.parametrize("stack", compat.unsupported_stacks(), ids=lambda stack: stack.id)
def test_every_unsupported_stack_is_refused(tmp_path: Path, stack: compat.Stack) -> None:
    run = run_cookiecutter(tmp_path, context(framework=stack.framework, interface=stack.interface, server=stack.server))
    assert run.result.returncode != 0
    [line] = run.result.stderr.strip().splitlines()
    assert line.startswith("pyserve-template: ")
    assert f"'{stack.interface}'" in line or f"'{stack.server}'" in line
    assert run.left_behind == []


def test_the_pre_gen_hook_refuses_a_replayed_context_that_skipped_validation(tmp_path: Path) -> None:
    # A replay file carries the already-resolved variables, so only the pre-gen hook sees its answers.
    (tmp_path / "good").mkdir()
    good = run_cookiecutter(tmp_path / "good", context())
    assert good.result.returncode == 0, good.result.stderr
    assert good.left_in_temp == [], "the hooks' rendered copies (they hold every answer) were left in TMPDIR"
    [replay_file] = good.replay_dir.iterdir()
    replayed = json.loads(replay_file.read_text())
    replayed["cookiecutter"]["cpu_limit"] = "0"
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(replayed))
    (tmp_path / "bad").mkdir()
    bad = run_cookiecutter(tmp_path / "bad", {}, "--replay-file", str(tampered))
    assert bad.result.returncode != 0
    assert "pyserve-template: cpu_limit: '0' is not a finite number > 0" in bad.result.stderr
    assert bad.left_behind == [], "the hook's refusal left the project directory behind"
