"""The generated README's table of environment variables, made from pyserve_runtime.settings's VARIABLES."""

from __future__ import annotations

from . import settings


def listed(variable: settings.Variable, interface: str, framework: str, database: str) -> bool:
    """Whether a project with these answers has the variable: every project, or those it is only for."""
    return variable.only_for in {"", interface, framework} or (variable.only_for == "database" and database != "none")


def environment_table(interface: str, framework: str, database: str) -> str:
    rows = [
        f"| `{variable.name}` | {variable.doc} | {variable.default} |"
        for variable in settings.VARIABLES
        if listed(variable, interface, framework, database)
    ]
    return "\n".join(["| variable | what it does | default |", "|---|---|---|", *rows])
