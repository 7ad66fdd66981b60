"""Backstop: cookiecutter.json's resolved variables already refused bad answers before any
directory existed; this catches answers that skipped that step (a hand-edited replay file)."""

import json
import sys

sys.path.insert(0, {{ template_root | tojson }})

from pyserve_template import answers  # noqa: E402

answers.resolve_or_refuse(json.loads({{ cookiecutter | tojson | tojson }}))
