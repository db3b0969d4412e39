"""The tracking VM of a stack in the Resource Manager fake, run on this machine: what OCI does after an apply.

After every successful APPLY job it looks at the job's outputs: a new `tracking_instance_id` is a new VM, which
boots: the previous one's server stops, and docker/tracking/entrypoint.sh starts with the MLflow version of the
stack's `mlflow_version` (the pinned one from this venv, an older one from .tools, as in the journeys) on the
database of the DB system `mysql_db_system_id` (whatever MariaDB holds it now, after a restore too), behind the
auth proxy at one fixed address (the reserved public IP). The instance takes Run Command's commands as
/usr/local/sbin/mlflow-upgrade does: `plan VERSION` runs that version's entrypoint in plan mode, `status` prints
the service's state and the end of its log.

`break_migration[version] = statement`: that version's migration fails when it sends a statement containing it
(a deliberately broken step, as test_schema_upgrade.py makes one).
"""
from __future__ import annotations

import shlex
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from dataplane.servers import ProcessTracker, S3Server
from dataplane.stacks import DB_PASSWORD, RUNTIME, start_proxy
from harness.reserved_address import ReservedAddress
from harness.tools import older_mlflow
from orm_pack.local import credentials, processes
from orm_pack.local.ports import free_port
from orm_pack.local.services import TrackingConfig, tracking_argv, tracking_env
from orm_pack.mlflow_api.doctor import LOOPBACK_BROWSER_HOST

PINNED = "3.17.2"
# A sitecustomize.py that fails the statement containing $BREAK_STATEMENT (test_schema_upgrade.py uses it too).
BREAK_A_STEP = """
import os
from sqlalchemy import event
from sqlalchemy.engine import Engine

@event.listens_for(Engine, "before_cursor_execute")
def _broken_step(conn, cursor, statement, parameters, context, executemany):
    if os.environ.get("BREAK_STATEMENT") and os.environ["BREAK_STATEMENT"] in statement:
        raise RuntimeError("a deliberately broken migration step")
"""


def entrypoint_env(s3: S3Server, workdir: Path, version: str, backend, port: int, home: Path,
                   break_statement: str | None = None) -> dict:
    """docker/tracking/entrypoint.sh's settings for MLflow `version` on `backend` (a MariaDBBackend), listening on
    `port`, with artifacts in the S3 stand-in; `break_statement`: that statement of its migration fails."""
    home.mkdir(parents=True, exist_ok=True)
    server = backend.server
    settings = (*server.client_env(), ("MLFLOW_DB_NAME", "mlflow"), ("MLFLOW_DB_USER", "mlflow"),
                ("MLFLOW_DB_PASSWORD", DB_PASSWORD), ("MYSQL_ADMIN_USER", server.admin_user),
                ("MYSQL_ADMIN_PASSWORD", server.admin_password), ("AWS_ACCESS_KEY_ID", s3.access_key),
                ("AWS_SECRET_ACCESS_KEY", s3.secret_key), ("AWS_DEFAULT_REGION", "us-east-1"),
                ("HOME", str(home)), ("TMPDIR", str(home)))
    # The stack allows the address users reach MLflow by; on loopback doctor plays a browser of this name.
    config = TrackingConfig(port=port, artifacts_destination=f"s3://{s3.bucket}/upgrade",
                            s3_endpoint=s3.endpoint, workers=1, allowed_hosts=f"{LOOPBACK_BROWSER_HOST}:*",
                            extra_env=settings)
    env = tracking_env(config)
    env.pop("MLFLOW_BACKEND_STORE_URI", None)
    paths = [] if version == PINNED else [str(older_mlflow(version))]
    # A step that breaks on the real data only: the plan's rehearsal on an empty copy passes.
    if break_statement:
        breaker = workdir / "breaker"
        breaker.mkdir(exist_ok=True)
        (breaker / "sitecustomize.py").write_text(BREAK_A_STEP)
        paths.insert(0, str(breaker))
        env["BREAK_STATEMENT"] = break_statement
    if paths:
        env["PYTHONPATH"] = ":".join(paths)
    return env


@dataclass
class Boot:
    instance_id: str
    version: str
    server: processes.Service
    proxy: processes.Service
    log: Path


@dataclass
class TrackingVm:
    fake: object                 # ormfake.ResourceManagerFake
    tracker: ProcessTracker
    s3: S3Server
    workdir: Path
    initial_backend: object      # harness.mariadb_backend.MariaDBBackend: the DB system's data at first
    login: credentials.Credentials
    break_migration: dict = field(default_factory=dict)
    address: ReservedAddress = field(default_factory=ReservedAddress)  # the VM's reserved public IP
    boots: list = field(default_factory=list)
    _seen: set = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _errors: list = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.address.port}"

    def start(self) -> "TrackingVm":
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        if self.boots:
            self._halt(self.boots[-1])
        self.address.close()
        assert not self._errors, self._errors

    # ------------------------------------------------------------ what OCI does after an apply
    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            for job in list(self.fake.jobs.values()):
                if job["operation"] != "APPLY" or job["lifecycleState"] != "SUCCEEDED" or job["id"] in self._seen:
                    continue
                self._seen.add(job["id"])
                try:
                    self._after_apply(job)
                except Exception as exc:  # reported by stop()
                    self._errors.append(f"after {job['id']}: {exc!r}")

    def _after_apply(self, job: dict) -> None:
        outputs = {o["outputName"]: o["outputValue"] for o in self.fake.job_outputs[job["id"]]}
        instance, version = outputs["tracking_instance_id"], outputs["mlflow_version"]
        if self.boots and self.boots[-1].instance_id == instance:
            return  # the same VM: nothing boots
        db_system = outputs["mysql_db_system_id"]
        if not self._known(db_system):
            self.fake.add_db_system(job["compartmentId"], "upgrade-mysql", "10.0.2.10", self.initial_backend,
                                    db_system_id=db_system)
        if self.boots:
            self._halt(self.boots[-1])
        self.boots.append(self._boot(instance, version, self.fake.db_system_backend(db_system)))
        self.fake.add_instance(instance, self._runner(len(self.boots) - 1, db_system))

    def _known(self, db_system: str) -> bool:
        try:
            self.fake.db_system_backend(db_system)
            return True
        except KeyError:
            return False

    def _halt(self, boot: Boot) -> None:
        self.address.point_at(None)
        for service in (boot.proxy, boot.server):
            if service.alive():
                self.tracker.stop(service)

    def _env(self, version: str, backend, port: int, home: Path, booting: bool = True) -> dict:
        broken = self.break_migration.get(version) if booting else None
        return entrypoint_env(self.s3, self.workdir, version, backend, port, home, broken)

    def _boot(self, instance: str, version: str, backend) -> Boot:
        number = len(self.boots) + 1
        port = free_port()
        log = self.workdir / f"boot-{number}-{version}.log"
        env = self._env(version, backend, port, self.workdir / f"boot-{number}")
        server = self.tracker.start(f"tracking-boot-{number}", tracking_argv(RUNTIME), env, log)
        proxy_port = free_port()
        proxy, _ = start_proxy(self.tracker, self.workdir / f"proxy-{number}", port, self.login, port=proxy_port)
        self.address.point_at(proxy_port)
        return Boot(instance, version, server, proxy, log)

    # ------------------------------------------------------------ Run Command on this VM
    def _runner(self, index: int, db_system: str):
        def run(script: str, timeout_seconds: int) -> tuple[int, str]:
            words = shlex.split(script)
            if words[:2] != ["sudo", "/usr/local/sbin/mlflow-upgrade"]:
                return 126, f"sudo: a password is required ({script!r} is not what ocarun may run)\n"
            boot = self.boots[index]
            if words[2:3] == ["status"]:  # the lines userdata/mlflow-upgrade.sh prints
                state = "active" if boot.server.alive() else "failed"
                return 0, (f"service: mlflow-tracking {state}\nmlflow_version: {boot.version} (the stack), "
                           f"{boot.version} (the image it runs: localhost/mlflow-tracking:latest)\nrefused: none\n"
                           f"--- last 40 lines of journalctl -u mlflow-tracking\n{processes.log_tail(boot.log, 40)}\n")
            if words[2:3] == ["plan"] and len(words) == 4:
                backend = self.fake.db_system_backend(db_system)
                env = self._env(words[3], backend, free_port(), self.workdir / f"plan-{index}", booting=False)
                result = subprocess.run(["bash", str(RUNTIME.tracking_entrypoint), "plan", "--json"], env=env,
                                        capture_output=True, text=True, timeout=timeout_seconds)
                return result.returncode, result.stderr + result.stdout
            return 2, f"mlflow-upgrade: unknown command {' '.join(words[2:])!r}\n"
        return run

    def wait_serving(self, version: str, seconds: float = 300) -> Boot:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert not self._errors, self._errors
            if self.boots and self.boots[-1].version == version:
                boot = self.boots[-1]
                processes.wait_ready(boot.server, f"{self.url}/health", max(deadline - time.monotonic(), 1),
                                     accept=(200,))
                return boot
            time.sleep(0.2)
        raise AssertionError(f"no tracking VM with MLflow {version} booted: {[b.version for b in self.boots]}")
