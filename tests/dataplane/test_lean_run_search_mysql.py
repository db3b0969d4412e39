"""On MariaDB (MySQL HeatWave's stand-in, primary keys required), the lean run search answers every search as
MLflow's own store does: the MySQL dialect's statements (NULLs sorted by CASE, DISTINCT with the ORDER BY
values selected, LIMIT/OFFSET) with MLflow's schema as init_db.py's statement rewrites make it."""
import sys
from pathlib import Path

import pytest
import sqlalchemy

from harness import run_search_cases

LIB = Path(__file__).resolve().parents[2] / "docker" / "lib"
pytestmark = pytest.mark.dataplane
DATABASE = "lean_search"


@pytest.fixture(scope="module")
def stores(mariadb, tmp_path_factory):
    if str(LIB) not in sys.path:
        sys.path.insert(0, str(LIB))
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    from mlflow_oci import run_search
    from mlflow_oci.mysql_ddl import install_statement_rewrites

    uri = mariadb.empty_database(DATABASE)
    install_statement_rewrites()  # MLflow's migrations pass with primary keys required
    artifacts = str(tmp_path_factory.mktemp("lean-search-artifacts"))
    mlflow_own = SqlAlchemyStore(uri, artifacts)
    experiment_ids = run_search_cases.make_runs(mlflow_own)
    lean = run_search.LeanSearchStore(uri, artifacts)
    yield mlflow_own, lean, experiment_ids
    for store in (mlflow_own, lean):
        store.engine.dispose()


def test_every_search_on_mysql_gives_mlflows_own_answer_page_by_page(stores):
    mlflow_own, lean, experiment_ids = stores
    assert lean.engine.dialect.name == "mysql"
    for search in run_search_cases.searches(experiment_ids):
        assert run_search_cases.every_page(lean, *search) == run_search_cases.every_page(mlflow_own, *search), search


def test_the_page_is_chosen_from_narrow_rows(stores):
    """The statement that ranks the runs carries the run id and the ORDER BY's values, not whole rows."""
    mlflow_own, lean, experiment_ids = stores
    statements = []

    def record(conn, cursor, statement, *rest):
        statements.append(statement)

    sqlalchemy.event.listen(lean.engine, "before_cursor_execute", record)
    try:
        lean.search_runs(experiment_ids, "params.lr = '0.01'", run_search_cases.ViewType.ACTIVE_ONLY, 10,
                         ["metrics.`loss` DESC"])
    finally:
        sqlalchemy.event.remove(lean.engine, "before_cursor_execute", record)
    ranking = next(s for s in statements if "ORDER BY" in s)
    selected = ranking.split("FROM", 1)[0]
    assert selected.startswith("SELECT DISTINCT runs.run_uuid, runs.start_time,"), ranking
    assert "runs.artifact_uri" not in selected and "runs.source_name" not in selected


def test_the_tracking_server_on_mysql_answers_compact_json(tracking_stack):
    """The deployed runtime (entrypoint, MariaDB): the store's builder made the worker's responses compact."""
    import requests

    answer = requests.post(f"{tracking_stack.direct_url}/api/2.0/mlflow/experiments/search",
                           json={"max_results": 5}, timeout=60)
    assert answer.status_code == 200, answer.text[:500]
    assert answer.json()["experiments"] and "\n" not in answer.text
