"""Data for the upgrade journeys: fills an MLflow database with runs, registered models and users through
MLflow's own stores, and fingerprints what is there so a database compared before and after an upgrade
shows whatever was lost or changed.

Also a script, runnable by any MLflow 3.15 or later (this file imports only MLflow, SQLAlchemy and the
standard library, so an older MLflow put first on PYTHONPATH is the one that fills):

    python tests/harness/mlflow_data.py fill --tracking-uri mysql+pymysql://... [--auth-uri ...] --runs 10000 \\
        [--experiments 10 --metrics-per-run 5 --steps-per-metric 1 --params-per-run 5 --tags-per-run 3 \\
         --models 5 --versions-per-model 3 --users 5 --seed 0 --artifact-root mlflow-artifacts:/]
    python tests/harness/mlflow_data.py fingerprint --tracking-uri ... [--auth-uri ...]

Both print JSON: fill what it made (mlflow_version, experiment_ids, models, users with their passwords,
seconds per step, and rows: the rows per table the fingerprint then counts); fingerprint {"tables": {name:
{"rows": n, "sha256": hex}}}, rows null for a table the database does not have. Two fingerprints are equal
when no row of those tables was lost, added or changed.

The databases must be at the head revision of the MLflow that fills them: prepare them with that same
MLflow (the product's docker/tracking/init_db.py, as a deployment of that version did). MLflow's stores
create their tables in an empty database themselves, but on MySQL with primary keys required (HeatWave,
MariaDB with innodb_force_primary_key) only init_db.py's statement rewrites make its migrations pass.

Runs and their metrics, params and tags are inserted in batches with the tracking store's ORM tables and
session maker (one API call per run would take minutes for 10,000); experiments, registered models,
versions, aliases, users and permissions go through the stores' API. The seed chooses run ids, values and
passwords; names are the same for every seed (fill a database once); the times MLflow's API stamps
(experiments, models) are the clock's.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field

BASE_TIME_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: runs start here, one a minute
BATCH_RUNS = 1000
PERMISSIONS = ("READ", "EDIT", "MANAGE")
ALIASES = ("champion", "challenger")  # the latest version, the one before it


class DataError(Exception):
    """A database the generator cannot use as it is; the message says what to do."""


@dataclass(frozen=True)
class Shape:
    """What one fill adds."""

    runs: int = 1000
    experiments: int = 10
    metrics_per_run: int = 5
    steps_per_metric: int = 1
    params_per_run: int = 5
    tags_per_run: int = 3
    models: int = 5
    versions_per_model: int = 3
    users: int = 5
    seed: int = 0

    def __post_init__(self):
        for name, value in asdict(self).items():
            if name != "seed" and value < 0:
                raise DataError(f"{name} must be 0 or more (got {value})")
        if self.runs and not self.experiments:
            raise DataError("runs need an experiment: set experiments to 1 or more")
        if self.models and self.versions_per_model and not self.runs:
            raise DataError("model versions come from runs: set runs to 1 or more")
        if self.metrics_per_run and not self.steps_per_metric:
            raise DataError("steps_per_metric must be 1 or more when runs have metrics")

    def rows(self, with_users: bool = True) -> dict[str, int]:
        """The rows per table of a database that init_db.py prepared and this shape filled once: with MLflow's
        Default experiment, which the tracking store makes where there is none."""
        aliases = self.models * min(self.versions_per_model, len(ALIASES))
        rows = {
            "experiments": 1 + self.experiments,
            "experiment_tags": self.experiments,
            "runs": self.runs,
            "metrics": self.runs * self.metrics_per_run * self.steps_per_metric,
            "latest_metrics": self.runs * self.metrics_per_run,
            "params": self.runs * self.params_per_run,
            "tags": self.runs * self.tags_per_run,
            "registered_models": self.models,
            "model_versions": self.models * self.versions_per_model,
            "registered_model_aliases": aliases,
        }
        if with_users:
            rows["users"] = self.users
        return rows


@dataclass(frozen=True)
class Filled:
    """What a fill made; users maps each person's name to their password."""

    mlflow_version: str
    shape: Shape
    experiment_ids: list[str]
    models: list[str]
    users: dict[str, str]
    seconds: dict[str, float] = field(default_factory=dict)


def person(index: int) -> str:
    return f"person{index:05d}@example.test"


def password_of(username: str, seed: int) -> str:
    """Each person's password, derived from the seed: a journey signs in with it after the upgrade."""
    return "Pw-" + hashlib.sha256(f"{seed}:{username}".encode()).hexdigest()[:20]


def model_name(index: int) -> str:
    return f"journey-model-{index:04d}"


def experiment_name(index: int) -> str:
    return f"journey-experiment-{index:04d}"


def fill(tracking_uri: str, shape: Shape, auth_uri: str | None = None, artifact_root: str = "mlflow-artifacts:/",
         progress=None) -> Filled:
    """Adds shape's experiments, runs, models and (with auth_uri) users, once per database: the names are the
    same for every seed. `progress(message)` hears each step."""
    import mlflow

    tracking = _tracking_store(tracking_uri, artifact_root)
    registry = _registry_store(tracking_uri)
    auth = _auth_store(auth_uri) if auth_uri else None
    try:
        return _fill(mlflow.__version__, tracking, registry, auth, shape, artifact_root, progress or (lambda message: None))
    finally:
        _dispose(tracking, registry, auth)


def _fill(version: str, tracking, registry, auth, shape: Shape, artifact_root: str, say) -> Filled:
    from mlflow.entities import ExperimentTag

    laps = _Laps()
    rng = random.Random(shape.seed)
    users = [person(i) for i in range(shape.users)]
    experiments = [tracking.create_experiment(experiment_name(index), tags=[ExperimentTag("journey.seed", str(shape.seed))])
                   for index in range(shape.experiments)]
    laps.lap("experiments")
    say(f"{len(experiments)} experiments")

    run_ids = _insert_runs(tracking, shape, experiments, users, rng, say)
    laps.lap("runs")

    models = []
    for index in range(shape.models):
        name = model_name(index)
        registry.create_registered_model(name, description=f"model {index} of seed {shape.seed}")
        for number in range(1, shape.versions_per_model + 1):
            run_id = run_ids[(index * shape.versions_per_model + number - 1) % len(run_ids)]
            registry.create_model_version(name, f"{artifact_root.rstrip('/')}/models/{name}/{number}", run_id=run_id,
                                          description=f"version {number}")
        for alias, number in zip(ALIASES, range(shape.versions_per_model, 0, -1), strict=False):
            registry.set_registered_model_alias(name, alias, str(number))
        models.append(name)
    laps.lap("models")
    say(f"{len(models)} registered models")

    passwords = {}
    if auth is not None:
        for index, username in enumerate(users):
            passwords[username] = password_of(username, shape.seed)
            auth.create_user(username, passwords[username])
            if experiments:
                auth.create_experiment_permission(experiments[index % len(experiments)], username,
                                                  PERMISSIONS[index % len(PERMISSIONS)])
            if models:
                auth.create_registered_model_permission(models[index % len(models)], username, "READ")
        laps.lap("users")
        say(f"{len(users)} users")
    return Filled(version, shape, experiments, models, passwords, laps.seconds())


class _Laps:
    """Seconds spent per step of a fill."""

    def __init__(self):
        self.started = self.last = time.monotonic()
        self.steps: dict[str, float] = {}

    def lap(self, step: str) -> None:
        now = time.monotonic()
        self.steps[step], self.last = round(now - self.last, 3), now

    def seconds(self) -> dict[str, float]:
        return {**self.steps, "total": round(time.monotonic() - self.started, 3)}


def _schema_problem(uri: str, what: str) -> str | None:
    """Why MLflow's stores would refuse this tracking database, or None (at head, or empty)."""
    import sqlalchemy
    from mlflow.store.db import utils as db_utils

    engine = sqlalchemy.create_engine(uri, poolclass=sqlalchemy.pool.NullPool)
    try:
        if db_utils._is_empty_database(engine):
            return None
        found, head = db_utils._get_schema_version(engine), db_utils._get_latest_schema_revision()
    finally:
        engine.dispose()
    if found == head:
        return None
    import mlflow

    return (f"the {what} is at schema revision {found}, MLflow {mlflow.__version__} writes revision {head}: fill it "
            "with the MLflow that prepared it, or prepare it with this one (docker/tracking/init_db.py)")


def _tracking_store(uri: str, artifact_root: str):
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    problem = _schema_problem(uri, "tracking database")
    if problem:
        raise DataError(problem)
    return SqlAlchemyStore(uri, artifact_root)


def _registry_store(uri: str):
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

    return SqlAlchemyStore(uri)


def _auth_store(uri: str):
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore()
    store.init_db(uri)  # at head already (init_db.py), this only connects
    return store


def _dispose(*stores) -> None:
    for store in stores:
        engine = getattr(store, "engine", None)
        if engine is not None:
            engine.dispose()


def _insert_runs(tracking, shape: Shape, experiment_ids: list[str], users: list[str], rng: random.Random,
                 say) -> list[str]:
    """Runs with their metrics (and latest_metrics), params and tags, BATCH_RUNS at a time, one transaction each."""
    from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric, SqlParam, SqlRun, SqlTag

    locations = {experiment_id: tracking.get_experiment(experiment_id).artifact_location
                 for experiment_id in experiment_ids}
    run_ids = []
    for first in range(0, shape.runs, BATCH_RUNS):
        runs, metrics, latest, params, tags = [], [], [], [], []
        for index in range(first, min(first + BATCH_RUNS, shape.runs)):
            run_id = uuid.UUID(int=rng.getrandbits(128), version=4).hex
            experiment_id = experiment_ids[index % len(experiment_ids)]
            start = BASE_TIME_MS + index * 60_000
            failed = index % 50 == 49
            runs.append({
                "run_uuid": run_id, "name": f"run-{index:06d}", "source_type": "LOCAL",
                "source_name": "train.py", "entry_point_name": "", "user_id": users[index % len(users)] if users else "journey",
                "status": "FAILED" if failed else "FINISHED", "start_time": start,
                "end_time": start + 1000 + rng.randrange(50_000), "deleted_time": None, "source_version": "",
                "lifecycle_stage": "active", "artifact_uri": f"{locations[experiment_id]}/{run_id}/artifacts",
                "experiment_id": int(experiment_id),
            })
            for m in range(shape.metrics_per_run):
                for step in range(shape.steps_per_metric):
                    value = rng.random() * 10 ** (m % 4)
                    is_nan = (index + m) % 97 == 96 and step == shape.steps_per_metric - 1
                    row = {"run_uuid": run_id, "key": f"metric_{m}", "value": 0.0 if is_nan else value,
                           "timestamp": start + 1000 * (step + 1), "step": step, "is_nan": is_nan}
                    metrics.append(row)
                latest.append(dict(row))
            params.extend({"run_uuid": run_id, "key": f"param_{p}", "value": str(rng.choice((0.01, 0.1, 0.5, 1, 10)))}
                          for p in range(shape.params_per_run))
            tags.extend({"run_uuid": run_id, "key": f"tag_{t}", "value": f"value-{rng.randrange(1000)}"}
                        for t in range(shape.tags_per_run))
            run_ids.append(run_id)
        with tracking.ManagedSessionMaker() as session:
            connection = session.connection()
            for model, rows in ((SqlRun, runs), (SqlMetric, metrics), (SqlLatestMetric, latest),
                                (SqlParam, params), (SqlTag, tags)):
                if rows:
                    connection.execute(model.__table__.insert(), rows)
        say(f"{len(run_ids)} runs")
    return run_ids


# Per table, the columns that are in every MLflow from 3.15 on and say what a row is and holds, in the order
# the rows are digested. Surrogate ids of the auth app's tables are replaced by the names they stand for.
TRACKING_DIGESTS = {
    "experiments": ("SELECT experiment_id, workspace, name, artifact_location, lifecycle_stage, creation_time, "
                    "last_update_time FROM experiments ORDER BY experiment_id"),
    "experiment_tags": "SELECT experiment_id, `key`, value FROM experiment_tags ORDER BY experiment_id, `key`",
    "runs": ("SELECT run_uuid, experiment_id, name, source_type, source_name, entry_point_name, user_id, status, "
             "start_time, end_time, deleted_time, source_version, lifecycle_stage, artifact_uri FROM runs "
             "ORDER BY run_uuid"),
    "metrics": ("SELECT run_uuid, `key`, step, timestamp, value, is_nan FROM metrics "
                "ORDER BY run_uuid, `key`, step, timestamp, value, is_nan"),
    "latest_metrics": "SELECT run_uuid, `key`, step, timestamp, value, is_nan FROM latest_metrics ORDER BY run_uuid, `key`",
    "params": "SELECT run_uuid, `key`, value FROM params ORDER BY run_uuid, `key`",
    "tags": "SELECT run_uuid, `key`, value FROM tags ORDER BY run_uuid, `key`",
    "registered_models": ("SELECT workspace, name, creation_time, last_updated_time, description FROM registered_models "
                          "ORDER BY workspace, name"),
    "model_versions": ("SELECT workspace, name, version, creation_time, last_updated_time, description, user_id, "
                       "current_stage, source, storage_location, run_id, run_link, status, status_message "
                       "FROM model_versions ORDER BY workspace, name, version"),
    "registered_model_aliases": ("SELECT workspace, name, alias, version FROM registered_model_aliases "
                                 "ORDER BY workspace, name, alias"),
}
AUTH_DIGESTS = {
    "users": "SELECT username, password_hash, is_admin FROM users ORDER BY username",
    "roles": "SELECT workspace, name, description FROM roles ORDER BY workspace, name",
    "role_permissions": ("SELECT r.workspace, r.name, p.resource_type, p.resource_pattern, p.permission "
                         "FROM role_permissions p JOIN roles r ON r.id = p.role_id "
                         "ORDER BY r.workspace, r.name, p.resource_type, p.resource_pattern"),
    "user_role_assignments": ("SELECT u.username, r.workspace, r.name FROM user_role_assignments a "
                              "JOIN users u ON u.id = a.user_id JOIN roles r ON r.id = a.role_id "
                              "ORDER BY u.username, r.workspace, r.name"),
    # the auth app's first schema; its later revisions move these grants into roles
    "experiment_permissions": ("SELECT e.experiment_id, u.username, e.permission FROM experiment_permissions e "
                               "JOIN users u ON u.id = e.user_id ORDER BY e.experiment_id, u.username"),
    "registered_model_permissions": ("SELECT m.name, u.username, m.permission FROM registered_model_permissions m "
                                     "JOIN users u ON u.id = m.user_id ORDER BY m.name, u.username"),
}


@dataclass(frozen=True)
class TableDigest:
    rows: int | None          # None: the table is not in this database
    sha256: str | None


@dataclass(frozen=True)
class Fingerprint:
    tables: dict[str, TableDigest]

    def to_json(self) -> dict:
        return {"tables": {name: asdict(digest) for name, digest in self.tables.items()}}

    @classmethod
    def from_json(cls, data: dict) -> Fingerprint:
        return cls({name: TableDigest(**digest) for name, digest in data["tables"].items()})

    def differences(self, after: Fingerprint) -> list[str]:
        """One line per table that is not the same in `after`; empty when nothing was lost or changed."""
        lines = []
        for name in sorted(self.tables.keys() | after.tables.keys()):
            before_digest, after_digest = self.tables.get(name), after.tables.get(name)
            if before_digest != after_digest:
                lines.append(f"{name}: {_described(before_digest)} before, {_described(after_digest)} after")
        return lines


def _described(digest: TableDigest | None) -> str:
    if digest is None or digest.rows is None:
        return "no table"
    return f"{digest.rows} rows (sha256 {digest.sha256[:12]})"


def fingerprint(tracking_uri: str, auth_uri: str | None = None) -> Fingerprint:
    """Row counts and a digest of each table's rows, by SQL: the same for any MLflow version's schema."""
    tables = _digests(tracking_uri, TRACKING_DIGESTS)
    if auth_uri:
        tables.update(_digests(auth_uri, AUTH_DIGESTS))
    return Fingerprint(tables)


def _digests(uri: str, queries: dict[str, str]) -> dict[str, TableDigest]:
    import sqlalchemy

    engine = sqlalchemy.create_engine(uri, poolclass=sqlalchemy.pool.NullPool)
    try:
        present = set(sqlalchemy.inspect(engine).get_table_names())
        digests = {}
        with engine.connect() as connection:
            streaming = connection.execution_options(stream_results=True, yield_per=20_000)
            for name, query in queries.items():
                if name not in present:
                    if name not in ("experiment_permissions", "registered_model_permissions"):
                        digests[name] = TableDigest(None, None)
                    continue
                if engine.dialect.name != "mysql":
                    query = query.replace("`", '"')
                digests[name] = _digest(streaming.execute(sqlalchemy.text(query)))
    finally:
        engine.dispose()
    return digests


def _digest(result) -> TableDigest:
    sha, rows = hashlib.sha256(), 0
    for row in result:
        sha.update(json.dumps([_plain(value) for value in row], separators=(",", ":")).encode())
        sha.update(b"\n")
        rows += 1
    return TableDigest(rows, sha.hexdigest())


def _plain(value):
    """A value as JSON holds it the same whichever driver type it came as (bool/tinyint, Decimal/float)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    if value is None or isinstance(value, (int, str)):
        return value
    return str(value)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlflow_data.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    fill_parser = commands.add_parser("fill", help="add experiments, runs, models and users; print what was made")
    fingerprint_parser = commands.add_parser("fingerprint", help="print row counts and digests per table")
    for command in (fill_parser, fingerprint_parser):
        command.add_argument("--tracking-uri", required=True, help="MLflow's database, e.g. mysql+pymysql://...")
        command.add_argument("--auth-uri", help="the auth app's users database")
    defaults = Shape()
    for name in ("runs", "experiments", "metrics_per_run", "steps_per_metric", "params_per_run", "tags_per_run",
                 "models", "versions_per_model", "users", "seed"):
        fill_parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name))
    fill_parser.add_argument("--artifact-root", default="mlflow-artifacts:/",
                             help="the tracking server's default artifact root (experiments' locations)")
    return parser


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "fill":
            shape = Shape(**{name: getattr(args, name) for name in Shape.__dataclass_fields__})
            filled = fill(args.tracking_uri, shape, args.auth_uri, args.artifact_root,
                          progress=lambda message: print(f"fill: {message}", file=sys.stderr, flush=True))
            print(json.dumps({**asdict(filled), "rows": shape.rows(with_users=bool(args.auth_uri))}, indent=1))
        else:
            print(json.dumps(fingerprint(args.tracking_uri, args.auth_uri).to_json(), indent=1))
    except DataError as exc:
        print(f"mlflow_data.py: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    # Run as a script, this file's directory is first on sys.path: the harness's own modules (tools.py,
    # schema/, ...) must not shadow what MLflow imports.
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]
    sys.exit(main())
