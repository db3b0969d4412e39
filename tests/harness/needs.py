"""What the running test has used (Terraform, the runtime's servers), so the suite can check that every
test carries the marker of what it needs: the fast lane `-m "not terraform and not dataplane"` is only
fast if no test that needs either slips into it unmarked."""
import threading

_lock = threading.Lock()
_used: set[str] = set()


def used(marker: str) -> None:
    """Called where the suite starts Terraform ("terraform") or a server of the runtime ("dataplane")."""
    with _lock:
        _used.add(marker)


def take() -> set[str]:
    """What was used since the last call, and start again."""
    with _lock:
        taken = set(_used)
        _used.clear()
    return taken
