"""What the double's cloud remembers between provider processes.

Terraform starts a new provider process for every command, and the stack talks to two (the home-region
alias writes identity objects, the default provider uses them), so what the cloud knows lives in a small
JSON file named by OCI_DOUBLE_CREATED, locked while one process reads and writes it.
"""
import fcntl
import json
import os
from contextlib import contextmanager
from pathlib import Path

STATE_ENV = "OCI_DOUBLE_CREATED"


@contextmanager
def opened():
    """The remembered state as a dict, written back when the block ends; {} (forgotten) when unset."""
    if not os.environ.get(STATE_ENV):
        yield {}
        return
    path = Path(os.environ[STATE_ENV])
    path.touch(exist_ok=True)
    with open(path, "r+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        text = handle.read()
        state = json.loads(text) if text.strip() else {}
        yield state
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(state))
