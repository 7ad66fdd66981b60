"""The template's Jinja extension: lets cookiecutter.json and the hooks use pyserve_template.

cookiecutter renders the `__` variables of cookiecutter.json after the prompts and before it makes
any directory, so validating there refuses bad answers without leaving anything behind. The
filters used inside project files only read values that were validated by then.
"""

from __future__ import annotations

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


def resolved(context: Mapping[str, Any], name: str) -> str:
    """One resolved value (interface, server, ...); refuses the whole answer set if it is invalid."""
    value = getattr(answers.resolve_or_refuse(context), name)
    return str(value) if value is not None else ""


class PyserveExtension(Extension):
    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters["python_identifier"] = answers.derive_slug
        environment.filters["resolved"] = resolved
        environment.globals["template_root"] = str(TEMPLATE_ROOT)
