"""The README and cookiecutter.json say what the code does: checked, not trusted."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pyserve_template import compat, records
from pyserve_template.baking import run_cookiecutter

from .conftest import ANSWER_KEYS, COOKIECUTTER_JSON, TEMPLATE_ROOT

README = (TEMPLATE_ROOT / "README.md").read_text()
DOCS = TEMPLATE_ROOT / "docs"
# A newcomer reads the front page in ten minutes; the rest is a page per topic in docs/.
README_MOST_LINES = 300
REFUSALS = (DOCS / "refusals.md").read_text()


def fenced_after(heading: str) -> str:
    """The first ```text block after a line that contains `heading`."""
    rest = README[README.index(heading) :]
    return re.search(r"```text\n(.*?)\n```", rest, re.DOTALL).group(1)


def test_readme_matrix_is_the_compatibility_table() -> None:
    assert compat.matrix_markdown() in README


@pytest.mark.parametrize(
    ("key", "choices"),
    [
        ("framework", compat.FRAMEWORKS),
        ("interface", ("auto", *compat.INTERFACES)),
        ("server", ("auto", *compat.SERVERS)),
        ("workload", compat.WORKLOADS),
        ("static_strategy", compat.STATIC_STRATEGIES),
        ("python_version", compat.PYTHON_VERSIONS),
        ("tls", compat.TLS_MODES),
    ],
)
def test_cookiecutter_menus_are_the_tables_choices_with_the_first_as_default(
    key: str, choices: tuple[str, ...]
) -> None:
    assert COOKIECUTTER_JSON[key] == list(choices)
    labels = COOKIECUTTER_JSON["__prompts__"][key]
    assert set(labels) == {"__prompt__", *choices}
    # Each label starts with what the choice is called, or names the framework it is.
    assert all(labels[choice].lower().startswith(choice[:4]) for choice in choices)


@pytest.mark.parametrize(
    ("key", "interfaces"),
    [("framework", compat.FRAMEWORK_INTERFACES), ("server", compat.SERVER_INTERFACES)],
)
def test_menu_labels_name_the_interfaces_the_table_gives(key: str, interfaces: dict[str, tuple[str, ...]]) -> None:
    labels = COOKIECUTTER_JSON["__prompts__"][key]
    for choice, spoken in interfaces.items():
        named = re.search(r"\(([A-Z]+(?: or [A-Z]+)?)\)$", labels[choice]).group(1)
        assert set(named.lower().split(" or ")) == set(spoken), labels[choice]


def test_every_question_has_a_human_prompt_and_a_readme_row() -> None:
    assert set(COOKIECUTTER_JSON["__prompts__"]) == ANSWER_KEYS
    for key in ANSWER_KEYS:
        assert f"| `{key}` |" in README


def test_the_quick_start_bakes_from_a_clone_as_written(tmp_path: Path) -> None:
    """The clone form of the Quick start, run as written beside a copy of this template (the published
    form needs the template on GitHub, which these tests cannot reach)."""
    block = re.search(r"## Quick start.*?```sh\n(.*?)\n```", README, re.DOTALL).group(1)
    [line] = [line for line in block.splitlines() if "gh:" not in line]
    install, bake = line.split(" && ")
    assert shlex.split(install)[:3] == ["python3", "-m", "pip"]  # what this suite's venv already holds
    ignored = shutil.ignore_patterns(".venv", ".cache", "__pycache__", ".git")
    shutil.copytree(TEMPLATE_ROOT, tmp_path / shlex.split(bake)[-1], ignore=ignored)
    command = [sys.executable, "-m", *shlex.split(bake)]
    env = {**os.environ, "HOME": str(tmp_path)}  # its replay file goes there, not into the user's home
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "my_service" / "deploy" / "stack.toml").is_file()
    assert (tmp_path / "my_service" / "uv.lock").is_file(), result.stdout


def test_the_issue_s_keys_and_no_others() -> None:
    expected = {
        "project_name", "project_slug", "framework", "interface", "server", "workload",
        "cpu_limit", "memory_limit", "static_strategy", "python_version", "use_kubernetes",
        "database", "max_replicas", "db_max_connections", "tls",
    }  # fmt: skip
    assert ANSWER_KEYS == expected
    assert COOKIECUTTER_JSON["use_kubernetes"] is False  # a yes/no question


@pytest.mark.parametrize(
    ("heading", "answers"),
    [
        ("A sample run, `cookiecutter --no-input .`:", {}),
        (
            "and `cookiecutter --no-input . framework=django interface=asgi server=granian",
            {
                "framework": "django",
                "interface": "asgi",
                "server": "granian",
                "cpu_limit": "0.5",
                "memory_limit": "768MiB",
            },
        ),
    ],
)
def test_readme_sample_runs_are_what_cookiecutter_prints(tmp_path: Path, heading: str, answers: dict) -> None:
    run = run_cookiecutter(tmp_path, answers)
    assert run.result.returncode == 0, run.result.stderr
    printed = "\n".join(line for line in run.result.stdout.splitlines() if line.strip())
    assert printed == fenced_after(heading)


@pytest.mark.parametrize(
    "example",
    re.findall(r"^\$ cookiecutter --no-input \. (.+)\n(\.\.\.\n)?(.+)$", REFUSALS, re.MULTILINE),
)
def test_refusal_examples_are_what_cookiecutter_says(tmp_path: Path, example: tuple[str, str, str]) -> None:
    args, elided, line = example
    run = run_cookiecutter(tmp_path, dict(arg.split("=", 1) for arg in args.split()))
    assert run.result.returncode != 0
    said = run.result.stderr.strip()
    assert (said.splitlines()[-1] if elided else said) == line  # "...": the traceback above its last line


def memory_table(header: str) -> dict[str, tuple[float, int]]:
    """docs/limits.md's rows `| name | <measured> MiB ... | <figure> MiB |` under the header that starts `header`."""
    page = (DOCS / "limits.md").read_text()
    table = page[page.index(header) :].split("\n\n")[0]
    rows = {}
    for line in table.splitlines()[2:]:
        name, measured, figure = (cell.strip() for cell in line.strip().strip("|").split("|"))
        rows[name] = (float(measured.split()[0]), int(figure.split()[0]))
    return rows


@pytest.mark.parametrize(
    ("header", "figures"),
    [
        ("| framework | worker RSS", {name: (it.rss_mib, it.memory_mib) for name, it in records.FRAMEWORKS.items()}),
        ("| server | beside", {name: (it.rss_mib, it.memory_mib) for name, it in records.SERVERS.items()}),
    ],
    ids=["frameworks", "servers"],
)
def test_memory_figures_are_the_records(header: str, figures: dict) -> None:
    assert memory_table(header) == figures


def test_the_readme_is_a_front_page_and_links_every_docs_page() -> None:
    assert len(README.splitlines()) <= README_MOST_LINES
    for page in sorted(DOCS.glob("*.md")):
        assert f"[docs/{page.name}](docs/{page.name})" in README, page.name


def test_benchmark_figures_are_the_latest_report() -> None:
    """docs/benchmark.md quotes bench/results/results.md, the report bench/run wrote, and its command."""
    benchmark = (DOCS / "benchmark.md").read_text()
    report = (TEMPLATE_ROOT / "bench" / "results" / "results.md").read_text()
    summary = re.search(r"^\| stack \| contender \|.*?(?=\n\n)", report, re.DOTALL | re.MULTILINE).group(0)
    assert summary in benchmark
    # Every server at 1 CPU, and what `auto` picks from it.
    servers = re.search(r"^### 1 CPU\n\n(\| stack \| floor.*?)(?=\n\n)", report, re.DOTALL | re.MULTILINE).group(1)
    assert servers in benchmark
    for (interface, workload), (server, _) in compat.AUTO_SERVER.items():
        assert f"- {interface.upper()} {workload}: **{server}**" in benchmark
    command = re.search(r"^`(bench/run[^`]*)`", report, re.MULTILINE).group(1)
    assert f"The latest figures, from `{command}`" in benchmark


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped, spaces as dashes."""
    return re.sub(r"[^a-z0-9 -]", "", heading.lower()).replace(" ", "-")


def test_the_projects_links_to_the_decisions_page_name_its_headings() -> None:
    """Comments in generated files say why in a line and link to the measurements in docs/decisions.md."""
    page = (DOCS / "decisions.md").read_text()
    anchors = {github_anchor(heading) for heading in re.findall(r"^## (.+)$", page, re.MULTILINE)}
    project = TEMPLATE_ROOT / "{{cookiecutter.project_slug}}"
    linked = {
        anchor
        for path in project.rglob("*")
        if path.is_file() and ".venv" not in path.parts
        for anchor in re.findall(r"docs/decisions\.md#([a-z0-9-]+)", path.read_text(errors="replace"))
    }
    assert linked, "no comment links to docs/decisions.md"
    assert linked <= anchors, linked - anchors
