"""Commands that other users run too (the serving VM's model user) when this machine's interpreter or checkout
sit under a directory closed to them, such as a 0700 /root: the command runs in a mount namespace of its own in
which those directories let others pass (open_dirs.sh). Root only; elsewhere the command is left as it is."""
import os
import stat
import sys
from pathlib import Path

OPEN_DIRS = Path(__file__).resolve().parent / "open_dirs.sh"


def closed_dirs(*paths: Path) -> list[Path]:
    """The directories on the way to `paths` that other users may not pass, outermost first."""
    closed = []
    for path in paths:
        for directory in reversed(Path(path).resolve().parents):
            if not os.stat(directory).st_mode & stat.S_IXOTH and directory not in closed:
                closed.append(directory)
    return sorted(closed, key=lambda d: len(d.parts))


def runnable_by_others(argv: list[str], *paths: Path) -> list[str]:
    """`argv`, wrapped so that other users reach this interpreter and `paths`."""
    closed = closed_dirs(Path(os.path.realpath(sys.executable)), Path(sys.prefix), *paths)
    if not closed or os.geteuid() != 0:
        return argv
    return ["unshare", "-m", "--propagation", "private", "bash", str(OPEN_DIRS), *map(str, closed), "--", *argv]
