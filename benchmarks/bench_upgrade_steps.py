"""The time of each step of an MLflow upgrade as `orm-pack upgrade` runs them, on a database of 10,000 and 100,000
runs: a deployment of MLflow 3.16.1 (its first boot: docker/tracking/init_db.py with 3.16.1) filled by 3.16.1
(tests/harness/mlflow_data.py; timed as "fill", not an upgrade step), then upgraded to the pinned MLflow:

  plan      python -m mlflow_oci.schema_plan --json with the pinned MLflow: pre-checks and the rehearsal of every
            pending revision on an empty copy of the schema (<db>_rehearsal)
  backup    what the HeatWave fake keeps of a backup: mariadb-dump of the databases (its size is printed)
  migrate   init_db.py with the pinned MLflow: the real migration 3.16 -> 3.17, under the lock, journaled
  health    the tracking entrypoint started on the migrated database until /health answers (moto S3 for
            artifacts; skipped without moto_server)
  restore   the rollback: the backup restored into a new MariaDB (its start included)
  verify    the restored database's fingerprint (rows and digests per table), which must equal the one taken
            before the upgrade

Each N has a MariaDB of its own (1 GB buffer pool, primary keys required as HeatWave requires them). Figures,
not pass/fail; the machine's disk and cores bound them (other work on it moves them).

    .venv/bin/python benchmarks/bench_upgrade_steps.py [--runs 10000] [--runs 100000]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from urllib.parse import quote

from bench_runtime_common import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "tests"))  # the data-plane tests' MariaDB, moto and tracking starters
sys.path.insert(0, str(REPO_ROOT / "docker" / "lib"))  # the plan's one-line format

from mlflow_oci.schema_plan import read_wire_format  # noqa: E402

from dataplane.servers import MariaDB, ProcessTracker, S3Server, start_moto  # noqa: E402
from dataplane.stacks import DB_PASSWORD, start_tracking_replica  # noqa: E402
from harness import mlflow_data  # noqa: E402
from harness.mariadb_backend import MariaDBBackend  # noqa: E402
from harness.tools import find_binary, older_mlflow  # noqa: E402
from orm_pack.local.services import python_env  # noqa: E402

RUN_COUNTS = (10_000, 100_000)
FROM_MLFLOW = "3.16.1"
DATABASE = "mlflow"
INIT_DB = REPO_ROOT / "docker" / "tracking" / "init_db.py"
LIB = REPO_ROOT / "docker" / "lib"
SCRIPT = Path(mlflow_data.__file__)
MARIADB_ARGS = ("--innodb-buffer-pool-size=1G", "--innodb-force-primary-key=ON")
STEPS = ("fill", "plan", "backup", "migrate", "health", "restore", "verify")


@dataclass
class Figures:
    runs: int
    seconds: dict[str, float | None] = field(default_factory=dict)   # None: the step was skipped
    rows: dict[str, int | None] = field(default_factory=dict)
    backup_mb: float = 0.0
    plan: dict = field(default_factory=dict)


def uri(server: MariaDB, database: str) -> str:
    return (f"mysql+pymysql://{DATABASE}:{quote(DB_PASSWORD, safe='')}@{server.host}:{server.port}/{database}"
            f"?charset=utf8mb4&ssl_ca={quote(server.ca_file, safe='')}&ssl_check_hostname=true")


def database_env(server: MariaDB) -> dict:
    """The settings a tracking server's start gives init_db.py and schema_plan."""
    return {**python_env(), "MYSQL_ADMIN_USER": server.admin_user, "MYSQL_ADMIN_PASSWORD": server.admin_password,
            **dict(server.client_env()), "MLFLOW_DB_NAME": DATABASE, "MLFLOW_DB_USER": DATABASE,
            "MLFLOW_DB_PASSWORD": DB_PASSWORD, "MLFLOW_AUTH_DB_NAME": f"{DATABASE}_auth",
            "MLFLOW_BACKEND_STORE_URI": uri(server, DATABASE), "MLFLOW_AUTH_DATABASE_URI": uri(server, f"{DATABASE}_auth")}


def run(argv: list, env: dict, what: str, pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    if pythonpath:
        env = {**env, "PYTHONPATH": str(pythonpath)}
    done = subprocess.run([sys.executable, *map(str, argv)], env=env, capture_output=True, text=True, timeout=7200)
    if done.returncode != 0:
        raise SystemExit(f"{what} exited with status {done.returncode}:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    return done


class Stopwatch:
    def __init__(self, figures: Figures):
        self.figures = figures

    def time(self, step: str, action, *args, **kwargs):
        started = time.monotonic()
        result = action(*args, **kwargs)
        self.figures.seconds[step] = time.monotonic() - started
        print(f"  {self.figures.runs} runs: {step} {self.figures.seconds[step]:.1f} s", file=sys.stderr, flush=True)
        return result


def measure(runs: int, root: Path, tracker: ProcessTracker, s3: S3Server | None) -> Figures:
    figures = Figures(runs)
    watch = Stopwatch(figures)
    older = older_mlflow(FROM_MLFLOW)
    backend = MariaDBBackend.start(tracker, root / f"mariadb-{runs}", extra_args=MARIADB_ARGS)
    restored = None
    try:
        env = database_env(backend.server)
        tracking_uri, auth_uri = env["MLFLOW_BACKEND_STORE_URI"], env["MLFLOW_AUTH_DATABASE_URI"]
        run([INIT_DB], env, f"init_db.py with MLflow {FROM_MLFLOW}", older)
        shape = mlflow_data.Shape(runs=runs)
        watch.time("fill", run, [SCRIPT, "fill", "--tracking-uri", tracking_uri, "--auth-uri", auth_uri,
                                 *(f"--{name.replace('_', '-')}={value}" for name, value in asdict(shape).items())],
                   python_env(), f"the fill by MLflow {FROM_MLFLOW}", older)
        before = mlflow_data.fingerprint(tracking_uri, auth_uri)
        figures.rows = {name: digest.rows for name, digest in before.tables.items()}

        planned = watch.time("plan", run, ["-m", "mlflow_oci.schema_plan", "--json"], env, "the plan", LIB)
        document = read_wire_format(planned.stdout.strip().splitlines()[-1])
        figures.plan = {"from": f"{document['from_mlflow']} {document['from_revision']}",
                        "to": f"{document['to_mlflow']} {document['to_revision']}", "refused": document["refused"],
                        "steps": len(document["steps"]),
                        "slow": [step["revision"] for step in document["steps"] if step.get("slow")]}
        backup = root / f"backup-{runs}.sql"
        watch.time("backup", backend.snapshot, backup)
        figures.backup_mb = backup.stat().st_size / 1e6
        watch.time("migrate", run, [INIT_DB], env, "init_db.py with the pinned MLflow")
        if s3 is None:
            figures.seconds["health"] = None
        else:
            replica = watch.time("health", start_tracking_replica, tracker, backend.server, s3, root, f"tracking-{runs}",
                                 database=DATABASE, s3_prefix=f"bench-{runs}")
            tracker.stop(replica.service)
        restored = watch.time("restore", backend.restore, backup)
        restored_env = database_env(restored.server)
        after = watch.time("verify", mlflow_data.fingerprint, restored_env["MLFLOW_BACKEND_STORE_URI"],
                           restored_env["MLFLOW_AUTH_DATABASE_URI"])
        differences = before.differences(after)
        if differences:
            raise SystemExit("the restored database is not the one backed up:\n" + "\n".join(differences))
    finally:
        if restored is not None:
            restored.stop()
        backend.stop()
    return figures


def print_table(figures: list[Figures]) -> None:
    print(f"MLflow upgrade {FROM_MLFLOW} -> {version('mlflow')}, step by step (MariaDB {' '.join(MARIADB_ARGS)}; "
          f"{os.cpu_count()} cores)")
    print(f"{'step':<10}" + "".join(f"{f'{row.runs:,} runs':>16}" for row in figures))
    for step in STEPS:
        cells = [row.seconds.get(step) for row in figures]
        print(f"{step:<10}" + "".join(f"{'skipped':>16}" if value is None else f"{value:>14.1f} s" for value in cells))
    upgrade = [sum(row.seconds.get(step) or 0 for step in ("plan", "backup", "migrate")) for row in figures]
    print(f"{'upgrade':<10}" + "".join(f"{value:>14.1f} s" for value in upgrade) + "   (plan + backup + migrate)")
    print(f"{'dump':<10}" + "".join(f"{row.backup_mb:>13.1f} MB" for row in figures) + "   (the backup's size)")
    for row in figures:
        print(f"plan at {row.runs:,} runs: {row.plan}")
    print("\nrows per table (before the upgrade; the restored database has the same rows and digests)")
    tables = list(dict.fromkeys(name for row in figures for name in row.rows))
    print(f"{'table':<30}" + "".join(f"{f'{row.runs:,} runs':>16}" for row in figures))
    for name in tables:
        cells = [row.rows.get(name) for row in figures]
        print(f"{name:<30}" + "".join(f"{'-' if value is None else f'{value:,}':>16}" for value in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, action="append",
                        help=f"runs in the database (repeat for several; default {' and '.join(map(str, RUN_COUNTS))})")
    args = parser.parse_args()
    moto_server = find_binary("moto_server")
    if not moto_server:
        print("moto_server is not installed (pip install 'moto[server]'): the health step is skipped", file=sys.stderr)
    tracker = ProcessTracker()
    figures = []
    with tempfile.TemporaryDirectory(prefix="bench-upgrade-") as tmp:
        root = Path(tmp)
        try:
            s3 = start_moto(tracker, moto_server, root / "moto") if moto_server else None
            for runs in args.runs or RUN_COUNTS:
                figures.append(measure(runs, root, tracker, s3))
        finally:
            tracker.stop_all()
    print_table(figures)
    leftovers = tracker.leftovers()
    if leftovers:
        print(f"warning: processes left running: {leftovers}", file=sys.stderr)


if __name__ == "__main__":
    main()
