"""Random answers at every prompt, on the command line and typed: each run ends in a clean project or
a one-line refusal naming the field. Never a traceback, never files left behind."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pyserve_template import compat

from .conftest import ANSWER_KEYS, BASELINE, COOKIECUTTER_JSON, run_cookiecutter

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


def check_outcome(result: subprocess.CompletedProcess[str], output_dir: Path, asked: dict[str, str]) -> None:
    assert "Traceback" not in result.stdout + result.stderr, (asked, result.stderr[-3000:])
    made = list(output_dir.iterdir())
    if result.returncode == 0:
        event("baked")
        [project] = made
        assert (project / "deploy" / "stack.toml").is_file()
        assert not (project / "deploy" / "_servers").exists()
    else:
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
def test_random_answers_on_the_command_line_bake_or_are_refused_in_one_line(
    tmp_path_factory,
    asked: dict[str, str],
) -> None:
    workdir = tmp_path_factory.mktemp("answers")
    run = run_cookiecutter(workdir, asked)
    check_outcome(run.result, run.output_dir, asked)


PROMPT_ORDER = [key for key in COOKIECUTTER_JSON if not key.startswith("_")]
# Typed text: one line each, so no line breaks.
TYPED_TEXT = st.text(st.characters(exclude_categories=("Cs", "Cc", "Zl", "Zp")), max_size=40)


@settings(SETTINGS, max_examples=20)
@given(
    typed=st.fixed_dictionaries(
        {key: st.one_of(st.just(""), st.sampled_from(PLAUSIBLE[key]), TYPED_TEXT) for key in PROMPT_ORDER}
    )
)
def test_random_answers_typed_at_the_prompts_bake_or_are_refused_in_one_line(
    tmp_path_factory,
    typed: dict[str, str],
) -> None:
    # An empty line takes the default, as Enter does.
    run = run_cookiecutter(
        tmp_path_factory.mktemp("typed"), {}, typed="".join(f"{typed[key]}\n" for key in PROMPT_ORDER)
    )
    check_outcome(run.result, run.output_dir, typed)
