"""The tracking server scales out: it keeps its state in MySQL and the bucket only, so replicas on one
database and one bucket, behind one nginx upstream, serve each other's writes at once, and a fresh
replica with empty directories replaces a stopped one. Each replica runs docker/tracking/entrypoint.sh
with a HOME, TMPDIR and working directory of its own; afterwards those are still empty.
The tests run in file order: the last two stop replica a and look at what every replica left."""
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from dataplane.servers import MariaDB, ProcessTracker, S3Server
from dataplane.stacks import TrackingReplica, start_proxy, start_tracking_replicas
from orm_pack.local import credentials

pytestmark = [pytest.mark.dataplane, pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")]

# A database, user and bucket prefix of this module's own: the session's tracking_stack uses `mlflow`.
DATABASE = "mlflow_scale"
S3_PREFIX = "scale-out"
MODEL = "scale-out-model"
ALIAS = "champion"
LOSS_HISTORY = [(0, 0.9), (1, 0.55), (2, 0.31), (3, 0.27)]
ARTIFACTS = {"weights.bin": os.urandom(200 * 1024), "model/notes.txt": b"written through replica A\n"}


@dataclass
class ScaleOut:
    """Tracking replicas on one MariaDB database and one bucket prefix; one proxy in front of the first two."""
    tracker: ProcessTracker
    mariadb: MariaDB
    s3: S3Server
    root: Path
    replicas: dict[str, TrackingReplica] = field(default_factory=dict)
    proxy_url: str = ""
    login: credentials.Credentials | None = None

    def start_replicas(self, *names: str) -> list[TrackingReplica]:
        started = start_tracking_replicas(self.tracker, self.mariadb, self.s3, self.root, names, database=DATABASE,
                                          s3_prefix=S3_PREFIX)
        self.replicas.update((replica.name, replica) for replica in started)
        return started

    def start_replica(self, name: str) -> TrackingReplica:
        return self.start_replicas(name)[0]

    def proxy_client(self, monkeypatch) -> MlflowClient:
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", self.login.username)
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", self.login.password)
        return MlflowClient(self.proxy_url)


@pytest.fixture(scope="module")
def scale_out(tracker, tmp_path_factory, mariadb, s3) -> ScaleOut:
    """Replicas a and b behind one proxy; b starts once a has migrated the schema."""
    cluster = ScaleOut(tracker, mariadb, s3, tmp_path_factory.mktemp("scale-out"))
    first, second = cluster.start_replicas("a", "b")
    cluster.login = credentials.generate("mlflow-user")
    proxy, cluster.proxy_url = start_proxy(tracker, cluster.root / "proxy", [first.port, second.port], cluster.login)
    yield cluster
    tracker.stop(proxy)
    for replica in cluster.replicas.values():
        if replica.service.alive():
            tracker.stop(replica.service)


@dataclass(frozen=True)
class Written:
    """What replica a wrote; every replica must serve exactly this."""
    experiment_id: str
    experiment_name: str
    run_id: str
    params: dict
    tags: dict
    model_version: str


@pytest.fixture(scope="module")
def written(scale_out, tmp_path_factory) -> Written:
    client = MlflowClient(scale_out.replicas["a"].url)
    experiment_name = "scale-out"
    experiment_id = client.create_experiment(experiment_name, tags={"team": "replicas"})
    run_id = client.create_run(experiment_id, run_name="written-via-a").info.run_id
    params, tags = {"alpha": "0.5", "layers": "3"}, {"origin": "replica-a", "stage": "trained"}
    client.log_batch(run_id, metrics=[Metric("loss", value, 1_700_000_000_000 + step, step)
                                      for step, value in LOSS_HISTORY],
                     params=[Param(k, v) for k, v in params.items()], tags=[RunTag(k, v) for k, v in tags.items()])
    source = tmp_path_factory.mktemp("artifacts-a")
    for relative, content in ARTIFACTS.items():
        (source / relative).parent.mkdir(parents=True, exist_ok=True)
        (source / relative).write_bytes(content)
    client.log_artifacts(run_id, str(source))
    client.set_terminated(run_id)
    client.create_registered_model(MODEL)
    version = client.create_model_version(MODEL, f"runs:/{run_id}/model", run_id=run_id).version
    client.set_registered_model_alias(MODEL, ALIAS, version)
    return Written(experiment_id, experiment_name, run_id, params, tags, str(version))


def assert_serves_what_a_wrote(client: MlflowClient, written: Written, download_dir: Path) -> None:
    experiment = client.get_experiment_by_name(written.experiment_name)
    assert experiment is not None, f"experiment {written.experiment_name} unknown to {client.tracking_uri}"
    assert (experiment.experiment_id, experiment.tags.get("team")) == (written.experiment_id, "replicas")
    run = client.get_run(written.run_id)
    assert (run.info.run_name, run.info.status) == ("written-via-a", "FINISHED")
    assert run.data.params == written.params
    assert {k: run.data.tags.get(k) for k in written.tags} == written.tags
    history = client.get_metric_history(written.run_id, "loss")
    assert sorted((m.step, m.value) for m in history) == LOSS_HISTORY
    assert [r.info.run_id for r in client.search_runs([written.experiment_id], "params.alpha = '0.5'")] \
        == [written.run_id]

    version = client.get_model_version_by_alias(MODEL, ALIAS)
    assert (version.version, version.run_id) == (written.model_version, written.run_id)

    download_dir.mkdir()
    for relative, content in ARTIFACTS.items():
        local = client.download_artifacts(written.run_id, relative, str(download_dir))
        assert Path(local).read_bytes() == content, relative


def test_replica_b_serves_at_once_what_replica_a_wrote(scale_out, written, tmp_path):
    assert_serves_what_a_wrote(MlflowClient(scale_out.replicas["b"].url), written, tmp_path / "via-b")


def test_the_proxy_serves_what_replica_a_wrote(scale_out, written, tmp_path, monkeypatch):
    assert_serves_what_a_wrote(scale_out.proxy_client(monkeypatch), written, tmp_path / "via-proxy")


def run_writes_in_log(replica: TrackingReplica) -> int:
    """The run writes (create, log-parameter, ...) the replica's access log shows."""
    return replica.service.log.read_text().count("POST /api/2.0/mlflow/runs/")


def test_writes_through_the_proxy_reach_both_replicas_and_each_serves_them_all(scale_out, written, monkeypatch):
    """nginx alternates the replicas, so one creates a run and the other logs its parameter; both answer for all."""
    before = {name: run_writes_in_log(replica) for name, replica in scale_out.replicas.items()}
    proxy = scale_out.proxy_client(monkeypatch)
    created = {}
    for index in range(6):
        run_id = proxy.create_run(written.experiment_id, run_name=f"via-proxy-{index}").info.run_id
        proxy.log_param(run_id, "index", str(index))
        created[run_id] = str(index)

    for name in ("a", "b"):
        replica = scale_out.replicas[name]
        runs = MlflowClient(replica.url).search_runs([written.experiment_id], "attributes.run_name LIKE 'via-proxy-%'")
        assert {run.info.run_id: run.data.params["index"] for run in runs} == created, name
        assert run_writes_in_log(replica) > before[name], f"the proxy sent no write to replica {name}"


def test_a_fresh_replica_replaces_a_stopped_one(scale_out, written, tmp_path, monkeypatch):
    scale_out.tracker.stop(scale_out.replicas["a"].service)
    assert not scale_out.replicas["a"].service.alive()
    # The proxy passes over the stopped replica: b answers for everything a wrote.
    assert_serves_what_a_wrote(scale_out.proxy_client(monkeypatch), written, tmp_path / "via-proxy")

    fresh = scale_out.start_replica("c")
    assert_serves_what_a_wrote(MlflowClient(fresh.url), written, tmp_path / "via-c")
    MlflowClient(fresh.url).set_tag(written.run_id, "reviewed-by", "replica-c")
    assert MlflowClient(scale_out.replicas["b"].url).get_run(written.run_id).data.tags["reviewed-by"] == "replica-c"


def test_replicas_keep_nothing_of_their_own(scale_out, written):
    """MLflow's state is in the database and the bucket: the replicas' HOME, TMPDIR and working directories
    stay empty (no SQLite file, no mlruns, no artifact, not even a temporary copy)."""
    for name, replica in scale_out.replicas.items():
        kept = sorted(str(path) for directory in replica.dirs for path in directory.rglob("*"))
        assert kept == [], f"replica {name} keeps files of its own"

    with scale_out.mariadb.admin(DATABASE) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT name FROM experiments WHERE experiment_id = %s", (written.experiment_id,))
        assert cursor.fetchall() == ((written.experiment_name,),)
    listed = scale_out.s3.client().list_objects_v2(Bucket=scale_out.s3.bucket, Prefix=f"{S3_PREFIX}/")
    stored = {obj["Key"].split(f"{written.run_id}/artifacts/", 1)[1]: obj["Size"]
              for obj in listed.get("Contents", []) if f"{written.run_id}/artifacts/" in obj["Key"]}
    assert stored == {relative: len(content) for relative, content in ARTIFACTS.items()}
