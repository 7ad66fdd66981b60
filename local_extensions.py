"""The template's Jinja extension: lets cookiecutter.json and the hooks use pyserve_template.

cookiecutter renders the `__` variables of cookiecutter.json after the prompts and before it makes
any directory, so validating there refuses bad answers without leaving anything behind. The
filters used inside project files only read values that were validated by then.

At a terminal a bad answer is caught the moment it is given: cookiecutter renders the
`__check_<answer>` variable that follows each answer right after it is typed, and that rendering
shows the one-line reason and asks the same question again until the answer is valid. With
--no-input, key=value, --replay or piped answers nothing is asked again: the answers are refused as
a whole, in one line, before anything is written.

One check must come earlier: with --no-input cookiecutter renders each answer as a Jinja template,
so an answer holding "{%" would crash it with a traceback before any of our code ran. cookiecutter
loads this extension just before that rendering, with the raw answers at hand, so they are checked
here first.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

from cookiecutter.prompt import read_user_variable
from jinja2 import Environment
from jinja2.ext import Extension

TEMPLATE_ROOT = Path(__file__).resolve().parent
if str(TEMPLATE_ROOT) not in sys.path:
    sys.path.insert(0, str(TEMPLATE_ROOT))

from pyserve_template import answers  # noqa: E402

DEFAULTS = json.loads((TEMPLATE_ROOT / "cookiecutter.json").read_text(encoding="utf-8"))


def resolved(context: Mapping[str, Any], name: str) -> str:
    """One resolved value (interface, server, ...); refuses the whole answer set if it is invalid."""
    value = getattr(answers.resolve_or_refuse(context), name)
    return str(value) if value is not None else ""


def raw_answers_being_loaded() -> Mapping[str, Any] | None:
    """The answers cookiecutter is creating this environment for: its `context` argument, a few
    frames up (cookiecutter.environment.ExtensionLoaderMixin), or None if there is none."""
    frame = sys._getframe(1)
    while frame is not None:
        context = frame.f_locals.get("context")
        if isinstance(context, Mapping) and isinstance(context.get("cookiecutter"), Mapping):
            return context["cookiecutter"]
        frame = frame.f_back
    return None


def asked_by_a_person() -> bool:
    """Whether cookiecutter is prompting (not --no-input) a person at a terminal."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "prompt_for_config":
            return not frame.f_locals.get("no_input") and sys.stdin.isatty()
        frame = frame.f_back
    return False


def asked_again_until_valid(given: MutableMapping[str, Any], name: str) -> str:
    """At a terminal: while answer `name` cannot work, say why in one line and ask it again."""
    while asked_by_a_person() and (problem := answers.problem_with(name, given, DEFAULTS)):
        print(f"  {problem}", flush=True)
        default = answers.derive_slug(given["project_name"]) if name == "project_slug" else DEFAULTS[name]
        given[name] = read_user_variable(name, default, DEFAULTS["__prompts__"], "  ")
    return ""


class PyserveExtension(Extension):
    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        raw = raw_answers_being_loaded()
        if raw is not None:
            try:
                answers.refuse_raw_answers_cookiecutter_would_render(raw, DEFAULTS)
            except answers.tuning.TuningError as error:
                answers.refuse(error)
        environment.filters["python_identifier"] = answers.derive_slug
        environment.filters["resolved"] = resolved
        environment.filters["asked_again_until_valid"] = asked_again_until_valid
        environment.globals["template_root"] = str(TEMPLATE_ROOT)
