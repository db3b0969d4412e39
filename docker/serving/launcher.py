"""Starts, polls and stops the model servers (`mlflow models serve`) for the serving supervisor.

Two ways, one interface (start / alive / stop / close):

* InProcess: the supervisor starts the model server itself, as its own user, with a clean environment.
  What runs when the supervisor is not root (a laptop: `orm-pack local up`).
* Separated: on the serving VM the container starts as root with only the capabilities CAP_SETUID,
  CAP_SETGID and CAP_KILL (userdata/container.service.tftpl). Before it resolves any secret, the supervisor
  forks a launcher that stays root, then drops to its own user (SERVING_SUPERVISOR_USER, mlflow, 10001)
  for good. The launcher does nothing but start, poll and stop model servers as a second user
  (SERVING_MODEL_USER, mlmodel, 10002: no supplementary groups, no new privileges, a HOME of its own, a
  clean environment) on the supervisor's request over a socket pair, and stops them all when the
  supervisor goes. Model code then runs with nothing of the supervisor's: another uid cannot read its
  /proc/<pid>/environ or memory, signal it, or open its 0600 files, and the host's nftables bar that uid
  from the metadata service (serving/model-egress.sh), which the supervisor's uid needs for Vault.

Why a launcher rather than the supervisor keeping root and CAP_SETUID: the supervisor parses every HTTP
request (legacy_adapter) and holds the tracking login; it keeps no privilege once the launcher exists,
and the launcher reads nothing but one-line JSON requests from the supervisor (never pickle), builds the
model server's command itself and can only ever start it as the model's user. The only code that runs
with a privilege is the loop below, forked before the process held any secret; everything it does for a
model server after the fork (entering its HOME, emptying it) it does as the model's user.
"""
import ctypes
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

# What the model server's environment keeps of the supervisor's: the locale and the time zone.
MODEL_ENV_KEPT = ("LANG", "LC_ALL", "TZ")
PR_SET_NO_NEW_PRIVS = 38


class LauncherGone(OSError):
    """The root launcher no longer answers (it died, or the socket broke)."""


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int
    home: str | None


def account(spec: str) -> Account:
    """A user by name or number; a number without a passwd entry has the group of the same number."""
    try:
        entry = pwd.getpwuid(int(spec)) if spec.isdigit() else pwd.getpwnam(spec)
    except KeyError:
        if not spec.isdigit():
            raise ValueError(f"no user named {spec!r}") from None
        return Account(spec, int(spec), int(spec), None)
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir)


def serve_argv(model_dir: str, port: int) -> list[str]:
    return [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_dir, "-h", "127.0.0.1",
            "-p", str(port), "--env-manager", "local"]


def model_env(home: str) -> dict:
    """A clean environment: `mlflow models serve` looks uvicorn up on PATH (this interpreter's bin first)."""
    env = {name: os.environ[name] for name in MODEL_ENV_KEPT if name in os.environ}
    env.update(PATH=os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
               HOME=home, PYTHONUNBUFFERED="1")
    return env


def _stop_group(process: subprocess.Popen, timeout: float) -> None:
    """SIGTERM the model server's process group (it starts uvicorn workers), SIGKILL what is left."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        except ProcessLookupError:
            pass
    try:  # uvicorn workers left in the group after the parent exited
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


class InProcess:
    """The supervisor starts the model server itself, as its own user (not root, or root without the two
    users: see supervisor.separate_users)."""

    separate = False

    def __init__(self):
        self._processes: dict[int, subprocess.Popen] = {}

    def start(self, model_dir: Path, port: int, home: Path) -> int:
        process = subprocess.Popen(serve_argv(str(model_dir), port), env=model_env(str(home)), cwd=str(home),
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        self._processes[process.pid] = process
        return process.pid

    def alive(self, pid: int) -> bool:
        return self._processes[pid].poll() is None

    def returncode(self, pid: int) -> int | None:
        return self._processes[pid].poll()

    def stop(self, pid: int, timeout: float = 20) -> None:
        _stop_group(self._processes.pop(pid), timeout)

    def close(self) -> None:
        for pid in list(self._processes):
            self.stop(pid)


class Separated:
    """The supervisor's end of the socket pair to the root launcher (see launch)."""

    separate = True

    def __init__(self, sock: socket.socket, launcher_pid: int, model: Account):
        self._sock, self._file, self.launcher_pid, self.model = sock, sock.makefile("rwb"), launcher_pid, model
        self._lock = threading.Lock()  # one request and its answer at a time

    def _call(self, **request) -> dict:
        try:
            with self._lock:
                self._file.write(json.dumps(request).encode() + b"\n")
                self._file.flush()
                line = self._file.readline()
        except (OSError, ValueError) as exc:
            raise LauncherGone(f"the model launcher does not answer: {exc}") from None
        if not line:
            raise LauncherGone("the model launcher exited")
        answer = json.loads(line)
        if "error" in answer:
            raise OSError(answer["error"])
        return answer

    def start(self, model_dir: Path, port: int, home: Path) -> int:
        return self._call(op="start", model_dir=str(model_dir), port=port, home=str(home))["pid"]

    def alive(self, pid: int) -> bool:
        return self.returncode(pid) is None

    def returncode(self, pid: int) -> int | None:
        return self._call(op="poll", pid=pid)["returncode"]

    def stop(self, pid: int, timeout: float = 20) -> None:
        self._call(op="stop", pid=pid, timeout=timeout)

    def close(self) -> None:
        """Ends the launcher (it stops what still runs first) and waits for it."""
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        try:
            os.waitpid(self.launcher_pid, 0)
        except ChildProcessError:
            pass
        self._file.close()
        self._sock.close()


def launch(model: Account) -> Separated:
    """Forks the root launcher; call it as root before anything reads a secret, then drop_to()."""
    if model.uid == 0 or model.gid == 0:
        raise ValueError("the model server's user may not be root")
    ours, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # the launcher: root, until the supervisor closes its end
        status = 1
        try:
            ours.close()
            _Launcher(theirs, model).serve()
            status = 0
        finally:
            os._exit(status)
    theirs.close()
    return Separated(ours, pid, model)


def drop_to(user: Account) -> None:
    """The supervisor gives up root for good: no supplementary groups, its own group and user."""
    if user.uid == 0:
        raise ValueError("the supervisor's user may not be root")
    os.setgroups([])
    os.setgid(user.gid)
    os.setuid(user.uid)
    if os.getuid() == 0 or os.geteuid() == 0:
        raise OSError("still root after setuid")
    if user.home:
        os.environ["HOME"] = user.home


class _Launcher:
    """The root side. Requests, one JSON object a line: {"op": "start", "model_dir", "port", "home"} ->
    {"pid"}; {"op": "poll", "pid"} -> {"returncode"}; {"op": "stop", "pid", "timeout"} -> {}; anything
    wrong -> {"error"}. End of input: stop every model server, exit."""

    def __init__(self, sock: socket.socket, model: Account):
        self.file = sock.makefile("rwb")
        self.model = model
        self.servers: dict[int, tuple[subprocess.Popen, str]] = {}
        self.libc = ctypes.CDLL(None, use_errno=True)

    def serve(self) -> None:
        # Ctrl-C in a terminal reaches the whole group: the supervisor decides when model servers stop.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            for line in self.file:
                try:
                    answer = self.handle(json.loads(line))
                except Exception as exc:  # a bad request is answered, never fatal
                    answer = {"error": f"{type(exc).__name__}: {exc}"}
                self.file.write(json.dumps(answer).encode() + b"\n")
                self.file.flush()
        except OSError:
            pass
        finally:
            for pid in list(self.servers):
                self._stop(pid, 10)

    def handle(self, request: dict) -> dict:
        op = request.get("op")
        if op == "start":
            model_dir, port, home = request["model_dir"], request["port"], request["home"]
            if not (isinstance(model_dir, str) and os.path.isabs(model_dir) and isinstance(home, str)
                    and os.path.isabs(home) and isinstance(port, int) and 1024 <= port <= 65535):
                raise ValueError("start needs an absolute model_dir and home, and a port 1024-65535")
            process = subprocess.Popen(
                serve_argv(model_dir, port), env=model_env(home), stdin=subprocess.DEVNULL,
                user=self.model.uid, group=self.model.gid, extra_groups=[], start_new_session=True,
                preexec_fn=lambda: self._as_the_model(home))
            self.servers[process.pid] = (process, home)
            return {"pid": process.pid}
        if op == "poll":
            return {"returncode": self._server(request)[0].poll()}
        if op == "stop":
            timeout = request.get("timeout", 20)
            self._server(request)
            self._stop(request["pid"], float(timeout) if isinstance(timeout, (int, float)) else 20)
            return {}
        raise ValueError(f"unknown request {op!r}")

    def _server(self, request: dict) -> tuple[subprocess.Popen, str]:
        try:
            return self.servers[request["pid"]]
        except (KeyError, TypeError):
            raise ValueError(f"no model server {request.get('pid')!r}") from None

    def _as_the_model(self, home: str) -> None:
        """In the child, once it is the model's user (subprocess sets the groups and ids first): no setuid
        program gives it anything back, and it enters its HOME as itself, not as root."""
        if self.libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
        os.chdir(home)

    def _stop(self, pid: int, timeout: float) -> None:
        process, home = self.servers.pop(pid)
        _stop_group(process, timeout)
        self._empty_home(home)

    def _empty_home(self, home: str) -> None:
        """What the model wrote into its HOME is its user's: removed as that user (root here may not: it
        has no CAP_DAC_OVERRIDE), so the supervisor can remove the directory itself."""
        child = os.fork()
        if child == 0:
            try:
                os.setgroups([])
                os.setgid(self.model.gid)
                os.setuid(self.model.uid)
                for entry in os.scandir(home):
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            shutil.rmtree(entry.path)
                        else:
                            os.unlink(entry.path)
                    except OSError:
                        pass
            except OSError:
                pass
            finally:
                os._exit(0)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done, _ = os.waitpid(child, os.WNOHANG)
            if done:
                return
            time.sleep(0.05)
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
