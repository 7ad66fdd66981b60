"""The nginx image's entrypoint: `pyserve nginx-entrypoint PATH` writes it, for the Dockerfile to copy.

nginx_start.sh beside this file renders the project's nginx templates, sizes nginx to the container's
CPU quota and starts it. It is POSIX sh because the nginx image has no Python; the build stage,
which has the runtime installed, writes it out, so the script is always the installed runtime's.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

SCRIPT = Path(__file__).with_name("nginx_start.sh")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("path", type=Path, help="where to write the script, e.g. build/nginx-start.sh")
    target = parser.parse_args(argv).path
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SCRIPT, target)
    target.chmod(0o755)
    return 0
