"""The template's own Python: the compatibility table and the validation of answers.

The tuning model is not here: it lives in the generated project as deploy/tuning.py (shipped
verbatim) and `tuning` below loads that very file, so generation and start-up share one model.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

TEMPLATE_ROOT = Path(__file__).resolve().parent.parent
PROJECT_TEMPLATE = TEMPLATE_ROOT / "{{cookiecutter.project_slug}}"
TUNING_FILE = PROJECT_TEMPLATE / "deploy" / "tuning.py"


def _load_tuning():
    spec = importlib.util.spec_from_file_location("pyserve_tuning", TUNING_FILE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    # No __pycache__ inside the project template: cookiecutter would try to render it.
    writes_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = writes_bytecode
    return module


tuning = sys.modules.get("pyserve_tuning") or _load_tuning()
