"""`pyserve plan`: print this service's plan (see tuning/__init__.py for the options)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .settings import STACK_FILE
from .tuning.inputs import plan_from_environment
from .tuning.machine import load_stack, read_system_limits
from .tuning.presentation import describe
from .values import TuningError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print this service's worker and thread plan.")
    parser.add_argument("--json", action="store_true", help="one JSON line, as the server logs it")
    parser.add_argument("--stack", type=Path, default=STACK_FILE, help="the answers file (deploy/stack.toml)")
    parser.add_argument(
        "--cgroup-root",
        type=Path,
        metavar="DIR",
        help="read DIR as if it were /sys/fs/cgroup, with this process in its root cgroup",
    )
    parser.add_argument("--answers-only", action="store_true", help="ignore this machine: the plan from the answers")
    args = parser.parse_args(argv)
    try:
        system = [] if args.answers_only else read_system_limits(args.cgroup_root)
        result = plan_from_environment(os.environ, load_stack(args.stack), system)
    except (TuningError, OSError, KeyError) as error:
        print(f"tuning: {error}", file=sys.stderr)
        return 2
    print(result.as_json() if args.json else describe(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
