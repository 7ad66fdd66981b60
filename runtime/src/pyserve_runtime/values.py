"""The values the answers and the environment give, parsed: cores, memory sizes and counts.

Each refusal is a TuningError whose message names the field, the value and what it accepts, as the
template's prompts, `make local` and the server's start print it.
"""

from __future__ import annotations

import math
import re

MIB = 1024 * 1024

# Sanity bounds for the limits: anything outside is a typo, not a machine.
MAX_CPUS = 1024.0
MAX_MEMORY_BYTES = 64 * 1024 * 1024 * MIB  # 64 TiB
# More open WebSockets than this in one container is a typo, or a service for a dedicated gateway.
MAX_LONG_LIVED = 1_000_000
# More replicas than this is a typo, or a service for which one budget split evenly is the wrong model.
MAX_REPLICAS = 1000

_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)(b?)\s*$", re.IGNORECASE)
_UNIT_POWER = {"": 2, "k": 1, "m": 2, "g": 3, "t": 4}  # a bare number means MiB


class TuningError(ValueError):
    """A value the model cannot work with; the message names the field, the value and what fits."""

    def __init__(self, name: str, value: object, problem: str, accepted: str) -> None:
        self.name, self.value, self.problem, self.accepted = name, value, problem, accepted
        super().__init__(f"{name}: {value!r} {problem}; {accepted}")


def is_whole_number(text: str) -> bool:
    """ASCII digits only: str.isdigit() also takes "¹" and "²", which int() refuses."""
    return text.isascii() and text.isdigit()


def parse_cpus(text: object, name: str = "cpu_limit") -> float:
    """Cores as a float: "2", "0.5", or Kubernetes' "500m". Never rounds 0.5 down to 0."""
    accepted = f"give cores as a number > 0 and <= {MAX_CPUS:g} (e.g. 0.5, 2 or 500m)"
    raw = str(text).strip()
    try:
        cpus = float(raw[:-1]) / 1000 if raw.lower().endswith("m") else float(raw)
    except ValueError:
        raise TuningError(name, text, "is not a number", accepted) from None
    if not math.isfinite(cpus) or cpus <= 0:
        raise TuningError(name, text, "is not a finite number > 0", accepted)
    if cpus > MAX_CPUS:
        raise TuningError(name, text, "is larger than any machine", accepted)
    return cpus


def parse_memory(text: object, name: str = "memory_limit") -> int:
    """Bytes from "512MiB", "2GiB", "1.5G", "768M" or a bare number of MiB.

    K, M, G and T are binary (1.5G = 1536 MiB), as Docker reads them.
    """
    accepted = "give a size such as 512MiB, 2GiB, 1.5G, 768M, or a number of MiB"
    match = _MEMORY.match(str(text))
    if not match:
        raise TuningError(name, text, "is not a memory size", accepted)
    number, unit, binary, byte = match.groups()
    if binary and not unit:
        raise TuningError(name, text, "is not a memory size", accepted)
    scale = 1 if byte and not unit and not binary else 1024 ** _UNIT_POWER[unit.lower()]  # "1024B": bytes
    bytes_ = float(number) * scale
    if bytes_ < 1:
        raise TuningError(name, text, "is not more than 0", accepted)
    if bytes_ > MAX_MEMORY_BYTES:
        raise TuningError(name, text, "is larger than any machine", accepted)
    return int(bytes_)


def format_memory(bytes_: int | None) -> str:
    if bytes_ is None:
        return "no limit"
    mib = bytes_ / MIB
    return f"{mib / 1024:g} GiB" if mib >= 1024 and mib % 128 == 0 else f"{mib:.0f} MiB"


def parse_positive(text: str, name: str) -> int:
    """A count of at least 1 (workers, threads, millicores)."""
    if not is_whole_number(text) or int(text) < 1:
        raise TuningError(name, text, "is not a whole number >= 1", "unset it or give e.g. 4")
    return int(text)


def parse_millicores(text: str, name: str = "CPU_LIMIT_MILLICORES") -> float:
    """Cores from a whole number of millicores, as Kubernetes' Downward API gives them (divisor: 1m)."""
    return parse_cpus(f"{parse_positive(text, name)}m", name)


def parse_request_millicores(text: str, name: str = "CPU_REQUEST_MILLICORES") -> float | None:
    """Cores from the Downward API's requests.cpu in millicores; 0 (no request set) is None."""
    if not is_whole_number(text):
        raise TuningError(name, text, "is not a whole number >= 0", "unset it or give e.g. 500")
    return parse_cpus(f"{int(text)}m", name) if int(text) else None


def parse_long_lived(text: str, name: str = "WS_CONNECTIONS") -> int:
    """WebSockets and event streams expected open at once in one container."""
    if not is_whole_number(text) or int(text) > MAX_LONG_LIVED:
        raise TuningError(name, text, f"is not a whole number from 0 to {MAX_LONG_LIVED}", "unset it or give e.g. 1000")
    return int(text)


def parse_connections(text: object, name: str = "db_max_connections") -> int | None:
    """A connection budget: a whole number >= 1, or "none" for no budget (a pooler such as PgBouncer in front)."""
    raw = str(text).strip()
    if raw.lower() == "none":
        return None
    if not is_whole_number(raw) or int(raw) < 1:
        raise TuningError(
            name, text, "is not a whole number >= 1", "give the connections this service may hold, e.g. 90, or none"
        )
    return int(raw)


def parse_replicas(text: object, name: str = "max_replicas") -> int:
    raw = str(text).strip()
    if not is_whole_number(raw) or not 1 <= int(raw) <= MAX_REPLICAS:
        raise TuningError(name, text, f"is not a whole number from 1 to {MAX_REPLICAS}", "give e.g. 1, or 10")
    return int(raw)
