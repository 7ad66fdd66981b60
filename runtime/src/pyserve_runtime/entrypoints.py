"""The images' entrypoints, written for the Dockerfile to copy: `pyserve nginx-entrypoint PATH` and
`pyserve acme-entrypoint PATH`.

nginx_start.sh beside this file renders the project's nginx templates, sizes nginx to the container's
CPU quota and starts it; acme_renew.sh obtains and renews the certificate nginx serves (tls=acme).
They are POSIX sh because neither image has Python; the build stage, which has the runtime installed,
writes them out, so each script is always the installed runtime's.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

SCRIPTS = {
    "nginx": Path(__file__).with_name("nginx_start.sh"),
    "acme": Path(__file__).with_name("acme_renew.sh"),
}


def main(argv: list[str]) -> int:
    image, *rest = argv
    parser = argparse.ArgumentParser(description=f"Write the {image} image's entrypoint ({SCRIPTS[image].name}).")
    parser.add_argument("path", type=Path, help=f"where to write it, e.g. build/{SCRIPTS[image].name}")
    target = parser.parse_args(rest).path
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SCRIPTS[image], target)
    target.chmod(0o755)
    return 0
