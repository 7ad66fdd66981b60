"""The template's Jinja extension: lets cookiecutter.json and the hooks use pyserve_template.

cookiecutter renders the `__` variables of cookiecutter.json in order, among the prompts, and before
it makes any directory, so validating there refuses bad answers without leaving anything behind.
The filters used inside project files only read values that were validated by then.

At a terminal a bad answer is caught the moment it is given: the `__check_<question>` variable that
follows each question is rendered right after the answer, and that rendering shows the one-line
reason and asks the same question again (a menu with only the choices that can work) until the
answer is valid. With --no-input, key=value, --replay or piped answers nothing is asked again: the
answers are refused as a whole, in one line, before anything is written (a value outside a menu
given on the command line cookiecutter refuses itself, before this extension is loaded).

Two checks must come earlier, when cookiecutter loads this extension, with the raw answers at hand.
A user config's default outside a menu only makes cookiecutter warn and ask with its own default:
it is refused here. And with --no-input cookiecutter renders each answer as a Jinja template, so an
answer holding "{%" would crash it with a traceback before any of our code ran: that rendering comes
just after the loading.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

from cookiecutter.prompt import read_user_choice, read_user_variable
from jinja2 import Environment
from jinja2.ext import Extension

TEMPLATE_ROOT = Path(__file__).resolve().parent
if str(TEMPLATE_ROOT) not in sys.path:
    sys.path.insert(0, str(TEMPLATE_ROOT))
# `cruft update` renders two commits of the template in one process, from one checkout reset from
# the first to the second: each render must read this commit's records and code, not the modules
# the previous render imported. So this module, which cookiecutter imports for each render (it
# drops itself once loaded, below), drops the template's own where their sources have changed. A
# project's `pyserve template-update` runs with the project's own runtime imported: a render uses
# this checkout's (runtime/src), so another copy is dropped too.
TEMPLATE_PACKAGES = ("pyserve_template", "pyserve_runtime")
_loaded = sys.modules.get("pyserve_template")
_runtime = sys.modules.get("pyserve_runtime")
_other_runtime = _runtime is not None and not Path(_runtime.__file__ or "").is_relative_to(TEMPLATE_ROOT)
if _other_runtime or (_loaded is not None and _loaded.SOURCE_STAMP != _loaded.source_stamp()):
    for _name in [name for name in sys.modules if name.partition(".")[0] in TEMPLATE_PACKAGES]:
        del sys.modules[_name]

from pyserve_template import answers  # noqa: E402

DEFAULTS = json.loads((TEMPLATE_ROOT / "cookiecutter.json").read_text(encoding="utf-8"))
# Each question's default as an answer: a menu's is its first choice.
DEFAULT_ANSWERS = {name: value[0] if isinstance(value, list) else value for name, value in DEFAULTS.items()}


def resolved(context: Mapping[str, Any], name: str) -> object:
    """One resolved value (interface, server, use_kubernetes, ...) as itself, a bool a bool, so a
    project file tests it as `{% if cookiecutter | resolved('use_kubernetes') %}`; refuses the whole
    answer set if it is invalid."""
    value = getattr(answers.resolve_or_refuse(context), name)
    return value if value is not None else ""


def mapping_up_the_stack(variable: str, holding: str) -> Mapping[str, Any] | None:
    """Mapping `holding` of the first local `variable` up the call stack that has it as a mapping
    (cookiecutter passes neither to its extensions), or None."""
    frame = sys._getframe(1)
    while frame is not None:
        found = frame.f_locals.get(variable)
        if isinstance(found, Mapping) and isinstance(found.get(holding), Mapping):
            return found[holding]
        frame = frame.f_back
    return None


def raw_answers_being_loaded() -> Mapping[str, Any] | None:
    """The answers cookiecutter is creating this environment for: the `context` argument of
    cookiecutter.environment.ExtensionLoaderMixin, or None if there is none."""
    return mapping_up_the_stack("context", "cookiecutter")


def user_defaults_being_loaded() -> Mapping[str, Any]:
    """The user config's default_context (cookiecutter.main's `config_dict`)."""
    return mapping_up_the_stack("config_dict", "default_context") or {}


def asked_by_a_person() -> bool:
    """Whether cookiecutter is prompting (not --no-input) a person at a terminal."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "prompt_for_config":
            return not frame.f_locals.get("no_input") and sys.stdin.isatty()
        frame = frame.f_back
    return False


def asked_again_until_valid(given: MutableMapping[str, Any], name: str) -> str:
    """At a terminal: while answer `name` cannot work with those before it, say why in one line and
    ask again; a menu asked again offers only the choices that can work."""
    prompts = DEFAULTS["__prompts__"]
    while asked_by_a_person() and (problem := answers.problem_with(name, given, DEFAULT_ANSWERS)):
        print(f"  {problem}", flush=True)
        if isinstance(DEFAULTS[name], list):
            fitting = [c for c in DEFAULTS[name] if not answers.problem_with(name, {**given, name: c}, DEFAULT_ANSWERS)]
            given[name] = read_user_choice(name, fitting, prompts, "  ")
        elif name in answers.COMPUTED_DEFAULTS:
            given[name] = read_user_variable(name, answers.default_for(name, given), prompts, "  ")
        else:
            given[name] = read_user_variable(name, DEFAULT_ANSWERS[name], prompts, "  ")
    return ""


def toml_string(value: object) -> str:
    """A TOML basic string. Not `tojson`: it writes a character beyond U+FFFF as two \\u escapes of
    surrogates, which TOML refuses (a project named with an emoji got a stack.toml nothing could read)."""
    return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")


class PyserveExtension(Extension):
    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        sys.modules.pop(__name__, None)  # the next render imports this file, and the records, afresh
        raw = raw_answers_being_loaded()
        if raw is not None:
            try:
                answers.refuse_raw_answers_cookiecutter_would_render(raw, DEFAULTS)
                # cookiecutter only warns about a config default outside a menu, and asks with its own.
                answers.refuse_defaults_outside_the_menus(user_defaults_being_loaded(), DEFAULTS)
            except answers.values.TuningError as error:
                answers.refuse(error)
        environment.filters["python_identifier"] = answers.derive_slug
        environment.filters["toml_string"] = toml_string
        environment.filters["resolved"] = resolved
        environment.filters["default_for"] = lambda given, name: answers.default_for(name, given)
        environment.filters["asked_again_until_valid"] = asked_again_until_valid
        environment.globals["template_root"] = str(TEMPLATE_ROOT)
        # The hooks read the context through `tojson`; in the questions' order, the post-gen hook's
        # .cruft.json lists them as cruft's own does.
        environment.policies["json.dumps_kwargs"] = {"sort_keys": False}
