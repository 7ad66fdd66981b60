"""`pyserve`: the runtime's one command, run from the project root (the directory holding deploy/).

    pyserve serve                 start the app server, sized from the container (the image's command)
    pyserve healthcheck [--alive] exit 0 when the app server answers (the image's HEALTHCHECK)
    pyserve plan [--json]         the worker and thread plan for this machine or container, explained
    pyserve static                collect the static files into build/static/
    pyserve migrate               the release step: apply the app's pending migrations, one replica at a time
    pyserve prestop               the app's preStop hook in a pod: return once nginx has stopped listening
    pyserve nginx-entrypoint PATH write the nginx image's start script (the Dockerfile copies it)
    pyserve acme-entrypoint PATH  write the ACME client's renewal loop (tls=acme; the Dockerfile copies it)
    pyserve local [--confine]     the production stack on this machine: the app server behind nginx
    pyserve container-test        build the images, run the compose stack and check it through nginx
    pyserve deploy [--rollback]   a new version of the compose stack beside the old, then the old stopped
    pyserve publish               build both images from this commit and push them to IMAGE_REPOSITORY
    pyserve release               name IMAGE_TAG's images in the Kubernetes manifests (kustomization.yaml)
    pyserve tune                  sweep workers x threads under the container's limits with Locust
    pyserve template-check        exit 1 when the template this project came from has moved on
    pyserve template-update       bring the template's changes here with cruft
    pyserve runtime-upgrade       replace vendor/pyserve-runtime with the template's newest runtime

Each command is a module with a main(argv); it is imported only when it runs, so `serve` and
`healthcheck` load nothing of the tools a container never runs.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Sequence

from . import __version__

# A command's module, and the arguments put before the user's.
COMMANDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "serve": ("serve", ()),
    "healthcheck": ("healthcheck", ()),
    "plan": ("plan", ()),
    "static": ("collect_static", ()),
    "migrate": ("migrate", ()),
    "prestop": ("prestop", ()),
    "nginx-entrypoint": ("entrypoints", ("nginx",)),
    "acme-entrypoint": ("entrypoints", ("acme",)),
    "local": ("local", ()),
    "container-test": ("container_test", ()),
    "deploy": ("deploy", ()),
    "publish": ("publish", ()),
    "release": ("release", ()),
    "tune": ("tune", ()),
    "template-check": ("template_updates", ("check",)),
    "template-update": ("template_updates", ("update",)),
    "runtime-upgrade": ("runtime_upgrade", ()),
}


def usage() -> str:
    return (__doc__ or "").split("\n\n")[1].rstrip()


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help"}:
        print(f"usage: pyserve COMMAND [ARGS]   (pyserve-runtime {__version__})\n\n{usage()}")
        return 0 if args else 2
    if args[0] == "--version":
        print(f"pyserve-runtime {__version__}")
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"pyserve: no command {name!r}; the commands are {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module_name, leading = COMMANDS[name]
    # The project's own packages import from the project root, as under `python -m`: a console
    # script's sys.path starts with its own bin/ directory instead.
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    sys.argv[0] = f"pyserve {name}"  # argparse's usage lines name the command as typed
    command: Callable[[list[str]], int | None] = importlib.import_module(f"{__package__}.{module_name}").main
    return command([*leading, *rest]) or 0
