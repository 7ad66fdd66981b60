"""Random answers at every prompt, on the command line and typed: each run ends in a clean project or
a one-line refusal naming the field, never a traceback from the template's code and never files left
behind. One ending is cookiecutter's own: a value outside a menu on the command line (its traceback,
before the template's code runs)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pyserve_template import compat
from pyserve_template.baking import run_cookiecutter

from .conftest import ANSWER_KEYS, BASELINE, COOKIECUTTER_JSON

# Answers that can be right, so that a bake with random answers sometimes succeeds.
PLAUSIBLE: dict[str, list[str]] = {
    "project_name": ["My Service", "Ünïcode Shop", "x"],
    "project_slug": ["my_service", "api2", "_private"],
    "framework": list(compat.FRAMEWORKS),
    "interface": ["auto", *compat.INTERFACES],
    "server": ["auto", *compat.SERVERS],
    "workload": list(compat.WORKLOADS),
    "cpu_limit": ["0.5", "2", "1500m", "64"],
    "memory_limit": ["512MiB", "2GiB", "1.5G", "768M", "300"],
    "static_strategy": list(compat.STATIC_STRATEGIES),
    "python_version": list(compat.PYTHON_VERSIONS),
    "use_kubernetes": ["yes", "no", "true", "n"],
    "database": list(compat.DATABASES),
    "max_replicas": ["1", "3", "10"],
    "db_max_connections": ["90", "none", "20"],
    "tls": list(compat.TLS_MODES),
}
# What people and scripts get wrong, and what breaks naive code.
HOSTILE = [
    "", " ", "-1", "0", "1e400", "nan", "inf", "0x10", "1_000", "½", "٣", "None", "null", "[]", "{}",
    "{{", "{%", "{#", "}}", "{{ cookiecutter.framework }}", "{% raw %}", "../..", "/etc/passwd",
    "a" * 300, "'", '"', "\\", "\t", "$(id)", "`id`", "FLASK", "Flask ", "3.9", "maybe",
]  # fmt: skip
# Text for the command line: anything but NUL (an argv cannot carry it) and lone surrogates.
ARGUMENT_TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=40)
NUMBERS = st.one_of(st.integers(), st.floats()).map(str)


def answer_to(key: str) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(PLAUSIBLE[key]), st.sampled_from(HOSTILE), ARGUMENT_TEXT, NUMBERS)


@st.composite
def answer_sets(draw: st.DrawFn) -> dict[str, str]:
    """The baseline with one to three answers replaced by anything."""
    keys = draw(st.lists(st.sampled_from(sorted(ANSWER_KEYS)), min_size=1, max_size=3, unique=True))
    return {**BASELINE, **{key: draw(answer_to(key)) for key in keys}}


MENUS = {key for key, value in COOKIECUTTER_JSON.items() if isinstance(value, list | bool) and not key.startswith("_")}
# cookiecutter's own refusal of a value outside a menu (or a yes/no it cannot read) on the command
# line: the last line of its traceback, before any of the template's code runs.
# (The value may itself hold line breaks.)
COOKIECUTTER_REFUSAL = re.compile(r"\nValueError: .*? provided for (?:choice )?variable (\w+)[, ][^\n]*\Z", re.DOTALL)


def check_outcome(
    result: subprocess.CompletedProcess[str], output_dir: Path, asked: dict[str, str], typed: bool = False
) -> None:
    made = list(output_dir.iterdir())
    last = (result.stderr.strip().splitlines() or [""])[-1]
    if result.returncode == 0:
        assert "Traceback" not in result.stdout + result.stderr, (asked, result.stderr[-3000:])
        event("baked")
        [project] = made
        assert (project / "deploy" / "stack.toml").is_file()
        assert not (project / "deploy" / "_servers").exists()
    elif not typed and (refused_by_cookiecutter := COOKIECUTTER_REFUSAL.search(result.stderr.rstrip())):
        event(f"refused by cookiecutter: {refused_by_cookiecutter.group(1)}")
        assert refused_by_cookiecutter.group(1) in MENUS, (asked, last)
        assert "pyserve_template" not in result.stderr, result.stderr[-3000:]  # none of the template's code ran
        assert made == [], f"a refused bake left {made}"
    else:
        assert "Traceback" not in result.stdout + result.stderr, (asked, result.stderr[-3000:])
        [line] = result.stderr.strip().splitlines()
        field = line.removeprefix("pyserve-template: ").partition(":")[0]
        event(f"refused: {field}")
        assert line.startswith("pyserve-template: ") and field in ANSWER_KEYS, (asked, line)
        assert made == [], f"a refused bake left {made}"
    for item in made:
        shutil.rmtree(item)


SETTINGS = settings(
    max_examples=60,
    deadline=None,
    database=None,  # nothing written into the repository
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@SETTINGS
@given(asked=answer_sets())
def test_random_answers_on_the_command_line_bake_or_are_refused_before_anything_is_written(
    tmp_path_factory,
    asked: dict[str, str],
) -> None:
    workdir = tmp_path_factory.mktemp("answers")
    run = run_cookiecutter(workdir, asked)
    check_outcome(run.result, run.output_dir, asked)


PROMPT_ORDER = [key for key in COOKIECUTTER_JSON if not key.startswith("_")]
# Typed text: one line each, so no line breaks.
TYPED_TEXT = st.text(st.characters(exclude_categories=("Cs", "Cc", "Zl", "Zp")), max_size=40)


def typed_answer(key: str) -> st.SearchStrategy[str]:
    """Enter, something plausible (a menu's numbers, a yes/no), or any text."""
    value = COOKIECUTTER_JSON[key]
    if isinstance(value, list):
        plausible = [str(number) for number in range(1, len(value) + 1)]
    elif isinstance(value, bool):
        plausible = ["y", "n", "yes", "no"]
    else:
        plausible = PLAUSIBLE[key]
    return st.one_of(st.just(""), st.sampled_from(plausible), TYPED_TEXT)


@settings(SETTINGS, max_examples=20)
@given(typed=st.fixed_dictionaries({key: typed_answer(key) for key in PROMPT_ORDER}))
def test_random_answers_typed_at_the_prompts_bake_or_are_refused_before_anything_is_written(
    tmp_path_factory,
    typed: dict[str, str],
) -> None:
    # An empty line takes the default, as Enter does. A menu or the yes/no question given something it
    # does not list asks again and takes the next line: Enter after the last answer, for each of those.
    lines = "".join(f"{typed[key]}\n" for key in PROMPT_ORDER) + "\n" * len(PROMPT_ORDER)
    run = run_cookiecutter(tmp_path_factory.mktemp("typed"), {}, typed=lines)
    check_outcome(run.result, run.output_dir, typed, typed=True)
