"""The questions as a person answers them at a real terminal (pexpect runs cookiecutter in a pty):
a bad answer gets its one-line reason and the same question again at once, nothing typed before it
is lost, and the project finally baked holds the corrected answers."""

from __future__ import annotations

import os
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pexpect
import pytest

from pyserve_template.compat import auto_server

from .conftest import COOKIECUTTER_JSON, TEMPLATE_ROOT

QUESTIONS = [key for key in COOKIECUTTER_JSON if not key.startswith("_")]
PROMPTS: dict[str, str | dict[str, str]] = COOKIECUTTER_JSON["__prompts__"]
MENU_OPTION = re.compile(r"^\s*(\d+) - (.+?)\s*$", re.MULTILINE)


def question(key: str) -> str:
    prompt = PROMPTS[key]
    return prompt if isinstance(prompt, str) else prompt["__prompt__"]


def asked(key: str, counter: str) -> str:
    """A pattern for question `key` as the terminal asks it: a menu, a yes/no, or text with its default."""
    if isinstance(COOKIECUTTER_JSON[key], list):
        return r"  " + shown(f"{counter}{question(key)}") + r"\s*\n.*?Choose from \[[\d/]+\] \(1\):\s*$"
    if isinstance(COOKIECUTTER_JSON[key], bool):
        return r"  " + shown(f"{counter}{question(key)}") + r" \[y/n\] \([yn]\):\s*$"
    return r"  " + shown(f"{counter}{question(key)} (") + r"[^:]*\):\s*$"


def typed_for(key: str, answer: str, shown_menu: str) -> tuple[str, str]:
    """What to type for `answer`, and the value it gives: a menu's choice by the number it is shown
    with (given the choice or the number), anything else as it is."""
    if not isinstance(COOKIECUTTER_JSON[key], list) or not answer:
        return answer, answer
    options = dict(MENU_OPTION.findall(shown_menu))  # number -> label
    by_label = {label: choice for choice, label in PROMPTS[key].items() if choice != "__prompt__"}
    if answer.isdigit():
        return answer, by_label[options[answer]]
    [number] = [number for number, label in options.items() if by_label[label] == answer]
    return number, answer


def shown(text: str) -> str:
    """A pattern for `text` as the terminal shows it: rich wraps long prompts at 80 columns."""
    return r"\s+".join(map(re.escape, text.split()))


@dataclass
class Session:
    transcript: str
    project: Path

    def stack(self) -> dict:
        return tomllib.loads((self.project / "deploy" / "stack.toml").read_text())


def answered_at_a_terminal(tmp_path: Path, typed: dict[str, list[str]]) -> Session:
    """Each question answered as `typed` says (its answers in turn, a menu's by choice or number; Enter
    where it says nothing); after each answer but the last, the reason is shown and the same question
    asked again."""
    config = tmp_path / "config.yaml"
    config.write_text(f"replay_dir: {str(tmp_path / 'replay')!r}\n")
    command = [sys.executable, "-m", "cookiecutter", "--config-file", str(config), "-o", str(tmp_path / "out")]
    terminal = pexpect.spawn(
        command[0],
        [*command[1:], str(TEMPLATE_ROOT)],
        env={**os.environ, "NO_COLOR": "1", "TERM": "dumb"},  # plain text, no escape sequences
        encoding="utf-8",
        timeout=60,
    )
    transcript: list[str] = []
    try:
        for number, key in enumerate(QUESTIONS, 1):
            answers = typed.get(key, [""])
            for attempt, answer in enumerate(answers):
                counter = f"[{number}/{len(QUESTIONS)}] " if attempt == 0 else ""
                terminal.expect(asked(key, counter))
                transcript.append(terminal.before + terminal.after)
                text, value = typed_for(key, answer, terminal.after)
                terminal.sendline(text)
                if attempt < len(answers) - 1:
                    # The reason, in one line naming the field and the value, before the question again.
                    terminal.expect(shown(f"{key}: {value!r}") + r"[^\n]*\n")
                    transcript.append(terminal.before + terminal.after)
        terminal.expect(pexpect.EOF)
        transcript.append(terminal.before)
    finally:
        terminal.close()
    output = " ".join("".join(transcript).split())  # as one line: rich wraps at 80 columns
    assert terminal.exitstatus == 0, output
    [project] = (tmp_path / "out").iterdir()
    return Session(output, project)


# A whole session per path through the questions; where the server is left at `auto`, the one the
# benchmark chose for the interface and workload.
SESSIONS = {
    "the defaults": (
        {},
        {
            "framework": "fastapi",
            "interface": "asgi",
            "server": auto_server("asgi", COOKIECUTTER_JSON["workload"][0])[0],
        },
    ),
    "django on granian": (
        {"framework": ["django"], "server": ["granian"], "static_strategy": ["whitenoise"], "use_kubernetes": ["y"]},
        {"framework": "django", "interface": "wsgi", "server": "granian"},
    ),
    "a WSGI-only framework": (
        {"framework": ["flask"], "workload": ["mixed"], "cpu_limit": ["2"]},
        {"framework": "flask", "interface": "wsgi", "server": auto_server("wsgi", "mixed")[0]},
    ),
}


@pytest.mark.parametrize(("typed", "stack"), SESSIONS.values(), ids=SESSIONS.keys())
def test_a_session_at_a_terminal_bakes_what_was_answered(tmp_path: Path, typed: dict, stack: dict) -> None:
    session = answered_at_a_terminal(tmp_path, typed)
    assert {key: session.stack()["stack"][key] for key in stack} == stack
    assert (session.project / "deploy" / "k8s").is_dir() == ("use_kubernetes" in typed)


# Each kind of mistake, corrected at once: (question, what was typed first, the reason, the correction).
MISTAKES = {
    "a bad slug": ("project_slug", "class", "is a Python keyword", "my_api"),
    "an interface the framework lacks": ("interface", "asgi", "is not spoken by flask (WSGI only)", "wsgi"),
    "a server that cannot serve it": ("server", "uvicorn", "cannot serve flask (WSGI only)", "gunicorn"),
    "a bad CPU": ("cpu_limit", "lots", "is not a number", "0.5"),
    "a bad memory": ("memory_limit", "64", "is too small for one fastapi worker under uvicorn", "1GiB"),
}


@pytest.mark.parametrize(("key", "wrong", "reason", "right"), MISTAKES.values(), ids=MISTAKES.keys())
def test_a_mistake_is_explained_and_asked_again_at_once(
    tmp_path: Path, key: str, wrong: str, reason: str, right: str
) -> None:
    # Answers given before the mistake stay (flask, WSGI only, before the interface and the server).
    before = {"framework": ["flask"]} if key in ("interface", "server") else {"workload": ["mixed"]}
    session = answered_at_a_terminal(tmp_path, {**before, key: [wrong, right]})
    assert f"{key}: {wrong!r} {reason}" in session.transcript
    assert "Traceback" not in session.transcript
    stack = session.stack()
    answered = {
        "project_slug": stack["template"]["project_slug"],
        "framework": stack["stack"]["framework"],
        "interface": stack["stack"]["interface"],
        "server": stack["stack"]["server"],
        "cpu_limit": stack["limits"]["cpu"],
        "memory_limit": stack["limits"]["memory"],
    }
    assert answered[key] == right
    if isinstance(COOKIECUTTER_JSON[key], list):  # asked again, the menu offers only what can work
        again = session.transcript.split(f"{key}: {wrong!r}", 1)[1]
        assert PROMPTS[key][wrong] not in again.split("Choose from", 1)[0]
    first = next(iter(before))
    assert stack["stack"][first] == before[first][0]


def test_a_database_budget_too_small_for_the_plan_is_explained_and_asked_again(tmp_path: Path) -> None:
    typed = {"framework": ["flask"], "database": ["postgres"], "max_replicas": ["4"], "db_max_connections": ["8", "40"]}
    session = answered_at_a_terminal(tmp_path, typed)
    assert (
        "db_max_connections: '8' leaves 1 connection per container for 3 workers at 5 replicas (4 and a deploy's 1"
        in session.transcript
    )
    assert session.stack()["database"] == {
        "engine": "postgres",
        "max_connections": 40,
        "max_replicas": 4,
        "migrations": "yoyo",
    }


def test_the_readme_s_terminal_session_is_what_a_terminal_shows(tmp_path: Path) -> None:
    readme = (TEMPLATE_ROOT / "README.md").read_text()
    rest = readme[readme.index("At a terminal the closed questions are") :]
    shown_lines = re.search(r"```text\n(.*?)\n```", rest, re.DOTALL).group(1).splitlines()
    typed: dict[str, list[str]] = {}
    key = None
    for line in shown_lines:  # what was typed: the text after each prompt's "(default): "
        title = line.strip().split("] ", 1)[-1]
        key = next((k for k in QUESTIONS if title.startswith(question(k))), key)
        if re.search(r"\([^()]*\):", line):
            typed.setdefault(key, []).append(re.search(r"\([^()]*\):\s*([^()]*)$", line).group(1))
    session = answered_at_a_terminal(tmp_path, typed)
    seen = "".join(session.transcript.split())  # the terminal's spacing after an echoed answer varies
    for line in shown_lines:
        assert "".join(line.split()) in seen, line
