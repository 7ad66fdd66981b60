"""The plan as a person reads it: at start-up, in `pyserve plan` and in the README."""

from __future__ import annotations

from ..values import format_memory
from .model import Plan


def describe(p: Plan) -> str:
    """The plan as a few lines a person reads at start-up or generation time."""
    kind = f" ({p.worker_class})" if p.worker_class else ""
    lines = [
        f"{p.server}{kind} for {p.framework} over {p.interface.upper()}, {p.workload} workload",
        f"limits: {p.cpus:g} CPU, {format_memory(p.memory_limit_bytes)}",
    ]
    for resource, limit in p.limits.items():
        if list(limit["found"]) == [limit["from"]]:
            continue  # only the answers: nothing to compare them with
        lines.append(f"  {resource:<8} from {limit['from']}")
        for source, value in limit["found"].items():
            shown = format_memory(int(value)) if resource == "memory" else f"{value:g}"
            lines.append(f"             {shown:>9}  {source}")
        lines.extend(f"             {source}: {why}" for source, why in limit.get("ignored", {}).items())
    return "\n".join(
        [
            *lines,
            f"workers x threads: {p.workers} x {p.threads}",
            f"  workers  {p.reasons['workers']}",
            f"  threads  {p.reasons['threads']}",
            f"  memory   about {format_memory(p.memory_needed_bytes)} planned"
            f" ({p.workers} x {format_memory(p.worker_memory_bytes)} + the server"
            + (" + the open connections)" if p.long_lived_connections else ")"),
            *([f"  open     {p.reasons['connections']}"] if p.long_lived_connections else []),
            *([f"  database {p.reasons['database']}"] if "database" in p.reasons else []),
        ]
    )
