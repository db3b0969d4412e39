"""The tracking server's lean run search (docker/lib/mlflow_oci/run_search.py) answers every search exactly as
MLflow's own SqlAlchemyStore does: the same runs with the same values, in the same order, page by page, with
the same tokens. Here on SQLite; tests/dataplane/test_lean_run_search_mysql.py does the same on MariaDB."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

LIB = Path(__file__).resolve().parents[1] / "docker" / "lib"
sys.path.insert(0, str(LIB))
from mlflow_oci import run_search  # noqa: E402

from harness import run_search_cases  # noqa: E402


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    path = tmp_path_factory.mktemp("lean-search")
    uri = f"sqlite:///{path / 'mlflow.db'}"
    mlflow_own = SqlAlchemyStore(uri, str(path / "artifacts"))
    experiment_ids = run_search_cases.make_runs(mlflow_own)
    yield mlflow_own, run_search.LeanSearchStore(uri, str(path / "artifacts")), experiment_ids
    mlflow_own.engine.dispose()


def test_every_search_gives_mlflows_own_answer_page_by_page(stores):
    mlflow_own, lean, experiment_ids = stores
    compared = 0
    for search in run_search_cases.searches(experiment_ids):
        expected = run_search_cases.every_page(mlflow_own, *search)
        assert run_search_cases.every_page(lean, *search) == expected, search
        compared += len(expected)
    assert compared > 150  # pages, most of them full


def test_the_searches_tell_a_wrong_answer_apart(stores, monkeypatch):
    """The cases are sharp enough: a store that returns a page in the database's order instead of the ranking,
    or loses a NaN, is caught."""
    mlflow_own, lean, experiment_ids = stores
    search = (experiment_ids, "", run_search_cases.ViewType.ACTIVE_ONLY, ["metrics.`loss` DESC"], 10)
    expected = run_search_cases.every_page(mlflow_own, *search)
    real_read = run_search._read_runs
    monkeypatch.setattr(run_search, "_read_runs", lambda session, run_ids: real_read(session, sorted(run_ids)))
    assert run_search_cases.every_page(lean, *search) != expected
    monkeypatch.undo()
    real_metric = run_search.Metric
    monkeypatch.setattr(run_search, "Metric", lambda key, value, timestamp, step: real_metric(
        key, 0.0 if value != value else value, timestamp, step))
    assert run_search_cases.every_page(lean, *search) != expected


def test_switched_off_it_is_mlflows_own_search(stores, monkeypatch):
    mlflow_own, lean, experiment_ids = stores
    monkeypatch.setenv(run_search.SWITCH, "false")
    monkeypatch.setattr(run_search, "_read_runs", lambda *args: pytest.fail("the lean search ran"))
    search = (experiment_ids, "metrics.loss > 0.5", run_search_cases.ViewType.ALL, ["params.lr ASC"], 10)
    assert run_search_cases.every_page(lean, *search) == run_search_cases.every_page(mlflow_own, *search)


def test_the_servers_store_registry_builds_it_for_mysql_uris():
    """As the tracking server sees docker/lib (the images put it on PYTHONPATH): its registry's `mysql` scheme
    builds the lean store, through the dist-info's entry point; SQLite stays MLflow's."""
    probe = ("from mlflow.server.handlers import TrackingStoreRegistryWrapper as R\n"
             "r = R()\n"
             "print(r.get_store_builder('mysql+pymysql://u:p@127.0.0.1:3306/mlflow').__module__)\n"
             "print(r.get_store_builder('sqlite:///x.db').__qualname__)\n")
    env = {"PYTHONPATH": str(LIB), "PATH": "/usr/bin:/bin", "HOME": str(Path.home())}
    shown = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert shown.stdout.split() == ["mlflow_oci.tracking_store", "TrackingStoreRegistryWrapper._get_sqlalchemy_store"]
    assert "Failure attempting to register" not in shown.stderr, shown.stderr


def test_a_client_with_docker_lib_on_its_path_imports_mlflow_without_a_warning():
    """MLflow loads the entry points while mlflow.tracking is still importing: a client process (init_db.py, the
    notebook of an image) must not see the entry point fail."""
    probe = "import warnings; warnings.simplefilter('error'); import mlflow; print(mlflow.get_tracking_uri())"
    env = {"PYTHONPATH": str(LIB), "PATH": "/usr/bin:/bin", "HOME": str(Path.home())}
    shown = subprocess.run([sys.executable, "-W", "error::UserWarning", "-c", probe], env=env, capture_output=True,
                           text=True, timeout=120)
    assert shown.returncode == 0 and "register store" not in shown.stderr, shown.stderr[-2000:]


def test_in_a_server_worker_the_builder_makes_responses_compact_json(stores, monkeypatch):
    """The store's builder, in a process running MLflow's handlers: runs/search answers the same JSON document
    without indentation (half the bytes); MLFLOW_OCI_COMPACT_JSON=false leaves MLflow's pretty output."""
    from mlflow.server import app, handlers
    from mlflow_oci import tracking_store

    mlflow_own, lean, experiment_ids = stores
    monkeypatch.setattr(handlers, "message_to_json", handlers.message_to_json)  # restored after the test
    monkeypatch.setattr(handlers, "_tracking_store", lean)
    body = {"experiment_ids": experiment_ids, "max_results": 20, "order_by": ["metrics.loss DESC"]}

    def search() -> bytes:
        answer = app.test_client().post("/ajax-api/2.0/mlflow/runs/search", json=body)
        assert answer.status_code == 200, answer.data[:500]
        return answer.data

    monkeypatch.setenv("MLFLOW_OCI_COMPACT_JSON", "false")
    tracking_store.build(lean.db_uri, lean.artifact_root_uri).engine.dispose()
    pretty = search()
    monkeypatch.delenv("MLFLOW_OCI_COMPACT_JSON")
    tracking_store.build(lean.db_uri, lean.artifact_root_uri).engine.dispose()
    compact = search()
    assert b'\n  "runs"' in pretty and b"\n" not in compact
    as_document = lambda text: json.loads(text, parse_constant=str)  # noqa: E731  (NaN as a string: comparable)
    assert as_document(compact) == as_document(pretty) and len(compact) < len(pretty) * 0.6


def test_the_run_tables_json_in_one_pass_is_mlflows_text(stores):
    """compact_json.runs_to_json writes exactly MLflow's message_to_json(pretty=False) for every page of every
    search: NaN and infinities, missing values, datasets, model outputs, page tokens."""
    from mlflow.protos.service_pb2 import SearchRuns
    from mlflow.utils.proto_json_utils import message_to_json
    from mlflow_oci import compact_json

    mlflow_own, lean, experiment_ids = stores
    assert compact_json.one_pass_covers(SearchRuns.Response.DESCRIPTOR)
    pages = 0
    for experiment, filter_string, view, order_by, size in run_search_cases.searches(experiment_ids):
        token = None
        while True:
            page = lean.search_runs(experiment, filter_string, view, size, order_by, token)
            response = SearchRuns.Response(runs=[run.to_proto() for run in page], next_page_token=page.token or "")
            assert compact_json.runs_to_json(response) == message_to_json(response, pretty=False)
            pages, token = pages + 1, page.token
            if not token:
                break
    assert pages > 150


def test_the_one_pass_is_refused_for_messages_it_does_not_know():
    """A trace's info carries maps and protobuf's well-known types (Timestamp, Duration), which json_format writes
    in forms of their own: the one pass must not claim it."""
    from mlflow.protos.service_pb2 import GetTraceInfoV3, SearchRuns
    from mlflow_oci import compact_json

    assert compact_json.one_pass_covers(SearchRuns.Response.DESCRIPTOR)
    assert not compact_json.one_pass_covers(GetTraceInfoV3.Response.DESCRIPTOR)


def test_a_run_deleted_for_good_between_ranking_and_reading_is_left_out(stores, monkeypatch):
    """`mlflow gc` may remove a ranked run before the page is read: the page goes on without it, and the next
    page is still offered."""
    mlflow_own, lean, experiment_ids = stores
    real_read = run_search._read_runs
    ranked = {}

    def read_after_a_gc(session, run_ids):
        ranked["ids"] = run_ids
        # the 4th ranked run is gone when the page is read: its id finds no row (the shared data stays intact)
        return real_read(session, run_ids[:3] + ["0" * 32] + run_ids[4:])

    monkeypatch.setattr(run_search, "_read_runs", read_after_a_gc)
    page = lean.search_runs(experiment_ids, "", run_search_cases.ViewType.ACTIVE_ONLY, 10, ["metrics.loss DESC"])
    assert len(ranked["ids"]) == 11
    assert [run.info.run_id for run in page] == (ranked["ids"][:3] + ranked["ids"][4:])[:10]
    assert page.token  # the ranking found more than a page: the next one is still offered
