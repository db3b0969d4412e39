"""The pods of the pretend OKE cluster (okefake) run on this machine, for `orm-pack upgrade` on OKE.

okefake's Kubelet hands the pods here:
- a Job's container runs docker/tracking/entrypoint.sh with its args (`migrate`, or `plan --json` for the
  upgrade's plan Job) and the MLflow version its image's tag names (`…:<release>-mlflow3.16.1`; no suffix: the
  pinned version from this venv, an older one from .tools), on the database of the DB system that answers at the
  pod's MLFLOW_DB_HOST in the MySQL fake (whichever that is now, after a restore too). The administrator's
  password the pod got (the Secret orm-pack made) must be the DB system's, as MySQL would demand;
- the tracking Deployment runs as one MLflow server behind the auth proxy at one fixed address (the load
  balancer's), restarted for each new generation, stopped at 0 replicas; the proxy Deployment is that proxy.
`break_migration[version] = statement`: that version's migration fails when it sends that statement.
"""
from __future__ import annotations

import re
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

from dataplane.servers import ProcessTracker, S3Server
from dataplane.stacks import RUNTIME, start_proxy
from dataplane.tracking_vm import PINNED, entrypoint_env
from harness.reserved_address import ReservedAddress
from orm_pack.local import credentials, processes
from orm_pack.local.ports import free_port
from orm_pack.local.services import tracking_argv

VERSION_TAG = re.compile(r":[0-9.]+(?:-mlflow(?P<version>[0-9]+\.[0-9]+\.[0-9]+))?$")


def mlflow_version(image: str) -> str:
    match = VERSION_TAG.search(image)
    assert match, f"no release tag on {image}"
    return match["version"] or PINNED


@dataclass
class OkeNodes:
    fake: object                 # ormfake.ResourceManagerFake, whose MySQL fake holds the DB systems
    tracker: ProcessTracker
    s3: S3Server
    workdir: Path
    login: credentials.Credentials
    break_migration: dict = field(default_factory=dict)
    address: ReservedAddress = field(default_factory=ReservedAddress)  # the load balancer's address
    served: list = field(default_factory=list)      # (version, server, proxy, log) per start, in order
    jobs: list = field(default_factory=list)        # (job name, version, exit code) per run
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.address.port}"

    def _backend(self, env: dict):
        host = env.get("MLFLOW_DB_HOST")
        with self.fake.mysql.lock:
            live = [system_id for system_id, system in self.fake.mysql.db_systems.items()
                    if system["ipAddress"] == host and system["lifecycleState"] == "ACTIVE"]
        assert len(live) == 1, f"{len(live)} active DB systems at {host}"
        return self.fake.db_system_backend(live[0])

    def run_job(self, name: str, container: dict, env: dict) -> tuple[int, list[str]]:
        version = mlflow_version(container["image"])
        backend = self._backend(env)
        if env.get("MYSQL_ADMIN_PASSWORD") != backend.server.admin_password:
            return 1, ["init_db: ERROR: the database refused MYSQL_ADMIN_USER: check the administrator's password"]
        number = len(self.jobs) + 1
        args = container.get("args", [])
        # The broken step breaks on the real data only: the plan's rehearsal on an empty copy passes.
        broken = self.break_migration.get(version) if args[:1] == ["migrate"] else None
        run_env = entrypoint_env(self.s3, self.workdir, version, backend, free_port(),
                                 self.workdir / f"job-{number}", broken)
        result = subprocess.run(["bash", str(RUNTIME.tracking_entrypoint), *args], env=run_env,
                                capture_output=True, text=True, timeout=900)
        self.jobs.append((name, version, result.returncode))
        (self.workdir / f"job-{number}-{name}.log").write_text(result.stderr + result.stdout)
        return result.returncode, (result.stderr + result.stdout).splitlines()

    def serve(self, name: str, container: dict, env: dict, replicas: int) -> str | None:
        if name != "mlflow-tracking":
            return None  # the proxy starts with each tracking server, at the load balancer's address
        with self._lock:
            self.halt()
            if replicas == 0:
                return None
            version = mlflow_version(container["image"])
            number = len(self.served) + 1
            port = free_port()
            log = self.workdir / f"serve-{number}-{version}.log"
            run_env = entrypoint_env(self.s3, self.workdir, version, self._backend(env), port,
                                     self.workdir / f"serve-{number}")
            for setting in ("MYSQL_ADMIN_USER", "MYSQL_ADMIN_PASSWORD"):  # the tracking pods never get it
                run_env.pop(setting, None)
            server = self.tracker.start(f"oke-tracking-{number}", tracking_argv(RUNTIME), run_env, log)
            proxy_port = free_port()
            proxy, _ = start_proxy(self.tracker, self.workdir / f"proxy-{number}", port, self.login, port=proxy_port)
            self.address.point_at(proxy_port)
            self.served.append((version, server, proxy, log))
            try:
                processes.wait_ready(server, f"{self.url}/health", 300, accept=(200,))
            except Exception as exc:
                return f"the tracking pod is not ready: {exc}"
            return None

    def halt(self) -> None:
        self.address.point_at(None)
        if self.served:
            _, server, proxy, _ = self.served[-1]
            for service in (proxy, server):
                if service.alive():
                    self.tracker.stop(service)

    def serving(self) -> str | None:
        """The version served now, if a server is up."""
        if self.served and self.served[-1][1].alive():
            return self.served[-1][0]
        return None
