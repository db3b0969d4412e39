"""A Dockerfile's COPY instructions, read as Docker reads them: a line ending in a backslash goes on on the next
one, and `--flag` options are not sources."""
from __future__ import annotations

import re
from pathlib import Path


def copies(dockerfile: Path) -> list[tuple[list[str], str]]:
    """(sources, destination) of every COPY, in order."""
    instructions = dockerfile.read_text().replace("\\\n", " ")
    found = []
    for line in re.findall(r"^COPY\s+(.+)$", instructions, re.MULTILINE):
        *sources, destination = line.split()
        found.append(([source for source in sources if not source.startswith("--")], destination))
    return found
