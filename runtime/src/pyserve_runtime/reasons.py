"""The one line of a failed command's output that says why, for a one-line error (`pyserve deploy`)."""

from __future__ import annotations

import json


def last_line(text: str) -> str:
    """The line that says why: nginx's last [emerg] (before its "test failed"), else the last line;
    of a JSON log line (LOG_FORMAT=json), its message."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    emergencies = [line for line in lines if "[emerg]" in line]
    line = (emergencies or lines or ["(no output)"])[-1]
    try:
        record = json.loads(line)
    except ValueError:
        return line
    return str(record["message"]) if isinstance(record, dict) and "message" in record else line
