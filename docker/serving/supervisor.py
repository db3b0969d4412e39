"""Serving supervisor: serves a registered model followed by alias, reloading when the alias moves.

Runs the HTTP front (legacy_adapter.AdapterServer) on SERVING_HOST:SERVING_PORT and, behind it, one
`mlflow models serve` on an internal loopback port. It waits until `models:/<name>@<alias>`
resolves, then polls the registry every SERVING_POLL_SECONDS; when the alias points at another
version it starts a second model server, switches new requests to it once it answers /ping, and
stops the old one after its in-flight requests finished: no request is dropped during a reload.

The model's code runs with nothing of the supervisor's: the supervisor downloads the version's files
itself (it holds the registry login) into a directory of their own, and the model server serves that
copy with a clean environment (PATH, a HOME of its own, the locale): no tracking URI, login or secret.
Started as root with SERVING_MODEL_USER and SERVING_SUPERVISOR_USER set (the serving VM's container),
it also runs the model server as another user: it forks a root launcher before it reads any secret, then
becomes SERVING_SUPERVISOR_USER for good, and the launcher starts and stops the model servers as
SERVING_MODEL_USER (launcher.py says why this way). Not root (a laptop), the clean environment is what
applies.

Environment (see docker/README.md): MLFLOW_TRACKING_URI MLFLOW_TRACKING_USERNAME
MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_PASSWORD_SECRET_OCID, read from Vault at start with
docker/lib beside docker/serving) MLFLOW_TRACKING_INSECURE_TLS SERVING_MODEL_NAME SERVING_MODEL_ALIAS
(champion) SERVING_MODEL_URI (a fixed URI instead of name/alias) SERVING_HOST (127.0.0.1)
SERVING_PORT (8080) SERVING_POLL_SECONDS (30) SERVING_START_TIMEOUT (600) SERVING_MODELS_DIR (where the
local copies go; a directory under the system's temporary directory) SERVING_SUPERVISOR_USER and
SERVING_MODEL_USER (names or uids; used when started as root)
"""
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import launcher  # noqa: E402
from legacy_adapter import DEFAULT_MAX_BODY_BYTES, AdapterServer, Backend, BackendSwitch  # noqa: E402

# A registry that is briefly unreachable must not stall polling for minutes in client retries.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")

DRAIN_SECONDS = 60
RETRY_FAILED_SECONDS = 300  # a version whose model server did not start is tried again after this


class SettingsError(Exception):
    pass


def log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} serving-supervisor: {message}",
          file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Settings:
    model_name: str
    alias: str
    fixed_uri: str
    host: str
    port: int
    poll_seconds: float
    start_timeout: float
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    @property
    def target(self) -> str:
        return self.fixed_uri or f"models:/{self.model_name}@{self.alias}"


def _number(env, name: str, default: str, minimum: float) -> float:
    raw = env.get(name) or default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number (got {raw!r})") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum:g} (got {raw!r})")
    return value


def read_settings(env) -> Settings:
    fixed_uri = env.get("SERVING_MODEL_URI", "")
    name = env.get("SERVING_MODEL_NAME", "")
    if not fixed_uri and not name:
        raise SettingsError("set SERVING_MODEL_NAME (served at alias SERVING_MODEL_ALIAS, default champion) "
                            "or SERVING_MODEL_URI (e.g. models:/wine-quality/3 or runs:/<run id>/model)")
    if not env.get("MLFLOW_TRACKING_URI") and not fixed_uri.startswith(("/", "file:")):
        raise SettingsError("set MLFLOW_TRACKING_URI (the tracking server URL the registry lives on)")
    port = _number(env, "SERVING_PORT", "8080", 1)
    if port > 65535 or port != int(port):
        raise SettingsError(f"SERVING_PORT must be a port number (got {env.get('SERVING_PORT')!r})")
    return Settings(model_name=name, alias=env.get("SERVING_MODEL_ALIAS") or "champion", fixed_uri=fixed_uri,
                    host=env.get("SERVING_HOST") or "127.0.0.1", port=int(port),
                    poll_seconds=_number(env, "SERVING_POLL_SECONDS", "30", 0.2),
                    start_timeout=_number(env, "SERVING_START_TIMEOUT", "600", 1),
                    max_body_bytes=int(_number(env, "SERVING_MAX_BODY_BYTES", str(DEFAULT_MAX_BODY_BYTES), 1024)))


def free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def models_dir(shared: bool) -> Path:
    """Where the local copies go. Shared with the model's user: it may pass through to its own copy (0711)
    but not list what else is there."""
    root = Path(os.environ.get("SERVING_MODELS_DIR") or Path(tempfile.gettempdir()) / "mlflow-served-models")
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    if shared:
        root.chmod(0o711)
    return root


def local_copy(model_uri: str, workdir: Path) -> Path:
    """The model's files, downloaded with the supervisor's login into workdir/model."""
    from mlflow.artifacts import download_artifacts

    (workdir / "model").mkdir()
    return Path(download_artifacts(artifact_uri=model_uri, dst_path=str(workdir / "model")))


def share_read_only(top: Path) -> None:
    """The model's user may read its copy (a+rX) and nothing gives it write access."""
    for directory, _, files in os.walk(top):
        os.chmod(directory, 0o755)
        for name in files:
            path = os.path.join(directory, name)
            if not os.path.islink(path):
                mode = os.stat(path).st_mode & 0o777
                os.chmod(path, (mode | 0o444 | (0o111 if mode & 0o100 else 0)) & 0o755)


class StartFailed(Exception):
    """The model server could not be started (the download went well)."""


class ModelServer:
    """One `mlflow models serve` in its own process group (it starts uvicorn workers), serving a local
    copy of the model with a clean environment, started by `runner` (launcher.InProcess or, as another
    user, launcher.Separated)."""

    def __init__(self, model_uri: str, runner):
        self.model_uri = model_uri
        self.runner = runner
        self.port = free_loopback_port()
        # One directory per model server, removed with it: the model's files and a HOME for its code.
        self.workdir = Path(tempfile.mkdtemp(prefix="model-", dir=models_dir(runner.separate)))
        try:
            self.model_dir = local_copy(model_uri, self.workdir)
            home = self.workdir / "home"
            home.mkdir()
            if runner.separate:  # the model's user reads its copy and writes only into its HOME
                share_read_only(self.model_dir)
                self.workdir.chmod(0o711)
                home.chmod(0o1777)
            try:
                self.pid = runner.start(self.model_dir, self.port, home)
            except launcher.LauncherGone:
                raise
            except OSError as exc:
                raise StartFailed(str(exc)) from None
        except BaseException:
            shutil.rmtree(self.workdir, ignore_errors=True)
            raise
        log(f"starting model server for {model_uri} on 127.0.0.1:{self.port} (pid {self.pid})")

    def alive(self) -> bool:
        return self.runner.alive(self.pid)

    def wait_ready(self, timeout: float, stop: threading.Event) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not stop.is_set():
            returncode = self.runner.returncode(self.pid)
            if returncode is not None:
                log(f"model server for {self.model_uri} exited with code {returncode}")
                return False
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ping", timeout=2) as response:
                    if response.status == 200:
                        return True
            except OSError:
                pass
            time.sleep(0.3)
        return False

    def stop(self, timeout: float = 20) -> None:
        try:
            self.runner.stop(self.pid, timeout)
        except launcher.LauncherGone:
            raise
        except OSError as exc:  # the launcher refused (it knows no such server): nothing left to stop
            log(f"stopping the model server for {self.model_uri}: {exc}")
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)


class RegistryWatcher:
    """Resolves the alias to a concrete `models:/<name>/<version>` URI (None while it does not exist)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.client = None  # created on first use: a fixed URI needs no registry
        self._last_problem = None

    def resolve(self) -> str | None:
        if self.settings.fixed_uri:
            return self.settings.fixed_uri
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        self.client = self.client or MlflowClient()

        try:
            version = self.client.get_model_version_by_alias(self.settings.model_name, self.settings.alias)
        except MlflowException as exc:
            self._report(f"waiting for {self.settings.target}: {exc.message.splitlines()[0]}")
            return None
        except Exception as exc:  # network trouble: keep serving what we have
            self._report(f"cannot reach the registry: {exc}")
            return None
        self._last_problem = None
        return f"models:/{version.name}/{version.version}"

    def _report(self, problem: str) -> None:
        if problem != self._last_problem:
            log(problem)
            self._last_problem = problem


class Supervisor:
    def __init__(self, settings: Settings, runner=None):
        self.settings = settings
        self.runner = runner or launcher.InProcess()
        self.switch = BackendSwitch()
        self.stop_event = threading.Event()
        self.servers: dict[int, ModelServer] = {}
        self.adapter = AdapterServer((settings.host, settings.port), self.switch,
                                     waiting_message=lambda: f"no model loaded yet: waiting for {settings.target}",
                                     max_body_bytes=settings.max_body_bytes)

    def run(self) -> int:
        threading.Thread(target=self.adapter.serve_forever, name="adapter", daemon=True).start()
        log(f"listening on {self.settings.host}:{self.settings.port}, serving {self.settings.target}")
        watcher = RegistryWatcher(self.settings)
        failed_uri, failed_at = None, 0.0
        status = 0
        try:
            while not self.stop_event.is_set():
                target = watcher.resolve()
                current = self.switch.current
                recently_failed = target == failed_uri and time.monotonic() - failed_at < RETRY_FAILED_SECONDS
                if target and not recently_failed and (current is None or target != current.model_uri):
                    if not self._load(target) and not self.stop_event.is_set():
                        failed_uri, failed_at = target, time.monotonic()
                        log(f"will try {target} again in {RETRY_FAILED_SECONDS}s unless the alias moves")
                elif current is not None and not self.servers[current.port].alive():
                    log(f"model server for {current.model_uri} died: restarting it")
                    self._load(current.model_uri)
                self.stop_event.wait(self.settings.poll_seconds)
        except launcher.LauncherGone as exc:
            log(f"ERROR: {exc}: stopping")
            status = 1
        finally:
            self.adapter.shutdown()
            for server in list(self.servers.values()):
                try:
                    server.stop()
                except launcher.LauncherGone:
                    pass
            self.runner.close()
            log("stopped")
        return status

    def _load(self, model_uri: str) -> bool:
        """Starts a model server for model_uri and switches to it; False if it did not come up."""
        try:
            server = ModelServer(model_uri, self.runner)
        except launcher.LauncherGone:
            raise
        except StartFailed as exc:
            log(f"could not start a model server for {model_uri}: {exc}")
            return False
        except Exception as exc:  # the download: the registry or the artifact store refused or is away
            log(f"could not download {model_uri}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            return False
        self.servers[server.port] = server
        if not server.wait_ready(self.settings.start_timeout, self.stop_event):
            log(f"model server for {model_uri} did not become ready; keeping the current one")
            server.stop()
            del self.servers[server.port]
            return False
        previous = self.switch.switch_to(Backend(port=server.port, model_uri=model_uri))
        log(f"now serving {model_uri}")
        if previous is not None:
            if not BackendSwitch.wait_idle(previous, DRAIN_SECONDS):
                log(f"{previous.in_flight} request(s) still running on {previous.model_uri} after {DRAIN_SECONDS}s")
            self.servers.pop(previous.port).stop()
            log(f"stopped model server for {previous.model_uri}")
        return True


def resolve_secrets() -> None:
    """MLFLOW_TRACKING_PASSWORD_SECRET_OCID: the login comes from Vault (docker/lib), into memory only."""
    if not any(name.endswith("_SECRET_OCID") for name in os.environ):
        return
    sys.path.insert(1, str(Path(__file__).resolve().parents[1] / "lib"))
    from mlflow_oci import secrets

    try:
        resolved = secrets.resolve(dict(os.environ))
    except secrets.SecretError as exc:
        raise SettingsError(str(exc)) from None
    os.environ.clear()
    os.environ.update(resolved)


def separate_users(env) -> tuple[launcher.Account, launcher.Account] | None:
    """(the supervisor's user, the model server's user) when started as root with both set; None otherwise."""
    own, model = env.get("SERVING_SUPERVISOR_USER", ""), env.get("SERVING_MODEL_USER", "")
    if os.geteuid() != 0:
        if model:
            log(f"not root: the model server runs as this user (uid {os.geteuid()}), with a clean environment")
        return None
    if not own or not model:
        log("WARNING: running as root without SERVING_SUPERVISOR_USER and SERVING_MODEL_USER: the model server "
            "runs as root, with a clean environment only")
        return None
    try:
        users = launcher.account(own), launcher.account(model)
    except ValueError as exc:
        raise SettingsError(f"SERVING_SUPERVISOR_USER / SERVING_MODEL_USER: {exc}") from None
    if any(user.uid == 0 or user.gid == 0 for user in users):
        raise SettingsError("SERVING_SUPERVISOR_USER and SERVING_MODEL_USER may not be root or in group 0")
    if users[0].uid == users[1].uid or users[0].gid == users[1].gid:
        raise SettingsError("SERVING_SUPERVISOR_USER and SERVING_MODEL_USER must be two users with groups of "
                            f"their own (got uid:gid {users[0].uid}:{users[0].gid} and {users[1].uid}:{users[1].gid})")
    return users


def start_runner(env):
    """How model servers start. As root: the launcher is forked (still holding nothing secret), then this
    process becomes the supervisor's user for good, before it reads any secret."""
    users = separate_users(env)
    if users is None:
        return launcher.InProcess()
    own, model = users
    runner = launcher.launch(model)
    try:
        launcher.drop_to(own)
    except OSError as exc:
        runner.close()
        raise SettingsError(f"cannot become {own.name} (uid {own.uid}): {exc}") from None
    log(f"model servers run as {model.name} (uid {model.uid}), this supervisor as {own.name} (uid {own.uid})")
    return runner


def main() -> int:
    try:
        runner = start_runner(os.environ)
    except SettingsError as exc:
        log(f"ERROR: {exc}")
        return 2
    try:
        resolve_secrets()
        settings = read_settings(os.environ)
    except SettingsError as exc:
        log(f"ERROR: {exc}")
        runner.close()
        return 2
    try:
        supervisor = Supervisor(settings, runner)
    except OSError as exc:
        log(f"ERROR: cannot listen on {settings.host}:{settings.port}: {exc.strerror}")
        runner.close()
        return 2

    def stop(signum, _frame):
        log(f"received signal {signum}, stopping")
        supervisor.stop_event.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
