"""What works with what: the one compatibility table.

It drives the hooks (what is refused, what `auto` means), the README's matrix
(`python -m pyserve_template.compat`) and the test matrix (`supported_stacks()`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from . import tuning

# The interfaces each framework speaks; the first is its native one, which `interface=auto` picks.
FRAMEWORK_INTERFACES: dict[str, tuple[str, ...]] = {
    "fastapi": ("asgi",),
    "django": ("wsgi", "asgi"),
    "flask": ("wsgi",),
    "quart": ("asgi",),
    "starlette": ("asgi",),
    "litestar": ("asgi",),
}

# The interfaces each server serves. uvicorn's WSGI mode is deprecated upstream, so it is ASGI only.
SERVER_INTERFACES: dict[str, tuple[str, ...]] = {
    "gunicorn": ("wsgi", "asgi"),
    "uvicorn": ("asgi",),
    "hypercorn": ("wsgi", "asgi"),
    "granian": ("wsgi", "asgi"),
}

# `server=auto`, per interface, and why.
AUTO_SERVER: dict[str, tuple[str, str]] = {
    "wsgi": ("gunicorn", "the most proven WSGI server; its worker class follows the workload"),
    "asgi": (
        "uvicorn",
        "the fastest ASGI server measured here (uvloop + httptools);"
        " with 2 or more workers its supervisor replaces dead or hung ones",
    ),
}

STATIC_STRATEGIES = ("nginx", "whitenoise", "cdn", "none")

# WhiteNoise serves WSGI only (its maintainer has no ASGI plans); ServeStatic, its maintained fork,
# does both, so `whitenoise` means "the app serves its own compressed, hashed files" for every stack.
STATIC_PACKAGE = {"wsgi": "whitenoise", "asgi": "servestatic"}

FRAMEWORKS = tuple(FRAMEWORK_INTERFACES)
SERVERS = tuple(SERVER_INTERFACES)
INTERFACES = ("asgi", "wsgi")
WORKLOADS = ("io_bound", "mixed", "cpu_bound")
PYTHON_VERSIONS = ("3.13", "3.12", "3.14")


class AnswerError(tuning.TuningError):
    """An answer that cannot work; the message names the field, the value and what is accepted."""


@dataclass(frozen=True)
class Stack:
    framework: str
    interface: str
    server: str

    @property
    def id(self) -> str:
        return f"{self.framework}-{self.interface}-{self.server}"


def supports(framework: str, interface: str, server: str) -> bool:
    return interface in FRAMEWORK_INTERFACES[framework] and interface in SERVER_INTERFACES[server]


def supported_stacks() -> list[Stack]:
    """Every framework x interface x server that works."""
    return [Stack(*combo) for combo in itertools.product(FRAMEWORKS, INTERFACES, SERVERS) if supports(*combo)]


def unsupported_stacks() -> list[Stack]:
    return [Stack(*combo) for combo in itertools.product(FRAMEWORKS, INTERFACES, SERVERS) if not supports(*combo)]


def _servers_for(interface: str) -> str:
    return ", ".join(s for s in SERVERS if interface in SERVER_INTERFACES[s]) + " or auto"


def resolve_interface(framework: str, interface: str, server: str) -> tuple[str, str]:
    """The interface to use, and why, for the answers given."""
    spoken = FRAMEWORK_INTERFACES[framework]
    if interface != "auto":
        if interface not in spoken:
            only = " or ".join(i.upper() for i in spoken)
            raise AnswerError(
                "interface",
                interface,
                f"is not spoken by {framework} ({only} only)",
                f"choose {' or '.join(spoken)} or auto",
            )
        return interface, "as asked"
    if server == "auto":
        return spoken[0], f"{framework}'s native interface"
    for candidate in spoken:
        if candidate in SERVER_INTERFACES[server]:
            why = "native interface" if candidate == spoken[0] else f"interface that {server} serves"
            return candidate, f"{framework}'s {why}"
    raise AnswerError(
        "server",
        server,
        f"cannot serve {framework} ({'/'.join(i.upper() for i in spoken)} only)",
        f"choose {_servers_for(spoken[0])}",
    )


def resolve_server(interface: str, server: str) -> tuple[str, str]:
    """The server to use, and why, for an interface already resolved."""
    if server == "auto":
        return AUTO_SERVER[interface]
    if interface not in SERVER_INTERFACES[server]:
        raise AnswerError(
            "server",
            server,
            f"does not serve {interface.upper()}",
            f"for {interface.upper()} choose {_servers_for(interface)}",
        )
    return server, "as asked"


def matrix_markdown() -> str:
    """The README's compatibility matrix, generated from the table above."""
    lines = [
        "| framework | interface | " + " | ".join(SERVERS) + " | static_strategy=whitenoise uses |",
        "|" + "---|" * (len(SERVERS) + 3),
    ]
    for framework, spoken in FRAMEWORK_INTERFACES.items():
        for interface in spoken:
            native = " (native)" if interface == spoken[0] else ""
            cells = ["yes" if supports(framework, interface, server) else "-" for server in SERVERS]
            row = [framework, interface + native, *cells, STATIC_PACKAGE[interface]]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(matrix_markdown())
