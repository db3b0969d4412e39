"""Start background services in their own session, wait until they answer, stop them and every
process they started (Linux /proc is used to find descendants)."""
import http.client
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from orm_pack.mlflow_api import http_client


class ServiceFailed(Exception):
    """A service exited or did not become ready; the message ends with the tail of its log."""


@dataclass(frozen=True)
class Service:
    name: str
    pid: int
    log: Path

    def alive(self) -> bool:
        return is_alive(self.pid)


def start(name: str, argv: list[str], env: dict, log: Path, cwd: Path | None = None) -> Service:
    """Starts argv detached from the caller (new session: it outlives the CLI, its group is its own)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as output:
        process = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=output,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    _reapers[process.pid] = process
    return Service(name, process.pid, log)


# Popen objects of the children started by this process, so they are reaped (no zombies).
_reapers: dict[int, subprocess.Popen] = {}


def is_alive(pid: int) -> bool:
    process = _reapers.get(pid)
    if process is not None:
        return process.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def start_time(pid: int) -> int | None:
    """When the process started (clock ticks since boot), None if it does not exist."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def descendants(pid: int) -> set[int]:
    """All live processes below pid (children, grandchildren, ...)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def log_tail(log: Path, lines: int = 25) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def http_status(url: str, timeout: float = 5) -> int | None:
    """The HTTP status url answers a GET with (its certificate not checked: a readiness probe that sends no
    login), None when nothing answers."""
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        endpoint = http_client.Endpoint(f"{parts.scheme}://{parts.netloc}", "", "", timeout, verify_tls=False)
        return endpoint.request("GET", path, auth=False).status
    except (OSError, ValueError, http.client.HTTPException):
        return None


def wait_ready(service: Service, url: str, timeout: float, accept=(200,)) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not service.alive():
            raise ServiceFailed(f"{service.name} exited during start-up; log {service.log}:\n{log_tail(service.log)}")
        if http_status(url, timeout=3) in accept:
            return
        time.sleep(0.25)
    raise ServiceFailed(f"{service.name} did not answer {url} within {timeout:.0f}s; log {service.log}:\n"
                        f"{log_tail(service.log)}")


def stop(pid: int, timeout: float = 20) -> set[int]:
    """SIGTERM the process and its group, wait, SIGKILL what is left (the whole tree).

    Returns the pids that were part of the tree, so callers can check they are gone."""
    tree = {pid} | descendants(pid) if is_alive(pid) else set()
    _signal_all(pid, tree, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(is_alive(p) for p in tree):
        tree |= descendants(pid) if is_alive(pid) else set()
        time.sleep(0.1)
    leftovers = {p for p in tree if is_alive(p)}
    if leftovers:
        _signal_all(pid, leftovers, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(is_alive(p) for p in leftovers):
            time.sleep(0.05)
    process = _reapers.pop(pid, None)
    if process is not None:
        process.wait(timeout=5)
    return tree


def _signal_all(leader: int, pids: set[int], signum: int) -> None:
    try:
        os.killpg(leader, signum)
    except (ProcessLookupError, PermissionError):
        pass
    for pid in pids:
        try:
            os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass
