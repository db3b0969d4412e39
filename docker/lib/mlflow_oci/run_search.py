"""The tracking server's store on MySQL: MLflow's SqlAlchemyStore with a leaner `search_runs`, the call behind
the run table, which is the slowest page of the UI once an experiment holds thousands of runs.

MLflow 3.17's search selects DISTINCT whole `runs` rows with the joins its filter and ORDER BY need, sorts them
all, then loads every run's latest metrics, params and tags as ORM objects and turns them into entities. This
store finds the same page of runs with the same joins, filters and ORDER BY (MLflow's own clause builders), but:
1. the DISTINCT and the sort carry only the run id and the values the ORDER BY reads, not whole rows;
2. the page's runs, latest metrics, params and tags are read by run id with four plain SELECTs and made into
   MLflow's entities directly, with no ORM objects in between.
Datasets and model outputs come from MLflow's own helpers, as in its search. Everything else is MLflow's store.

The `mlflow.tracking_store` entry point (tracking_store.py) builds it for `mysql` URIs.
MLFLOW_OCI_LEAN_RUN_SEARCH=false puts MLflow's own search back.
"""
from __future__ import annotations

from mlflow.entities import LifecycleStage, Metric, Param, Run, RunData, RunInfo, RunInputs, RunOutputs, RunTag
from mlflow.store.tracking import sqlalchemy_store as mlflow_store
from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlParam, SqlRun, SqlTag
from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME
from mlflow.utils.search_utils import SearchUtils
from sqlalchemy import select
from sqlalchemy.sql.elements import UnaryExpression

from mlflow_oci import switches

SWITCH = "MLFLOW_OCI_LEAN_RUN_SEARCH"


def enabled() -> bool:
    return switches.on(SWITCH)


class LeanSearchStore(mlflow_store.SqlAlchemyStore):
    def _search_runs(self, experiment_ids, filter_string, run_view_type, max_results, order_by, page_token):
        if not enabled():
            return super()._search_runs(experiment_ids, filter_string, run_view_type, max_results, order_by,
                                        page_token)
        self._validate_max_results_param(max_results, allow_null=True)
        stages = set(LifecycleStage.view_type_to_stages(run_view_type))
        offset = SearchUtils.parse_start_offset_from_page_token(page_token)
        with self.ManagedSessionMaker() as session:
            ranked = self._page_of_run_ids(session, experiment_ids, filter_string, stages, max_results, order_by,
                                           offset)
            runs = _read_runs(session, ranked)
            run_ids = [run.info.run_id for run in runs]  # less any run deleted since the ranking
            inputs = self._get_run_inputs(run_uuids=run_ids, session=session)
            outputs = self._get_model_outputs_bulk(run_ids=run_ids, session=session)
            runs = [Run(run.info, run.data, RunInputs(dataset_inputs=inputs[i]), RunOutputs(outputs[run.info.run_id]))
                    for i, run in enumerate(runs)]
        next_page_token = None
        if max_results is not None and len(ranked) == max_results + 1:  # one more than a page: there is a next
            next_page_token = SearchUtils.create_page_token(offset + max_results)
            runs = runs[:max_results]
        return runs, next_page_token

    def _page_of_run_ids(self, session, experiment_ids, filter_string, stages, max_results, order_by,
                         offset) -> list[str]:
        """MLflow's statement (its joins, filters and ORDER BY, one row more than a page), selecting the run id
        and what the ORDER BY reads instead of whole rows."""
        parsed_filters = SearchUtils.parse_search_filter(filter_string)
        cases, ordering, sorting_joins = mlflow_store._get_orderby_clauses(order_by, session)
        # DISTINCT needs every ORDER BY value in the select list (MySQL error 3065 otherwise).
        run_columns = [SqlRun.run_uuid] + [column for column in (_ordered_value(clause) for clause in ordering)
                                           if column is not None and column.table is SqlRun.__table__
                                           and column is not SqlRun.__table__.c.run_uuid]
        stmt = select(*_unique(run_columns), *cases)
        attribute_filters, non_attribute_filters, dataset_filters = mlflow_store._get_sqlalchemy_filter_clauses(
            parsed_filters, session, self._get_dialect())
        for non_attribute_filter in non_attribute_filters:
            stmt = stmt.join(non_attribute_filter)
        for dataset_filter in dataset_filters:
            stmt = stmt.join(dataset_filter, SqlRun.run_uuid == dataset_filter.c.destination_id)
        for join in sorting_joins:
            stmt = stmt.outerjoin(join)
        experiment_ids = self._filter_experiment_ids(session, mlflow_store._parse_experiment_ids(experiment_ids))
        stmt = (stmt.select_from(SqlRun).distinct()
                .filter(SqlRun.experiment_id.in_(experiment_ids), SqlRun.lifecycle_stage.in_(stages),
                        *attribute_filters)
                .order_by(*ordering).offset(offset))
        if max_results is not None:
            stmt = stmt.limit(max_results + 1)
        return [row[0] for row in session.execute(stmt)]


def _ordered_value(clause):
    """The column an ORDER BY clause sorts on (None for a label of the select list)."""
    if isinstance(clause, str):
        return None
    element = clause.element if isinstance(clause, UnaryExpression) else clause
    return element if hasattr(element, "table") else None


def _unique(columns: list) -> list:
    seen, unique = set(), []
    for column in columns:
        if column.key not in seen:
            seen.add(column.key)
            unique.append(column)
    return unique


def _read_runs(session, run_ids: list[str]) -> list[Run]:
    """The runs with their latest metrics, params and tags, in the order of run_ids, as SqlRun.to_mlflow_entity
    makes them (a run with no name takes its mlflow.runName tag). A run deleted for good since the ranking
    (`mlflow gc`) is left out."""
    if not run_ids:
        return []
    runs = {row.run_uuid: row for row in session.execute(
        select(SqlRun.run_uuid, SqlRun.name, SqlRun.experiment_id, SqlRun.user_id, SqlRun.status, SqlRun.start_time,
               SqlRun.end_time, SqlRun.lifecycle_stage, SqlRun.artifact_uri).where(SqlRun.run_uuid.in_(run_ids)))}
    metrics = _by_run(session, select(SqlLatestMetric.run_uuid, SqlLatestMetric.key, SqlLatestMetric.value,
                                      SqlLatestMetric.timestamp, SqlLatestMetric.step, SqlLatestMetric.is_nan)
                      .where(SqlLatestMetric.run_uuid.in_(run_ids)),
                      lambda r: Metric(r.key, float("nan") if r.is_nan else r.value, r.timestamp, r.step))
    params = _by_run(session, select(SqlParam.run_uuid, SqlParam.key, SqlParam.value)
                     .where(SqlParam.run_uuid.in_(run_ids)), lambda r: Param(r.key, r.value))
    tags = _by_run(session, select(SqlTag.run_uuid, SqlTag.key, SqlTag.value).where(SqlTag.run_uuid.in_(run_ids)),
                   lambda r: RunTag(r.key, r.value))
    found = []
    for run_id in (run_id for run_id in run_ids if run_id in runs):
        row, run_tags = runs[run_id], tags.get(run_id, [])
        name = row.name or next((tag.value for tag in run_tags if tag.key == MLFLOW_RUN_NAME), None)
        info = RunInfo(run_id=row.run_uuid, run_name=name, experiment_id=str(row.experiment_id), user_id=row.user_id,
                       status=row.status, start_time=row.start_time, end_time=row.end_time,
                       lifecycle_stage=row.lifecycle_stage, artifact_uri=row.artifact_uri)
        found.append(Run(info, RunData(metrics=metrics.get(run_id, []), params=params.get(run_id, []), tags=run_tags)))
    return found


def _by_run(session, statement, entity) -> dict[str, list]:
    grouped: dict[str, list] = {}
    for row in session.execute(statement):
        grouped.setdefault(row.run_uuid, []).append(entity(row))
    return grouped

