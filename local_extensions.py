"""The template's Jinja extension: lets cookiecutter.json and the hooks use pyserve_template.

cookiecutter renders the `__` variables of cookiecutter.json after the prompts and before it makes
any directory, so validating there refuses bad answers without leaving anything behind. The
filters used inside project files only read values that were validated by then.

One check must come earlier: with --no-input cookiecutter renders each answer as a Jinja template,
so an answer holding "{%" would crash it with a traceback before any of our code ran. cookiecutter
loads this extension just before that rendering, with the raw answers at hand, so they are checked
here first.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

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
        environment.globals["template_root"] = str(TEMPLATE_ROOT)
