"""Backstop: cookiecutter.json's resolved variables already refused bad answers before any
directory existed; this catches answers that skipped that step (a hand-edited replay file)."""

import atexit
import json
import sys
from pathlib import Path

# cookiecutter runs this hook from a rendered copy in the temp directory and leaves it there
# (cookiecutter#886); the copy holds every answer, so it goes when the hook ends, however it ends.
atexit.register(Path(__file__).unlink, missing_ok=True)

sys.path.insert(0, {{ template_root | tojson }})

from pyserve_template import answers  # noqa: E402

answers.resolve_or_refuse(json.loads({{ cookiecutter | tojson | tojson }}))
